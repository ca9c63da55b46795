/**
 * Sign-in from the sidebar, end to end, against the real test identity provider (tests/idp)
 * and a token-checking MLflow service: a second lab (jupyter_server_signin_config.py) that
 * playwright.config.js starts with both.
 */
import { expect, test } from '@jupyterlab/galata';
import type { Page, Response, TestInfo } from '@playwright/test';
import * as fs from 'fs';
import {
  attachScreenshot,
  callMlflowProxy,
  ensureSignedOut,
  expectRemoteTracking,
  expectSignedInAs,
  openIdpLogin,
  SIDEBAR_ID,
  submitIdpLogin
} from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const SIGNIN = require('../signin_setup');

test.use({ baseURL: SIGNIN.baseURL });

// A read through the proxy: refused signed out, served once signed in.
const SEARCH_EXPERIMENTS = 'ajax-api/2.0/mlflow/experiments/search?max_results=5';

interface ISeen {
  url: string;
  status: number;
  text: string;
}

/**
 * Everything the browser gets from the lab's origin (page and popup): headers and the
 * bodies of JSON, HTML and JavaScript responses.
 */
function recordResponses(page: Page): { seen: ISeen[]; pending: Promise<void>[] } {
  const seen: ISeen[] = [];
  const pending: Promise<void>[] = [];
  page.context().on('response', (response: Response) => {
    if (!response.url().startsWith(SIGNIN.baseURL)) {
      return;
    }
    pending.push(
      (async () => {
        const headers = await response.allHeaders().catch(() => ({}));
        const type = (headers as Record<string, string>)['content-type'] || '';
        let body = '';
        if (/json|html|javascript|text/.test(type)) {
          body = await response.text().catch(() => ''); // redirects have no body
        }
        seen.push({
          url: response.url(),
          status: response.status(),
          text: `${JSON.stringify(headers)}\n${body}`
        });
      })()
    );
  });
  return { seen, pending };
}

function storedSecrets(): string[] {
  const data = JSON.parse(fs.readFileSync(SIGNIN.tokenStore, 'utf-8'));
  const secrets: string[] = [];
  for (const entry of Object.values<Record<string, string>>(data.services)) {
    for (const key of ['access_token', 'refresh_token', 'id_token']) {
      if (entry[key]) {
        secrets.push(entry[key]);
      }
    }
  }
  return secrets;
}

async function panelShots(page: Page, testInfo: TestInfo, name: string) {
  const panel = page.locator(`#${SIDEBAR_ID}`);
  for (const theme of ['light', 'dark'] as const) {
    if (theme === 'dark') {
      await page.theme.setDarkTheme();
    } else {
      await page.theme.setLightTheme();
    }
    await attachScreenshot(panel, testInfo, `${name}-${theme}`);
  }
  await page.theme.setLightTheme();
}

test.describe('InfinStor sign-in', () => {
  test('signs in with the identity provider in a popup, works as alice, signs out', async ({
    page
  }, testInfo) => {
    test.setTimeout(180 * 1000);
    const { seen, pending } = recordResponses(page);

    await page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${SIDEBAR_ID}"]`).click();
    const panel = page.locator(`#${SIDEBAR_ID}`);
    await expectRemoteTracking(page, SIGNIN.service);
    await expect(page.getByTestId('infinstor-auth-issuer')).toHaveText(SIGNIN.issuer);

    // Not signed in: the Sign in button, no Sign out; the proxy refuses to work anonymously.
    await expect(page.getByTestId('infinstor-user')).toHaveText('local');
    await expect(panel).toContainText('not signed in');
    const signIn = page.getByTestId('infinstor-sign-in');
    await expect(signIn).toBeVisible();
    await expect(signIn).toHaveText('Sign in');
    await expect(page.getByTestId('infinstor-sign-out')).toHaveCount(0);
    const anonymous = await callMlflowProxy(page, SEARCH_EXPERIMENTS);
    expect(anonymous.status).toBe(401);
    expect(anonymous.json?.reason).toBe('sign_in_required');
    await panelShots(page, testInfo, 'signed-out');

    // Sign in: a popup shows the identity provider's login page.
    const popup = await openIdpLogin(page, () => signIn.click());
    expect(popup.url().startsWith(SIGNIN.issuer)).toBe(true);
    await expect(page.getByTestId('infinstor-sign-in')).toContainText('Signing in');
    // Back on the lab's callback page, which says "Signed in as Alice Liddell (alice)", reports
    // to the lab and closes itself.
    const callbackURL = await submitIdpLogin(popup, 'alice');
    expect(callbackURL.startsWith(`${SIGNIN.baseURL}/infinstor/api/auth/callback`)).toBe(true);

    // The sidebar shows alice (the callback's message refreshed it: no 10 s poll wait).
    await expectSignedInAs(page, 'alice', { timeout: 5 * 1000 });
    await expect(page.getByTestId('infinstor-user-details')).toHaveText(
      'alice@acme.example · acme · vision'
    );
    await expect(panel).toContainText('Signed in as');
    await expect(page.getByTestId('infinstor-sign-in')).toHaveCount(0);
    await expect(page.getByTestId('infinstor-sign-out')).toBeVisible();
    // The MLflow browser below reloaded as alice (it could not list anything signed out).
    await expect(panel.getByText('Could not list the experiments')).toHaveCount(0);
    await expect(panel.getByText('Default').first()).toBeVisible({ timeout: 15 * 1000 });
    await panelShots(page, testInfo, 'signed-in');

    // A fresh load of the whole lab while signed in (recorded too).
    await page.reload();
    // (The restored layout may already show the sidebar: open it, don't toggle it.)
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('infinstor:open-sidebar'));
    await expect(page.getByTestId('infinstor-user')).toHaveText('Alice Liddell');

    // MLflow through the proxy works, as alice (the service records the token's user).
    const search = await callMlflowProxy(page, SEARCH_EXPERIMENTS);
    expect(search.status).toBe(200);
    expect(Array.isArray(search.json?.experiments)).toBe(true);
    const created = await callMlflowProxy(page, 'api/2.0/mlflow/runs/create', {
      experiment_id: '0',
      user_id: 'mallory'
    });
    expect(created.status).toBe(200);
    expect(created.json.run.info.user_id).toBe('alice');

    // No token ever reached the page or the popup.
    const secrets = storedSecrets();
    expect(secrets.length).toBeGreaterThanOrEqual(2);
    await Promise.all(pending);
    expect(seen.length).toBeGreaterThan(20);
    expect(seen.some(r => r.url.includes('/infinstor/api/auth/callback'))).toBe(true);
    expect(seen.some(r => r.url.includes('/infinstor/api/status'))).toBe(true);
    for (const response of seen) {
      for (const secret of secrets) {
        expect(response.text.includes(secret), `a token in ${response.url}`).toBe(false);
      }
    }

    // Sign out: not signed in again, and the proxy asks to sign in.
    await page.getByTestId('infinstor-sign-out').click();
    await expect(page.getByTestId('infinstor-user')).toHaveText('local');
    await expect(page.getByTestId('infinstor-sign-in')).toBeVisible();
    await expect(page.getByTestId('infinstor-sign-out')).toHaveCount(0);
    await expect(page.getByTestId('infinstor-sign-in-error')).toHaveCount(0);
    expect(storedSecrets()).toEqual([]);
    const after = await callMlflowProxy(page, SEARCH_EXPERIMENTS);
    expect(after.status).toBe(401);
    expect(after.json?.reason).toBe('sign_in_required');

    // The tokens never showed up later either.
    await Promise.all(pending);
    for (const response of seen) {
      for (const secret of secrets) {
        expect(response.text.includes(secret), `a token in ${response.url}`).toBe(false);
      }
    }
  });

  test('the palette commands follow the sign-in state', async ({ page }) => {
    // Start signed out (whatever an earlier test left).
    await ensureSignedOut(page);
    const popup = await openIdpLogin(page, () =>
      page.evaluate(() => (window as any).jupyterapp.commands.execute('infinstor:sign-in'))
    );
    // The command opened the sidebar too.
    await expect(page.getByTestId('infinstor-sign-in')).toContainText('Signing in');
    // Cancel at the provider: the lab's page says so, the sidebar stays signed out.
    await popup.locator('a#abort').click();
    await expect(popup.locator('#infinstor-signin-message')).toContainText('cancelled');
    await popup.close();
    await expect(page.getByTestId('infinstor-sign-in')).toHaveText('Sign in');
    await expect(page.getByTestId('infinstor-user')).toHaveText('local');
  });
});
