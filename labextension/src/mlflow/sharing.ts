/**
 * Sharing on the company tracking service (`api/2.0/infinstor/permissions` and
 * `api/2.0/infinstor/whoami`, through the lab's MLflow proxy): typed calls, the
 * "is sharing supported here" check, and the state of one Share dialog. No DOM
 * here; `views/share.tsx` renders it.
 *
 * The service decides who may do what: anyone with a role may list, managers
 * may grant, change and revoke. Its refusals are kept (with its own message)
 * for the dialog to show inline; nothing is guessed on this side.
 */
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { InfinStorRequestError } from '../common/request';
import { IMlflowClient } from '../tokens';

export type ResourceType = 'experiment' | 'registered_model';
export type PrincipalType = 'user' | 'group' | 'org';
export type Role = 'reader' | 'editor' | 'manager';

export const ROLES: readonly Role[] = ['reader', 'editor', 'manager'];
export const PRINCIPAL_TYPES: readonly PrincipalType[] = ['user', 'group', 'org'];

export const PERMISSIONS_PATH = 'api/2.0/infinstor/permissions';
export const WHOAMI_PATH = 'api/2.0/infinstor/whoami';

/** Longest principal name the dialog sends (the service stores up to 255 characters). */
export const MAX_PRINCIPAL_LENGTH = 255;

/** One grant, as `GET permissions` lists it. */
export interface IPermission {
  principal_type: PrincipalType;
  principal: string;
  role: Role;
  granted_by: string;
  /** When, in milliseconds since the epoch (the service's unit), or null when it did not say. */
  granted_at: number | null;
}

/** The caller, as `GET whoami` describes them. */
export interface IWhoAmI {
  username: string;
  org: string;
  groups: string[];
  email: string;
  admin: boolean;
  auth: string;
}

/** What a Share dialog is about. */
export interface IShareTarget {
  type: ResourceType;
  /** Experiment id, or registered model name. */
  id: string;
  /** For display. */
  name: string;
}

export function principalTypeLabel(type: PrincipalType, trans?: TranslationBundle): string {
  const t = trans ?? nullTranslator.load('infinstor_jupyterlab');
  return type === 'user' ? t.__('User') : type === 'group' ? t.__('Group') : t.__('Organisation');
}

export function resourceLabel(type: ResourceType): string {
  return type === 'experiment' ? 'experiment' : 'model';
}

/**
 * Typed calls to the service's sharing API. Every failure is an
 * {@link InfinStorRequestError} carrying the service's message.
 */
export class SharingClient {
  constructor(readonly client: IMlflowClient) {}

  async whoami(): Promise<IWhoAmI> {
    const data = await this.client.json<Partial<IWhoAmI>>('GET', WHOAMI_PATH);
    return {
      username: String(data.username ?? ''),
      org: String(data.org ?? ''),
      groups: Array.isArray(data.groups) ? data.groups.map(String) : [],
      email: String(data.email ?? ''),
      admin: data.admin === true,
      auth: String(data.auth ?? '')
    };
  }

  async list(target: IShareTarget): Promise<IPermission[]> {
    const data = await this.client.json<{ permissions?: any[] }>('GET', PERMISSIONS_PATH, undefined, {
      resource_type: target.type,
      resource_id: target.id
    });
    return (data.permissions ?? []).map(normalizePermission);
  }

  async grant(target: IShareTarget, principalType: PrincipalType, principal: string, role: Role): Promise<void> {
    await this.client.json('POST', PERMISSIONS_PATH, {
      resource_type: target.type,
      resource_id: target.id,
      principal_type: principalType,
      principal,
      role
    });
  }

  async revoke(target: IShareTarget, principalType: PrincipalType, principal: string): Promise<void> {
    await this.client.json('DELETE', PERMISSIONS_PATH, {
      resource_type: target.type,
      resource_id: target.id,
      principal_type: principalType,
      principal
    });
  }
}

function normalizePermission(raw: any): IPermission {
  return {
    principal_type: raw?.principal_type,
    principal: String(raw?.principal ?? ''),
    role: raw?.role,
    granted_by: String(raw?.granted_by ?? ''),
    granted_at: grantedAt(raw?.granted_at)
  };
}

/** Milliseconds since the epoch (also from a numeric or ISO 8601 string), or null. */
export function grantedAt(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value > 0 ? value : null;
  }
  if (typeof value !== 'string' || !value.trim()) {
    return null;
  }
  const ms = /^\d+$/.test(value.trim()) ? Number(value) : Date.parse(value);
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}

/** Organisation first, then groups, then users; by name within each. */
export function comparePermissions(a: IPermission, b: IPermission): number {
  const rank = (t: string) => ['org', 'group', 'user'].indexOf(t);
  return rank(a.principal_type) - rank(b.principal_type) || a.principal.localeCompare(b.principal);
}

/**
 * Check what the dialog is about to send; returns the problem, or null when it may be sent.
 * For the organisation the name is the caller's own (the only one the service accepts).
 */
export function validateGrant(principalType: string, principal: string, role: string): string | null {
  if (!(PRINCIPAL_TYPES as readonly string[]).includes(principalType)) {
    return 'Choose a user, a group or the organisation.';
  }
  if (!(ROLES as readonly string[]).includes(role)) {
    return 'Choose a role: reader, editor or manager.';
  }
  const name = principal.trim();
  if (!name) {
    return principalType === 'org'
      ? 'Your organisation is not known yet; close the dialog and try again.'
      : `Enter the ${principalType === 'user' ? 'user name' : 'group name'}.`;
  }
  if (name.length > MAX_PRINCIPAL_LENGTH) {
    return `Names are at most ${MAX_PRINCIPAL_LENGTH} characters.`;
  }
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    return 'Names cannot contain control characters.';
  }
  return null;
}

// -- whether the service shares -------------------------------------------------------------------

export type SharingState = 'unknown' | 'checking' | 'supported' | 'unsupported';

/**
 * Whether the tracking service supports sharing: `GET whoami` through the proxy
 * answers 200 (the company service) or not (MLflow without it, the embedded
 * service, signed out...). Checked once per key (the plugin derives the key from
 * the status: service, state and signed-in user), so polls do not repeat it.
 */
export class SharingSupport {
  constructor(readonly sharing: SharingClient) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }
  get state(): SharingState {
    return this._state;
  }
  get supported(): boolean {
    return this._state === 'supported';
  }
  /** The caller, when supported. */
  get whoami(): IWhoAmI | null {
    return this._whoami;
  }
  get key(): string | null {
    return this._key;
  }

  /**
   * Check again if `key` differs from the last one checked; `key === null`
   * means "not now" (e.g. the service is not running): hidden until a key comes.
   */
  async update(key: string | null): Promise<void> {
    if (key === this._key) {
      return;
    }
    this._key = key;
    const seq = ++this._seq;
    if (key === null) {
      this._set('unknown', null);
      return;
    }
    this._set('checking', this._whoami);
    let whoami: IWhoAmI | null = null;
    try {
      whoami = await this.sharing.whoami();
    } catch (error) {
      if (!(error instanceof InfinStorRequestError)) {
        throw error;
      }
    }
    if (seq !== this._seq) {
      return;
    }
    this._set(whoami && whoami.username ? 'supported' : 'unsupported', whoami);
  }

  private _set(state: SharingState, whoami: IWhoAmI | null): void {
    this._state = state;
    this._whoami = state === 'supported' ? whoami : null;
    this._changed.emit();
  }

  private _state: SharingState = 'unknown';
  private _whoami: IWhoAmI | null = null;
  private _key: string | null = null;
  private _seq = 0;
  private _changed = new Signal<this, void>(this);
}

/**
 * The key of {@link SharingSupport.update} for a status payload: null while the
 * service is not running, else what changes the answer (service, mode, user).
 */
export function sharingKey(status: {
  tracking: { mode: string; state: string; uri: string };
  user: { signed_in: boolean; name: string; org?: string };
} | null): string | null {
  if (!status || status.tracking.state !== 'running') {
    return null;
  }
  const { tracking, user } = status;
  return JSON.stringify([tracking.mode, tracking.uri, user.signed_in, user.name, user.org ?? '']);
}

// -- one Share dialog ------------------------------------------------------------------------------

/**
 * The state of a dialog's requests: a `changed` signal, loading and error. (A dialog is asked
 * for its data when it opens and after each change it makes; it does not poll, so it is not a
 * `PollingModel`: the service's answer to a change must be about the list the user saw.)
 */
abstract class DialogState implements IDisposable {
  get changed(): ISignal<this, void> {
    return this._changed;
  }
  get loading(): boolean {
    return this._loading;
  }
  get error(): Error | null {
    return this._error;
  }
  get isDisposed(): boolean {
    return this._isDisposed;
  }
  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }
  protected emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }
  protected _loading = false;
  protected _error: Error | null = null;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

/**
 * Who has access to one experiment or model, and the changes made from the dialog.
 * `error` is the listing's failure; `actionError` the last refused change (the
 * service's message), cleared by the next change that succeeds or by `clearActionError`.
 * The list is read again after every change the service answered, refused ones included.
 */
export class ShareModel extends DialogState {
  constructor(options: { sharing: SharingClient; target: IShareTarget; whoami?: IWhoAmI | null }) {
    super();
    this.sharing = options.sharing;
    this.target = options.target;
    this.whoami = options.whoami ?? null;
  }

  readonly sharing: SharingClient;
  readonly target: IShareTarget;
  readonly whoami: IWhoAmI | null;

  /** Organisation first, then groups, then users (see {@link comparePermissions}). */
  get permissions(): IPermission[] {
    return this._permissions;
  }
  get loaded(): boolean {
    return this._loaded;
  }
  /** A change is being sent. */
  get busy(): boolean {
    return this._busy;
  }
  get actionError(): Error | null {
    return this._actionError;
  }
  /** What the last successful change did, for a polite live region. */
  get notice(): string {
    return this._notice;
  }

  async refresh(): Promise<void> {
    const seq = ++this._seq;
    this._loading = true;
    this.emit();
    try {
      const permissions = await this.sharing.list(this.target);
      if (seq !== this._seq) {
        return;
      }
      this._permissions = permissions.slice().sort(comparePermissions);
      this._error = null;
    } catch (reason) {
      if (seq !== this._seq) {
        return;
      }
      this._error = reason instanceof Error ? reason : new Error(String(reason));
    }
    this._loading = false;
    this._loaded = true;
    this.emit();
  }

  /**
   * Grant (or change) a role; resolves true when the service accepted it. For
   * `org` the principal is the caller's organisation whatever `principal` says.
   */
  async grant(principalType: PrincipalType, principal: string, role: Role): Promise<boolean> {
    const name = principalType === 'org' ? this.whoami?.org ?? '' : principal.trim();
    const problem = validateGrant(principalType, name, role);
    if (problem) {
      this._actionError = new InfinStorRequestError(problem, { status: 400, reason: 'invalid_input' });
      this._notice = '';
      this.emit();
      return false;
    }
    const label = principalType === 'org' ? `the organisation ${name}` : `${principalType} ${name}`;
    return this._change(() => this.sharing.grant(this.target, principalType, name, role), `${label} is now ${role}.`);
  }

  async changeRole(permission: IPermission, role: Role): Promise<boolean> {
    return this.grant(permission.principal_type, permission.principal, role);
  }

  async revoke(permission: IPermission): Promise<boolean> {
    const label = permission.principal_type === 'org' ? `the organisation ${permission.principal}` : `${permission.principal_type} ${permission.principal}`;
    return this._change(
      () => this.sharing.revoke(this.target, permission.principal_type, permission.principal),
      `Access of ${label} revoked.`
    );
  }

  clearActionError(): void {
    if (this._actionError) {
      this._actionError = null;
      this.emit();
    }
  }

  private async _change(send: () => Promise<void>, notice: string): Promise<boolean> {
    if (this._busy) {
      return false;
    }
    this._busy = true;
    this._notice = '';
    this.emit();
    try {
      await send();
    } catch (reason) {
      this._actionError = reason instanceof Error ? reason : new Error(String(reason));
      this._busy = false;
      this.emit();
      // The refusal may come from a list that is no longer true (a grant changed elsewhere
      // meanwhile, e.g. "holds no role"): list again, so the dialog shows the service's grants
      // next to its message. (Not after a network error: the list would fail the same way.)
      if (!(reason instanceof InfinStorRequestError && reason.isNetworkError)) {
        await this.refresh();
      }
      return false;
    }
    this._actionError = null;
    this._notice = notice;
    this._busy = false;
    await this.refresh();
    return true;
  }

  private _permissions: IPermission[] = [];
  private _loaded = false;
  private _busy = false;
  private _actionError: Error | null = null;
  private _notice = '';
  private _seq = 0;
}
