/**
 * The runs views: an experiment's runs in a main-area tab (the 10,000-run experiment:
 * virtualized rows, the columns that differ, picked columns, widths and sort kept across tab
 * switches and reloads, a refused filter explained), nested runs, the sidebar's compact list,
 * a run's page (overview, logged model, registered version, source notebook, job, charts),
 * and five runs compared (chart grid, scatter). Seeded by seed_tracking.py. Screenshots of
 * each view in the light and dark themes are attached to the report.
 */
import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Page, TestInfo } from '@playwright/test';

const SIDEBAR_ID = 'infinstor-sidebar';
const START_TIMEOUT = 60 * 1000;

test.use({ autoGoto: true, viewport: { width: 1400, height: 900 } });

async function openSidebar(page: Page): Promise<Locator> {
  await page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${SIDEBAR_ID}"]`).click();
  const panel = page.locator(`#${SIDEBAR_ID}`);
  await expect(panel).toBeVisible();
  await expect(page.getByTestId('infinstor-tracking-state')).toHaveText('running', { timeout: START_TIMEOUT });
  return panel;
}

async function shot(page: Page, testInfo: TestInfo, name: string, target?: Locator) {
  for (const theme of ['light', 'dark'] as const) {
    if (theme === 'dark') {
      await page.theme.setDarkTheme();
    }
    await page.waitForTimeout(300); // charts re-read the theme's colours
    const body = await (target ?? page).screenshot({
      animations: 'disabled',
      path: testInfo.outputPath(`${name}-${theme}.png`)
    });
    await testInfo.attach(`${name}-${theme}`, { body, contentType: 'image/png' });
  }
  await page.theme.setLightTheme();
}

/** The visible runs tab (main area). */
function runsTab(page: Page): Locator {
  return page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-runs-tab"]');
}

/** Click an experiment in the sidebar: its compact list there, its runs tab in the main area. */
async function openExperiment(page: Page, name: string): Promise<Locator> {
  const item = page.getByTestId('infinstor-experiment-item').filter({ hasText: name });
  await item.locator('.jp-InfinStor-listMain').click();
  await expect(page.getByTestId('infinstor-runs-experiment')).toHaveText(name);
  const tab = runsTab(page);
  await expect(tab.getByTestId('infinstor-runs-tab-title')).toHaveText(name);
  await expect(tab.getByTestId('infinstor-run-row').first()).toBeVisible();
  return tab;
}

function header(tab: Locator, column: string): Locator {
  return tab.locator(`[role="columnheader"][data-column="${column}"]`);
}

async function openRunPage(page: Page, tab: Locator, runName: string): Promise<Locator> {
  await tab.getByTestId('infinstor-run-row').filter({ hasText: runName }).first().getByTestId('infinstor-run-name').click();
  const detail = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-detail"]');
  await expect(detail.getByTestId('infinstor-run-title')).toHaveText(runName);
  return detail;
}

test.describe('Runs views', () => {
  test('runs tab: 10,000 runs, columns that differ, picked columns, widths and sort kept across tabs and reloads; a refused filter explained', async ({
    page
  }, testInfo) => {
    // Many steps over 10,000 runs, a reload among them: more than the default time.
    test.slow();
    await openSidebar(page);
    const tab = await openExperiment(page, 'big-sweep-10k');
    const rows = tab.getByTestId('infinstor-run-row');

    // Virtualized: a window of rows, not 10,000.
    expect(await rows.count()).toBeLessThan(200);
    await expect(rows.first()).toContainText('sweep-09999');
    await expect(tab.getByTestId('infinstor-runs-count')).toHaveText(/^\d+\+ runs/);

    // By default the metrics and params that differ are columns; ones that do not are not.
    await expect(header(tab, 'metric:loss')).toBeVisible();
    await expect(header(tab, 'param:lr')).toBeVisible();
    await expect(header(tab, 'param:optimizer')).toBeVisible();
    await expect(tab.getByTestId('infinstor-columns')).toContainText('what differs');

    // Compact dates with ISO in the tooltip; numbers without float noise, same decimals down a column.
    const first = rows.first();
    const started = first.locator('[role="gridcell"]').nth(2).locator('span');
    await expect(started).toHaveText(/ago|just now/);
    await expect(started).toHaveAttribute('title', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const lossIndex = await tab.locator('[role="columnheader"]').evaluateAll(
      (els: Element[]) => els.findIndex(e => e.getAttribute('data-column') === 'metric:loss')
    );
    const losses = await rows.evaluateAll(
      (els: Element[], i: number) => els.slice(0, 10).map(r => r.querySelectorAll('[role="gridcell"]')[i].textContent ?? ''),
      lossIndex
    );
    for (const text of losses) {
      expect(text).toMatch(/^\d+\.\d{3}$/);
    }
    await shot(page, testInfo, 'runs-tab', page.locator('#jp-main-dock-panel'));

    // Pick columns: drop a param, add a tag.
    await tab.getByTestId('infinstor-columns').click();
    const menu = tab.getByTestId('infinstor-columns-menu');
    await menu.getByTestId('infinstor-columns-search').fill('p05');
    await menu.locator('label[data-column="param:p05"] input').uncheck();
    await menu.getByTestId('infinstor-columns-search').fill('mlflow.user');
    await menu.locator('label[data-column="tag:mlflow.user"] input').check();
    await shot(page, testInfo, 'runs-columns', page.locator('#jp-main-dock-panel'));
    await page.keyboard.press('Escape');
    await expect(menu).toHaveCount(0);
    await expect(header(tab, 'param:p05')).toHaveCount(0);
    await expect(header(tab, 'tag:mlflow.user')).toBeVisible();
    await expect(tab.getByTestId('infinstor-columns')).not.toContainText('what differs');

    // Widen a column by dragging its edge.
    const before = (await header(tab, 'metric:accuracy').boundingBox())!.width;
    const grip = (await tab.getByTestId('infinstor-resize-metric:accuracy').boundingBox())!;
    await page.mouse.move(grip.x + grip.width / 2, grip.y + grip.height / 2);
    await page.mouse.down();
    await page.mouse.move(grip.x + 80, grip.y + grip.height / 2, { steps: 5 });
    await page.mouse.up();
    await expect.poll(async () => (await header(tab, 'metric:accuracy').boundingBox())!.width).toBeGreaterThan(before + 60);
    const widened = (await header(tab, 'metric:accuracy').boundingBox())!.width;

    // Sort by loss, smallest first (metrics sort largest first on the first click).
    await tab.getByTestId('infinstor-sort-metric:loss').click();
    await expect(header(tab, 'metric:loss')).toHaveAttribute('aria-sort', 'descending');
    await tab.getByTestId('infinstor-sort-metric:loss').click();
    await expect(header(tab, 'metric:loss')).toHaveAttribute('aria-sort', 'ascending');
    // The rows of the new order (until it comes, the old ones are shown, marked stale).
    // (MLflow sorts 10,000 runs by a metric in a second or so; a loaded machine takes longer.)
    await expect(tab.getByTestId('infinstor-runs-table')).toHaveAttribute('aria-busy', 'false', { timeout: 60_000 });
    const smallest = await rows.first().getAttribute('data-run-id');
    const lossOf = async (row: Locator) => Number(await row.locator('[role="gridcell"]').nth(lossIndex).textContent());
    expect(await lossOf(rows.first())).toBeLessThanOrEqual(await lossOf(rows.nth(5)));

    const expectSetUp = async () => {
      const t = runsTab(page);
      await expect(t.getByTestId('infinstor-run-row').first()).toBeVisible({ timeout: 60_000 });
      await expect(t.getByTestId('infinstor-runs-table')).toHaveAttribute('aria-busy', 'false', { timeout: 60_000 });
      await expect(header(t, 'param:p05')).toHaveCount(0);
      await expect(header(t, 'tag:mlflow.user')).toBeVisible();
      await expect(header(t, 'metric:loss')).toHaveAttribute('aria-sort', 'ascending');
      await expect(t.getByTestId('infinstor-run-row').first()).toHaveAttribute('data-run-id', smallest!);
      expect(Math.abs((await header(t, 'metric:accuracy').boundingBox())!.width - widened)).toBeLessThan(2);
    };

    // Switch sidebar tabs and back: the compact list and the columns are still there.
    await page.getByTestId('infinstor-browser-tab-models').click();
    await page.getByTestId('infinstor-browser-tab-experiments').click();
    await expect(page.getByTestId('infinstor-runs-experiment')).toHaveText('big-sweep-10k');
    await expectSetUp();

    // Close the tab; reopen it from the sidebar.
    await page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon').click();
    await expect(runsTab(page)).toHaveCount(0);
    await page.getByTestId('infinstor-runs-open-tab').click();
    await expectSetUp();

    // Reload the page: the tab comes back (active, so not Galata's wait for the Launcher), set up the same way.
    await page.reload({ waitForIsReady: false });
    await page.locator('#jupyterlab-splash').waitFor({ state: 'detached' });
    await expectSetUp();

    // An invalid filter: a clear message, no rows, no count of old rows.
    const t = runsTab(page);
    await t.getByTestId('infinstor-runs-filter').fill('metrics.loss <');
    await t.getByTestId('infinstor-runs-filter-apply').click();
    const error = t.getByTestId('infinstor-filter-error');
    await expect(error).toContainText('This filter is not valid');
    await expect(error).toContainText('not MLflow search syntax');
    await expect(t.getByTestId('infinstor-run-row')).toHaveCount(0);
    await expect(t.getByTestId('infinstor-runs-count')).toHaveText('no runs');
    await shot(page, testInfo, 'runs-bad-filter', page.locator('#jp-main-dock-panel'));
    await t.getByTestId('infinstor-runs-filter').fill('loss < 0.2');
    await t.getByTestId('infinstor-runs-filter-apply').click();
    await expect(error).toContainText('metrics.loss');

    // A valid filter: rows again.
    await t.getByTestId('infinstor-runs-filter').fill("metrics.loss < 0.2 and params.lr = '0.01'");
    await t.getByTestId('infinstor-runs-filter-apply').click();
    await expect(error).toHaveCount(0);
    await expect(t.getByTestId('infinstor-run-row').first()).toBeVisible();
    await expect(t.getByTestId('infinstor-runs-count')).toHaveText(/runs?$/);
    // The sidebar's list (back on the experiments list after the reload) shows the same, filtered runs.
    await page.getByTestId('infinstor-experiment-item').filter({ hasText: 'big-sweep-10k' }).locator('.jp-InfinStor-listMain').click();
    await expect(page.getByTestId('infinstor-list-run').first()).toBeVisible();
    await expect(page.locator('.jp-InfinStor-listFilter')).toContainText("params.lr = '0.01'");
    await expect(page.getByTestId('infinstor-list-count')).toHaveText(await t.getByTestId('infinstor-runs-count').innerText());
    await t.getByTestId('infinstor-runs-filter-clear').click();
    await expect(t.getByTestId('infinstor-runs-count')).toHaveText(/^\d+\+ runs/);
  });

  test('sidebar: a compact list with one chosen metric; nested runs under their parent in the tab', async ({ page }, testInfo) => {
    const panel = await openSidebar(page);
    const tab = await openExperiment(page, 'vision-resnet');
    const list = page.getByTestId('infinstor-list-run');
    await expect(list.first()).toBeVisible();
    await page.getByTestId('infinstor-list-metric').selectOption('loss');
    const live = list.filter({ hasText: 'resnet-live' });
    await expect(live.locator('.jp-InfinStor-listRunMetric')).toHaveText(/^\d+\.\d+$/);
    await expect(live.locator('.jp-InfinStor-listRunAge')).toHaveText(/ ago$/);
    await expect(live.locator('.jp-InfinStor-listRunAge')).toHaveAttribute('title', /^\d{4}-\d\d-\d\dT/);
    await shot(page, testInfo, 'runs-sidebar', panel);

    // The sweep's trials sit under it, collapsed.
    const sweep = tab.getByTestId('infinstor-run-row').filter({ hasText: 'hyperparam-sweep' });
    await expect(tab.getByTestId('infinstor-run-row').filter({ hasText: 'sweep-trial-0' })).toHaveCount(0);
    await sweep.getByTestId('infinstor-run-expander').click();
    const trials = tab.locator('[data-testid="infinstor-run-row"][data-depth="1"]');
    await expect(trials).toHaveCount(3);
    await expect(trials.first()).toContainText('sweep-trial');
    await shot(page, testInfo, 'runs-nested', page.locator('#jp-main-dock-panel'));
  });

  test('run page: overview with experiment, metrics, params, logged model, registered version, source notebook and job; charts', async ({
    page
  }, testInfo) => {
    await openSidebar(page);
    // A notebook for the source link (with a kernelspec: no kernel dialog).
    const nb = JSON.stringify({
      cells: [],
      metadata: { kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' } },
      nbformat: 4,
      nbformat_minor: 5
    });
    await page.contents.uploadContent(nb, 'text', 'seeded/train.ipynb');
    const tab = await openExperiment(page, 'vision-resnet');
    const detail = await openRunPage(page, tab, 'artifact-showcase');
    const overview = detail.getByTestId('infinstor-run-overview');
    await expect(overview.getByTestId('infinstor-run-experiment')).toHaveText('vision-resnet');
    await expect(detail.getByTestId('infinstor-run-metrics-summary')).toContainText('accuracy');
    await expect(detail.getByTestId('infinstor-run-params-summary')).toContainText('optimizer');
    await expect(detail.getByTestId('infinstor-run-params-summary')).toContainText('adam');
    await expect(detail.getByTestId('infinstor-logged-model')).toContainText('resnet-logged');
    // (The MLflow spec registers another version from this run.)
    const version = detail.getByTestId('infinstor-run-model-version').filter({ hasText: 'resnet-vision version 1' });
    await expect(version).toContainText('@candidate');
    await expect(detail.getByTestId('infinstor-detail-source')).toHaveText('seeded/train.ipynb');
    await shot(page, testInfo, 'run-page', page.locator('#jp-main-dock-panel'));

    // The job that made it: runs of a job carry its id (infinstor.job.id); its log opens in the Jobs view.
    await detail.getByRole('tab', { name: /Tags/ }).click();
    await detail.getByTestId('infinstor-tag-key').fill('infinstor.job.id');
    await detail.getByTestId('infinstor-tag-value').fill('job-galata-1');
    await detail.getByTestId('infinstor-tag-add').click();
    await expect(detail.locator('[data-testid="infinstor-tag"][data-key="infinstor.job.id"]')).toBeVisible();
    await detail.getByRole('tab', { name: 'Overview' }).click();
    await detail.getByTestId('infinstor-run-job').click();
    await expect(page.locator('#infinstor-jobs')).toBeVisible();

    // Charts: hover read-out, smoothing, log scale.
    await detail.getByRole('tab', { name: /Charts/ }).click();
    const charts = detail.getByTestId('infinstor-metric-charts');
    await expect(charts.locator('canvas')).toHaveCount(2);
    const box = (await charts.locator('.u-over').first().boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const tip = charts.getByTestId('infinstor-chart-tip').first();
    await expect(tip).toBeVisible();
    await expect(tip).toContainText(/step \d+/);
    await detail.getByTestId('infinstor-chart-log').check();
    await detail.getByTestId('infinstor-chart-smoothing').fill('0.6');
    await expect(charts.locator('canvas')).toHaveCount(2);
    await detail.getByRole('checkbox', { name: 'Plot loss on the combined chart' }).check();
    await detail.getByRole('checkbox', { name: 'Plot accuracy on the combined chart' }).check();
    await expect(detail.getByTestId('infinstor-combined-chart').getByTestId('infinstor-chart-legend')).toContainText('accuracy');
    await page.mouse.move(box.x + box.width / 3, box.y + box.height / 2);
    await shot(page, testInfo, 'run-charts', page.locator('#jp-main-dock-panel'));

    // The source notebook opens in the lab.
    await detail.getByRole('tab', { name: 'Overview' }).click();
    await detail.getByTestId('infinstor-detail-source').click();
    await expect(page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')).toContainText('train.ipynb');
  });

  test('run page: a metric logged once is shown as its value, not a line', async ({ page }) => {
    await openSidebar(page);
    const tab = await openExperiment(page, 'big-sweep-10k');
    const detail = await openRunPage(page, tab, 'sweep-09999');
    await detail.getByRole('tab', { name: /Charts/ }).click();
    const single = detail.getByTestId('infinstor-metric-charts').getByTestId('infinstor-chart-single').first();
    await expect(single).toBeVisible();
    await expect(single).toContainText('logged once');
    await expect(detail.getByTestId('infinstor-metric-charts').locator('canvas')).toHaveCount(0);
  });

  test('compare 5 runs: a chart grid of every shared metric, a scatter of a param against a metric', async ({ page }, testInfo) => {
    await openSidebar(page);
    const tab = await openExperiment(page, 'vision-resnet');
    const names = ['resnet-sgd-lr0.1', 'resnet-sgd-lr0.01', 'resnet-adam-lr0.01', 'resnet-adam-lr0.001', 'resnet-adamw-lr0.003'];
    for (const name of names) {
      await tab.getByTestId('infinstor-run-row').filter({ hasText: name }).getByRole('checkbox').check();
    }
    await expect(tab.getByTestId('infinstor-compare')).toHaveText('Compare (5)');
    await tab.getByTestId('infinstor-compare').click();
    const compare = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-compare"]');
    const legend = compare.getByTestId('infinstor-compare-legend');
    for (const name of names) {
      await expect(legend).toContainText(name);
    }
    const grid = compare.getByTestId('infinstor-compare-grid');
    for (const metric of ['accuracy', 'loss', 'val_loss']) {
      await expect(grid.locator(`[data-metric="${metric}"] canvas`)).toHaveCount(1);
    }
    const box = (await grid.locator('[data-metric="loss"] .u-over').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    const tip = grid.locator('[data-metric="loss"]').getByTestId('infinstor-chart-tip');
    await expect(tip).toBeVisible();
    await expect(tip.locator('.jp-InfinStor-chartTipRow')).toHaveCount(5);
    await shot(page, testInfo, 'compare-grid', page.locator('#jp-main-dock-panel'));

    await compare.getByRole('tab', { name: 'Parameter vs metric' }).click();
    await compare.getByTestId('infinstor-scatter-param').selectOption('lr');
    await compare.getByTestId('infinstor-scatter-metric').selectOption('val_loss');
    await expect(compare.getByTestId('infinstor-scatter').locator('canvas')).toHaveCount(1);
    await expect(compare.getByTestId('infinstor-scatter')).toContainText('val_loss against lr');
    await shot(page, testInfo, 'compare-scatter', page.locator('#jp-main-dock-panel'));

    await compare.getByRole('tab', { name: 'Parameters and metrics' }).click();
    const params = compare.getByTestId('infinstor-compare-params');
    await expect(params.locator('tr', { hasText: 'optimizer' })).toHaveAttribute('data-differs', 'true');
    await expect(params.locator('tr', { hasText: 'batch_size' })).toHaveAttribute('data-differs', 'false');
  });

  test('compare 20 runs: distinct colours and one legend', async ({ page }, testInfo) => {
    await openSidebar(page);
    const tab = await openExperiment(page, 'big-sweep-10k');
    const boxes = tab.getByTestId('infinstor-run-row').getByRole('checkbox');
    for (let i = 0; i < 20; i++) {
      await boxes.nth(i).check();
    }
    await tab.getByTestId('infinstor-compare').click();
    const compare = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-compare"]');
    const dots = compare.getByTestId('infinstor-compare-legend').locator('.jp-InfinStor-legendDot');
    await expect(dots).toHaveCount(20);
    const colours = await dots.evaluateAll((els: Element[]) => els.map(e => getComputedStyle(e).backgroundColor));
    expect(new Set(colours).size).toBe(20);
    // Each metric was logged once per run: values side by side, not lines.
    await expect(compare.getByTestId('infinstor-compare-grid').getByTestId('infinstor-chart-single').first()).toBeVisible();
    await shot(page, testInfo, 'compare-20', page.locator('#jp-main-dock-panel'));
  });

  test('palette: open runs, open a run, compare', async ({ page }) => {
    const ids = ['infinstor:mlflow-open-runs', 'infinstor:mlflow-open-run', 'infinstor:mlflow-compare-runs'];
    const has = await page.evaluate(ids => ids.map(id => (window as any).jupyterapp.commands.hasCommand(id)), ids);
    expect(has).toEqual([true, true, true]);
    await page.keyboard.press('Control+Shift+C');
    const palette = page.locator('#command-palette');
    await palette.locator('.lm-CommandPalette-input').fill('runs of an MLflow experiment');
    await palette.locator('.lm-CommandPalette-item', { hasText: 'Open the runs of an MLflow experiment' }).click();
    await page.locator('.jp-Dialog select').selectOption('churn-model');
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Open' }).click();
    await expect(runsTab(page).getByTestId('infinstor-runs-tab-title')).toHaveText('churn-model');
    void galata;
  });
});
