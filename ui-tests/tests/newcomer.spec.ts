/**
 * A newcomer's first hour, scripted end to end in the light and the dark theme (issue 15): a
 * notebook logs a small sweep from its kernel while the InfinStor panel is open (the experiment
 * and its runs show with no click), the experiment's runs tab with a picked column that survives
 * a trip to another sidebar tab, a run's page, five runs compared, a model version promoted with
 * an alias, and the same notebook run as a job, whose runs name the notebook as their source.
 * On the embedded tracking service of the main test lab; a screenshot of every view per theme.
 */
import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Page, TestInfo } from '@playwright/test';

import { callMlflowProxy } from './helpers';

const SIDEBAR_ID = 'infinstor-sidebar';
const JOBS_ID = 'infinstor-jobs';
/** The product's target: a write shows within 5 s, with no click. */
const LIVE_MS = 5000;
// Converting, starting `mlflow run` and a kernel takes a while on a shared 2-core host.
const JOB_TIMEOUT = 150 * 1000;
const RATES = ['0.1', '0.05', '0.01', '0.005', '0.001'];

test.use({ autoGoto: true, viewport: { width: 1400, height: 900 } });
test.describe.configure({ mode: 'serial', timeout: 480 * 1000 });

/** The notebook a newcomer writes: a parameters cell and a sweep of nested runs. */
function sweepNotebook(experiment: string): string {
  const training = [
    'import mlflow',
    `mlflow.set_experiment(${JSON.stringify(experiment)})`,
    'with mlflow.start_run(run_name="sweep"):',
    '    mlflow.log_param("optimizer", "adam")',
    '    for lr in rates:',
    '        with mlflow.start_run(run_name=f"lr-{lr}", nested=True):',
    '            mlflow.log_params({"lr": lr, "optimizer": "adam"})',
    '            for step in range(epochs):',
    '                mlflow.log_metric("loss", 1.0 / (step + 1) + lr, step=step)',
    '                mlflow.log_metric("accuracy", 0.5 + step / (2 * epochs) - lr, step=step)'
  ].join('\n');
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' }
    },
    cells: [
      {
        id: 'params',
        cell_type: 'code',
        execution_count: null,
        metadata: { tags: ['parameters'] },
        outputs: [],
        source: `epochs = 4\nrates = [${RATES.join(', ')}]\n`
      },
      { id: 'train', cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: training }
    ]
  });
}

function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}`;
}

async function openSidebar(page: Page): Promise<Locator> {
  const panel = page.locator(`#${SIDEBAR_ID}`);
  if (!(await panel.isVisible())) {
    await page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${SIDEBAR_ID}"]`).click();
  }
  await expect(panel).toBeVisible();
  await expect(page.getByTestId('infinstor-tracking-state')).toHaveText('running', { timeout: 60 * 1000 });
  return panel;
}

/** The visible runs tab (main area). */
function runsTab(page: Page): Locator {
  return page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-runs-tab"]');
}

function header(tab: Locator, column: string): Locator {
  return tab.locator(`[role="columnheader"][data-column="${column}"]`);
}

/** The lab's REST API as the page calls it (cookie + XSRF token). */
async function labApi(page: Page, method: string, path: string): Promise<any> {
  return page.evaluate(
    async ({ method, path }) => {
      const xsrf = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
      const response = await fetch(`/infinstor/api/${path}`, {
        method,
        headers: xsrf ? { 'X-XSRFToken': decodeURIComponent(xsrf[1]) } : {}
      });
      return { status: response.status, json: await response.json().catch(() => null) };
    },
    { method, path }
  );
}

/** The runs of `experimentId` matching `filter`, through the lab's proxy. */
async function searchRuns(page: Page, experimentId: string, filter: string): Promise<any[]> {
  const found = await callMlflowProxy(page, 'api/2.0/mlflow/runs/search', {
    experiment_ids: [experimentId],
    filter,
    max_results: 100
  });
  expect(found.status, JSON.stringify(found.json)).toBe(200);
  return found.json.runs ?? [];
}

function tag(run: any, key: string): string | undefined {
  return (run.data.tags ?? []).find((t: any) => t.key === key)?.value;
}

for (const theme of ['light', 'dark'] as const) {
  test.describe(`A newcomer's hour (${theme})`, () => {
    test('log from a kernel, runs tab, run page, compare, promote, run as a job', async ({ page, tmpPath }, testInfo) => {
      const shot = async (name: string, target?: Locator) => {
        const body = await (target ?? page).screenshot({
          animations: 'disabled',
          path: testInfo.outputPath(`${name}-${theme}.png`)
        });
        await testInfo.attach(`${name}-${theme}`, { body, contentType: 'image/png' });
      };
      if (theme === 'dark') {
        await page.theme.setDarkTheme();
      }
      const experiment = unique(`newcomer-${theme}`);
      const name = 'newcomer.ipynb';
      const path = `${tmpPath}/${name}`;
      expect(await page.contents.uploadContent(sweepNotebook(experiment), 'text', path)).toBe(true);

      // 1. The notebook is open beside the panel; its kernel logs a sweep: the experiment and its
      //    runs show with no click.
      await page.evaluate(async p => {
        await (window as any).jupyterapp.commands.execute('docmanager:open', { path: p });
      }, path);
      await expect(page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)')).toBeVisible();
      const panel = await openSidebar(page);
      await page.getByTestId('infinstor-browser-tab-experiments').click();
      await expect(page.getByTestId('infinstor-experiment-item').first()).toBeVisible();
      expect(await page.notebook.activate(name)).toBe(true);
      expect(await page.notebook.runCell(0, true)).toBe(true);
      expect(await page.notebook.runCell(1, true)).toBe(true);
      const item = panel.getByTestId('infinstor-experiment-item').filter({ hasText: experiment });
      await expect(item).toHaveCount(1, { timeout: LIVE_MS });
      await shot('newcomer-logged');

      // 2. Its runs: the compact list in the panel, the runs tab in the main area.
      await item.locator('.jp-InfinStor-listMain').click();
      await expect(page.getByTestId('infinstor-runs-experiment')).toHaveText(experiment);
      await expect(page.getByTestId('infinstor-list-run').filter({ hasText: 'sweep' })).toHaveCount(1);
      const tab = runsTab(page);
      await expect(tab.getByTestId('infinstor-runs-tab-title')).toHaveText(experiment);
      const experimentId = (await tab.getAttribute('data-experiment-id')) ?? '';
      const sweep = tab.getByTestId('infinstor-run-row').filter({ hasText: 'sweep' });
      await expect(sweep).toHaveCount(1);
      // What differs across the runs is a column; what does not (the optimizer, the same for all) is not.
      await sweep.getByTestId('infinstor-run-expander').click();
      const children = tab.locator('[data-testid="infinstor-run-row"][data-depth="1"]');
      await expect(children).toHaveCount(RATES.length);
      await expect(header(tab, 'param:lr')).toBeVisible();
      await expect(header(tab, 'metric:loss')).toBeVisible();
      await expect(header(tab, 'param:optimizer')).toHaveCount(0);

      // Pick a column (the run's source), switch sidebar tabs and come back: still there.
      await tab.getByTestId('infinstor-columns').click();
      const menu = tab.getByTestId('infinstor-columns-menu');
      await menu.getByTestId('infinstor-columns-search').fill('mlflow.source.name');
      await menu.locator('label[data-column="tag:mlflow.source.name"] input').check();
      await page.keyboard.press('Escape');
      await expect(header(tab, 'tag:mlflow.source.name')).toBeVisible();
      await page.getByTestId('infinstor-browser-tab-models').click();
      await page.getByTestId('infinstor-browser-tab-experiments').click();
      await expect(page.getByTestId('infinstor-runs-experiment')).toHaveText(experiment);
      await expect(header(runsTab(page), 'tag:mlflow.source.name')).toBeVisible();
      // The kernel's runs name the notebook as their source.
      await expect(children.first()).toContainText(path);
      await shot('newcomer-runs-tab', page.locator('#jp-main-dock-panel'));

      // 3. A run's page: experiment by name, metrics and params at a glance, the source notebook.
      await children.filter({ hasText: 'lr-0.01' }).first().getByTestId('infinstor-run-name').click();
      const detail = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-detail"]');
      await expect(detail.getByTestId('infinstor-run-title')).toHaveText('lr-0.01');
      await expect(detail.getByTestId('infinstor-run-experiment')).toHaveText(experiment);
      await expect(detail.getByTestId('infinstor-run-metrics-summary')).toContainText('accuracy');
      await expect(detail.getByTestId('infinstor-run-params-summary')).toContainText('lr');
      await expect(detail.getByTestId('infinstor-detail-source')).toHaveText(path);
      await shot('newcomer-run-page', page.locator('#jp-main-dock-panel'));

      // 4. Compare the five runs of the sweep.
      await page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: `Runs: ${experiment}` }).click();
      for (const rate of RATES) {
        await children.filter({ hasText: `lr-${rate}` }).first().getByRole('checkbox').check();
      }
      await expect(tab.getByTestId('infinstor-compare')).toHaveText('Compare (5)');
      await tab.getByTestId('infinstor-compare').click();
      const compare = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-compare"]');
      for (const rate of RATES) {
        await expect(compare.getByTestId('infinstor-compare-legend')).toContainText(`lr-${rate}`);
      }
      const grid = compare.getByTestId('infinstor-compare-grid');
      for (const metric of ['accuracy', 'loss']) {
        await expect(grid.locator(`[data-metric="${metric}"] canvas`)).toHaveCount(1);
      }
      await shot('newcomer-compare', page.locator('#jp-main-dock-panel'));

      // 5. Register the best run's model and promote its version with an alias from the panel.
      const [best] = await searchRuns(page, experimentId, "attributes.run_name = 'lr-0.001'");
      const model = unique(`newcomer-model-${theme}`);
      expect((await callMlflowProxy(page, 'api/2.0/mlflow/registered-models/create', { name: model })).status).toBe(200);
      const version = await callMlflowProxy(page, 'api/2.0/mlflow/model-versions/create', {
        name: model,
        source: `${best.info.artifact_uri}/model`,
        run_id: best.info.run_id
      });
      expect(version.status, JSON.stringify(version.json)).toBe(200);
      await page.getByTestId('infinstor-browser-tab-models').click();
      const modelItem = panel.locator(`[data-testid="infinstor-model-item"][data-model-name="${model}"]`);
      await expect(modelItem).toHaveCount(1, { timeout: LIVE_MS });
      await modelItem.locator('.jp-InfinStor-listMain').click();
      await modelItem.locator('[data-version="1"]').getByTestId('infinstor-version-promote').click();
      const promote = page.locator('.jp-Dialog');
      await promote.getByTestId('infinstor-promote-alias').fill('champion');
      await promote.getByRole('button', { name: 'Set alias' }).click();
      await expect(promote).toHaveCount(0);
      await expect(modelItem.locator('[data-version="1"]').getByTestId('infinstor-version-aliases')).toContainText('champion');
      await expect(modelItem.locator('[data-version="1"]')).toContainText('lr-0.001');
      await shot('newcomer-models', panel);

      // 6. Run the notebook as a job from the file browser: the dialog proposes the notebook's
      //    experiment; the job's runs name the notebook as their source.
      await page.sidebar.openTab('filebrowser');
      await page.filebrowser.refresh();
      const file = page.locator('.jp-DirListing-item', {
        has: page.locator('.jp-DirListing-itemText', { hasText: new RegExp(`^${name}$`) })
      });
      await file.click({ button: 'right' });
      await page.locator('.lm-Menu-item:not(.lm-mod-hidden)', { hasText: 'Run as MLflow job…' }).click();
      const dialog = page.locator('.jp-InfinStor-jobDialog');
      await expect(dialog.getByTestId('infinstor-job-form')).toHaveAttribute('data-loaded', 'true', { timeout: 60 * 1000 });
      await expect(dialog.getByTestId('infinstor-job-experiment').locator('option:checked')).toHaveText(experiment);
      await shot('newcomer-job-dialog', dialog);
      const [response] = await Promise.all([
        page.waitForResponse(r => /\/infinstor\/api\/jobs(\?\d*)?$/.test(r.url()) && r.request().method() === 'POST'),
        dialog.getByTestId('infinstor-job-submit').click()
      ]);
      expect(response.status()).toBe(201);
      const jobId: string = (await response.json()).id;
      await expect
        .poll(async () => (await labApi(page, 'GET', `jobs/${jobId}`)).json?.status, {
          timeout: JOB_TIMEOUT,
          intervals: [1000]
        })
        .toBe('FINISHED');
      const job = (await labApi(page, 'GET', `jobs/${jobId}`)).json;
      expect(job.experiment_id).toBe(experimentId);
      const jobRuns = await searchRuns(page, experimentId, `tags.mlflow.parentRunId = '${job.run_id}'`);
      expect(jobRuns.map(r => r.info.run_name).sort()).toEqual(RATES.map(r => `lr-${r}`).sort());
      for (const run of jobRuns) {
        expect(tag(run, 'mlflow.source.name')).toBe(path);
      }
      await page.sidebar.openTab(JOBS_ID);
      const row = page.locator(`#${JOBS_ID} [data-testid="infinstor-job-row"][data-job-id="${jobId}"]`);
      await expect(row).toHaveAttribute('data-status', 'FINISHED');
      await shot('newcomer-job');
      if (theme === 'dark') {
        await page.theme.setLightTheme();
      }
    });
  });
}

void galata;
