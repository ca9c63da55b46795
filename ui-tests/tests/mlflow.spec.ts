/**
 * The MLflow browser: experiments, runs (10,000-run experiment), run detail
 * with charts and artifacts, comparison, this notebook, registered models,
 * MLflow UI deep links, and the error states. Seeded by seed_tracking.py
 * (see jupyter_server_test_config.py). Screenshots are attached to the report
 * in the light and dark themes.
 */
import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Page, TestInfo } from '@playwright/test';

const SIDEBAR_ID = 'infinstor-sidebar';
const START_TIMEOUT = 60 * 1000;

test.use({ autoGoto: true });

async function openSidebar(page: Page): Promise<Locator> {
  await page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${SIDEBAR_ID}"]`).click();
  const panel = page.locator(`#${SIDEBAR_ID}`);
  await expect(panel).toBeVisible();
  await expect(page.getByTestId('infinstor-tracking-state')).toHaveText('running', { timeout: START_TIMEOUT });
  return panel;
}

async function widenSidebar(page: Page, width = 520) {
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = await handle.boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width / 2, box.y + 200);
    await page.mouse.down();
    await page.mouse.move(box.x + (width - box.x), box.y + 200, { steps: 4 });
    await page.mouse.up();
  }
}

async function shot(page: Page, testInfo: TestInfo, name: string, target?: Locator) {
  for (const theme of ['light', 'dark'] as const) {
    if (theme === 'dark') {
      await page.theme.setDarkTheme();
    }
    const body = await (target ?? page).screenshot({
      animations: 'disabled',
      path: testInfo.outputPath(`${name}-${theme}.png`)
    });
    await testInfo.attach(`${name}-${theme}`, { body, contentType: 'image/png' });
  }
  await page.theme.setLightTheme();
}

/** Click an experiment in the sidebar: its compact list there, its runs in a main-area tab. */
async function openExperiment(page: Page, name: string) {
  const item = page.getByTestId('infinstor-experiment-item').filter({ hasText: name });
  await item.locator('.jp-InfinStor-listMain').click();
  await expect(page.getByTestId('infinstor-runs-experiment')).toHaveText(name);
  await expect(page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-runs-tab-title"]')).toHaveText(name);
}

/** Open a run from the sidebar's compact list of the open experiment (always in view). */
async function openRunFromTable(page: Page, runName: string) {
  const item = page.getByTestId('infinstor-list-run').filter({ hasText: runName }).first();
  await item.getByRole('button', { name: runName, exact: true }).click();
  const detail = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-detail"]');
  await expect(detail.getByTestId('infinstor-run-title')).toHaveText(runName);
  return detail;
}

test.describe('MLflow browser', () => {
  test('experiments: search, create, rename (and a refused rename), delete', async ({ page }, testInfo) => {
    const panel = await openSidebar(page);
    await widenSidebar(page);
    const list = page.getByTestId('infinstor-experiments-list');
    for (const name of ['vision-resnet', 'churn-model', 'nlp-sentiment', 'big-sweep-10k']) {
      await expect(list.getByText(name, { exact: true })).toBeVisible();
    }
    // Owner and creation time are shown.
    const vision = page.getByTestId('infinstor-experiment-item').filter({ hasText: 'vision-resnet' });
    await expect(vision).toContainText('ada');
    await expect(vision).toContainText(/Created /);
    await shot(page, testInfo, 'experiments', panel);

    // Name filter, then MLflow search syntax.
    const search = page.getByTestId('infinstor-experiments-search');
    await search.fill('churn');
    await expect(page.getByTestId('infinstor-experiment-item')).toHaveCount(1);
    await search.fill("tags.team = 'nlp'");
    await expect(page.getByTestId('infinstor-experiment-item')).toHaveCount(1);
    await expect(page.getByTestId('infinstor-experiment-item')).toContainText('nlp-sentiment');
    await search.fill('no-such-experiment-xyz');
    await expect(page.getByTestId('infinstor-mlflow-empty')).toContainText('No experiment matches');
    await search.fill('');

    // Create.
    await page.getByTestId('infinstor-experiment-create').click();
    await page.locator('.jp-Dialog input').fill('galata-created');
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Create' }).click();
    const created = page.getByTestId('infinstor-experiment-item').filter({ hasText: 'galata-created' });
    await expect(created).toHaveCount(1);

    // A refused rename shows the server's reason.
    await created.getByRole('button', { name: 'Rename galata-created' }).click();
    await page.locator('.jp-Dialog input').fill('churn-model');
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Rename' }).click();
    const refusal = page.getByTestId('infinstor-refusal');
    await expect(refusal).toBeVisible();
    await expect(refusal).toContainText(/already exists|UNIQUE constraint/i);
    await shot(page, testInfo, 'experiment-rename-refused', page.locator('.jp-Dialog-content'));
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Close' }).click();

    // Rename for real.
    await created.getByRole('button', { name: 'Rename galata-created' }).click();
    await page.locator('.jp-Dialog input').fill('galata-renamed');
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Rename' }).click();
    const renamed = page.getByTestId('infinstor-experiment-item').filter({ hasText: 'galata-renamed' });
    await expect(renamed).toHaveCount(1);

    // Delete.
    await renamed.getByRole('button', { name: 'Delete galata-renamed' }).click();
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Delete' }).click();
    await expect(renamed).toHaveCount(0);
  });

  test('run detail: overview, params, metrics with charts, tags, artifacts, register model', async ({ page }, testInfo) => {
    await openSidebar(page);
    await widenSidebar(page, 640);
    await openExperiment(page, 'vision-resnet');
    const detail = await openRunFromTable(page, 'artifact-showcase');
    const main = page.locator('#jp-main-dock-panel');

    const overview = detail.getByTestId('infinstor-run-overview');
    await expect(overview).toContainText('Finished');
    await expect(overview).toContainText('seeded/train.ipynb');
    await expect(overview).toContainText('local');
    await shot(page, testInfo, 'run-overview', main);

    await expect(detail.getByRole('table', { name: 'Parameters' })).toContainText('optimizer');
    await expect(detail.getByRole('table', { name: 'Parameters' })).toContainText('adam');
    await expect(detail.getByRole('table', { name: 'Metrics' })).toContainText('accuracy');

    await detail.getByRole('tab', { name: /Charts/ }).click();
    const charts = detail.getByTestId('infinstor-metric-charts');
    await expect(charts.locator('canvas')).toHaveCount(2);
    // Two metrics on one chart, on the time axis.
    await detail.getByRole('checkbox', { name: 'Plot loss on the combined chart' }).check();
    await detail.getByRole('checkbox', { name: 'Plot accuracy on the combined chart' }).check();
    await detail.getByRole('radio', { name: 'Time' }).check();
    await expect(detail.getByTestId('infinstor-combined-chart').locator('canvas')).toHaveCount(1);
    await expect(detail.getByTestId('infinstor-combined-chart').getByTestId('infinstor-chart-legend')).toContainText('accuracy');
    await shot(page, testInfo, 'run-metrics', main);

    await detail.getByRole('tab', { name: /Tags/ }).click();
    await detail.getByTestId('infinstor-tag-key').fill('reviewed-by');
    await detail.getByTestId('infinstor-tag-value').fill('galata');
    await detail.getByTestId('infinstor-tag-add').click();
    await expect(detail.locator('[data-testid="infinstor-tag"][data-key="reviewed-by"]')).toContainText('galata');
    await detail.getByRole('button', { name: 'Delete tag reviewed-by' }).click();
    await expect(detail.locator('[data-testid="infinstor-tag"][data-key="reviewed-by"]')).toHaveCount(0);
    // System tags are read-only.
    await expect(detail.locator('[data-testid="infinstor-tag"][data-key="mlflow.user"]')).toContainText('system');
    await shot(page, testInfo, 'run-tags', main);

    await detail.getByRole('tab', { name: 'Artifacts' }).click();
    const artifact = (path: string) => detail.locator(`[data-testid="infinstor-artifact"][data-path="${path}"]`);
    const preview = detail.getByTestId('infinstor-artifact-preview');
    await artifact('plots').click();
    await artifact('plots/confusion.png').click();
    await expect(preview.locator('img')).toBeVisible();
    expect(await preview.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(96);
    await shot(page, testInfo, 'artifact-image', main);

    await artifact('data').click();
    await artifact('data/predictions.csv').click();
    await expect(preview.locator('table thead')).toContainText('confidence');
    await expect(preview.locator('table tbody tr')).toHaveCount(120);
    await shot(page, testInfo, 'artifact-csv', main);

    await artifact('config.json').click();
    await expect(preview.locator('pre')).toContainText('"resnet50"');
    await artifact('notes.txt').click();
    await expect(preview.locator('pre')).toContainText('Augmentation');

    await artifact('report.html').click();
    const frame = preview.locator('iframe');
    await expect(frame).toHaveAttribute('sandbox', '');
    await expect(page.frameLocator('[data-testid="infinstor-artifact-preview"] iframe').locator('h1')).toHaveText('Evaluation report');
    // Scripts in the artifact never run.
    await expect(page.frameLocator('[data-testid="infinstor-artifact-preview"] iframe').locator('#script-ran')).toHaveCount(0);
    await shot(page, testInfo, 'artifact-html', main);

    await artifact('notebooks').click();
    await artifact('notebooks/train.ipynb').click();
    const nb = detail.getByTestId('infinstor-notebook-preview');
    await expect(nb.locator('h1')).toHaveText(/Training notebook/);
    await expect(nb).toContainText('epoch 1 loss 0.42');
    await shot(page, testInfo, 'artifact-notebook', main);

    // Download.
    const download = page.waitForEvent('download');
    await detail.getByTestId('infinstor-artifact-download').click();
    expect((await download).suggestedFilename()).toBe('train.ipynb');

    // Register the logged model.
    await detail.getByTestId('infinstor-register-model').click();
    const form = page.getByTestId('infinstor-register-form');
    await expect(form).toBeVisible();
    await expect(form.locator('select option')).toHaveCount(2); // logged model + artifacts/model
    await form.getByTestId('infinstor-register-name').fill('galata-registered');
    await shot(page, testInfo, 'register-model', page.locator('.jp-Dialog-content'));
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Register' }).click();
    await expect(page.locator('.jp-toast-message', { hasText: 'Registered galata-registered version 1' })).toBeVisible();
  });

  test('run detail: parent and child runs; a running run', async ({ page }, testInfo) => {
    await openSidebar(page);
    await widenSidebar(page, 640);
    await openExperiment(page, 'vision-resnet');
    const parent = await openRunFromTable(page, 'hyperparam-sweep');
    await expect(parent.getByTestId('infinstor-child-runs').getByRole('button')).toHaveCount(3);
    await parent.getByTestId('infinstor-child-runs').getByRole('button', { name: /sweep-trial-0/ }).click();
    const child = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-detail"]');
    await expect(child.getByTestId('infinstor-run-title')).toHaveText('sweep-trial-0');
    await expect(child.getByTestId('infinstor-run-overview')).toContainText('hyperparam-sweep');

    const live = await openRunFromTable(page, 'resnet-live');
    await expect(live.getByTestId('infinstor-run-overview')).toContainText('Running');
    await shot(page, testInfo, 'run-running', page.locator('#jp-main-dock-panel'));
  });

  test('this notebook: runs of the active notebook; the source opens it', async ({ page }, testInfo) => {
    const panel = await openSidebar(page);
    await widenSidebar(page, 640);
    // With a kernelspec: a notebook without one makes the lab ask for a kernel in a modal dialog.
    const nb = JSON.stringify({
      cells: [],
      metadata: { kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' } },
      nbformat: 4,
      nbformat_minor: 5
    });
    await page.contents.uploadContent(nb, 'text', 'seeded/train.ipynb');
    await page.getByTestId('infinstor-browser-tab-notebook').click();
    await expect(page.getByTestId('infinstor-notebook-none')).toBeVisible();

    // Opening the notebook from a run's source column.
    await page.getByTestId('infinstor-browser-tab-experiments').click();
    await openExperiment(page, 'vision-resnet');
    await page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-source"]').first().click();
    await expect(page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)')).toBeVisible();
    await expect(page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')).toContainText('train.ipynb');

    await page.getByTestId('infinstor-browser-tab-notebook').click();
    await expect(page.getByTestId('infinstor-notebook-path')).toHaveText('seeded/train.ipynb');
    const runs = page.getByTestId('infinstor-notebook-run');
    await expect(runs.first()).toBeVisible();
    expect(await runs.count()).toBeGreaterThanOrEqual(10);
    // Newest first: the running run started 10 minutes ago.
    await expect(runs.first()).toContainText('resnet-live');
    await shot(page, testInfo, 'this-notebook', panel);
  });

  test('models: versions with aliases and tags; the source run opens', async ({ page }, testInfo) => {
    const panel = await openSidebar(page);
    await widenSidebar(page, 640);
    await page.getByTestId('infinstor-browser-tab-models').click();
    const model = page.locator('[data-testid="infinstor-model-item"][data-model-name="churn-classifier"]');
    await expect(model).toBeVisible();
    await expect(model).toContainText('@champion');
    await model.locator('.jp-InfinStor-listMain').click();
    const versions = model.getByTestId('infinstor-model-version');
    await expect(versions).toHaveCount(3);
    await expect(model.locator('[data-version="3"]')).toContainText('@champion');
    await expect(model.locator('[data-version="2"]')).toContainText('@challenger');
    await expect(model.locator('[data-version="2"]')).toContainText('validated=true');
    await expect(model).toContainText('Predicts customer churn');
    await expect(model.locator('[data-version="3"]').getByTestId('infinstor-version-status')).toHaveText('Ready');
    await shot(page, testInfo, 'models', panel);

    await page.getByTestId('infinstor-models-search').fill('resnet');
    await expect(page.getByTestId('infinstor-model-item')).toHaveCount(1);
    await page.getByTestId('infinstor-models-search').fill('');
    await model.locator('[data-version="3"]').getByTestId('infinstor-version-run').click();
    const detail = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-detail"]');
    await expect(detail.getByTestId('infinstor-run-title')).toHaveText('xgb-depth6');

    // "Open in MLflow UI" from the run detail and from the model: MLflow's own pages, in a lab tab.
    const uiFrame = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) .jp-InfinStor-mlflowUi iframe');
    await detail.getByTestId('infinstor-run-open-ui').click();
    await expect(uiFrame).toHaveAttribute('src', /infinstor\/api\/mlflow\/#\/experiments\/\d+\/runs\/[0-9a-f]{32}$/);
    const ui = page.frameLocator('.jp-MainAreaWidget:not(.lm-mod-hidden) .jp-InfinStor-mlflowUi iframe');
    await expect(ui.getByText('xgb-depth6').first()).toBeVisible({ timeout: 30000 });
    await model.getByRole('button', { name: 'Open churn-classifier in MLflow UI' }).click();
    await expect(uiFrame).toHaveAttribute('src', /infinstor\/api\/mlflow\/#\/models\/churn-classifier$/);
    await expect(ui.getByText('churn-classifier').first()).toBeVisible({ timeout: 30000 });
  });

  test("open in MLflow UI: the same experiment in MLflow's own UI, in a lab tab", async ({ page }, testInfo) => {
    // The sidebar at its usual width: MLflow's UI (from the runs tab) needs the room.
    await openSidebar(page);
    await openExperiment(page, 'vision-resnet');
    await page.getByTestId('infinstor-runs-open-ui').click();
    const frame = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) .jp-InfinStor-mlflowUi iframe');
    await expect(frame).toHaveAttribute('src', /infinstor\/api\/mlflow\/#\/experiments\/\d+\/runs$/);
    const ui = page.frameLocator('.jp-MainAreaWidget:not(.lm-mod-hidden) .jp-InfinStor-mlflowUi iframe');
    await expect(ui.getByText('resnet-sgd-lr0.1').first()).toBeVisible({ timeout: 30000 });
    await shot(page, testInfo, 'mlflow-ui', page.locator('#jp-main-dock-panel'));
  });

  for (const c of [
    { status: 401, body: { message: 'Sign in to use the tracking service.', reason: 'sign_in_required' }, text: 'Sign in from the InfinStor panel' },
    { status: 503, body: { message: 'The tracking service did not answer.', reason: 'tracking_unavailable' }, text: 'not available' },
    { status: 403, body: { error_code: 'PERMISSION_DENIED', message: 'No permission on experiments.' }, text: 'do not have permission' }
  ]) {
    test(`error state ${c.status} says what to do`, async ({ page }, testInfo) => {
      let fail = true;
      await page.route('**/infinstor/api/mlflow/api/2.0/mlflow/experiments/search*', route =>
        fail
          ? route.fulfill({ status: c.status, contentType: 'application/json', body: JSON.stringify(c.body) })
          : route.continue()
      );
      const panel = await openSidebar(page);
      // The list may have loaded before the route was set (restored sidebar): ask again.
      await panel.getByRole('button', { name: 'Refresh experiments' }).click();
      const error = page.getByTestId('infinstor-mlflow-error');
      await expect(error).toContainText(c.text);
      await expect(error).toContainText(c.body.message);
      await shot(page, testInfo, `error-${c.status}`, panel);
      fail = false;
      await error.getByRole('button', { name: 'Retry' }).click();
      await expect(page.getByTestId('infinstor-mlflow-error')).toHaveCount(0);
      await expect(page.getByTestId('infinstor-experiment-item').first()).toBeVisible();
    });
  }

  test('palette has the MLflow commands', async ({ page }) => {
    const ids = [
      'infinstor:mlflow-show-experiments',
      'infinstor:mlflow-show-notebook-runs',
      'infinstor:mlflow-show-models',
      'infinstor:mlflow-new-experiment',
      'infinstor:mlflow-refresh',
      'infinstor:mlflow-open-in-ui',
      'infinstor:mlflow-open-run',
      'infinstor:mlflow-compare-runs'
    ];
    const has = await page.evaluate(ids => ids.map(id => (window as any).jupyterapp.commands.hasCommand(id)), ids);
    expect(has).toEqual(ids.map(() => true));
    await page.keyboard.press('Control+Shift+C');
    const palette = page.locator('#command-palette');
    await palette.locator('.lm-CommandPalette-input').fill('MLflow registered models');
    await palette.locator('.lm-CommandPalette-item', { hasText: 'Show MLflow registered models' }).click();
    await expect(page.getByTestId('infinstor-models')).toBeVisible();
    void galata;
  });
});
