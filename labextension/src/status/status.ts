/**
 * Types of the `GET infinstor/api/status` payload and pure helpers that turn
 * it into display text. Nothing here touches the DOM, React or the network.
 */

/**
 * Where the MLflow tracking service runs.
 */
export type TrackingMode = 'embedded' | 'remote';

/**
 * Life cycle state of the tracking service.
 */
export type TrackingState = 'starting' | 'running' | 'error';

/**
 * The tracking service section of the status payload.
 */
export interface ITrackingStatus {
  mode: TrackingMode | string;
  state: TrackingState | string;
  /** Human readable text, may be empty. */
  message: string;
  /** For display only. */
  uri: string;
  mlflow_version: string;
}

/**
 * The user section of the status payload.
 */
export interface IUserStatus {
  signed_in: boolean;
  name: string;
  display_name: string;
  /** Only when signed in (may be empty). */
  email?: string;
  groups?: string[];
  org?: string;
}

/**
 * The sign-in configuration of the server (`auth` in the status payload).
 * Never contains a credential.
 */
export interface IAuthStatus {
  /** Whether users can sign in from the lab (an identity provider is configured). */
  configured: boolean;
  /** The identity provider's issuer URL, for display. */
  issuer: string;
  client_id: string;
  /** The tracking service the sign-in is for, for display. */
  service: string;
  /**
   * Where the identity provider comes from: the server's configuration (the lab
   * cannot change it), the lab's settings, or '' (none).
   */
  source: 'server' | 'settings' | '';
}

/**
 * The `GET infinstor/api/status` payload.
 */
export interface IStatus {
  /** Version of the infinstor_jupyterlab Python package. */
  version: string;
  tracking: ITrackingStatus;
  user: IUserStatus;
  /** Absent from servers that predate sign-in: treated as not configured. */
  auth?: IAuthStatus;
}

/**
 * Broad category of a tracking state, used for the colour of the status dot.
 */
export type StateKind = 'ok' | 'pending' | 'error' | 'unknown';

/**
 * Validate and normalise a status payload received from the server.
 *
 * Missing optional fields get safe defaults; a payload that is not an object
 * with a `tracking` object throws, since it cannot come from our server.
 */
export function parseStatus(data: unknown): IStatus {
  if (!isObject(data) || !isObject(data.tracking)) {
    throw new Error(
      'Unexpected answer from the InfinStor server extension: no tracking status.'
    );
  }
  const tracking = data.tracking;
  const user = isObject(data.user) ? data.user : {};
  const name = asString(user.name);
  const auth = isObject(data.auth) ? data.auth : {};
  return {
    version: asString(data.version),
    tracking: {
      mode: asString(tracking.mode) || 'embedded',
      state: asString(tracking.state) || 'starting',
      message: asString(tracking.message),
      uri: asString(tracking.uri),
      mlflow_version: asString(tracking.mlflow_version)
    },
    user: {
      signed_in: user.signed_in === true,
      name,
      display_name: asString(user.display_name) || name,
      email: asString(user.email),
      groups: Array.isArray(user.groups) ? user.groups.map(asString).filter(Boolean) : [],
      org: asString(user.org)
    },
    auth: {
      configured: auth.configured === true,
      issuer: asString(auth.issuer),
      client_id: asString(auth.client_id),
      service: asString(auth.service),
      source: auth.source === 'server' || auth.source === 'settings' ? auth.source : ''
    }
  };
}

/**
 * The text shown for a tracking state: the state itself (`running`,
 * `starting`, `error`), or `unknown` when it is empty.
 */
export function stateLabel(state: string): string {
  const trimmed = (state || '').trim().toLowerCase();
  return trimmed || 'unknown';
}

/**
 * Category of a tracking state.
 */
export function stateKind(state: string): StateKind {
  switch (stateLabel(state)) {
    case 'running':
      return 'ok';
    case 'starting':
      return 'pending';
    case 'error':
      return 'error';
    default:
      return 'unknown';
  }
}

/**
 * The text shown for the tracking mode.
 *
 * `Embedded (local)` for the service this extension runs, `Remote: <uri>` for a
 * remote tracking server.
 */
export function modeLabel(tracking: Pick<ITrackingStatus, 'mode' | 'uri'>): string {
  const mode = (tracking.mode || '').trim().toLowerCase();
  if (mode === 'embedded') {
    return 'Embedded (local)';
  }
  if (mode === 'remote') {
    const uri = (tracking.uri || '').trim();
    return uri ? `Remote: ${uri}` : 'Remote';
  }
  return mode ? mode.charAt(0).toUpperCase() + mode.slice(1) : 'Unknown';
}

/**
 * The text shown for the user: their display name when signed in, `local`
 * otherwise.
 */
export function userLabel(user: IUserStatus | null | undefined): string {
  if (!user || !user.signed_in) {
    return 'local';
  }
  return (user.display_name || '').trim() || (user.name || '').trim() || 'local';
}

/**
 * Whether the tracking service message should be shown: only when the service
 * is not running and there is something to say.
 */
export function shouldShowMessage(tracking: ITrackingStatus): boolean {
  return stateKind(tracking.state) !== 'ok' && !!(tracking.message || '').trim();
}

/**
 * Whether the status should be polled quickly (the service is starting).
 */
export function isTransient(status: IStatus | null): boolean {
  return !!status && stateKind(status.tracking.state) === 'pending';
}

/**
 * Normalise a package version so that an npm version and the PEP 440 version
 * hatch-nodejs-version derives from it compare equal:
 * `1.2.0-alpha.1` ~ `1.2.0a1`, `1.2.0-rc.2` ~ `1.2.0rc2`, `v1.2.0` ~ `1.2.0`.
 */
export function normalizeVersion(version: string): string {
  const v = (version || '').trim().toLowerCase().replace(/^v/, '').replace(/\+.*$/, '');
  const match =
    /^(\d+(?:\.\d+)*)(?:[-_.]?(alpha|a|beta|b|rc|c|pre|preview)[-_.]?(\d*))?(?:[-_.]?(post|rev|r)[-_.]?(\d*))?(?:[-_.]?(dev)[-_.]?(\d*))?$/.exec(
      v
    );
  if (!match) {
    return v;
  }
  const [, release, pre, preN, post, postN, dev, devN] = match;
  // 1.2 == 1.2.0 == 1.2.0.0
  let result = release.replace(/(\.0)+$/, '');
  if (pre) {
    const kind = pre.startsWith('a') ? 'a' : pre.startsWith('b') ? 'b' : 'rc';
    result += `${kind}${Number(preN || 0)}`;
  }
  if (post) {
    result += `.post${Number(postN || 0)}`;
  }
  if (dev) {
    result += `.dev${Number(devN || 0)}`;
  }
  return result;
}

/**
 * A frontend / server version mismatch.
 */
export interface IVersionMismatch {
  frontend: string;
  server: string;
}

/**
 * Compare the frontend package version with the version the server reports.
 *
 * @returns the mismatch, or `null` when they agree or either is unknown.
 */
export function versionMismatch(
  frontend: string,
  server: string
): IVersionMismatch | null {
  if (!frontend || !server || frontend === 'unknown' || server === 'unknown') {
    return null;
  }
  if (normalizeVersion(frontend) === normalizeVersion(server)) {
    return null;
  }
  return { frontend, server };
}

/**
 * The warning shown for a version mismatch.
 */
export function versionMismatchMessage(mismatch: IVersionMismatch): string {
  return (
    `The InfinStor frontend (version ${mismatch.frontend}) does not match the ` +
    `infinstor_jupyterlab server extension (version ${mismatch.server}). ` +
    'Reinstall infinstor_jupyterlab so both parts have the same version, ' +
    'then restart Jupyter and reload this page.'
  );
}

/**
 * The warning shown when the server extension does not answer (HTTP 404).
 */
export const SERVER_EXTENSION_MISSING_MESSAGE =
  'The infinstor_jupyterlab server extension is not installed or not enabled, ' +
  'so the InfinStor sidebar cannot reach it. Install the Python package ' +
  'infinstor_jupyterlab, run `jupyter server extension enable infinstor_jupyterlab` ' +
  'and restart Jupyter.';

/**
 * Longest message JupyterLab shows in a notification toast without cutting it.
 */
export const NOTIFICATION_MAX_LENGTH = 140;

/**
 * Toast text for a missing server extension (the sidebar has the full text).
 */
export const SERVER_EXTENSION_MISSING_NOTIFICATION =
  'InfinStor: the infinstor_jupyterlab server extension is not enabled. ' +
  'Enable it and restart Jupyter (details in the sidebar).';

/**
 * Toast text for a version mismatch (the sidebar has the full text).
 */
export function versionMismatchNotification(mismatch: IVersionMismatch): string {
  return (
    `InfinStor: frontend ${mismatch.frontend} and server extension ` +
    `${mismatch.server} differ. Reinstall infinstor_jupyterlab and restart Jupyter.`
  );
}

/**
 * Format a time of day for "last checked" text.
 */
export function formatTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function isObject(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asString(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return '';
}
