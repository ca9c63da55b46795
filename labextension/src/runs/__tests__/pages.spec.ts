/**
 * @jest-environment node
 */
/**
 * The run page's and the comparison's models against a fake of the lab's MLflow proxy.
 */
import { fakeProxy } from '../../mlflow/__tests__/fakeProxy';
import { IRun } from '../../mlflow/types';
import { CompareModel } from '../compareModel';
import { JOB_ID_TAG, RunPageModel } from '../runPageModel';

function makeRun(id: string, extra: Partial<IRun['data']> = {}, status = 'FINISHED'): IRun {
  return {
    info: { run_id: id, experiment_id: '4', status: status as any, start_time: 1000, run_name: `run-${id}` },
    data: { metrics: [], params: [], tags: [], ...extra }
  };
}

describe('RunPageModel', () => {
  it('loads the run with its experiment, parent, children, logged models, registered versions and job', async () => {
    const tags = [
      { key: 'mlflow.parentRunId', value: 'p' },
      { key: JOB_ID_TAG, value: 'job-123' }
    ];
    const { client, calls } = fakeProxy({
      'api/2.0/mlflow/runs/get': call => ({ body: { run: makeRun(call.query.get('run_id')!, { tags }) } }),
      'api/2.0/mlflow/experiments/get': () => ({ body: { experiment: { experiment_id: '4', name: 'vision-resnet' } } }),
      'api/2.0/mlflow/runs/search': () => ({ body: { runs: [makeRun('c1'), makeRun('c2')] } }),
      'api/2.0/mlflow/logged-models/search': () => ({
        body: { models: [{ info: { model_id: 'm-1', name: 'resnet-logged', source_run_id: 'r', status: 'LOGGED_MODEL_READY' } }] }
      }),
      'api/2.0/mlflow/model-versions/search': () => ({ body: { model_versions: [{ name: 'resnet-vision', version: '1', run_id: 'r' }] } }),
      // Only a version's own read carries its aliases.
      'api/2.0/mlflow/model-versions/get': () => ({
        body: { model_version: { name: 'resnet-vision', version: '1', run_id: 'r', aliases: ['candidate'] } }
      }),
      'api/2.0/mlflow/runs/set-tag': call => {
        tags.push({ key: call.body.key, value: call.body.value });
        return { body: {} };
      },
      'api/2.0/mlflow/metrics/get-history': () => ({ body: { metrics: [{ step: 1, value: 2, timestamp: 3 }] } })
    });
    const model = new RunPageModel({ client, runId: 'r' });
    await model.reload();
    const page = model.page!;
    expect(page.run.info.run_id).toBe('r');
    expect(page.experiment?.name).toBe('vision-resnet');
    expect(page.parent?.info.run_id).toBe('p');
    expect(page.children.map(r => r.info.run_id)).toEqual(['c1', 'c2']);
    expect(page.loggedModels[0].info.name).toBe('resnet-logged');
    expect(page.versions).toEqual([{ name: 'resnet-vision', version: '1', run_id: 'r', aliases: ['candidate'] }]);
    expect(model.jobId).toBe('job-123');

    const search = (path: string) => calls.find(c => c.path === path)!;
    expect(search('api/2.0/mlflow/runs/search').body.filter).toBe("tags.`mlflow.parentRunId` = 'r'");
    expect(search('api/2.0/mlflow/logged-models/search').body).toMatchObject({ experiment_ids: ['4'], filter: "source_run_id = 'r'" });
    expect(search('api/2.0/mlflow/model-versions/search').query.get('filter')).toBe("run_id = 'r'");

    await model.setTag('team', 'vision');
    expect(model.run!.data.tags!.some(t => t.key === 'team')).toBe(true);
    const h1 = await model.history('loss');
    expect(await model.history('loss')).toBe(h1);
    expect(calls.filter(c => c.path === 'api/2.0/mlflow/metrics/get-history')).toHaveLength(1);
    model.dispose();
  });

  it('shows the run even when what surrounds it cannot be read', async () => {
    const { client } = fakeProxy({
      'api/2.0/mlflow/runs/get': () => ({ body: { run: makeRun('r') } }),
      'api/2.0/mlflow/experiments/get': () => ({ status: 403, body: { error_code: 'PERMISSION_DENIED', message: 'no' } })
    });
    const model = new RunPageModel({ client, runId: 'r' });
    await model.reload();
    expect(model.error).toBeNull();
    expect(model.page!.experiment).toBeNull();
    expect(model.page!.loggedModels).toEqual([]);
    model.dispose();
  });

  it('says why a run cannot be loaded', async () => {
    const { client } = fakeProxy({
      'api/2.0/mlflow/runs/get': () => ({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Run x not found' } })
    });
    const model = new RunPageModel({ client, runId: 'x' });
    await model.reload();
    expect(model.page).toBeNull();
    expect(model.error?.message).toBe('Run x not found');
    model.dispose();
  });
});

describe('CompareModel', () => {
  it('loads runs by id, then histories one metric at a time for all runs (bulk)', async () => {
    const { client, calls } = fakeProxy({
      'api/2.0/mlflow/runs/get': call => {
        const id = call.query.get('run_id')!;
        return { body: { run: makeRun(id, { metrics: id === 'c' ? [] : [{ key: 'loss', value: 1, step: 2 }] }) } };
      },
      'api/2.0/mlflow/metrics/get-history-bulk-interval': call => ({
        body: {
          metrics: call.query.getAll('run_ids').flatMap(id => [
            { key: 'loss', value: 2, step: 1, timestamp: 1, run_id: id },
            { key: 'loss', value: 1, step: 0, timestamp: 0, run_id: id }
          ])
        }
      })
    });
    const model = new CompareModel({ client, runIds: ['a', 'b', 'c', 'a'] });
    await model.reload();
    expect(model.runs.map(r => r.info.run_id)).toEqual(['a', 'b', 'c']);
    const byRun = await model.histories('loss');
    expect(byRun.get('a')!.map(p => p.step)).toEqual([0, 1]);
    expect(byRun.has('c')).toBe(false);
    const bulk = calls.filter(c => c.path === 'api/2.0/mlflow/metrics/get-history-bulk-interval');
    expect(bulk).toHaveLength(1);
    expect(bulk[0].query.getAll('run_ids')).toEqual(['a', 'b']);
    expect(bulk[0].query.get('metric_key')).toBe('loss');
    expect(await model.histories('loss')).toBe(byRun);
    model.dispose();
  });
});
