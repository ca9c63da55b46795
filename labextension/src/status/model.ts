import { Poll } from '@lumino/polling';

import { PollingModel } from '../common/pollingModel';
import { InfinStorRequestError, requestAPI } from '../common/request';
import { IStatus, isTransient, parseStatus } from './status';

/**
 * Default interval between two status requests, in milliseconds.
 */
export const DEFAULT_POLL_INTERVAL = 10 * 1000;

/**
 * Smallest accepted poll interval, in milliseconds (matches the settings schema).
 */
export const MIN_POLL_INTERVAL = 2 * 1000;

/**
 * Interval used while the tracking service is starting, in milliseconds.
 */
export const STARTING_POLL_INTERVAL = 1000;

/**
 * Longest interval the poll backs off to after errors, in milliseconds.
 */
export const MAX_POLL_INTERVAL = 2 * 60 * 1000;

/**
 * Fetch the status payload from the server.
 */
export async function fetchStatus(): Promise<IStatus> {
  return parseStatus(await requestAPI<unknown>('status'));
}

/**
 * Model of the InfinStor server extension status.
 *
 * It polls `GET infinstor/api/status` (a {@link PollingModel}: faster while the tracking service
 * is starting, backing off after errors, standing by while the page is hidden) and emits
 * `changed` after every completed request (the status, the error or the time of the last
 * check changed).
 */
export class StatusModel extends PollingModel<IStatus> {
  constructor(options: StatusModel.IOptions = {}) {
    const interval = clampInterval(options.interval ?? DEFAULT_POLL_INTERVAL);
    super({
      name: 'infinstor-jupyterlab:status',
      interval,
      maxInterval: Math.max(MAX_POLL_INTERVAL, interval),
      autoStart: options.autoStart,
      standby: options.standby
    });
    this._fetch = options.fetchStatus ?? fetchStatus;
    this._interval = interval;
    this._startingInterval = options.startingInterval ?? STARTING_POLL_INTERVAL;
  }

  /**
   * The last status received, or `null` before the first answer.
   *
   * It is kept after a later request fails, so the UI can show it as stale.
   */
  get status(): IStatus | null {
    return this._status;
  }

  /**
   * Whether the last request failed because the server extension does not
   * answer (HTTP 404).
   */
  get serverExtensionMissing(): boolean {
    const error = this.error;
    return error instanceof InfinStorRequestError && error.status === 404;
  }

  /**
   * When the server last answered, or `null`.
   */
  get lastUpdated(): Date | null {
    return this.checkedAt ? new Date(this.checkedAt) : null;
  }

  /**
   * Interval between status requests in milliseconds (at least 2 s).
   */
  get interval(): number {
    return this._interval;
  }
  set interval(value: number) {
    const interval = clampInterval(value);
    if (interval === this._interval) {
      return;
    }
    this._interval = interval;
    this.reschedule();
  }

  /**
   * Record a tracking status obtained by another call (e.g. a restart) and
   * poll again soon.
   */
  updateTracking(tracking: IStatus['tracking']): void {
    if (this.isDisposed || !this._status) {
      return;
    }
    this._status = { ...this._status, tracking: { ...tracking } };
    this.reschedule();
    this.emitChanged();
  }

  protected request(): Promise<IStatus> {
    return this._fetch();
  }

  protected apply(status: IStatus): void {
    this._status = status;
  }

  protected pollInterval(): number {
    return isTransient(this._status)
      ? Math.min(this._startingInterval, this._interval)
      : this._interval;
  }

  private _fetch: () => Promise<IStatus>;
  private _interval: number;
  private _startingInterval: number;
  private _status: IStatus | null = null;
}

/**
 * A namespace for StatusModel statics.
 */
export namespace StatusModel {
  export interface IOptions {
    /**
     * Fetch the status; defaults to `GET infinstor/api/status`.
     */
    fetchStatus?: () => Promise<IStatus>;
    /**
     * Interval between requests in milliseconds; default 10 s, minimum 2 s.
     */
    interval?: number;
    /**
     * Interval while the tracking service is starting; default 1 s.
     */
    startingInterval?: number;
    /**
     * Poll standby behaviour; default `'when-hidden'`.
     */
    standby?: Poll.Standby | (() => boolean | Poll.Standby);
    /**
     * Whether to start polling immediately; default `true`.
     */
    autoStart?: boolean;
  }
}

function clampInterval(value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return DEFAULT_POLL_INTERVAL;
  }
  return Math.max(MIN_POLL_INTERVAL, Math.round(value));
}
