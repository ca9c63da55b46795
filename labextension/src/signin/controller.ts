/**
 * Signing in to the remote tracking service from the lab.
 *
 * The sidebar opens `<baseUrl>infinstor/api/auth/login` in a popup window. The
 * server keeps `state`, the PKCE verifier and the nonce, redirects the popup to
 * the identity provider, and renders "Signed in as X" on its callback page,
 * which posts `{type: 'infinstor:signed-in'}` to its opener (this page) and
 * closes. The browser never sees a token: the lab only re-reads
 * `GET infinstor/api/status`, which says who is signed in.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from '../common/request';
import { StatusModel } from '../status/model';
import { IStatus } from '../status/status';

/**
 * The `type` of the message the sign-in callback page posts to the lab.
 */
export const SIGNED_IN_MESSAGE = 'infinstor:signed-in';

/**
 * Name of the sign-in popup window (a second click reuses it).
 */
export const SIGN_IN_WINDOW_NAME = 'infinstor-signin';

/**
 * Features of the sign-in popup window.
 */
export const SIGN_IN_WINDOW_FEATURES = 'popup,width=520,height=720';

/**
 * How often to check whether the user closed the sign-in window, in ms.
 */
export const POPUP_CLOSED_POLL_INTERVAL = 500;

/**
 * Give up waiting for a sign-in after this long (the server forgets it after 10 minutes).
 */
export const SIGN_IN_TIMEOUT = 10 * 60 * 1000;

/**
 * Who the user is as far as signing in goes.
 *
 * - `unknown`: no status yet;
 * - `local`: no identity provider configured (embedded mode): work is done as the local user;
 * - `signed-out`: an identity provider is configured and nobody is signed in;
 * - `signed-in`: someone is signed in.
 */
export type SignInPhase = 'unknown' | 'local' | 'signed-out' | 'signed-in';

/**
 * What the user section shows and which actions are available.
 */
export interface ISignInState {
  phase: SignInPhase;
  canSignIn: boolean;
  canSignOut: boolean;
}

/**
 * Derive the sign-in state from a status payload.
 */
export function signInState(status: IStatus | null | undefined): ISignInState {
  if (!status) {
    return { phase: 'unknown', canSignIn: false, canSignOut: false };
  }
  if (status.user.signed_in) {
    // Also when the credential came from `infinstor login --token` without an identity provider.
    return { phase: 'signed-in', canSignIn: false, canSignOut: true };
  }
  if (status.auth?.configured) {
    return { phase: 'signed-out', canSignIn: true, canSignOut: false };
  }
  return { phase: 'local', canSignIn: false, canSignOut: false };
}

/**
 * "Alice Liddell (alice)", or just the name when there is no other display name.
 */
export function signedInLabel(user: IStatus['user']): string {
  const name = (user.name || '').trim();
  const display = (user.display_name || '').trim();
  if (display && name && display !== name) {
    return `${display} (${name})`;
  }
  return display || name;
}

/**
 * Email, organisation and groups of a signed-in user, in one compact line
 * (`alice@acme.example · acme · vision, nlp`); empty parts are left out.
 */
export function userDetails(user: IStatus['user']): string {
  const parts: string[] = [];
  if (user.email) {
    parts.push(user.email);
  }
  if (user.org) {
    parts.push(user.org);
  }
  if (user.groups && user.groups.length) {
    parts.push(user.groups.join(', '));
  }
  return parts.join(' · ');
}

/**
 * Whether a `message` event is the sign-in callback's notice: it must come from
 * `expectedOrigin` (the lab's own origin; any other page may post messages to
 * this window) and carry `{type: 'infinstor:signed-in'}`.
 */
export function isSignedInMessage(
  event: Pick<MessageEvent, 'origin' | 'data'>,
  expectedOrigin: string
): boolean {
  if (!expectedOrigin || event.origin !== expectedOrigin) {
    return false;
  }
  const data = event.data;
  return (
    typeof data === 'object' &&
    data !== null &&
    (data as { type?: unknown }).type === SIGNED_IN_MESSAGE
  );
}

/**
 * The URL that starts a sign-in (the server redirects it to the identity provider).
 */
export function loginUrl(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(settings.baseUrl, 'infinstor', 'api', 'auth', 'login');
}

/**
 * Sign out: the server revokes and deletes the tokens.
 */
export async function signOutRequest(): Promise<unknown> {
  return requestAPI<unknown>('auth/logout', { method: 'POST', body: '{}' });
}

/**
 * The browser window the controller works with (a subset, for tests).
 */
export interface ISignInWindow {
  location: { origin: string };
  open(url: string, target?: string, features?: string): Window | null;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  setInterval(handler: () => void, timeout: number): number;
  clearInterval(id: number | undefined): void;
  setTimeout(handler: () => void, timeout: number): number;
  clearTimeout(id: number | undefined): void;
}

/**
 * Runs sign-in and sign-out for the sidebar and the commands, and keeps the
 * state they show (busy, the last error, a link when popups are blocked).
 */
export class SignInController implements IDisposable {
  constructor(options: SignInController.IOptions) {
    this._model = options.model;
    this._window = options.window ?? (window as unknown as ISignInWindow);
    this._loginUrl = options.loginUrl ?? (() => loginUrl());
    this._signOut = options.signOut ?? signOutRequest;
  }

  /**
   * Emitted when `busy`, `error` or `blockedUrl` change.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * The action under way, or `null`.
   */
  get busy(): 'sign-in' | 'sign-out' | null {
    return this._busy;
  }

  /**
   * The error of the last action, or `null`.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * The sign-in URL when the browser blocked both the popup and a new tab
   * (the sidebar shows it as a link the user can open).
   */
  get blockedUrl(): string | null {
    return this._blockedUrl;
  }

  /**
   * The state derived from the model's status.
   */
  get state(): ISignInState {
    return signInState(this._model.status);
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Open the sign-in window (or bring back the one already open) and wait for
   * it to report success or to be closed; then refresh the status.
   */
  signIn(): void {
    if (this._isDisposed) {
      return;
    }
    if (this._popup && !this._popup.closed) {
      this._popup.focus();
      return;
    }
    this._stopWaiting();
    this._error = null;
    this._blockedUrl = null;
    const url = this._loginUrl();
    let popup: Window | null = null;
    try {
      popup =
        this._window.open(url, SIGN_IN_WINDOW_NAME, SIGN_IN_WINDOW_FEATURES) ??
        // A blocked popup: try a new tab (it keeps `opener`, so the notice still arrives).
        this._window.open(url, '_blank');
    } catch (reason) {
      popup = null;
    }
    if (!popup) {
      this._blockedUrl = url;
      this._error =
        'The browser blocked the sign-in window. Allow pop-ups for this site, ' +
        'or open the sign-in page with the link below.';
    } else {
      this._popup = popup;
      // Only the popup can be watched for closing; a tab opened by the user from
      // the link still reports back with its message.
      this._closedTimer = this._window.setInterval(() => {
        if (!this._popup || this._popup.closed) {
          this._finish();
        }
      }, POPUP_CLOSED_POLL_INTERVAL);
    }
    this._listen();
    this._busy = popup ? 'sign-in' : null;
    this._changed.emit();
  }

  /**
   * Sign out on the server, then refresh the status.
   */
  async signOut(): Promise<void> {
    if (this._isDisposed || this._busy === 'sign-out') {
      return;
    }
    this._busy = 'sign-out';
    this._error = null;
    this._blockedUrl = null;
    this._changed.emit();
    try {
      await this._signOut();
    } catch (reason) {
      this._error = `Could not sign out: ${
        reason instanceof Error ? reason.message : String(reason)
      }`;
    }
    try {
      await this._model.refresh();
    } finally {
      this._busy = null;
      this._changed.emit();
    }
  }

  /**
   * Forget the last error (and the blocked-popup link).
   */
  clearError(): void {
    if (this._error !== null || this._blockedUrl !== null) {
      this._error = null;
      this._blockedUrl = null;
      this._changed.emit();
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._stopWaiting();
    Signal.clearData(this);
  }

  private _listen(): void {
    if (this._listening) {
      return;
    }
    this._listening = true;
    this._window.addEventListener('message', this._onMessage);
    this._timeout = this._window.setTimeout(() => this._finish(), SIGN_IN_TIMEOUT);
  }

  private _onMessage = (event: MessageEvent): void => {
    if (!isSignedInMessage(event, this._window.location.origin)) {
      return;
    }
    this._finish();
  };

  private _stopWaiting(): void {
    if (this._listening) {
      this._window.removeEventListener('message', this._onMessage);
      this._listening = false;
    }
    this._window.clearInterval(this._closedTimer);
    this._window.clearTimeout(this._timeout);
    this._closedTimer = undefined;
    this._timeout = undefined;
    this._popup = null;
  }

  private _finish(): void {
    if (this._isDisposed) {
      return;
    }
    this._stopWaiting();
    const wasBlocked = this._blockedUrl !== null;
    this._busy = null;
    this._changed.emit();
    void this._model.refresh().then(() => {
      if (wasBlocked && this._model.status?.user.signed_in) {
        this.clearError();
      }
    });
  }

  private _blockedUrl: string | null = null;
  private _busy: 'sign-in' | 'sign-out' | null = null;
  private _changed = new Signal<this, void>(this);
  private _closedTimer: number | undefined = undefined;
  private _error: string | null = null;
  private _isDisposed = false;
  private _listening = false;
  private _loginUrl: () => string;
  private _model: StatusModel;
  private _popup: Window | null = null;
  private _signOut: () => Promise<unknown>;
  private _timeout: number | undefined = undefined;
  private _window: ISignInWindow;
}

export namespace SignInController {
  export interface IOptions {
    model: StatusModel;
    /** Defaults to the global `window`. */
    window?: ISignInWindow;
    /** Defaults to `<baseUrl>infinstor/api/auth/login`. */
    loginUrl?: () => string;
    /** Defaults to `POST infinstor/api/auth/logout`. */
    signOut?: () => Promise<unknown>;
  }
}
