/**
 * @jest-environment node
 */
/**
 * The runs model against a fake of the lab's MLflow proxy that pages, filters and refuses
 * like MLflow's runs/search.
 */
import { fakeProxy, Call } from '../../mlflow/__tests__/fakeProxy';
import { IRun } from '../../mlflow/types';
import { ExperimentRunsModel } from '../model';
import { RunsModelRegistry } from '../registry';
import { RunsViewStateStore } from '../viewState';

function makeRun(i: number, status = 'FINISHED'): IRun {
  return {
    info: { run_id: `r${String(i).padStart(4, '0')}`, run_name: `run-${i}`, experiment_id: '1', status: status as any, start_time: 1000 + i },
    data: { metrics: [{ key: 'loss', value: i / 100, step: 0, timestamp: 0 }], params: [], tags: [] }
  };
}

/** runs/search over `server.runs`, newest first: page tokens are offsets. */
function runsServer(count: number) {
  const server = { runs: Array.from({ length: count }, (_, i) => makeRun(i)) };
  const proxy = fakeProxy({
    'api/2.0/mlflow/runs/search': (call: Call) => {
      const { filter = '', max_results, page_token } = call.body;
      if (filter.includes('<<')) {
        return { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: "Invalid clause(s) in filter string: 'metrics.loss', '<<'" } };
      }
      let runs = server.runs.slice().sort((a, b) => b.info.start_time! - a.info.start_time!);
      const since = /attributes\.start_time >= (\d+)/.exec(filter);
      if (since) {
        runs = runs.filter(r => r.info.start_time! >= Number(since[1]));
      }
      const like = /run_name ILIKE '%(.*)%'/.exec(filter);
      if (like) {
        runs = runs.filter(r => r.info.run_name!.includes(like[1]));
      }
      const ids = /run_id IN \((.*)\)/.exec(filter);
      if (ids) {
        runs = runs.filter(r => ids[1].includes(`'${r.info.run_id}'`));
      }
      const offset = Number(page_token ?? 0);
      const page = runs.slice(offset, offset + max_results);
      const next = offset + max_results < runs.length ? String(offset + max_results) : undefined;
      return { body: { runs: page, next_page_token: next } };
    }
  });
  return { server, ...proxy };
}

async function until(condition: () => boolean, timeout = 3000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('timed out waiting');
    }
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

const searches = (calls: Call[]) => calls.filter(c => c.path === 'api/2.0/mlflow/runs/search');

describe('ExperimentRunsModel', () => {
  let model: ExperimentRunsModel;
  afterEach(() => model?.dispose());

  it('asks nothing until a view shows it; then a small first page, the next pages on demand', async () => {
    const { client, calls } = runsServer(500);
    model = new ExperimentRunsModel({ client, experimentId: '1', firstPageSize: 50, pageSize: 200, interval: 60000 });
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(searches(calls)).toHaveLength(0);

    const view = {};
    model.setVisible(view, true);
    expect(model.busy).toBe(true);
    await until(() => model.hasPage);
    expect(model.runs).toHaveLength(50);
    expect(model.runs[0].info.run_name).toBe('run-499');
    expect(searches(calls)[0].body).toMatchObject({
      experiment_ids: ['1'],
      max_results: 50,
      order_by: ['attributes.start_time DESC', 'attributes.run_id ASC']
    });
    expect(model.hasMore).toBe(true);

    await model.loadMore();
    expect(model.runs).toHaveLength(250);
    expect(searches(calls)[1].body).toMatchObject({ max_results: 200, page_token: '50' });
    await model.loadMore();
    await model.loadMore();
    expect(model.runs).toHaveLength(500);
    expect(model.hasMore).toBe(false);
    expect(new Set(model.runs.map(r => r.info.run_id)).size).toBe(500);
  });

  it('a filter MLflow refuses clears the rows (no stale rows or count) and is not retried', async () => {
    const { client, calls } = runsServer(80);
    model = new ExperimentRunsModel({ client, experimentId: '1', interval: 20, idleInterval: 20 });
    model.setVisible({}, true);
    await until(() => model.hasPage);
    expect(model.runs.length).toBe(50);

    model.setQuery({ filter: 'metrics.loss << 1', sort: model.query.sort });
    // While the new query is asked, what is shown is marked stale.
    expect(model.stale).toBe(true);
    await until(() => model.error !== null);
    expect(model.error!.message).toContain('Invalid clause');
    expect(model.runs).toHaveLength(0);
    expect(model.hasMore).toBe(false);
    expect(model.stale).toBe(false);
    expect(model.hasPage).toBe(false);
    const asked = searches(calls).length;
    await new Promise(resolve => setTimeout(resolve, 150));
    expect(searches(calls).length).toBe(asked);

    // A valid filter again: rows, no error.
    model.setQuery({ filter: 'run-7', sort: model.query.sort });
    await until(() => model.hasPage);
    expect(model.error).toBeNull();
    expect(model.runs.map(r => r.info.run_name)).toEqual(['run-79', 'run-78', 'run-77', 'run-76', 'run-75', 'run-74', 'run-73', 'run-72', 'run-71', 'run-70', 'run-7']);
    expect(searches(calls).some(c => c.body.filter === "attributes.run_name ILIKE '%run-7%'")).toBe(true);
  });

  it('a refused filter clears the rows under a sort other than newest first too (the probe is asked first then)', async () => {
    const { client } = runsServer(80);
    model = new ExperimentRunsModel({ client, experimentId: '1', interval: 20, idleInterval: 20 });
    model.setVisible({}, true);
    model.setQuery({ filter: '', sort: { column: 'metric:loss', desc: false } });
    await until(() => model.hasPage && !model.busy);
    expect(model.runs.length).toBe(50);

    model.setQuery({ filter: 'metrics.loss << 1', sort: model.query.sort });
    await until(() => model.error !== null);
    expect(model.error!.message).toContain('Invalid clause');
    expect(model.runs).toHaveLength(0);
    expect(model.stale).toBe(false);
    expect(model.hasPage).toBe(false);
  });

  it('sorts by what MLflow cannot (duration) over the loaded rows, without a request', async () => {
    const { client, calls } = runsServer(3);
    model = new ExperimentRunsModel({ client, experimentId: '1', interval: 60000 });
    model.setVisible({}, true);
    await until(() => model.hasPage);
    model.setQuery({ filter: '', sort: { column: 'metric:loss', desc: false } });
    expect(model.busy).toBe(true); // a metric: MLflow sorts
    await until(() => model.hasPage);
    expect(searches(calls).pop()!.body.order_by[0]).toBe('metrics.loss ASC');
    // (Sorted otherwise than newest first, the page cannot tell what the live check will see:
    // one probe of the newest runs came with it.)
    const asked = searches(calls).length;
    model.setQuery({ filter: '', sort: { column: 'duration', desc: true } });
    expect(model.busy).toBe(false);
    expect(searches(calls).length).toBe(asked);
  });

  it('while visible, picks up new runs and follows active ones; stops while hidden', async () => {
    const { client, server, calls } = runsServer(5);
    server.runs[4] = makeRun(4, 'RUNNING');
    model = new ExperimentRunsModel({ client, experimentId: '1', interval: 20, idleInterval: 40 });
    const view = {};
    model.setVisible(view, true);
    await until(() => model.hasPage);
    server.runs.push(makeRun(5));
    server.runs[4] = makeRun(4, 'FINISHED');
    await until(() => model.runs.length === 6 && model.runs[1].info.status === 'FINISHED');
    expect(model.runs[0].info.run_name).toBe('run-5');
    // Each check after the first page is one cheap search: the newest runs, as many as reach
    // back to the running one and one more (no page asked again).
    expect(searches(calls).slice(1).every(c => c.body.max_results === 2 && c.body.order_by[0] === 'attributes.start_time DESC')).toBe(true);

    model.setVisible(view, false);
    await new Promise(resolve => setTimeout(resolve, 60));
    const asked = searches(calls).length;
    await new Promise(resolve => setTimeout(resolve, 150));
    expect(searches(calls).length).toBe(asked);
  });
});

describe('ExperimentRunsModel: live', () => {
  let model: ExperimentRunsModel;
  afterEach(() => model?.dispose());

  it("a job's new runs and a running run's metrics show with no click; a probe per check, a page only for a sweep", async () => {
    const { client, server, calls } = runsServer(3);
    model = new ExperimentRunsModel({ client, experimentId: '1', interval: 20, idleInterval: 40 });
    model.setVisible({}, true);
    await until(() => model.hasPage);
    const firstPages = () => searches(calls).filter(c => c.body.max_results === 50).length;
    const newestPages = () => searches(calls).filter(c => c.body.max_results === 200).length;
    expect(firstPages()).toBe(1);

    // One new run (running): the probe brings it; no page is asked again.
    const running = makeRun(3, 'RUNNING');
    server.runs.push(running);
    await until(() => model.runs.length === 4);
    expect(model.runs[0].info.run_id).toBe(running.info.run_id);

    // Its metrics and its end.
    server.runs[3] = { ...running, data: { ...running.data, metrics: [{ key: 'loss', value: 0.25, step: 3, timestamp: 0 }] } };
    await until(() => model.runs[0].data.metrics?.[0]?.value === 0.25);
    server.runs[3] = { ...server.runs[3], info: { ...running.info, status: 'FINISHED' } };
    await until(() => model.runs[0].info.status === 'FINISHED');
    expect(firstPages() + newestPages()).toBe(1);

    // A sweep: more new runs than the probe saw, so the newest page is asked (once).
    for (let i = 4; i < 9; i++) {
      server.runs.push(makeRun(i));
    }
    await until(() => model.runs.length === 9);
    expect(newestPages()).toBe(1);
    expect(model.runs[0].info.run_name).toBe('run-8');
  });

  it('a running run older than the newest 50 is followed by id (only while there is one)', async () => {
    const { client, server, calls } = runsServer(60);
    server.runs[0] = makeRun(0, 'RUNNING');
    model = new ExperimentRunsModel({ client, experimentId: '1', firstPageSize: 100, interval: 20, idleInterval: 40 });
    model.setVisible({}, true);
    await until(() => model.hasPage);
    expect(model.runs).toHaveLength(60);
    await until(() => searches(calls).some(c => c.body.filter === "attributes.run_id IN ('r0000')"));
    server.runs[0] = makeRun(0, 'FINISHED');
    await until(() => model.runs[59].info.status === 'FINISHED');
    // Nothing runs now: one search per check.
    const n = searches(calls).length;
    await new Promise(resolve => setTimeout(resolve, 150));
    const later = searches(calls).slice(n);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every(c => !c.body.filter?.includes('run_id IN'))).toBe(true);
  });

  it('a write through the lab makes it check at once; asks nothing while no view shows it', async () => {
    const { client, server, calls } = runsServer(2);
    // Slow checks: only the write can make it ask soon.
    model = new ExperimentRunsModel({ client, experimentId: '1', interval: 60000, idleInterval: 60000 });
    const view = {};
    model.setVisible(view, true);
    await until(() => model.hasPage);
    server.runs.push(makeRun(2));
    client.notifyChanged('job');
    await until(() => model.runs.length === 3, 1000);

    model.setVisible(view, false);
    const n = calls.length;
    server.runs.push(makeRun(3));
    client.notifyChanged('job');
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(calls.length).toBe(n);
    // Shown again: it catches up at once.
    model.setVisible(view, true);
    await until(() => model.runs.length === 4, 1000);
  });
});

describe('RunsModelRegistry', () => {
  it('shares one model per experiment between views, following the saved filter and sort', async () => {
    const { client, calls } = runsServer(60);
    const store = new RunsViewStateStore({ state: null });
    const registry = new RunsModelRegistry({ client, store, modelOptions: { interval: 60000 } });
    const a = registry.acquire('1');
    const b = registry.acquire('1');
    expect(a).toBe(b);
    a.setVisible({}, true);
    await until(() => a.hasPage);
    store.update('1', { filter: 'run-5' });
    await until(() => a.hasPage && a.runs.length === 11);
    expect(searches(calls).pop()!.body.filter).toContain('run-5');
    registry.release('1');
    expect(a.isDisposed).toBe(false);
    registry.release('1');
    expect(a.isDisposed).toBe(true);
    expect(registry.acquire('1')).not.toBe(a);
    registry.release('1');
  });
});
