/**
 * @jest-environment node
 */
import { InfinStorRequestError } from '../../common/request';
import { isWrite } from '../client';
import { ExperimentsModel, ModelVersionsModel, NotebookRunsModel, RegisteredModelsModel, versionAliases } from '../models';
import { IExperiment, IModelVersion, IRegisteredModel, IRun } from '../types';
import { fakeProxy as fakeServer, Routes } from './fakeProxy';

function makeRun(id: string, status: IRun['info']['status'] = 'FINISHED', extra: Partial<IRun['data']> = {}): IRun {
  return {
    info: { run_id: id, experiment_id: '1', status, start_time: 1000, run_name: `run-${id}` },
    data: { metrics: [], params: [], tags: [], ...extra }
  };
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeout = 2000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('timed out waiting');
    }
    await sleep(5);
  }
}

/** Models made by a spec, disposed after it (a live model keeps polling until then). */
const made: Array<{ dispose(): void }> = [];
function disposeAfter<T extends { dispose(): void }>(model: T): T {
  made.push(model);
  return model;
}
afterEach(() => made.splice(0).forEach(m => m.dispose()));

async function flush() {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}

describe('MlflowClient', () => {
  it('calls MLflow through the proxy with JSON bodies', async () => {
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/runs/search': () => ({ body: { runs: [makeRun('a')], next_page_token: 'tok' } })
    });
    const page = await client.searchRuns({
      experimentIds: ['1'],
      filter: 'metrics.loss < 0.2',
      orderBy: ['attributes.start_time DESC'],
      maxResults: 50,
      pageToken: 'p1'
    });
    expect(page.items[0].info.run_id).toBe('a');
    expect(page.nextPageToken).toBe('tok');
    expect(calls[0].method).toBe('POST');
    expect(calls[0].body).toEqual({
      experiment_ids: ['1'],
      filter: 'metrics.loss < 0.2',
      order_by: ['attributes.start_time DESC'],
      max_results: 50,
      page_token: 'p1',
      run_view_type: 'ACTIVE_ONLY'
    });
  });

  it('builds proxy and UI URLs', () => {
    const { client } = fakeServer({});
    expect(client.artifactUrl('r1', 'plots/a b.png')).toBe(
      'http://localhost:8888/lab/infinstor/api/mlflow/get-artifact?path=plots%2Fa%20b.png&run_uuid=r1'
    );
    expect(client.uiUrl('#/experiments/3/runs')).toBe(
      'http://localhost:8888/lab/infinstor/api/mlflow/#/experiments/3/runs'
    );
  });

  it("raises MLflow's error_code and the proxy's reason", async () => {
    const { client } = fakeServer({
      'api/2.0/mlflow/experiments/delete': () => ({
        status: 403,
        body: { error_code: 'PERMISSION_DENIED', message: 'Only managers may delete experiment 2.' }
      }),
      'api/2.0/mlflow/runs/get': () => ({
        status: 401,
        body: { message: 'Sign in to the tracking service.', reason: 'sign_in_required' }
      })
    });
    await expect(client.deleteExperiment('2')).rejects.toMatchObject({
      status: 403,
      reason: 'PERMISSION_DENIED',
      message: 'Only managers may delete experiment 2.'
    });
    const error = await client.getRun('x').catch(e => e);
    expect(error).toBeInstanceOf(InfinStorRequestError);
    expect(error.reason).toBe('sign_in_required');
  });

  it('follows page tokens of a metric history and sorts by step', async () => {
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/metrics/get-history': call =>
        call.query.get('page_token')
          ? { body: { metrics: [{ key: 'loss', value: 'NaN', step: 0, timestamp: 5 }] } }
          : { body: { metrics: [{ key: 'loss', value: 0.5, step: 2, timestamp: 9 }], next_page_token: 'n' } }
    });
    const points = await client.getMetricHistory('r', 'loss');
    expect(points.map(p => p.step)).toEqual([0, 2]);
    expect(Number.isNaN(points[0].value)).toBe(true);
    expect(calls).toHaveLength(2);
    expect(calls[0].query.get('metric_key')).toBe('loss');
  });

  it('treats an existing registered model as fine and creates versions', async () => {
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/registered-models/create': () => ({
        status: 400,
        body: { error_code: 'RESOURCE_ALREADY_EXISTS', message: 'exists' }
      }),
      'api/2.0/mlflow/model-versions/create': call => ({
        body: { model_version: { name: call.body.name, version: '3' } }
      })
    });
    expect(await client.createRegisteredModel('m')).toBe(false);
    const v = await client.createModelVersion({ name: 'm', source: 'models:/m-1', runId: 'r', modelId: 'm-1' });
    expect(v.version).toBe('3');
    expect(calls[1].body).toEqual({ name: 'm', source: 'models:/m-1', run_id: 'r', model_id: 'm-1' });
  });
});

describe('ExperimentsModel', () => {
  it('searches by name and pages through everything', async () => {
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/experiments/search': call =>
        call.body.page_token
          ? { body: { experiments: [{ experiment_id: '2', name: 'b' }] } }
          : { body: { experiments: [{ experiment_id: '1', name: 'a' }], next_page_token: 'x' } }
    });
    const model = disposeAfter(new ExperimentsModel({ client }));
    const changed = jest.fn();
    model.changed.connect(changed);
    await model.setQuery('mnist');
    expect(model.experiments.map(e => e.name)).toEqual(['a', 'b']);
    expect(calls[0].body.filter).toBe("name ILIKE '%mnist%'");
    expect(model.loading).toBe(false);
    expect(changed).toHaveBeenCalled();
  });

  it('keeps the refusal for the caller and the list intact', async () => {
    const { client } = fakeServer({
      'api/2.0/mlflow/experiments/search': () => ({ body: { experiments: [{ experiment_id: '1', name: 'a' }] } }),
      'api/2.0/mlflow/experiments/update': () => ({
        status: 403,
        body: { error_code: 'PERMISSION_DENIED', message: 'Readers may not rename experiments.' }
      })
    });
    const model = disposeAfter(new ExperimentsModel({ client }));
    await model.refresh();
    await expect(model.rename('1', 'b')).rejects.toThrow('Readers may not rename experiments.');
    expect(model.experiments).toHaveLength(1);
  });

  it('shows an error state', async () => {
    const { client } = fakeServer({
      'api/2.0/mlflow/experiments/search': () => ({ status: 503, body: { message: 'down', reason: 'tracking_unavailable' } })
    });
    const model = disposeAfter(new ExperimentsModel({ client }));
    await model.refresh();
    expect(model.error).toBeInstanceOf(InfinStorRequestError);
    expect((model.error as InfinStorRequestError).reason).toBe('tracking_unavailable');
  });
});

describe('NotebookRunsModel / RegisteredModelsModel', () => {
  it('finds the runs of a notebook across experiments, newest first', async () => {
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/experiments/search': () => ({
        body: { experiments: [{ experiment_id: '1' }, { experiment_id: '2' }] }
      }),
      'api/2.0/mlflow/runs/search': () => ({
        body: {
          runs: [
            { ...makeRun('old'), info: { ...makeRun('old').info, start_time: 1 } },
            { ...makeRun('new'), info: { ...makeRun('new').info, start_time: 9 } }
          ]
        }
      })
    });
    const model = disposeAfter(new NotebookRunsModel({ client }));
    await model.setPath("work/it's.ipynb");
    expect(model.runs.map(r => r.info.run_id)).toEqual(['new', 'old']);
    const search = calls.find(c => c.path === 'api/2.0/mlflow/runs/search')!;
    expect(search.body.experiment_ids).toEqual(['1', '2']);
    expect(search.body.filter).toBe("tags.`mlflow.source.name` = 'work/it\\'s.ipynb'");
    await model.setPath(null);
    expect(model.runs).toEqual([]);
  });

  it('lists registered models and their versions with aliases', async () => {
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/registered-models/search': () => ({
        body: { registered_models: [{ name: 'm', aliases: [{ alias: 'champion', version: '2' }] }] }
      }),
      'api/2.0/mlflow/model-versions/search': () => ({
        body: { model_versions: [{ name: 'm', version: '1' }, { name: 'm', version: '2', aliases: ['prod'] }] }
      })
    });
    const model = disposeAfter(new RegisteredModelsModel({ client }));
    await model.setQuery('m');
    expect(model.models[0].name).toBe('m');
    expect(calls[0].query.get('filter')).toBe("name ILIKE '%m%'");
    const versions = await model.versions('m');
    expect(versions.map(v => v.version)).toEqual(['2', '1']);
    expect(versionAliases(model.models[0], versions[0])).toEqual(['champion', 'prod']);
  });
});

// -- live: what is written elsewhere shows with no click ----------------------------------------

/** Fast live timings for the specs: checks every 20 ms, backing off to 40 ms. */
const LIVE = { interval: 20, idleInterval: 40 };

/** A tracking server's experiments and runs, written to "elsewhere" (not through the client). */
class Tracking {
  experiments: IExperiment[] = [{ experiment_id: '1', name: 'first', last_update_time: 1, lifecycle_stage: 'active' }];
  runs: IRun[] = [];
  clock = 10;

  createExperiment(name: string): string {
    const id = String(this.experiments.length + 1);
    this.experiments.push({ experiment_id: id, name, last_update_time: ++this.clock, lifecycle_stage: 'active' });
    return id;
  }

  deleteExperiment(id: string): void {
    const e = this.experiments.find(x => x.experiment_id === id)!;
    e.lifecycle_stage = 'deleted';
    e.last_update_time = ++this.clock;
  }

  logRun(id: string, experimentId = '1', status: IRun['info']['status'] = 'FINISHED', source = ''): IRun {
    const run = makeRun(id, status, { tags: source ? [{ key: 'mlflow.source.name', value: source }] : [] });
    run.info.experiment_id = experimentId;
    run.info.start_time = ++this.clock;
    this.runs.push(run);
    return run;
  }

  server(extra: Routes = {}) {
    return fakeServer({
      ...extra,
      'api/2.0/mlflow/experiments/search': call => {
        const all = call.body.view_type === 'ALL';
        let items = this.experiments.filter(e => all || e.lifecycle_stage === 'active');
        if ((call.body.order_by ?? [])[0] === 'last_update_time DESC') {
          items = items.slice().sort((a, b) => (b.last_update_time ?? 0) - (a.last_update_time ?? 0));
        }
        return { body: { experiments: items.slice(0, call.body.max_results) } };
      },
      'api/2.0/mlflow/runs/search': call => {
        const source = /mlflow\.source\.name` = '(.*)'$/.exec(call.body.filter ?? '');
        const items = this.runs
          .filter(r => call.body.experiment_ids.includes(r.info.experiment_id))
          .filter(r => !source || r.data.tags?.some(t => t.key === 'mlflow.source.name' && t.value === source[1]))
          .sort((a, b) => (b.info.start_time ?? 0) - (a.info.start_time ?? 0));
        return { body: { runs: items.slice(0, call.body.max_results) } };
      }
    });
  }
}

describe('Live lists: changes made elsewhere show with no click', () => {
  const models: Array<{ dispose(): void }> = [];
  afterEach(() => {
    models.splice(0).forEach(m => m.dispose());
  });
  function track<T extends { dispose(): void }>(model: T): T {
    models.push(model);
    return model;
  }

  it('Experiments: one created by a kernel appears, one deleted goes, with one cheap search per check', async () => {
    const tracking = new Tracking();
    const { client, calls } = tracking.server();
    const model = track(new ExperimentsModel({ client, ...LIVE }));
    await model.setQuery('');
    expect(model.experiments.map(e => e.name)).toEqual(['first']);
    // Nothing changes: only the probe (the experiment changed last, deleted ones included).
    await sleep(150);
    const idle = calls.slice(2);
    expect(idle.length).toBeGreaterThan(0);
    expect(idle.every(c => c.body.max_results === 1 && c.body.view_type === 'ALL')).toBe(true);
    expect(model.interval).toBe(40);

    tracking.createExperiment('from-a-kernel');
    await until(() => model.experiments.some(e => e.name === 'from-a-kernel'));
    tracking.deleteExperiment('2');
    await until(() => !model.experiments.some(e => e.name === 'from-a-kernel'));
  });

  it('Experiments: asks nothing while not visible, and catches up at once when shown', async () => {
    const tracking = new Tracking();
    const { client, calls } = tracking.server();
    const model = track(new ExperimentsModel({ client, ...LIVE }));
    await model.setQuery('');
    model.visible = false;
    await sleep(60);
    const n = calls.length;
    tracking.createExperiment('while-hidden');
    await sleep(150);
    expect(calls.length).toBe(n);
    expect(model.experiments).toHaveLength(1);
    model.visible = true;
    await until(() => model.experiments.length === 2, 500);
  });

  it('This notebook: a run the notebook logs to a new experiment shows up', async () => {
    const tracking = new Tracking();
    tracking.logRun('earlier', '1', 'FINISHED', 'work/train.ipynb');
    const { client } = tracking.server();
    const model = track(new NotebookRunsModel({ client, ...LIVE }));
    await model.setPath('work/train.ipynb');
    expect(model.runs.map(r => r.info.run_id)).toEqual(['earlier']);
    const id = tracking.createExperiment('new-from-notebook');
    tracking.logRun('in-new-experiment', id, 'RUNNING', 'work/train.ipynb');
    tracking.logRun('other-notebook', id, 'FINISHED', 'work/other.ipynb');
    await until(() => model.runs.length === 2);
    expect(model.runs.map(r => r.info.run_id)).toEqual(['in-new-experiment', 'earlier']);
  });

  it('tells writes from reads; a write through the client makes the views check at once', async () => {
    expect(isWrite('POST', 'api/2.0/mlflow/runs/search')).toBe(false);
    expect(isWrite('GET', 'api/2.0/mlflow/experiments/get')).toBe(false);
    expect(isWrite('POST', 'api/2.0/mlflow/experiments/create')).toBe(true);
    expect(isWrite('DELETE', 'api/2.0/mlflow/registered-models/alias')).toBe(true);

    const tracking = new Tracking();
    const { client, calls } = tracking.server({ 'api/2.0/mlflow/runs/set-tag': () => ({ body: {} }) });
    const changes: string[] = [];
    client.changed.connect((_, change) => changes.push(`${change.source}:${change.path}`));
    // Slow checks: only a nudge can make it ask soon.
    const model = track(new ExperimentsModel({ client, interval: 5000, idleInterval: 5000 }));
    await model.setQuery('');
    const n = calls.length;
    await client.setTag('r1', 'k', 'v');
    client.notifyChanged('job');
    expect(changes).toEqual(['lab:api/2.0/mlflow/runs/set-tag', 'job:']);
    await until(() => calls.length > n + 1, 500);
    expect(calls[n + 1].path).toBe('api/2.0/mlflow/experiments/search');
  });

  it('Models: a new version registered elsewhere shows in the list', async () => {
    const registered: IRegisteredModel[] = [{ name: 'churn', last_updated_timestamp: 1 }];
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/registered-models/search': call => {
        const byTime = call.query.get('order_by') === 'last_updated_timestamp DESC';
        const items = byTime
          ? registered.slice().sort((a, b) => (b.last_updated_timestamp ?? 0) - (a.last_updated_timestamp ?? 0))
          : registered;
        return { body: { registered_models: items.slice(0, Number(call.query.get('max_results'))) } };
      }
    });
    const model = track(new RegisteredModelsModel({ client, ...LIVE }));
    await model.setQuery('');
    registered.push({ name: 'vision', last_updated_timestamp: 5 });
    await until(() => model.models.length === 2);
    registered[0].last_updated_timestamp = 9;
    registered[0].latest_versions = [{ name: 'churn', version: '2' }];
    await until(() => (model.models[0].latest_versions ?? []).length === 1);
    expect(calls.some(c => c.query.get('max_results') === '1')).toBe(true);
  });

  it("Model versions: aliases, tags, description, status and the source run's name; promote moves an alias; a refusal is passed on", async () => {
    const model: IRegisteredModel = { name: 'churn', last_updated_timestamp: 1, aliases: [{ alias: 'champion', version: '1' }] };
    const versions: IModelVersion[] = [
      { name: 'churn', version: '1', run_id: 'r1', status: 'READY', description: 'baseline', tags: [{ key: 'team', value: 'ml' }] },
      { name: 'churn', version: '2', run_id: 'r2', status: 'READY' }
    ];
    let refuse = false;
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/registered-models/get': () => ({ body: { registered_model: model } }),
      'api/2.0/mlflow/model-versions/search': () => ({ body: { model_versions: versions } }),
      'api/2.0/mlflow/runs/get': call => ({
        body: { run: { ...makeRun(call.query.get('run_id')!), info: { ...makeRun('x').info, run_id: call.query.get('run_id')!, run_name: `name-of-${call.query.get('run_id')}` } } }
      }),
      'api/2.0/mlflow/registered-models/alias': call => {
        if (refuse) {
          return {
            status: 403,
            body: { error_code: 'PERMISSION_DENIED', message: "Setting an alias takes the editor role on model 'churn'; carol holds reader." }
          };
        }
        model.aliases = (model.aliases ?? []).filter(a => a.alias !== call.body.alias);
        if (call.method === 'POST') {
          model.aliases.push({ alias: call.body.alias, version: call.body.version });
        }
        return { body: {} };
      }
    });
    const live = track(new ModelVersionsModel({ client, name: 'churn', ...LIVE }));
    await live.refresh();
    expect(live.versions.map(v => v.version)).toEqual(['2', '1']);
    expect(live.aliases(live.versions[1])).toEqual(['champion']);
    expect(live.runName('r1')).toBe('name-of-r1');
    expect(live.aliasTarget('champion')).toBe('1');

    // Promote: the alias moves from v1 to v2.
    await live.setAlias('champion', '2');
    const set = calls.find(c => c.path === 'api/2.0/mlflow/registered-models/alias')!;
    expect([set.method, set.body]).toEqual(['POST', { name: 'churn', alias: 'champion', version: '2' }]);
    expect(live.aliasTarget('champion')).toBe('2');
    expect(live.aliases(live.versions[1])).toEqual([]);

    // Refused: the server's message reaches the caller; nothing changes.
    refuse = true;
    await expect(live.setAlias('prod', '1')).rejects.toMatchObject({
      status: 403,
      reason: 'PERMISSION_DENIED',
      message: "Setting an alias takes the editor role on model 'churn'; carol holds reader."
    });
    expect(live.aliasTarget('prod')).toBeNull();

    // Moved elsewhere (another user): the probe (the registered model) sees it.
    refuse = false;
    model.aliases = [{ alias: 'champion', version: '1' }];
    await until(() => live.aliasTarget('champion') === '1');
    // Run names are asked once.
    expect(calls.filter(c => c.path === 'api/2.0/mlflow/runs/get')).toHaveLength(2);
  });
});
