/**
 * The sidebar's Share… dialog, end to end in the browser, against the real company tracking
 * service (`mlflow server --app-name infinstor` in company mode, start_oidc_service.py
 * --company) and the real test identity provider (tests/idp): a lab (share_setup.js) that
 * playwright.config.js starts with both.
 *
 * alice (org acme, group vision) signs in from the sidebar, creates an experiment, and shares it
 * from the dialog: she sees the default grants (herself manager, vision editor: bob, of vision,
 * adds a run), grants carol (acme, nlp) a role, changes it, grants carol's group, revokes both,
 * and the service agrees each time, asked directly as carol with her own token. The same for a
 * registered model, shared with the whole organisation (checked as erin, acme, sales). Refusals
 * are shown in the dialog: a name left empty, a grant revoked meanwhile elsewhere, and (signed in
 * as carol, an editor, not a manager) every change she tries.
 *
 * The sign-in spec keeps its own `oidc`-mode service (8991): it needs MLflow's shared Default
 * experiment, which company mode (one MLflow workspace per organisation) does not show.
 */
import { expect, test } from '@jupyterlab/galata';
import type { APIRequestContext, Locator, Page, TestInfo } from '@playwright/test';
import * as crypto from 'crypto';
import {
  attachScreenshot,
  callMlflowProxy,
  ensureSignedOut,
  IAnswer,
  idpAccessToken,
  signedInSidebar
} from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const SHARE = require('../share_setup');

// What the dialog lists on a resource alice just created, by the company service's default
// grants: she manages it, her group (vision) edits an experiment and reads a model.
const EXPERIMENT_DEFAULT_GRANTS = ['Group vision editor by alice', 'User alice manager by alice'];
// With the shipped defaults (registered_models_org_readable: true) her organisation reads it too.
const MODEL_DEFAULT_GRANTS = [
  'Organisation acme reader by alice',
  'Group vision reader by alice',
  'User alice manager by alice'
];
const MODEL_GRANTS_BUT_ORG = MODEL_DEFAULT_GRANTS.slice(1);

test.use({ baseURL: SHARE.baseURL });

// -- the service, as the other users (their own tokens, straight to the service) --------------

/** A call to the company service as the holder of `token`. */
async function service(
  http: APIRequestContext,
  token: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown
): Promise<IAnswer> {
  const response = await http.fetch(`${SHARE.service}/${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    data: body === undefined ? undefined : JSON.stringify(body)
  });
  const text = await response.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status(), json };
}

/** HTTP status of reading an experiment as the holder of `token`. */
async function readsExperiment(http: APIRequestContext, token: string, id: string) {
  return (await service(http, token, 'GET', `api/2.0/mlflow/experiments/get?experiment_id=${id}`))
    .status;
}

/** HTTP status of reading a registered model as the holder of `token`. */
async function readsModel(http: APIRequestContext, token: string, name: string) {
  const query = new URLSearchParams({ name });
  return (await service(http, token, 'GET', `api/2.0/mlflow/registered-models/get?${query}`))
    .status;
}

/** The grants on a resource as the service lists them to the holder of `token`. */
async function serviceGrants(
  http: APIRequestContext,
  token: string,
  type: 'experiment' | 'registered_model',
  id: string
): Promise<string[]> {
  const query = new URLSearchParams({ resource_type: type, resource_id: id });
  const answer = await service(http, token, 'GET', `api/2.0/infinstor/permissions?${query}`);
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return (answer.json.permissions as any[])
    .map(p => `${p.principal_type} ${p.principal} ${p.role} by ${p.granted_by}`)
    .sort();
}

// -- the lab -----------------------------------------------------------------------------------

/**
 * The one item named `name` in the sidebar's experiments or models list (a resource just
 * created may take a list refresh to show).
 */
async function listItem(
  panel: Locator,
  kind: 'experiment' | 'model',
  name: string
): Promise<Locator> {
  const item = panel.getByTestId(`infinstor-${kind}-item`).filter({ hasText: name });
  await expect(item).toHaveCount(1, { timeout: 15 * 1000 });
  return item;
}

/** Press a list item's Share… button; returns the dialog it opens (for `name`). */
async function shareFromItem(
  page: Page,
  item: Locator,
  kind: 'experiment' | 'model',
  name: string
): Promise<Locator> {
  await item.getByTestId(`infinstor-${kind}-share`).click();
  return shareDialog(page, `Share ${kind} "${name}"`);
}

/** The open Share dialog (its body), after checking its title. */
async function shareDialog(page: Page, title: string): Promise<Locator> {
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toHaveCount(1);
  await expect(dialog.locator('.jp-Dialog-header')).toContainText(title);
  const share = dialog.getByTestId('infinstor-share');
  await expect(share).toBeVisible();
  await expect(share).toHaveAttribute('aria-busy', 'false');
  return share;
}

async function closeDialog(page: Page): Promise<void> {
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Close the Share dialog' }).click();
  await expect(page.locator('.jp-Dialog')).toHaveCount(0);
}

/**
 * What the dialog lists, in its order: "Type name role by granter", the role as its select
 * shows it; and every row has a grant time.
 */
async function listed(share: Locator): Promise<string[]> {
  return share.getByTestId('infinstor-share-row').evaluateAll(rows =>
    rows.map(row => {
      const cells = Array.from(row.querySelectorAll('td')).map(td => td.textContent?.trim() ?? '');
      const role = (row.querySelector('select') as HTMLSelectElement | null)?.value ?? '?';
      const when = cells[4] && cells[4] !== '—' ? '' : ' (no time)';
      return `${cells[0]} ${cells[1]} ${role} by ${cells[3]}${when}`;
    })
  );
}

function row(share: Locator, type: string, principal: string): Locator {
  return share.locator(
    `[data-testid="infinstor-share-row"][data-principal-type="${type}"][data-principal="${principal}"]`
  );
}

/** Fill the grant form and press Grant (or Enter in the name field). */
async function grant(
  share: Locator,
  type: 'user' | 'group' | 'org',
  principal: string,
  role: 'reader' | 'editor' | 'manager',
  submit: 'button' | 'enter' = 'button'
): Promise<void> {
  await share.getByTestId('infinstor-share-principal-type').selectOption(type);
  const name = share.getByTestId('infinstor-share-principal');
  if (type !== 'org') {
    await name.fill(principal);
  } else {
    // The organisation is always the caller's own, shown read-only.
    await expect(name).toHaveValue(principal);
    await expect(name).toHaveAttribute('readonly', '');
  }
  await share.getByTestId('infinstor-share-grant-role').selectOption(role);
  if (submit === 'enter') {
    await name.press('Enter');
  } else {
    await share.getByTestId('infinstor-share-grant').click();
  }
}

async function expectNotice(share: Locator, text: string): Promise<void> {
  await expect(share.getByTestId('infinstor-share-notice')).toHaveText(text);
  await expect(share.getByTestId('infinstor-share-error')).toHaveCount(0);
  await expect(share).toHaveAttribute('aria-busy', 'false');
}

async function expectRefusal(share: Locator, kind: string, message: string | RegExp): Promise<void> {
  const error = share.getByTestId('infinstor-share-error');
  await expect(error).toBeVisible();
  await expect(error).toHaveAttribute('role', 'alert');
  await expect(error).toHaveAttribute('data-error-kind', kind);
  await expect(error.locator('.jp-InfinStor-stateMessage')).toHaveText(message);
  await expect(share).toHaveAttribute('aria-busy', 'false');
}

async function shot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  await attachScreenshot(page.locator('.jp-Dialog-content'), testInfo, name);
}

function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${crypto.randomBytes(3).toString('hex')}`;
}

test.describe('InfinStor Share… dialog (company service)', () => {
  // Each test signs in at the IdP in the browser and walks many service round trips.
  test.describe.configure({ timeout: 240 * 1000 });

  test.afterEach(async ({ page }) => {
    // Leave the lab signed out for the next test, whatever happened.
    if (!page.isClosed()) {
      const dialogs = page.locator('.jp-Dialog');
      if ((await dialogs.count()) > 0) {
        await page.keyboard.press('Escape');
      }
      await ensureSignedOut(page);
    }
  });

  test('alice shares an experiment she created: lists, grants, changes, revokes; the service agrees', async ({
    page,
    request
  }, testInfo) => {
    const panel = await signedInSidebar(page, 'alice', SHARE.service);
    await expect(page.getByTestId('infinstor-user-details')).toHaveText(
      'alice@acme.example · acme · vision'
    );
    const [alice, bob, carol] = [
      await idpAccessToken('alice'),
      await idpAccessToken('bob'),
      await idpAccessToken('carol')
    ];

    // alice creates an experiment from the sidebar.
    const name = unique('share-walk');
    await page.getByTestId('infinstor-browser-tab-experiments').click();
    await page.getByTestId('infinstor-experiment-create').click();
    const create = page.locator('.jp-Dialog');
    await expect(create.locator('.jp-Dialog-header')).toHaveText('New experiment');
    await create.locator('input').fill(name);
    await create.getByRole('button', { name: 'Create' }).click();
    const item = await listItem(panel, 'experiment', name);
    const id = (await item.getAttribute('data-experiment-id'))!;
    expect(id).toMatch(/^\d+$/);
    // bob (alice's group) may add runs to it, by the default grants; carol (another group of
    // acme) cannot see it: the service answers as if it did not exist.
    const bobsRun = await service(request, bob, 'POST', 'api/2.0/mlflow/runs/create', {
      experiment_id: id,
      start_time: Date.now()
    });
    expect(bobsRun.status, JSON.stringify(bobsRun.json)).toBe(200);
    expect(await readsExperiment(request, carol, id)).toBe(404);

    // Share…: the default grants of the company service, alice as manager, her group as editor.
    await expect(item.getByTestId('infinstor-experiment-share')).toHaveAttribute(
      'aria-label',
      `Share ${name}…`
    );
    const share = await shareFromItem(page, item, 'experiment', name);
    await expect.poll(() => listed(share)).toEqual(EXPERIMENT_DEFAULT_GRANTS);
    await shot(page, testInfo, 'experiment-defaults');

    // A name left empty is caught in the dialog, before anything is sent.
    await share.getByTestId('infinstor-share-principal-type').selectOption('user');
    await share.getByTestId('infinstor-share-principal').fill('  ');
    await share.getByTestId('infinstor-share-grant').click();
    await expectRefusal(share, 'invalid', 'Enter the user name.');

    // Grant carol reader: listed, and carol can now read it (not write to it).
    await grant(share, 'user', 'carol', 'reader');
    await expectNotice(share, 'user carol is now reader.');
    await expect(share.getByTestId('infinstor-share-principal')).toHaveValue('');
    await expect
      .poll(() => listed(share))
      .toEqual([...EXPERIMENT_DEFAULT_GRANTS, 'User carol reader by alice']);
    expect(await readsExperiment(request, carol, id)).toBe(200);
    expect(await serviceGrants(request, carol, 'experiment', id)).toEqual([
      'group vision editor by alice',
      'user alice manager by alice',
      'user carol reader by alice'
    ]);
    const run = { experiment_id: id, start_time: Date.now() };
    expect((await service(request, carol, 'POST', 'api/2.0/mlflow/runs/create', run)).status).toBe(
      403
    );

    // Change carol's role in her row: editor, and the service lets her add a run.
    await row(share, 'user', 'carol').getByTestId('infinstor-share-role').selectOption('editor');
    await expectNotice(share, 'user carol is now editor.');
    await expect(row(share, 'user', 'carol')).toHaveAttribute('data-role', 'editor');
    await expect(row(share, 'user', 'carol').getByTestId('infinstor-share-role')).toHaveValue('editor');
    const created = await service(request, carol, 'POST', 'api/2.0/mlflow/runs/create', run);
    expect(created.status, JSON.stringify(created.json)).toBe(200);
    expect(created.json.run.info.user_id).toBe('carol');

    // Grant carol's group (Enter in the name field submits the form, the dialog stays open).
    await grant(share, 'group', 'nlp', 'reader', 'enter');
    await expectNotice(share, 'group nlp is now reader.');
    await expect(page.locator('.jp-Dialog')).toHaveCount(1);
    await expect.poll(() => listed(share)).toEqual([
      'Group nlp reader by alice',
      'Group vision editor by alice',
      'User alice manager by alice',
      'User carol editor by alice'
    ]);
    await shot(page, testInfo, 'experiment-shared');

    // Revoke carol's own grant: she still reads it through her group, and writes no more.
    await row(share, 'user', 'carol').getByTestId('infinstor-share-revoke').click();
    await expectNotice(share, 'Access of user carol revoked.');
    await expect(row(share, 'user', 'carol')).toHaveCount(0);
    expect(await readsExperiment(request, carol, id)).toBe(200);
    expect((await service(request, carol, 'POST', 'api/2.0/mlflow/runs/create', run)).status).toBe(
      403
    );

    // Revoke the group (its button is named after it): carol no longer sees the experiment.
    await share.getByRole('button', { name: 'Revoke the access of group nlp' }).click();
    await expectNotice(share, 'Access of group nlp revoked.');
    await expect.poll(() => listed(share)).toEqual(EXPERIMENT_DEFAULT_GRANTS);
    expect(await readsExperiment(request, carol, id)).toBe(404);
    expect(await serviceGrants(request, alice, 'experiment', id)).toEqual([
      'group vision editor by alice',
      'user alice manager by alice'
    ]);

    // A grant revoked elsewhere meanwhile (alice's CLI, another lab): the dialog shows the
    // service's refusal, and the list the service's truth.
    await grant(share, 'user', 'carol', 'reader');
    await expectNotice(share, 'user carol is now reader.');
    const elsewhere = await service(request, alice, 'DELETE', 'api/2.0/infinstor/permissions', {
      resource_type: 'experiment',
      resource_id: id,
      principal_type: 'user',
      principal: 'carol'
    });
    expect(elsewhere.status, JSON.stringify(elsewhere.json)).toBe(200);
    await row(share, 'user', 'carol').getByTestId('infinstor-share-revoke').click();
    await expectRefusal(share, 'not-found', 'user carol holds no role on this experiment');
    await expect(row(share, 'user', 'carol')).toHaveCount(0);
    await shot(page, testInfo, 'experiment-refused');
    await closeDialog(page);

    // The Share… button of the experiment's runs header opens the same dialog.
    await item.locator('.jp-InfinStor-listMain').click();
    await expect(page.getByTestId('infinstor-runs-experiment')).toHaveText(name);
    await page.getByTestId('infinstor-runs-share').click();
    const again = await shareDialog(page, `Share experiment "${name}"`);
    await expect.poll(() => listed(again)).toEqual(EXPERIMENT_DEFAULT_GRANTS);
    await closeDialog(page);
    await page.getByTestId('infinstor-runs-back').click();
  });

  test('alice shares a registered model with her organisation from Models; the service agrees', async ({
    page,
    request
  }, testInfo) => {
    const panel = await signedInSidebar(page, 'alice', SHARE.service);
    const erin = await idpAccessToken('erin'); // acme, group sales: only an organisation grant lets her in

    // alice registers a model (as a notebook would, through the lab).
    const name = unique('share-walk-model');
    const made = await callMlflowProxy(page, 'api/2.0/mlflow/registered-models/create', { name });
    expect(made.status, JSON.stringify(made.json)).toBe(200);
    // The shipped defaults: the organisation reads new models, so erin can read it...
    expect(await readsModel(request, erin, name)).toBe(200);
    // ...but only read it.
    const tag = { name, key: 'reviewed', value: 'yes' };
    expect(
      (await service(request, erin, 'POST', 'api/2.0/mlflow/registered-models/set-tag', tag)).status
    ).toBe(403);

    await page.getByTestId('infinstor-browser-tab-models').click();
    await panel.getByRole('button', { name: 'Refresh models' }).click();
    const item = await listItem(panel, 'model', name);
    const share = await shareFromItem(page, item, 'model', name);
    // The defaults for models: alice manager, her group and her organisation readers.
    await expect.poll(() => listed(share)).toEqual(MODEL_DEFAULT_GRANTS);

    // Revoke the organisation's access: erin no longer sees it.
    await share.getByRole('button', { name: 'Revoke the access of the organisation acme' }).click();
    await expectNotice(share, 'Access of the organisation acme revoked.');
    await expect.poll(() => listed(share)).toEqual(MODEL_GRANTS_BUT_ORG);
    expect(await readsModel(request, erin, name)).toBe(404);

    // The whole organisation (always alice's own) as readers again: erin reads it.
    await grant(share, 'org', 'acme', 'reader');
    await expectNotice(share, 'the organisation acme is now reader.');
    await expect.poll(() => listed(share)).toEqual(MODEL_DEFAULT_GRANTS);
    expect(await readsModel(request, erin, name)).toBe(200);
    await shot(page, testInfo, 'model-shared');

    // Raise the organisation to editor in its row: erin may tag it now.
    await row(share, 'org', 'acme').getByTestId('infinstor-share-role').selectOption('editor');
    await expectNotice(share, 'the organisation acme is now editor.');
    const tagged = await service(request, erin, 'POST', 'api/2.0/mlflow/registered-models/set-tag', tag);
    expect(tagged.status, JSON.stringify(tagged.json)).toBe(200);
    await closeDialog(page);
  });

  test('carol, an editor but not a manager, sees who has access; the service refuses her changes in the dialog', async ({
    page,
    request
  }, testInfo) => {
    // alice (with her own token, straight to the service) creates an experiment and a model,
    // and gives carol editor on the one and reader on the other.
    const alice = await idpAccessToken('alice');
    const experimentName = unique('share-walk-readonly');
    const made = await service(request, alice, 'POST', 'api/2.0/mlflow/experiments/create', {
      name: experimentName
    });
    expect(made.status, JSON.stringify(made.json)).toBe(200);
    const id: string = made.json.experiment_id;
    const modelName = unique('share-walk-readonly-model');
    const model = await service(request, alice, 'POST', 'api/2.0/mlflow/registered-models/create', {
      name: modelName
    });
    expect(model.status, JSON.stringify(model.json)).toBe(200);
    for (const [type, resourceId, role] of [
      ['experiment', id, 'editor'],
      ['registered_model', modelName, 'reader']
    ]) {
      const granted = await service(request, alice, 'POST', 'api/2.0/infinstor/permissions', {
        resource_type: type,
        resource_id: resourceId,
        principal_type: 'user',
        principal: 'carol',
        role
      });
      expect(granted.status, JSON.stringify(granted.json)).toBe(200);
    }
    const before = await serviceGrants(request, alice, 'experiment', id);

    const panel = await signedInSidebar(page, 'carol', SHARE.service);
    await expect(page.getByTestId('infinstor-user-details')).toHaveText(
      'carol@acme.example · acme · nlp'
    );

    // carol sees the experiment shared with her, and who has access to it.
    await page.getByTestId('infinstor-browser-tab-experiments').click();
    const item = await listItem(panel, 'experiment', experimentName);
    const share = await shareFromItem(page, item, 'experiment', experimentName);
    await expect
      .poll(() => listed(share))
      .toEqual([...EXPERIMENT_DEFAULT_GRANTS, 'User carol editor by alice']);

    // Every change is the service's to refuse; the dialog says so and keeps the list as it is.
    const hint = 'Only managers of this experiment (and organisation admins) can change who has access.';
    const refusal = `This needs the manager role on experiment ${id}; you hold editor.`;
    await grant(share, 'user', 'erin', 'reader');
    await expectRefusal(share, 'forbidden', refusal);
    await expect(share.getByTestId('infinstor-share-error')).toContainText(hint);
    await expect(share.getByTestId('infinstor-share-notice')).toHaveText('');
    await shot(page, testInfo, 'non-manager-refused');
    // Typing again clears the message.
    await share.getByTestId('infinstor-share-principal').fill('erin2');
    await expect(share.getByTestId('infinstor-share-error')).toHaveCount(0);

    await row(share, 'user', 'carol').getByTestId('infinstor-share-role').selectOption('manager');
    await expectRefusal(share, 'forbidden', refusal);
    await expect(row(share, 'user', 'carol').getByTestId('infinstor-share-role')).toHaveValue('editor');

    await share.getByRole('button', { name: 'Revoke the access of user alice' }).click();
    await expectRefusal(share, 'forbidden', refusal);
    await expect
      .poll(() => listed(share))
      .toEqual([...EXPERIMENT_DEFAULT_GRANTS, 'User carol editor by alice']);
    await closeDialog(page);
    // Nothing changed on the service.
    expect(await serviceGrants(request, alice, 'experiment', id)).toEqual(before);

    // The same for the model she may read.
    await page.getByTestId('infinstor-browser-tab-models').click();
    await panel.getByRole('button', { name: 'Refresh models' }).click();
    const modelItem = await listItem(panel, 'model', modelName);
    const modelShare = await shareFromItem(page, modelItem, 'model', modelName);
    await expect
      .poll(() => listed(modelShare))
      .toEqual([...MODEL_DEFAULT_GRANTS, 'User carol reader by alice']);
    await grant(modelShare, 'org', 'acme', 'editor');
    await expectRefusal(
      modelShare,
      'forbidden',
      `This needs the manager role on registered model ${modelName}; you hold reader.`
    );
    await expect(modelShare.getByTestId('infinstor-share-error')).toContainText(
      'Only managers of this model (and organisation admins) can change who has access.'
    );
    await closeDialog(page);
    expect(await serviceGrants(request, alice, 'registered_model', modelName)).toEqual([
      'group vision reader by alice',
      'org acme reader by alice',
      'user alice manager by alice',
      'user carol reader by alice'
    ]);
  });
});
