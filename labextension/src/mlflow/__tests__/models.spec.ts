/**
 * @jest-environment node
 */
import { InfinStorRequestError } from '../../common/request';
import {
  availableKeys,
  CompareModel,
  ExperimentsModel,
  NotebookRunsModel,
  RegisteredModelsModel,
  RunDetailModel,
  RunsModel,
  versionAliases
} from '../models';
import { IRun } from '../types';
import { fakeProxy as fakeServer } from './fakeProxy';

function makeRun(id: string, status: IRun['info']['status'] = 'FINISHED', extra: Partial<IRun['data']> = {}): IRun {
  return {
    info: { run_id: id, experiment_id: '1', status, start_time: 1000, run_name: `run-${id}` },
    data: { metrics: [], params: [], tags: [], ...extra }
  };
}

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
    const model = new ExperimentsModel({ client });
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
    const model = new ExperimentsModel({ client });
    await model.refresh();
    await expect(model.rename('1', 'b')).rejects.toThrow('Readers may not rename experiments.');
    expect(model.experiments).toHaveLength(1);
  });

  it('shows an error state', async () => {
    const { client } = fakeServer({
      'api/2.0/mlflow/experiments/search': () => ({ status: 503, body: { message: 'down', reason: 'tracking_unavailable' } })
    });
    const model = new ExperimentsModel({ client });
    await model.refresh();
    expect(model.error).toBeInstanceOf(InfinStorRequestError);
    expect((model.error as InfinStorRequestError).reason).toBe('tracking_unavailable');
  });
});

describe('RunsModel', () => {
  let model: RunsModel | null = null;
  afterEach(() => {
    model?.dispose();
    model = null;
  });

  function pagedServer(total: number, status: IRun['info']['status'] = 'FINISHED') {
    const runs = Array.from({ length: total }, (_, i) => makeRun(`r${i}`, status));
    return fakeServer({
      'api/2.0/mlflow/runs/search': call => {
        const offset = call.body.page_token ? Number(call.body.page_token) : 0;
        if (call.body.filter?.startsWith('attributes.run_id IN')) {
          return { body: { runs: [] } };
        }
        const items = runs.slice(offset, offset + call.body.max_results);
        const next = offset + items.length < total ? String(offset + items.length) : undefined;
        return { body: { runs: items, next_page_token: next } };
      }
    });
  }

  it('loads pages with the server page token', async () => {
    const { client, calls } = pagedServer(250);
    model = new RunsModel({ client, experimentIds: ['1'], pageSize: 100 });
    await model.reload();
    expect(model.runs).toHaveLength(100);
    expect(model.hasMore).toBe(true);
    await model.loadMore();
    await model.loadMore();
    expect(model.runs).toHaveLength(250);
    expect(model.hasMore).toBe(false);
    await model.loadMore(); // at the end: no request
    const searches = calls.filter(c => c.path === 'api/2.0/mlflow/runs/search');
    expect(searches.map(c => c.body.page_token)).toEqual([undefined, '100', '200']);
    expect(searches[0].body.order_by).toEqual(['attributes.start_time DESC', 'attributes.run_id ASC']);
  });

  it('sends the filter and server-side order_by; sorts duration locally', async () => {
    const { client, calls } = pagedServer(3);
    model = new RunsModel({ client, experimentIds: ['1'] });
    await model.setFilter("metrics.loss < 0.2 and params.lr = '0.01'");
    expect(calls[0].body.filter).toBe("metrics.loss < 0.2 and params.lr = '0.01'");
    await model.setSort({ column: 'metric:val loss', desc: false });
    expect(calls[1].body.order_by[0]).toBe('metrics.`val loss` ASC');
    const before = calls.length;
    await model.setSort({ column: 'duration', desc: true });
    expect(calls.length).toBe(before);
    expect(model.serverSorted).toBe(false);
  });

  it('drops answers to superseded queries', async () => {
    const { client } = pagedServer(5);
    model = new RunsModel({ client, experimentIds: ['1'] });
    const first = model.setFilter('params.a = 1');
    const second = model.setFilter('');
    await Promise.all([first, second]);
    expect(model.filter).toBe('');
    expect(model.runs).toHaveLength(5);
  });

  it('keeps the error and lets a reload recover', async () => {
    let fail = true;
    const { client } = fakeServer({
      'api/2.0/mlflow/runs/search': () =>
        fail
          ? { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: 'Invalid filter' } }
          : { body: { runs: [makeRun('a')] } }
    });
    model = new RunsModel({ client, experimentIds: ['1'] });
    await model.setFilter('metrics.loss <');
    expect(model.error?.message).toBe('Invalid filter');
    fail = false;
    await model.reload();
    expect(model.error).toBeNull();
    expect(model.runs).toHaveLength(1);
  });

  it('polls running runs, backs off while nothing changes and stands by when hidden', async () => {
    let status: IRun['info']['status'] = 'RUNNING';
    let loss = 1;
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/runs/search': call => {
        const r = makeRun('a', status, { metrics: [{ key: 'loss', value: loss, step: 1 }] });
        return { body: { runs: [r] } };
      }
    });
    model = new RunsModel({ client, experimentIds: ['1'], pollInterval: 20, maxPollInterval: 80 });
    await model.reload();
    expect(model.runs[0].info.status).toBe('RUNNING');
    // Nothing changes: the interval doubles up to the ceiling.
    await new Promise(resolve => setTimeout(resolve, 200));
    expect(model.pollInterval).toBe(80);
    // A change resets it and reaches the view.
    const changed = jest.fn();
    model.changed.connect(changed);
    loss = 0.5;
    status = 'FINISHED';
    await new Promise(resolve => setTimeout(resolve, 250));
    await flush();
    expect(changed).toHaveBeenCalled();
    expect(model.runs[0].info.status).toBe('FINISHED');
    expect(model.runs[0].data.metrics?.[0].value).toBe(0.5);
    // No more active runs: the poll stands by (no more requests).
    const n = calls.length;
    await new Promise(resolve => setTimeout(resolve, 150));
    expect(calls.length).toBe(n);
  });

  it('stands by while hidden', async () => {
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/runs/search': () => ({ body: { runs: [makeRun('a', 'RUNNING')] } })
    });
    model = new RunsModel({ client, experimentIds: ['1'], pollInterval: 20, maxPollInterval: 20 });
    await model.reload();
    model.visible = false;
    await new Promise(resolve => setTimeout(resolve, 50));
    const n = calls.length;
    await new Promise(resolve => setTimeout(resolve, 150));
    expect(calls.length).toBe(n);
    model.visible = true;
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(calls.length).toBeGreaterThan(n);
  });

  it('lists the keys of params, metrics and tags', () => {
    const keys = availableKeys([
      makeRun('a', 'FINISHED', {
        params: [{ key: 'lr', value: '1' }],
        metrics: [{ key: 'loss', value: 1 }],
        tags: [{ key: 'mlflow.user', value: 'x' }, { key: 'team', value: 'y' }]
      }),
      makeRun('b', 'FINISHED', { params: [{ key: 'batch', value: '2' }] })
    ]);
    expect(keys).toEqual({ params: ['batch', 'lr'], metrics: ['loss'], tags: ['team', 'mlflow.user'] });
  });
});

describe('RunDetailModel / CompareModel / NotebookRunsModel / RegisteredModelsModel', () => {
  it('loads a run with its parent and children and edits tags', async () => {
    const tags = [{ key: 'mlflow.parentRunId', value: 'p' }];
    const { client, calls } = fakeServer({
      'api/2.0/mlflow/runs/get': call => ({
        body: { run: { ...makeRun(call.query.get('run_id')!, 'FINISHED', { tags }) } }
      }),
      'api/2.0/mlflow/runs/search': () => ({ body: { runs: [makeRun('c1')] } }),
      'api/2.0/mlflow/runs/set-tag': call => {
        tags.push({ key: call.body.key, value: call.body.value });
        return { body: {} };
      },
      'api/2.0/mlflow/metrics/get-history': () => ({ body: { metrics: [{ step: 1, value: 2, timestamp: 3 }] } })
    });
    const model = new RunDetailModel({ client, runId: 'r' });
    await model.refresh();
    expect(model.run?.info.run_id).toBe('r');
    expect(model.parent?.info.run_id).toBe('p');
    expect(model.children.map(r => r.info.run_id)).toEqual(['c1']);
    const search = calls.find(c => c.path === 'api/2.0/mlflow/runs/search')!;
    expect(search.body.filter).toBe("tags.`mlflow.parentRunId` = 'r'");
    await model.setTag('team', 'vision');
    expect(calls.some(c => c.path === 'api/2.0/mlflow/runs/set-tag' && c.body.run_id === 'r')).toBe(true);
    const h1 = await model.history('loss');
    const h2 = await model.history('loss');
    expect(h1).toBe(h2);
    expect(calls.filter(c => c.path === 'api/2.0/mlflow/metrics/get-history')).toHaveLength(1);
    model.dispose();
  });

  it('compares runs and overlays histories', async () => {
    const { client } = fakeServer({
      'api/2.0/mlflow/runs/get': call => ({
        body: {
          run: makeRun(call.query.get('run_id')!, 'FINISHED', {
            metrics: call.query.get('run_id') === 'a' ? [{ key: 'loss', value: 1 }] : []
          })
        }
      }),
      'api/2.0/mlflow/metrics/get-history': () => ({ body: { metrics: [{ step: 0, value: 1, timestamp: 1 }] } })
    });
    const model = new CompareModel({ client, runIds: ['a', 'b'] });
    await model.refresh();
    const h = await model.histories('loss');
    expect(h.map(x => x.points.length)).toEqual([1, 0]);
  });

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
    const model = new NotebookRunsModel({ client });
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
    const model = new RegisteredModelsModel({ client });
    await model.setQuery('m');
    expect(model.models[0].name).toBe('m');
    expect(calls[0].query.get('filter')).toBe("name ILIKE '%m%'");
    const versions = await model.versions('m');
    expect(versions.map(v => v.version)).toEqual(['2', '1']);
    expect(versionAliases(model.models[0], versions[0])).toEqual(['champion', 'prod']);
  });
});
