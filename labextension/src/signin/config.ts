/**
 * The identity provider from the lab's settings (`oidcIssuer`, `oidcClientId`).
 *
 * The server's configuration wins: when it names a provider (`auth.source ===
 * 'server'`) the settings are ignored. Otherwise, with a remote tracking
 * service, the settings are sent to `PUT infinstor/api/auth/config`, which
 * checks the provider before using it. The server keeps them in memory only,
 * so they are sent again whenever a (restarted) server does not have them.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from '../common/request';
import { StatusModel } from '../status/model';
import { IStatus } from '../status/status';

/**
 * The sign-in part of the lab's settings.
 */
export interface ISignInSettings {
  issuer: string;
  clientId: string;
}

const normalIssuer = (issuer: string) => issuer.trim().replace(/\/+$/, '');

/**
 * What to send to the server for these settings, or `null` when nothing needs
 * sending (no status yet, the embedded service, a provider set by the server,
 * or the server already uses exactly these settings).
 */
export function signInConfigUpdate(
  status: IStatus | null | undefined,
  settings: ISignInSettings
): { issuer: string; client_id: string } | null {
  if (!status || status.tracking.mode !== 'remote' || !status.auth) {
    return null;
  }
  const auth = status.auth;
  if (auth.source === 'server') {
    return null;
  }
  const issuer = normalIssuer(settings.issuer);
  const clientId = settings.clientId.trim();
  const current =
    auth.source === 'settings'
      ? { issuer: normalIssuer(auth.issuer), client_id: auth.client_id }
      : { issuer: '', client_id: '' };
  if (current.issuer === issuer && current.client_id === clientId) {
    return null;
  }
  return { issuer, client_id: clientId };
}

/**
 * Keeps the server's sign-in provider in step with the lab's settings.
 */
export class SignInConfigSync {
  constructor(options: SignInConfigSync.IOptions) {
    this._model = options.model;
    this._send =
      options.send ??
      (body =>
        requestAPI<unknown>('auth/config', {
          method: 'PUT',
          body: JSON.stringify(body)
        }));
    this._model.changed.connect(this._sync, this);
  }

  /**
   * Emitted with the server's message when it refuses the settings.
   */
  get failed(): ISignal<this, string> {
    return this._failed;
  }

  /**
   * The settings in force in the lab.
   */
  set settings(value: ISignInSettings) {
    this._settings = { issuer: value.issuer ?? '', clientId: value.clientId ?? '' };
    this._refused = null;
    void this._sync();
  }

  dispose(): void {
    this._model.changed.disconnect(this._sync, this);
    Signal.clearData(this);
  }

  private async _sync(): Promise<void> {
    if (this._settings === null || this._pending) {
      return;
    }
    const update = signInConfigUpdate(this._model.status, this._settings);
    const key = update ? `${update.issuer}\n${update.client_id}` : null;
    // Do not resend settings the server refused until they change.
    if (update === null || key === this._refused) {
      return;
    }
    this._pending = true;
    try {
      await this._send(update);
      await this._model.refresh();
    } catch (reason) {
      this._refused = key;
      const message = reason instanceof Error ? reason.message : String(reason);
      this._failed.emit(message);
    } finally {
      this._pending = false;
    }
  }

  private _failed = new Signal<this, string>(this);
  private _model: StatusModel;
  private _pending = false;
  private _refused: string | null = null;
  private _send: (body: { issuer: string; client_id: string }) => Promise<unknown>;
  private _settings: ISignInSettings | null = null;
}

export namespace SignInConfigSync {
  export interface IOptions {
    model: StatusModel;
    /** Defaults to `PUT infinstor/api/auth/config`. */
    send?: (body: { issuer: string; client_id: string }) => Promise<unknown>;
  }
}
