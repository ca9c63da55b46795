import { nullTranslator } from '@jupyterlab/translation';
import React from 'react';
import { act } from 'react';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';

import { StatusModel } from '../../status/model';
import {
  isSignedInMessage,
  ISignInWindow,
  POPUP_CLOSED_POLL_INTERVAL,
  SIGN_IN_WINDOW_NAME,
  signedInLabel,
  SignInController,
  signInState,
  userDetails
} from '../controller';
import { IStatus, parseStatus } from '../../status/status';
import { UserSection } from '../UserSection';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const trans = nullTranslator.load('infinstor_jupyterlab');
const ORIGIN = 'http://127.0.0.1:8889';
const LOGIN = `${ORIGIN}/infinstor/api/auth/login`;

const ALICE = {
  signed_in: true,
  name: 'alice',
  display_name: 'Alice Liddell',
  email: 'alice@acme.example',
  groups: ['vision'],
  org: 'acme'
};
const NOBODY = { signed_in: false, name: 'local', display_name: 'local' };
const OIDC = {
  configured: true,
  issuer: 'http://127.0.0.1:8999',
  client_id: 'infinstor-lab',
  service: 'http://127.0.0.1:5999'
};
const NO_AUTH = { configured: false, issuer: null };

function status(user: object, auth: object | undefined): IStatus {
  return parseStatus({
    version: '0.1.0',
    tracking: { mode: 'remote', state: 'running', uri: OIDC.service },
    user,
    ...(auth ? { auth } : {})
  });
}

describe('signInState', () => {
  it('offers nothing before the first status', () => {
    expect(signInState(null)).toEqual({ phase: 'unknown', canSignIn: false, canSignOut: false });
  });

  it('keeps "local" without an identity provider (embedded mode, old servers)', () => {
    expect(signInState(status(NOBODY, NO_AUTH))).toEqual({
      phase: 'local',
      canSignIn: false,
      canSignOut: false
    });
    expect(signInState(status(NOBODY, undefined)).phase).toBe('local');
  });

  it('offers Sign in when configured and nobody is signed in', () => {
    expect(signInState(status(NOBODY, OIDC))).toEqual({
      phase: 'signed-out',
      canSignIn: true,
      canSignOut: false
    });
  });

  it('offers Sign out when signed in (also with an API token and no provider)', () => {
    expect(signInState(status(ALICE, OIDC))).toEqual({
      phase: 'signed-in',
      canSignIn: false,
      canSignOut: true
    });
    expect(signInState(status(ALICE, NO_AUTH)).canSignOut).toBe(true);
  });
});

describe('labels', () => {
  it('shows the display name and the user name', () => {
    expect(signedInLabel(ALICE)).toBe('Alice Liddell (alice)');
    expect(signedInLabel({ ...ALICE, display_name: 'alice' })).toBe('alice');
    expect(signedInLabel({ ...ALICE, display_name: '' })).toBe('alice');
  });

  it('puts email, org and groups in one line, leaving out empty parts', () => {
    expect(userDetails(ALICE)).toBe('alice@acme.example · acme · vision');
    expect(userDetails({ ...ALICE, groups: ['a', 'b'], org: '' })).toBe(
      'alice@acme.example · a, b'
    );
    expect(userDetails({ ...ALICE, email: '', groups: [], org: '' })).toBe('');
  });
});

describe('isSignedInMessage', () => {
  const data = { type: 'infinstor:signed-in' };

  it('accepts the notice from the lab origin', () => {
    expect(isSignedInMessage({ origin: ORIGIN, data }, ORIGIN)).toBe(true);
  });

  it.each([
    ['another origin', { origin: 'http://evil.example', data }],
    ['another port', { origin: 'http://127.0.0.1:8888', data }],
    ['the opaque origin of a sandboxed page', { origin: 'null', data }],
    ['a look-alike origin', { origin: `${ORIGIN}.evil.example`, data }],
    ['another message type', { origin: ORIGIN, data: { type: 'other' } }],
    ['a string', { origin: ORIGIN, data: 'infinstor:signed-in' }],
    ['no data', { origin: ORIGIN, data: null }]
  ])('refuses %s', (_, event) => {
    expect(isSignedInMessage(event, ORIGIN)).toBe(false);
  });

  it('refuses everything when the expected origin is empty', () => {
    expect(isSignedInMessage({ origin: '', data }, '')).toBe(false);
  });
});

/**
 * A fake browser window with manual timers and message dispatch.
 */
class FakeWindow implements ISignInWindow {
  location = { origin: ORIGIN };
  opened: Array<{ url: string; target?: string; features?: string }> = [];
  popup: { closed: boolean; focus: jest.Mock } | null = { closed: false, focus: jest.fn() };
  blockPopup = false;
  blockTab = false;
  listeners = new Set<(event: MessageEvent) => void>();
  intervals = new Map<number, () => void>();
  timeouts = new Map<number, () => void>();
  private nextId = 1;

  open(url: string, target?: string, features?: string): Window | null {
    this.opened.push({ url, target, features });
    const blocked = target === '_blank' ? this.blockTab : this.blockPopup;
    return blocked ? null : (this.popup as unknown as Window);
  }
  addEventListener(_: 'message', listener: (event: MessageEvent) => void): void {
    this.listeners.add(listener);
  }
  removeEventListener(_: 'message', listener: (event: MessageEvent) => void): void {
    this.listeners.delete(listener);
  }
  setInterval(handler: () => void): number {
    const id = this.nextId++;
    this.intervals.set(id, handler);
    return id;
  }
  clearInterval(id: number | undefined): void {
    this.intervals.delete(id as number);
  }
  setTimeout(handler: () => void): number {
    const id = this.nextId++;
    this.timeouts.set(id, handler);
    return id;
  }
  clearTimeout(id: number | undefined): void {
    this.timeouts.delete(id as number);
  }
  post(origin: string, data: unknown): void {
    for (const listener of [...this.listeners]) {
      listener({ origin, data } as MessageEvent);
    }
  }
  tick(): void {
    for (const handler of [...this.intervals.values()]) {
      handler();
    }
  }
}

async function flush(): Promise<void> {
  // The model's poll runs a refresh on its own schedule: let it.
  await new Promise(resolve => setTimeout(resolve, 20));
}

describe('SignInController', () => {
  let win: FakeWindow;
  let current: IStatus;
  let fetches: number;
  let model: StatusModel;
  let controller: SignInController;
  let signOut: jest.Mock;

  beforeEach(async () => {
    win = new FakeWindow();
    current = status(NOBODY, OIDC);
    fetches = 0;
    model = new StatusModel({
      autoStart: false,
      fetchStatus: () => {
        fetches++;
        return Promise.resolve(current);
      }
    });
    await model.refresh();
    fetches = 0;
    signOut = jest.fn(() => {
      current = status(NOBODY, OIDC);
      return Promise.resolve({});
    });
    controller = new SignInController({ model, window: win, loginUrl: () => LOGIN, signOut });
  });

  afterEach(() => {
    controller.dispose();
    model.dispose();
  });

  it('opens the login URL in a popup and refreshes on the notice from its own origin only', async () => {
    controller.signIn();
    expect(win.opened).toEqual([
      { url: LOGIN, target: SIGN_IN_WINDOW_NAME, features: expect.stringContaining('popup') }
    ]);
    expect(controller.busy).toBe('sign-in');
    expect(win.listeners.size).toBe(1);

    current = status(ALICE, OIDC);
    win.post('http://evil.example', { type: 'infinstor:signed-in' });
    win.post(ORIGIN, { type: 'something-else' });
    await flush();
    expect(fetches).toBe(0);
    expect(controller.busy).toBe('sign-in');

    win.post(ORIGIN, { type: 'infinstor:signed-in' });
    await model.poll.tick;
    await flush();
    expect(fetches).toBe(1);
    expect(controller.busy).toBeNull();
    expect(model.status?.user.name).toBe('alice');
    // It stops listening and watching.
    expect(win.listeners.size).toBe(0);
    expect(win.intervals.size).toBe(0);
    expect(win.timeouts.size).toBe(0);
  });

  it('refreshes when the user closes the popup', async () => {
    controller.signIn();
    win.tick();
    expect(fetches).toBe(0);
    win.popup!.closed = true;
    win.tick();
    await flush();
    expect(fetches).toBe(1);
    expect(controller.busy).toBeNull();
    expect(win.listeners.size).toBe(0);
    expect(win.intervals.size).toBe(0);
  });

  it('focuses the open popup instead of opening a second one', () => {
    controller.signIn();
    controller.signIn();
    expect(win.opened).toHaveLength(1);
    expect(win.popup!.focus).toHaveBeenCalled();
  });

  it('falls back to a new tab when the popup is blocked', () => {
    win.blockPopup = true;
    controller.signIn();
    expect(win.opened.map(o => o.target)).toEqual([SIGN_IN_WINDOW_NAME, '_blank']);
    expect(controller.error).toBeNull();
    expect(controller.busy).toBe('sign-in');
  });

  it('shows an error with a link when both are blocked, and still takes the notice', async () => {
    win.blockPopup = true;
    win.blockTab = true;
    controller.signIn();
    expect(controller.busy).toBeNull();
    expect(controller.error).toMatch(/blocked the sign-in window/);
    expect(controller.blockedUrl).toBe(LOGIN);
    current = status(ALICE, OIDC);
    win.post(ORIGIN, { type: 'infinstor:signed-in' });
    await model.poll.tick;
    await flush();
    expect(model.status?.user.signed_in).toBe(true);
    expect(controller.error).toBeNull();
    expect(controller.blockedUrl).toBeNull();
  });

  it('signs out, then refreshes', async () => {
    current = status(ALICE, OIDC);
    await model.refresh();
    fetches = 0;
    const done = controller.signOut();
    expect(controller.busy).toBe('sign-out');
    await done;
    expect(signOut).toHaveBeenCalledTimes(1);
    expect(fetches).toBe(1);
    expect(controller.busy).toBeNull();
    expect(controller.state.phase).toBe('signed-out');
  });

  it('reports a failed sign-out', async () => {
    signOut.mockImplementation(() => Promise.reject(new Error('server said no')));
    await controller.signOut();
    expect(controller.error).toBe('Could not sign out: server said no');
    expect(controller.busy).toBeNull();
  });
});

describe('UserSection', () => {
  let container: HTMLDivElement;
  let root: Root;
  let model: StatusModel;
  let controller: SignInController;

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
  });

  afterEach(() => {
    unmountReactRoot(container, root);
    controller?.dispose();
    model?.dispose();
  });

  function render(answer: IStatus) {
    model = new StatusModel({ autoStart: false, fetchStatus: () => Promise.resolve(answer) });
    controller = new SignInController({
      model,
      window: new FakeWindow(),
      loginUrl: () => LOGIN,
      signOut: () => Promise.resolve({})
    });
    act(() => root.render(<UserSection status={answer} trans={trans} signIn={controller} />));
  }

  const byTestId = (id: string) => container.querySelector(`[data-testid="${id}"]`);

  it('keeps "local" and no buttons without an identity provider', () => {
    render(status(NOBODY, NO_AUTH));
    expect(byTestId('infinstor-user')?.textContent).toBe('local');
    expect(byTestId('infinstor-sign-in')).toBeNull();
    expect(byTestId('infinstor-sign-out')).toBeNull();
  });

  it('shows Sign in when signed out', () => {
    render(status(NOBODY, OIDC));
    expect(container.textContent).toContain('not signed in');
    expect(byTestId('infinstor-sign-in')?.textContent).toBe('Sign in');
    expect(byTestId('infinstor-sign-out')).toBeNull();
    act(() => (byTestId('infinstor-sign-in') as HTMLButtonElement).click());
    expect(byTestId('infinstor-sign-in')?.textContent).toMatch(/Signing in/);
  });

  it('shows who is signed in, compact details, and Sign out', () => {
    render(status(ALICE, OIDC));
    expect(container.textContent).toContain('Signed in as');
    expect(byTestId('infinstor-user')?.textContent).toBe('Alice Liddell');
    expect(byTestId('infinstor-user-name')?.textContent).toContain('(alice)');
    expect(byTestId('infinstor-user-details')?.textContent).toBe(
      'alice@acme.example · acme · vision'
    );
    expect(byTestId('infinstor-sign-in')).toBeNull();
    expect(byTestId('infinstor-sign-out')?.textContent).toBe('Sign out');
  });

  it('shows the error and the link when the sign-in window was blocked', () => {
    render(status(NOBODY, OIDC));
    const win = new FakeWindow();
    win.blockPopup = true;
    win.blockTab = true;
    controller.dispose();
    controller = new SignInController({ model, window: win, loginUrl: () => LOGIN });
    act(() => root.render(<UserSection status={status(NOBODY, OIDC)} trans={trans} signIn={controller} />));
    act(() => controller.signIn());
    expect(byTestId('infinstor-sign-in-error')?.textContent).toMatch(/blocked/);
    const link = byTestId('infinstor-sign-in-link') as HTMLAnchorElement;
    expect(link.href).toBe(LOGIN);
    expect(link.rel).toBe('opener');
  });
});
