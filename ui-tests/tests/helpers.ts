/**
 * Steps shared by the specs that sign in against the test identity provider (signin.spec.ts,
 * share.spec.ts): its login page and tokens, the sidebar's tracking state, the lab's MLflow
 * proxy as the page calls it, and screenshots for the report.
 *
 * Not a spec: Playwright's default testMatch collects only *.spec.* and *.test.* files.
 */
import { expect } from '@jupyterlab/galata';
import { request as playwrightRequest } from '@playwright/test';
import type { Locator, Page, TestInfo } from '@playwright/test';
import * as crypto from 'crypto';

// The identity provider is the same for every lab (share_setup.js takes it from here).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const IDP = require('../signin_setup');

export const SIDEBAR_ID = 'infinstor-sidebar';

/** The names the identity provider gives the users the specs sign in as in the browser. */
const DISPLAY_NAMES: Record<string, string> = {
  alice: 'Alice Liddell',
  carol: 'Carol Danvers'
};

/** An HTTP answer: its status and its JSON body (null, or the text, when it is not JSON). */
export interface IAnswer {
  status: number;
  json: any;
}

// -- the lab ------------------------------------------------------------------------------------

/** Call the lab's MLflow proxy from the page, as the sidebar does (cookie + XSRF token). */
export async function callMlflowProxy(page: Page, path: string, body?: unknown): Promise<IAnswer> {
  return page.evaluate(
    async ({ path, body }) => {
      const xsrf = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
      const response = await fetch(`/infinstor/api/mlflow/${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(xsrf ? { 'X-XSRFToken': decodeURIComponent(xsrf[1]) } : {})
        },
        body: body === undefined ? undefined : JSON.stringify(body)
      });
      return { status: response.status, json: await response.json().catch(() => null) };
    },
    { path, body }
  );
}

/**
 * The sidebar shows its tracking server running, and that it is the remote `service`
 * (the first start of a lab can take a while on a loaded machine: hence the long wait).
 */
export async function expectRemoteTracking(page: Page, service: string): Promise<void> {
  await expect(page.getByTestId('infinstor-tracking-state')).toHaveText('running', {
    timeout: 60 * 1000
  });
  await expect(page.getByTestId('infinstor-tracking-mode')).toHaveText(`Remote: ${service}`);
}

/**
 * Sign out if signed in (whatever an earlier test left), and wait until the lab's commands
 * agree: Sign in enabled, Sign out not. (Polled: the sign-out and the status refresh race.)
 */
export async function ensureSignedOut(page: Page): Promise<void> {
  await expect
    .poll(
      () =>
        page.evaluate(async () => {
          const app = (window as any).jupyterapp;
          await app.commands.execute('infinstor:refresh-status');
          if (app.commands.isEnabled('infinstor:sign-out')) {
            await app.commands.execute('infinstor:sign-out');
            await app.commands.execute('infinstor:refresh-status');
          }
          return [
            app.commands.isEnabled('infinstor:sign-in'),
            app.commands.isEnabled('infinstor:sign-out')
          ];
        }),
      { timeout: 30 * 1000 }
    )
    .toEqual([true, false]);
}

// -- signing in at the identity provider, in the lab's popup ------------------------------------

/**
 * Open the sidebar (on the remote tracking `service`) and sign in from its button, in the IdP's
 * popup, as `username` (signed out first, whatever an earlier test left). Returns the sidebar.
 */
export async function signedInSidebar(page: Page, username: string, service: string): Promise<Locator> {
  await page.evaluate(() => (window as any).jupyterapp.commands.execute('infinstor:open-sidebar'));
  const panel = page.locator(`#${SIDEBAR_ID}`);
  await expect(panel).toBeVisible();
  await expectRemoteTracking(page, service);
  await ensureSignedOut(page);
  const signInButton = page.getByTestId('infinstor-sign-in');
  await expect(signInButton).toHaveText('Sign in');
  const popup = await openIdpLogin(page, () => signInButton.click());
  await submitIdpLogin(popup, username);
  await expectSignedInAs(page, username);
  return panel;
}

/**
 * Start a sign-in with `start` (the sidebar's button, or the command) and return the popup it
 * opens, once that shows the identity provider's login form.
 */
export async function openIdpLogin(page: Page, start: () => Promise<unknown>): Promise<Page> {
  const popupPromise = page.waitForEvent('popup');
  await start();
  const popup = await popupPromise;
  await expect(popup.locator('form#login-form')).toBeVisible({ timeout: 30 * 1000 });
  return popup;
}

/**
 * Log in as `username` on the identity provider's page in `popup`, check that the lab's
 * callback page confirms it, and wait for that page to close itself (closing it if it did not).
 * Returns the callback page's URL, read while it was still open.
 */
export async function submitIdpLogin(popup: Page, username: string): Promise<string> {
  await popup.locator('input[name="username"]').fill(username);
  await popup.locator('input[name="password"]').fill(IDP.idpPassword);
  const closed = popup.waitForEvent('close', { timeout: 30 * 1000 }).catch(() => null);
  await popup.locator('#login-form button[type="submit"]').click();
  await expect(popup.locator('#infinstor-signin-message')).toHaveText(
    `Signed in as ${DISPLAY_NAMES[username]} (${username}) — you can close this window.`
  );
  const callbackURL = popup.url();
  await closed;
  if (!popup.isClosed()) {
    await popup.close();
  }
  return callbackURL;
}

/**
 * After a sign-in: the sidebar shows `username` by the display name the IdP gives (within
 * `timeout`, when a spec means to check how soon).
 */
export async function expectSignedInAs(
  page: Page,
  username: string,
  { timeout }: { timeout?: number } = {}
): Promise<void> {
  await expect(page.getByTestId('infinstor-user')).toHaveText(DISPLAY_NAMES[username], {
    timeout
  });
  await expect(page.getByTestId('infinstor-user-name')).toHaveText(`(${username})`);
}

// -- tokens straight from the identity provider (no lab involved) -------------------------------

const AUDIENCE = 'urn:infinstor:tracking';
const CLIENT_ID = 'infinstor-lab';
// A loopback redirect URI of the lab client; nothing listens there: the code is read from the
// IdP's redirect, never followed.
const REDIRECT_URI = 'http://127.0.0.1/infinstor/api/auth/callback';

/**
 * An access token for `username` from a real sign-in at the IdP (authorization code + PKCE),
 * driven over HTTP with a fresh cookie jar (so it never touches the lab's sign-in): for asking
 * the tracking service directly, as that user.
 */
export async function idpAccessToken(username: string): Promise<string> {
  const http = await playwrightRequest.newContext();
  try {
    const discovery = await (
      await http.get(`${IDP.issuer}/.well-known/openid-configuration`)
    ).json();
    const verifier = crypto.randomBytes(48).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const state = crypto.randomBytes(16).toString('base64url');
    const query = new URLSearchParams({
      client_id: CLIENT_ID,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile email groups org',
      state,
      resource: AUDIENCE,
      code_challenge: challenge,
      code_challenge_method: 'S256'
    });
    let url = `${discovery.authorization_endpoint}?${query}`;
    let response = await http.get(url, { maxRedirects: 0 });
    for (let step = 0; step < 20; step++) {
      const location = response.headers()['location'];
      if (response.status() >= 300 && response.status() < 400 && location) {
        url = new URL(location, url).toString();
        if (url.startsWith(REDIRECT_URI)) {
          const back = new URL(url).searchParams;
          expect(back.get('state')).toBe(state);
          expect(back.get('error'), back.get('error_description') ?? '').toBeNull();
          const token = await http.post(discovery.token_endpoint, {
            form: {
              grant_type: 'authorization_code',
              code: back.get('code')!,
              redirect_uri: REDIRECT_URI,
              client_id: CLIENT_ID,
              code_verifier: verifier,
              resource: AUDIENCE
            }
          });
          expect(token.status(), await token.text()).toBe(200);
          return (await token.json()).access_token;
        }
        response = await http.get(url, { maxRedirects: 0 });
        continue;
      }
      const html = await response.text();
      const action = html.match(/<form id="login-form" method="post" action="([^"]+)"/);
      expect(action, `the IdP's login page (HTTP ${response.status()}): ${html}`).not.toBeNull();
      url = new URL(action![1], url).toString();
      response = await http.post(url, {
        form: { username, password: IDP.idpPassword },
        maxRedirects: 0
      });
    }
    throw new Error(`signing in ${username} at the IdP took too many steps`);
  } finally {
    await http.dispose();
  }
}

// -- the report ---------------------------------------------------------------------------------

/** Screenshot `target` into the test's output folder and attach it to the report as `name`. */
export async function attachScreenshot(
  target: Locator,
  testInfo: TestInfo,
  name: string
): Promise<void> {
  const body = await target.screenshot({
    path: testInfo.outputPath(`${name}.png`),
    animations: 'disabled'
  });
  await testInfo.attach(name, { body, contentType: 'image/png' });
}
