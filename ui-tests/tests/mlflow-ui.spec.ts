/**
 * MLflow's own UI in a lab tab (the "Open in MLflow UI" command), as a newcomer first sees it:
 * on a local host name (127.0.0.1 here) MLflow 3.17's UI opens its Assistant panel by itself
 * the first time it loads. The assistant is never available through the lab's proxy, so the
 * tab must show MLflow's page without the Assistant and without a refused request.
 */
import { expect, test } from '@jupyterlab/galata';
import type { Page } from '@playwright/test';

test.use({ autoGoto: true });

const UI_FRAME = '.jp-MainAreaWidget:not(.lm-mod-hidden) .jp-InfinStor-mlflowUi iframe';

/** The lab's "Open in MLflow UI" command (what the sidebar's buttons run). */
async function openMlflowUi(page: Page, hash: string, label: string): Promise<void> {
  await page.evaluate(
    async ({ hash, label }) => {
      await (window as any).jupyterapp.commands.execute('infinstor:mlflow-open-in-ui', { hash, label });
    },
    { hash, label }
  );
}

test('the MLflow UI tab opens without the Assistant and without a refused request', async ({ page }, testInfo) => {
  const failed: string[] = [];
  const assistantCalls: string[] = [];
  // What MLflow's UI (the tab's frame) asks; the lab's own requests are not this spec's business.
  page.on('response', response => {
    const url = response.url();
    if (response.request().frame() === page.mainFrame() || !url.includes('/infinstor/api/mlflow/')) {
      return;
    }
    if (url.includes('/assistant/')) {
      assistantCalls.push(url);
    }
    // users/current exists only on MLflow servers with MLflow's own authentication: the
    // embedded service answers 404 (MLflow's answer, not the proxy's) and the UI copes.
    if (response.status() >= 400 && !url.includes('ajax-api/2.0/mlflow/users/current')) {
      failed.push(`${response.status()} ${response.request().method()} ${url}`);
    }
  });
  // A first visit: nothing of MLflow's UI in this origin's local storage yet.
  await page.evaluate(() => {
    for (const key of Object.keys(window.localStorage)) {
      if (key.startsWith('mlflow.')) {
        window.localStorage.removeItem(key);
      }
    }
  });

  // The embedded tracking service starts on first need: wait for it as the sidebar would.
  await expect
    .poll(
      async () =>
        page.evaluate(async () => {
          const r = await fetch('/infinstor/api/status');
          return r.ok ? (await r.json()).tracking.state : `HTTP ${r.status}`;
        }),
      { timeout: 120 * 1000 }
    )
    .toBe('running');
  await openMlflowUi(page, '#/experiments', 'experiments');
  const ui = page.frameLocator(UI_FRAME);
  // MLflow's UI is 7 MB of JavaScript: a loaded 2-core machine needs a while.
  await expect(ui.getByText('vision-resnet').first()).toBeVisible({ timeout: 60 * 1000 });
  // The UI asks whether an assistant is set up on every load; wait for its answers to land.
  await expect.poll(() => assistantCalls.some(url => url.includes('assistant/config'))).toBe(true);
  await page.waitForTimeout(1000);

  await expect(ui.getByText('Welcome to MLflow Assistant')).toHaveCount(0);
  await expect(ui.locator('[data-assistant-ui="true"]:visible')).toHaveCount(0);
  const body = await page.locator('#jp-main-dock-panel').screenshot({ animations: 'disabled' });
  await testInfo.attach('mlflow-ui-tab', { body, contentType: 'image/png' });
  expect(failed).toEqual([]);

  // A second tab (MLflow's UI remembers the panel in local storage): still closed.
  await openMlflowUi(page, '#/models', 'models');
  await expect(page.frameLocator(UI_FRAME).getByText('churn-classifier').first()).toBeVisible({ timeout: 60 * 1000 });
  await expect(page.frameLocator(UI_FRAME).locator('[data-assistant-ui="true"]:visible')).toHaveCount(0);
  expect(failed).toEqual([]);
});
