/**
 * Colour contrast of our own views, light and dark (issue 15): a newcomer's first hour walked
 * through the seeded tracking store (the MLflow panel's experiments, an experiment's compact
 * runs list and its runs tab, a run's page, five runs compared, This notebook, Models with a
 * model's versions, the Jobs and Compute panels), and in each view axe-core's colour-contrast
 * rule, scoped to our widgets (JupyterLab's own chrome is not ours to judge), must find nothing.
 */
import AxeBuilder from '@axe-core/playwright';
import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Page, TestInfo } from '@playwright/test';

const SIDEBAR_ID = 'infinstor-sidebar';

/**
 * Why axe judged no text here before: its visibility test (axe-core's `overflowHidden`) calls an
 * element hidden when any `overflow: hidden` ancestor is under 2 px tall, and JupyterLab's <body>
 * is `overflow: hidden` with only absolutely positioned children, so it is 0 px tall: every text
 * element counted as hidden, only <input>s (matched on another path) were judged. Giving <body>
 * the viewport's height while axe runs changes no colour and lets axe see the text.
 */
async function axeContrast(page: Page, selector: string) {
  await page.addStyleTag({ content: 'html, body { height: 100%; }' });
  return new AxeBuilder({ page }).include(selector).withRules(['color-contrast']).analyze();
}
const MAIN = '.jp-MainAreaWidget:not(.lm-mod-hidden)';

test.use({ autoGoto: true, viewport: { width: 1400, height: 900 } });

interface IContrastFinding {
  view: string;
  theme: string;
  target: string;
  summary: string;
}

/**
 * axe-core's colour-contrast rule over `selector` in the light and the dark theme; every finding
 * is collected (the test fails at its end with the whole list, not at the first view).
 */
async function checkContrast(
  page: Page,
  testInfo: TestInfo,
  view: string,
  selector: string,
  findings: IContrastFinding[]
): Promise<void> {
  await expect(page.locator(selector).first()).toBeVisible();
  for (const theme of ['light', 'dark'] as const) {
    if (theme === 'dark') {
      await page.theme.setDarkTheme();
    } else {
      await page.theme.setLightTheme();
    }
    await page.waitForTimeout(300); // charts and previews re-read the theme's colours
    const result = await axeContrast(page, selector);
    for (const violation of result.violations) {
      for (const node of violation.nodes) {
        findings.push({ view, theme, target: node.target.join(' '), summary: node.failureSummary ?? violation.help });
      }
    }
    const body = await page.screenshot({ animations: 'disabled', path: testInfo.outputPath(`a11y-${view}-${theme}.png`) });
    await testInfo.attach(`a11y-${view}-${theme}`, { body, contentType: 'image/png' });
  }
  await page.theme.setLightTheme();
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

test.describe('Accessibility', () => {
  test('no colour-contrast violations in our views, light and dark', async ({ page }, testInfo) => {
    test.slow();
    const findings: IContrastFinding[] = [];
    const panel = await openSidebar(page);
    await expect(panel.getByTestId('infinstor-experiment-item').first()).toBeVisible();

    // The check can fail: the tracking address made pale grey on the light theme's white is found.
    const address = page.getByTestId('infinstor-tracking-uri');
    await address.evaluate((el: HTMLElement) => (el.style.color = '#c8c8c8'));
    const bodyHeight = await page.evaluate(() => document.body.getBoundingClientRect().height);
    testInfo.annotations.push({ type: 'body-height-before', description: String(bodyHeight) });
    const blind = await new AxeBuilder({ page }).include(`#${SIDEBAR_ID}`).withRules(['color-contrast']).analyze();
    // Without the body height axe judges none of our text (the finding this spec exists for).
    expect(blind.violations.length).toBe(0);
    const canary = await axeContrast(page, `#${SIDEBAR_ID}`);
    expect(canary.violations.flatMap(v => v.nodes.map(n => n.html)).join('\n')).toContain('infinstor-tracking-uri');
    // And it looks at our views' text: many nodes pass.
    expect(canary.passes.flatMap(v => v.nodes).length).toBeGreaterThan(10);
    await address.evaluate((el: HTMLElement) => (el.style.color = ''));

    await checkContrast(page, testInfo, 'sidebar-experiments', `#${SIDEBAR_ID}`, findings);

    // An experiment: its compact list in the sidebar, its runs tab in the main area.
    const item = panel.getByTestId('infinstor-experiment-item').filter({ hasText: 'vision-resnet' });
    await item.locator('.jp-InfinStor-listMain').click();
    await expect(panel.getByTestId('infinstor-list-run').first()).toBeVisible();
    await checkContrast(page, testInfo, 'sidebar-runs', `#${SIDEBAR_ID}`, findings);
    const tab = page.locator(`${MAIN} [data-testid="infinstor-runs-tab"]`);
    await expect(tab.getByTestId('infinstor-run-row').first()).toBeVisible();
    await checkContrast(page, testInfo, 'runs-tab', `${MAIN} [data-testid="infinstor-runs-tab"]`, findings);

    // A run's page.
    await tab.getByTestId('infinstor-run-row').filter({ hasText: 'artifact-showcase' }).first().getByTestId('infinstor-run-name').click();
    const detail = page.locator(`${MAIN} [data-testid="infinstor-run-detail"]`);
    await expect(detail.getByTestId('infinstor-run-title')).toHaveText('artifact-showcase');
    await checkContrast(page, testInfo, 'run-page', `${MAIN} [data-testid="infinstor-run-detail"]`, findings);
    await detail.getByRole('tab', { name: /Charts/ }).click();
    await expect(detail.getByTestId('infinstor-metric-charts').locator('canvas').first()).toBeVisible();
    await checkContrast(page, testInfo, 'run-charts', `${MAIN} [data-testid="infinstor-run-detail"]`, findings);

    // Five runs compared.
    await page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: 'vision-resnet' }).first().click();
    const names = ['resnet-sgd-lr0.1', 'resnet-sgd-lr0.01', 'resnet-adam-lr0.01', 'resnet-adam-lr0.001', 'resnet-adamw-lr0.003'];
    for (const name of names) {
      await tab.getByTestId('infinstor-run-row').filter({ hasText: name }).getByRole('checkbox').check();
    }
    await tab.getByTestId('infinstor-compare').click();
    const compare = page.locator(`${MAIN} [data-testid="infinstor-compare"]`);
    await expect(compare.getByTestId('infinstor-compare-grid')).toBeVisible();
    await checkContrast(page, testInfo, 'compare-charts', `${MAIN} [data-testid="infinstor-compare"]`, findings);
    await compare.getByRole('tab', { name: 'Parameters and metrics' }).click();
    await expect(compare.getByTestId('infinstor-compare-params')).toBeVisible();
    await checkContrast(page, testInfo, 'compare-table', `${MAIN} [data-testid="infinstor-compare"]`, findings);

    // This notebook (none open: its hint), and Models with a model's versions.
    await page.getByTestId('infinstor-browser-tab-notebook').click();
    await checkContrast(page, testInfo, 'sidebar-notebook', `#${SIDEBAR_ID}`, findings);
    await page.getByTestId('infinstor-browser-tab-models').click();
    const model = panel.locator('[data-testid="infinstor-model-item"][data-model-name="resnet-vision"]');
    await model.locator('.jp-InfinStor-listMain').click();
    await expect(model.getByTestId('infinstor-model-version').first()).toBeVisible();
    await checkContrast(page, testInfo, 'sidebar-models', `#${SIDEBAR_ID}`, findings);

    // The Jobs and Compute panels.
    await page.sidebar.openTab('infinstor-jobs');
    await checkContrast(page, testInfo, 'jobs', '#infinstor-jobs', findings);
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute('infinstor:open-compute');
    });
    await checkContrast(page, testInfo, 'compute', '#infinstor-compute', findings);

    testInfo.annotations.push({ type: 'contrast', description: JSON.stringify(findings, null, 1) });
    expect(findings, findings.map(f => `${f.view} (${f.theme}) ${f.target}: ${f.summary}`).join('\n')).toEqual([]);
  });
});

// Keep galata's helpers referenced (the suite runs with its fixtures).
void galata;
