/**
 * The sidebar's Models view: a version's aliases, tags, description, status and source run by
 * name; "Set alias…" (promote) moves an alias where the user may, and shows the server's
 * refusal where not; what another user changes shows by itself.
 *
 * - On the embedded service of the main test lab: a model made for the test, promoted, and an
 *   alias MLflow itself refuses (a reserved name).
 * - On the company service (share_setup.js, its lab and the test identity provider): carol, a
 *   reader of alice's model, is refused (the service says which role it takes); once alice
 *   makes her an editor she promotes; alice's own changes show in carol's sidebar with no click.
 */
import { expect, test } from '@jupyterlab/galata';
import type { APIRequestContext, Locator, Page, TestInfo } from '@playwright/test';

import { callMlflowProxy, ensureSignedOut, idpAccessToken, signedInSidebar } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const SHARE = require('../share_setup');

const SIDEBAR_ID = 'infinstor-sidebar';
/** The product's target: a write shows within 5 s, with no click. */
const LIVE_MS = 5000;

function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}`;
}

async function shot(page: Page, testInfo: TestInfo, name: string, target: Locator) {
  for (const theme of ['light', 'dark'] as const) {
    if (theme === 'dark') {
      await page.theme.setDarkTheme();
    }
    const body = await target.screenshot({ animations: 'disabled', path: testInfo.outputPath(`${name}-${theme}.png`) });
    await testInfo.attach(`${name}-${theme}`, { body, contentType: 'image/png' });
  }
  await page.theme.setLightTheme();
}

async function widenSidebar(page: Page, width = 560) {
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = await handle.boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width / 2, box.y + 200);
    await page.mouse.down();
    await page.mouse.move(box.x + (width - box.x), box.y + 200, { steps: 4 });
    await page.mouse.up();
  }
}

/** Expand `name` in the Models tab; its versions. */
async function expandModel(panel: Locator, page: Page, name: string): Promise<Locator> {
  await page.getByTestId('infinstor-browser-tab-models').click();
  const item = panel.locator(`[data-testid="infinstor-model-item"][data-model-name="${name}"]`);
  await expect(item).toHaveCount(1, { timeout: LIVE_MS });
  await item.locator('.jp-InfinStor-listMain').click();
  return item;
}

/** "Set alias…" on a version, with `alias` typed in the dialog; the dialog's hint before it closes. */
async function setAlias(page: Page, model: Locator, version: string, alias: string): Promise<string> {
  await model.locator(`[data-version="${version}"]`).getByTestId('infinstor-version-promote').click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toHaveCount(1);
  await dialog.getByTestId('infinstor-promote-alias').fill(alias);
  const hint = (await dialog.getByTestId('infinstor-promote-hint').textContent()) ?? '';
  await dialog.getByRole('button', { name: 'Set alias' }).click();
  await expect(dialog).toHaveCount(0);
  return hint;
}

function aliasesOf(model: Locator, version: string): Locator {
  return model.locator(`[data-version="${version}"]`).getByTestId('infinstor-version-aliases');
}

test.describe('Models view (embedded service)', () => {
  test.use({ autoGoto: true });

  test('versions with aliases, status, tags and source run by name; promote moves an alias; MLflow refuses a reserved alias', async ({
    page
  }, testInfo) => {
    // A model of two versions from the seeded churn runs (so the other specs keep their model).
    const churn = await callMlflowProxy(page, 'api/2.0/mlflow/experiments/get-by-name?experiment_name=churn-model');
    expect(churn.status, JSON.stringify(churn.json)).toBe(200);
    const runs = await callMlflowProxy(page, 'api/2.0/mlflow/runs/search', {
      experiment_ids: [churn.json.experiment.experiment_id],
      filter: "attributes.run_name LIKE 'xgb-depth%'",
      max_results: 10
    });
    expect(runs.status, JSON.stringify(runs.json)).toBe(200);
    const [first, second] = runs.json.runs as any[];
    const name = unique('galata-promote');
    expect((await callMlflowProxy(page, 'api/2.0/mlflow/registered-models/create', { name, description: 'For the promote walk.' })).status).toBe(200);
    for (const run of [first, second]) {
      const made = await callMlflowProxy(page, 'api/2.0/mlflow/model-versions/create', {
        name,
        source: `${run.info.artifact_uri}/model`,
        run_id: run.info.run_id,
        description: `from ${run.info.run_name}`,
        tags: [{ key: 'validated', value: 'true' }]
      });
      expect(made.status, JSON.stringify(made.json)).toBe(200);
    }
    expect((await callMlflowProxy(page, 'api/2.0/mlflow/registered-models/alias', { name, alias: 'champion', version: '1' })).status).toBe(200);

    await page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${SIDEBAR_ID}"]`).click();
    const panel = page.locator(`#${SIDEBAR_ID}`);
    await expect(panel).toBeVisible();
    await widenSidebar(page);
    const model = await expandModel(panel, page, name);
    await expect(model.getByTestId('infinstor-model-version')).toHaveCount(2);
    await expect(aliasesOf(model, '1')).toHaveText('@champion');
    const v2 = model.locator('[data-version="2"]');
    await expect(v2.getByTestId('infinstor-version-status')).toHaveText('Ready');
    await expect(v2).toContainText(`from ${second.info.run_name}`);
    await expect(v2).toContainText('validated=true');
    // The source run by its name, which opens it.
    await expect(v2.getByTestId('infinstor-version-run')).toHaveText(second.info.run_name);

    // Promote v2: the dialog says the alias moves; it does.
    const hint = await setAlias(page, model, '2', 'champion');
    expect(hint).toBe('@champion moves from v1 to v2.');
    await expect(aliasesOf(model, '2')).toHaveText('@champion');
    await expect(aliasesOf(model, '1')).toHaveText('');
    await shot(page, testInfo, 'models-promoted', model);

    // A name MLflow reserves: its refusal, on the version, in its words.
    await setAlias(page, model, '1', 'latest');
    const refusal = model.locator('[data-version="1"]').getByTestId('infinstor-version-refusal');
    await expect(refusal).toContainText('Could not set the alias @latest on v1.');
    await expect(refusal).toContainText(/latest/);
    await expect(refusal.locator('[data-error-kind="invalid"]')).toHaveCount(1);
    await shot(page, testInfo, 'models-refused', model);

    // Removing an alias.
    await model.locator('[data-version="2"]').getByRole('button', { name: 'Remove the alias @champion from v2' }).click();
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Remove' }).click();
    await expect(aliasesOf(model, '2')).toHaveText('');

    // The source run opens by its name.
    await v2.getByTestId('infinstor-version-run').click();
    const detail = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-detail"]');
    await expect(detail.getByTestId('infinstor-run-title')).toHaveText(second.info.run_name);
  });

  test('an HTML artifact previews in the theme of the lab, not as a white frame', async ({ page }, testInfo) => {
    const vision = await callMlflowProxy(page, 'api/2.0/mlflow/experiments/get-by-name?experiment_name=vision-resnet');
    const runs = await callMlflowProxy(page, 'api/2.0/mlflow/runs/search', {
      experiment_ids: [vision.json.experiment.experiment_id],
      filter: "attributes.run_name = 'artifact-showcase'",
      max_results: 1
    });
    const runId: string = runs.json.runs[0].info.run_id;
    await page.evaluate(id => (window as any).jupyterapp.commands.execute('infinstor:mlflow-open-run', { runId: id }), runId);
    const detail = page.locator('.jp-MainAreaWidget:not(.lm-mod-hidden) [data-testid="infinstor-run-detail"]');
    await expect(detail.getByTestId('infinstor-run-title')).toHaveText('artifact-showcase');
    await detail.getByRole('tab', { name: 'Artifacts' }).click();
    await detail.locator('[data-testid="infinstor-artifact"][data-path="report.html"]').click();
    const frame = detail.locator('iframe.jp-InfinStor-previewFrame');
    await expect(frame).toHaveAttribute('data-theme', 'light');
    await page.theme.setDarkTheme();
    await expect(frame).toHaveAttribute('data-theme', 'dark');
    // What the frame paints where the artifact sets no colours: the dark theme's background.
    const inside = page.frameLocator('.jp-MainAreaWidget:not(.lm-mod-hidden) iframe.jp-InfinStor-previewFrame');
    const background = await inside.locator('html').evaluate(el => getComputedStyle(el).backgroundColor);
    const channels = (background.match(/\d+/g) ?? []).slice(0, 3).map(Number);
    expect(Math.max(...channels), background).toBeLessThan(80);
    const body = await detail.getByTestId('infinstor-artifact-preview').screenshot({ path: testInfo.outputPath('html-preview-dark.png') });
    await testInfo.attach('html-preview-dark', { body, contentType: 'image/png' });
    await page.theme.setLightTheme();
    await expect(frame).toHaveAttribute('data-theme', 'light');
    const light = await detail.getByTestId('infinstor-artifact-preview').screenshot({ path: testInfo.outputPath('html-preview-light.png') });
    await testInfo.attach('html-preview-light', { body: light, contentType: 'image/png' });
  });
});

// -- the company service ------------------------------------------------------------------------

/** A call to the company service as the holder of `token`. */
async function service(http: APIRequestContext, token: string, path: string, body: unknown): Promise<any> {
  const response = await http.fetch(`${SHARE.service}/${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    data: JSON.stringify(body)
  });
  const json = await response.json().catch(() => null);
  expect(response.status(), `${path}: ${JSON.stringify(json)}`).toBe(200);
  return json;
}

test.describe('Models view (company service)', () => {
  test.use({ baseURL: SHARE.baseURL });
  test.describe.configure({ timeout: 240 * 1000 });

  test.afterEach(async ({ page }) => {
    if (!page.isClosed()) {
      if ((await page.locator('.jp-Dialog').count()) > 0) {
        await page.keyboard.press('Escape');
      }
      await ensureSignedOut(page);
    }
  });

  test("carol, a reader, is refused a promote with the service's reason; as an editor she promotes; alice's changes show live", async ({
    page,
    request
  }, testInfo) => {
    // alice (her own token, straight to the service) registers a model of two versions and lets
    // carol read it.
    const alice = await idpAccessToken('alice');
    const experiment = await service(request, alice, 'api/2.0/mlflow/experiments/create', { name: unique('promote-exp') });
    const run = await service(request, alice, 'api/2.0/mlflow/runs/create', {
      experiment_id: experiment.experiment_id,
      run_name: 'trained-by-alice',
      start_time: Date.now()
    });
    const name = unique('promote-model');
    await service(request, alice, 'api/2.0/mlflow/registered-models/create', { name });
    for (let i = 0; i < 2; i++) {
      await service(request, alice, 'api/2.0/mlflow/model-versions/create', {
        name,
        source: `${run.run.info.artifact_uri}/model`,
        run_id: run.run.info.run_id
      });
    }
    await service(request, alice, 'api/2.0/mlflow/registered-models/alias', { name, alias: 'champion', version: '1' });
    const grant = (role: string) =>
      service(request, alice, 'api/2.0/infinstor/permissions', {
        resource_type: 'registered_model',
        resource_id: name,
        principal_type: 'user',
        principal: 'carol',
        role
      });
    await grant('reader');

    const panel = await signedInSidebar(page, 'carol', SHARE.service);
    await widenSidebar(page);
    const model = await expandModel(panel, page, name);
    await expect(aliasesOf(model, '1')).toHaveText('@champion');
    await expect(model.locator('[data-version="1"]').getByTestId('infinstor-version-run')).toHaveText('trained-by-alice');

    // A reader may not move an alias: the service's refusal, on the version, says why.
    await setAlias(page, model, '2', 'champion');
    const refusal = model.locator('[data-version="2"]').getByTestId('infinstor-version-refusal');
    await expect(refusal.locator('[data-error-kind="forbidden"]')).toHaveCount(1);
    await expect(refusal).toContainText(`This needs the editor role on registered model ${name}; you hold reader.`);
    await expect(aliasesOf(model, '1')).toHaveText('@champion');
    await shot(page, testInfo, 'models-promote-refused', model);

    // alice makes carol an editor: now she may.
    await grant('editor');
    await setAlias(page, model, '2', 'champion');
    await expect(aliasesOf(model, '2')).toHaveText('@champion');
    await expect(refusal).toHaveCount(0);

    // What alice does meanwhile (a new version, the alias back on v1) shows in carol's sidebar
    // with no click.
    await service(request, alice, 'api/2.0/mlflow/model-versions/create', {
      name,
      source: `${run.run.info.artifact_uri}/model`,
      run_id: run.run.info.run_id
    });
    await expect(model.getByTestId('infinstor-model-version')).toHaveCount(3, { timeout: LIVE_MS });
    await service(request, alice, 'api/2.0/mlflow/registered-models/alias', { name, alias: 'champion', version: '1' });
    await expect(aliasesOf(model, '1')).toHaveText('@champion', { timeout: LIVE_MS });
    await expect(aliasesOf(model, '2')).toHaveText('');
  });
});
