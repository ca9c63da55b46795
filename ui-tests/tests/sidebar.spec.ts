import { expect, test } from '@jupyterlab/galata';
import type { Page, TestInfo } from '@playwright/test';

const SIDEBAR_ID = 'infinstor-sidebar';

// The embedded MLflow server starts on the first status request: give it time.
const START_TIMEOUT = 60 * 1000;

function sidebarTab(page: Page) {
  return page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${SIDEBAR_ID}"]`);
}

function sidebarPanel(page: Page) {
  return page.locator(`#${SIDEBAR_ID}`);
}

async function attachScreenshots(page: Page, testInfo: TestInfo, name: string) {
  const panel = await sidebarPanel(page).screenshot({
    path: testInfo.outputPath(`${name}-panel.png`),
    animations: 'disabled'
  });
  await testInfo.attach(`${name}-panel`, { body: panel, contentType: 'image/png' });
  const full = await page.screenshot({
    path: testInfo.outputPath(`${name}-page.png`),
    animations: 'disabled'
  });
  await testInfo.attach(`${name}-page`, { body: full, contentType: 'image/png' });
}

test.describe('InfinStor sidebar', () => {
  test('shows the embedded tracking service running for the local user', async ({
    page
  }, testInfo) => {
    const tab = sidebarTab(page);
    await expect(tab).toBeVisible();
    await expect(tab).toHaveAttribute('title', 'InfinStor MLflow: experiments, runs and models');
    // The tab shows the InfinStor icon.
    await expect(tab.locator('svg')).toHaveCount(1);

    await tab.click();
    const panel = sidebarPanel(page);
    await expect(panel).toBeVisible();
    await expect(panel.getByRole('heading', { name: 'InfinStor MLflow' })).toBeVisible();
    await expect(panel.getByRole('heading', { name: 'Tracking service' })).toBeVisible({
      timeout: START_TIMEOUT
    });

    const state = page.getByTestId('infinstor-tracking-state');
    await expect(state).toHaveText('running', { timeout: START_TIMEOUT });
    await expect(page.getByTestId('infinstor-tracking-mode')).toHaveText('Embedded (local)');
    await expect(page.getByTestId('infinstor-user')).toHaveText('local');
    await expect(page.getByTestId('infinstor-mlflow-version')).toHaveText(/^\d+\.\d+/);
    await expect(page.getByTestId('infinstor-tracking-uri')).toHaveText(
      /^http:\/\/(127\.0\.0\.1|localhost):\d+/
    );
    // No configuration warnings in a correct install.
    await expect(page.getByTestId('infinstor-server-missing')).toHaveCount(0);
    await expect(page.getByTestId('infinstor-version-mismatch')).toHaveCount(0);
    await expect(page.getByTestId('infinstor-error')).toHaveCount(0);

    // The status dot uses the theme's success colour.
    const dot = panel.locator('.jp-InfinStor-dot-ok');
    await expect(dot).toBeVisible();
    const [dotColour, successColour] = await dot.evaluate(el => {
      const probe = document.createElement('span');
      probe.style.color = 'var(--jp-success-color1)';
      document.body.appendChild(probe);
      const expected = getComputedStyle(probe).color;
      probe.remove();
      return [getComputedStyle(el).backgroundColor, expected];
    });
    expect(dotColour).toBe(successColour);

    // Refresh keeps it running.
    await panel.getByRole('button', { name: 'Refresh the status and the lists' }).click();
    await expect(state).toHaveText('running');
    await expect(page.getByTestId('infinstor-last-checked')).toBeVisible();

    await attachScreenshots(page, testInfo, 'sidebar-light');

    await page.theme.setDarkTheme();
    await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'false');
    await expect(state).toHaveText('running');
    // Text stays readable: the panel follows the theme's colours.
    const [background, foreground, layout] = await panel.evaluate(el => {
      const style = getComputedStyle(el);
      const probe = document.createElement('span');
      probe.style.color = 'var(--jp-layout-color1)';
      document.body.appendChild(probe);
      const expected = getComputedStyle(probe).color;
      probe.remove();
      return [style.backgroundColor, style.color, expected];
    });
    expect(background).toBe(layout);
    expect(foreground).not.toBe(background);
    await attachScreenshots(page, testInfo, 'sidebar-dark');

    await page.theme.setLightTheme();
  });

  test('palette has the InfinStor commands', async ({ page }) => {
    const hasCommands = await page.evaluate(() => {
      const app = (window as any).jupyterapp;
      return ['infinstor:open-sidebar', 'infinstor:refresh-status'].map(id =>
        app.commands.hasCommand(id)
      );
    });
    expect(hasCommands).toEqual([true, true]);

    await page.keyboard.press('Control+Shift+C');
    const palette = page.locator('#command-palette');
    await expect(palette).toBeVisible();
    await palette.locator('.lm-CommandPalette-input').fill('InfinStor');
    // The modal palette hides category headers, but the items are filed under "InfinStor".
    await expect(
      palette.locator('.lm-CommandPalette-header', { hasText: /^InfinStor$/ })
    ).toHaveCount(1);
    await expect(
      palette.locator('.lm-CommandPalette-item', { hasText: 'Refresh tracking service status' })
    ).toBeVisible();
    const open = palette.locator('.lm-CommandPalette-item', {
      hasText: 'Open InfinStor sidebar'
    });
    await expect(open).toBeVisible();
    await open.click();

    await expect(sidebarPanel(page)).toBeVisible();
    await expect(page.getByTestId('infinstor-tracking-state')).toHaveText(
      /running|starting|error/,
      { timeout: START_TIMEOUT }
    );
  });

  test('warns when the server extension does not answer', async ({ page }, testInfo) => {
    await page.route('**/infinstor/api/status*', route =>
      route.fulfill({ status: 404, contentType: 'text/html', body: '<html>404: Not Found</html>' })
    );
    await sidebarTab(page).click();
    await page.getByRole('button', { name: 'Refresh the status and the lists' }).click();

    const warning = page.getByTestId('infinstor-server-missing');
    await expect(warning).toBeVisible();
    await expect(warning).toContainText(
      'jupyter server extension enable infinstor_jupyterlab'
    );
    // ... and once as a notification.
    const toast = page.locator('.jp-toast-message', {
      hasText: 'server extension is not enabled'
    });
    await expect(toast).toHaveCount(1);
    await page.getByRole('button', { name: 'Refresh the status and the lists' }).click();
    await expect(warning).toBeVisible();
    await expect(toast).toHaveCount(1);
    await attachScreenshots(page, testInfo, 'server-missing');
  });

  test('warns about a frontend / server version mismatch', async ({ page }, testInfo) => {
    await page.route('**/infinstor/api/status*', async route => {
      const response = await route.fetch();
      const body = await response.json();
      await route.fulfill({ response, json: { ...body, version: '99.0.0' } });
    });
    await sidebarTab(page).click();
    await page.getByRole('button', { name: 'Refresh the status and the lists' }).click();

    const warning = page.getByTestId('infinstor-version-mismatch');
    await expect(warning).toBeVisible();
    await expect(warning).toContainText('99.0.0');
    await expect(
      page.locator('.jp-toast-message', { hasText: 'and server extension 99.0.0 differ' })
    ).toHaveCount(1);
    await attachScreenshots(page, testInfo, 'version-mismatch');
  });

  test('shows a failed tracking service with a restart button', async ({ page }, testInfo) => {
    await page.route('**/infinstor/api/status*', async route => {
      const response = await route.fetch();
      const body = await response.json();
      await route.fulfill({
        response,
        json: {
          ...body,
          tracking: {
            ...body.tracking,
            state: 'error',
            message: 'The MLflow server exited with code 1: address already in use.'
          }
        }
      });
    });
    await sidebarTab(page).click();
    await page.getByRole('button', { name: 'Refresh the status and the lists' }).click();

    await expect(page.getByTestId('infinstor-tracking-state')).toHaveText('error');
    await expect(page.getByTestId('infinstor-tracking-message')).toContainText(
      'address already in use'
    );
    const restart = page.getByTestId('infinstor-restart');
    await expect(restart).toBeVisible();
    await expect(restart).toHaveText('Restart tracking service');
    await attachScreenshots(page, testInfo, 'tracking-error-light');
    await page.theme.setDarkTheme();
    await attachScreenshots(page, testInfo, 'tracking-error-dark');
    await page.theme.setLightTheme();

    // Restart really restarts the embedded service, which comes back running.
    await page.unroute('**/infinstor/api/status*');
    const restarted = page.waitForResponse(
      response =>
        response.url().includes('/infinstor/api/tracking/restart') &&
        response.request().method() === 'POST'
    );
    await restart.click();
    expect((await restarted).status()).toBe(200);
    await expect(page.getByTestId('infinstor-tracking-state')).toHaveText('running', {
      timeout: START_TIMEOUT
    });
    await expect(page.getByTestId('infinstor-restart')).toHaveCount(0);
  });

  test('the InfinStor settings have a poll interval', async ({ page }) => {
    const schema = await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      const settings = await app.serviceManager.settings.fetch('infinstor-jupyterlab:plugin');
      return settings.schema;
    });
    expect(schema.title).toBe('InfinStor');
    expect(schema.properties.pollInterval.default).toBe(10);
    expect(schema.properties.pollInterval.minimum).toBe(2);
  });

  test('applies a new poll interval live', async ({ page }) => {
    const intervals = await page.evaluate(async () => {
      const win = window as any;
      const registry = await win.galata.getPlugin(
        '@jupyterlab/apputils-extension:settings'
      );
      const sidebar = Array.from(win.jupyterapp.shell.widgets('left')).find(
        (w: any) => w.id === 'infinstor-sidebar'
      ) as any;
      const before = sidebar.model.interval;
      await registry.set('infinstor-jupyterlab:plugin', 'pollInterval', 30);
      // Settings changes are applied asynchronously.
      for (let i = 0; i < 50 && sidebar.model.interval === before; i++) {
        await new Promise(resolve => setTimeout(resolve, 100));
      }
      const after = sidebar.model.interval;
      await registry.remove('infinstor-jupyterlab:plugin', 'pollInterval');
      return [before, after];
    });
    expect(intervals).toEqual([10000, 30000]);
  });
});
