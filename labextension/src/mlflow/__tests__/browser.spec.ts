/**
 * @jest-environment node
 */
import { RunsModelRegistry } from '../../runs/registry';
import { RunsViewStateStore } from '../../runs/viewState';
import { IMlflowClient } from '../../tokens';
import { MlflowBrowserModel } from '../browserModel';
import { fakeProxy } from './fakeProxy';

/** The runs views' registry and store, as the MLflow plugin makes them. */
function runsViews(client: IMlflowClient) {
  const store = new RunsViewStateStore({ state: null });
  return { store, registry: new RunsModelRegistry({ client, store }) };
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe('MlflowBrowserModel', () => {
  let browser: MlflowBrowserModel;
  afterEach(() => browser.dispose());

  function server() {
    return fakeProxy({
      'api/2.0/mlflow/experiments/search': () => ({ body: { experiments: [{ experiment_id: '1', name: 'a', last_update_time: 1 }] } }),
      'api/2.0/mlflow/registered-models/search': () => ({ body: { registered_models: [] } }),
      'api/2.0/mlflow/runs/search': () => ({ body: { runs: [] } })
    });
  }

  it('only the list on screen is live: the current tab, while the sidebar is visible', async () => {
    const { client, calls } = server();
    browser = new MlflowBrowserModel({ client, runs: runsViews(client), sidebarVisible: false });
    const models = [browser.experiments, browser.notebookRuns, browser.registeredModels];
    expect(models.map(m => m.visible)).toEqual([false, false, false]);
    await sleep(50);
    expect(calls).toHaveLength(0);

    browser.sidebarVisible = true;
    expect(models.map(m => m.visible)).toEqual([true, false, false]);
    browser.tab = 'models';
    expect(models.map(m => m.visible)).toEqual([false, false, true]);
    browser.tab = 'experiments';
    browser.openExperiment({ experiment_id: '1', name: 'a' });
    expect(browser.experiments.visible).toBe(false);
    expect(browser.runs?.visible).toBe(true);
    browser.sidebarVisible = false;
    expect(browser.runs?.visible).toBe(false);
  });

  it('Refresh asks the list on screen now and the others once shown; "checked" is the current list', async () => {
    const { client, calls } = server();
    browser = new MlflowBrowserModel({ client, runs: runsViews(client) });
    await browser.refresh();
    const searched = (path: string) => calls.filter(c => c.path === path).length;
    expect(searched('api/2.0/mlflow/experiments/search')).toBeGreaterThan(0);
    expect(searched('api/2.0/mlflow/registered-models/search')).toBe(0);
    expect(browser.checkedAt).toBe(browser.experiments.checkedAt);
    expect(browser.checkedAt).toBeGreaterThan(0);
    browser.tab = 'models';
    await sleep(50);
    expect(searched('api/2.0/mlflow/registered-models/search')).toBeGreaterThan(0);
    expect(browser.checkedAt).toBe(browser.registeredModels.checkedAt);
  });

  it('the refreshInterval setting reaches every list', () => {
    const { client } = server();
    browser = new MlflowBrowserModel({ client, runs: runsViews(client) });
    browser.openExperiment({ experiment_id: '1', name: 'a' });
    browser.idleInterval = 30000;
    expect(browser.experiments.idleInterval).toBe(30000);
    expect(browser.registeredModels.idleInterval).toBe(30000);
    expect(browser.runs?.idleInterval).toBe(30000);
  });
});
