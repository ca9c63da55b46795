import { IDisposable } from '@lumino/disposable';
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

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
 * It polls `GET infinstor/api/status` with a Lumino `Poll` (faster while the
 * tracking service is starting, backing off after errors, standing by while
 * the page is hidden) and emits `changed` after every completed request
 * (the status, the error or the time of the last check changed).
 */
export class StatusModel implements IDisposable {
  constructor(options: StatusModel.IOptions = {}) {
    this._fetch = options.fetchStatus ?? fetchStatus;
    this._interval = clampInterval(options.interval ?? DEFAULT_POLL_INTERVAL);
    this._startingInterval = options.startingInterval ?? STARTING_POLL_INTERVAL;
    this._poll = new Poll<IStatus | null, Error, 'standby'>({
      auto: false,
      factory: () => this._tick(),
      frequency: this._frequency(),
      name: 'infinstor-jupyterlab:status',
      standby: options.standby ?? 'when-hidden'
    });
    if (options.autoStart ?? true) {
      void this._poll.start();
    }
  }

  /**
   * Emitted after every completed request and every `updateTracking`.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
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
   * The error of the last request, or `null` when it succeeded.
   */
  get error(): Error | null {
    return this._error;
  }

  /**
   * Whether no request has completed yet.
   */
  get loading(): boolean {
    return this._status === null && this._error === null;
  }

  /**
   * Whether the last request failed because the server extension does not
   * answer (HTTP 404).
   */
  get serverExtensionMissing(): boolean {
    return (
      this._error instanceof InfinStorRequestError && this._error.status === 404
    );
  }

  /**
   * When the last request completed, or `null`.
   */
  get lastUpdated(): Date | null {
    return this._lastUpdated;
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
    this._updateFrequency();
  }

  /**
   * The underlying poll (exposed for tests and diagnostics).
   */
  get poll(): Poll<IStatus | null, Error, 'standby'> {
    return this._poll;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Request the status now.
   *
   * @returns a promise that resolves once that request has completed
   *   (whether it succeeded or not; see `error`).
   */
  async refresh(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    await this._poll.refresh();
    await this._poll.tick.catch(() => undefined);
  }

  /**
   * Record a tracking status obtained by another call (e.g. a restart) and
   * poll again soon.
   */
  updateTracking(tracking: IStatus['tracking']): void {
    if (this._isDisposed || !this._status) {
      return;
    }
    this._status = { ...this._status, tracking: { ...tracking } };
    this._updateFrequency();
    this._changed.emit();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _tick(): Promise<IStatus | null> {
    try {
      const status = await this._fetch();
      if (this._isDisposed) {
        return status;
      }
      this._status = status;
      this._error = null;
      this._lastUpdated = new Date();
      this._updateFrequency();
      this._changed.emit();
      return status;
    } catch (reason) {
      if (this._isDisposed) {
        throw reason;
      }
      this._error = reason instanceof Error ? reason : new Error(String(reason));
      this._lastUpdated = new Date();
      this._changed.emit();
      // Rejecting makes the poll back off.
      throw this._error;
    }
  }

  private _frequency(): IPoll.Frequency {
    const interval = isTransient(this._status)
      ? Math.min(this._startingInterval, this._interval)
      : this._interval;
    return {
      interval,
      backoff: true,
      max: Math.max(MAX_POLL_INTERVAL, this._interval)
    };
  }

  private _updateFrequency(): void {
    if (!this._poll.isDisposed) {
      this._poll.frequency = this._frequency();
    }
  }

  private _changed = new Signal<this, void>(this);
  private _error: Error | null = null;
  private _fetch: () => Promise<IStatus>;
  private _interval: number;
  private _isDisposed = false;
  private _lastUpdated: Date | null = null;
  private _poll: Poll<IStatus | null, Error, 'standby'>;
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
