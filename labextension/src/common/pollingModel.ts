import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

/** An unknown thrown value as an Error (rejections need not be Errors). */
export function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/**
 * Server data kept fresh by a Lumino `Poll`: the base of the Jobs and Compute views' models.
 *
 * It owns the poll (backing off after errors, standing by while the page is hidden unless
 * told otherwise), the state every polled view shows (loading, the last error, when data last
 * came) and the `changed` signal, emitted after every completed request. A subclass says how
 * to request its data (`request`), how to take an answer in (`apply`), and which interval
 * suits what it holds now (`pollInterval`).
 */
export abstract class PollingModel<TAnswer> implements IDisposable {
  constructor(options: PollingModel.IOptions) {
    this._standby = options.standby ?? 'when-hidden';
    this._poll = new Poll({
      auto: false,
      factory: () => this.load(),
      frequency: { interval: options.interval, backoff: true, max: options.maxInterval },
      name: options.name,
      standby: () => this.standby()
    });
    // Safe before a subclass's fields exist: the poll's first tick runs on a timer.
    if (options.autoStart ?? true) {
      void this._poll.start();
    }
  }

  /** Whether the first request has not completed yet. */
  get loading(): boolean {
    return !this._loaded && this._error === null;
  }

  /** The last request's error, or null after a success. */
  get error(): Error | null {
    return this._error;
  }

  /** When the data was last received (ms since the epoch). */
  get fetchedAt(): number {
    return this._fetchedAt;
  }

  /** The poll's current interval, in ms. */
  get interval(): number {
    return this._poll.frequency.interval;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Request the data now (and reschedule the poll); resolves once it was taken in.
   */
  async refresh(): Promise<void> {
    if (this._poll.isDisposed) {
      return;
    }
    await this._poll.refresh();
    await this._poll.tick;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  /** Ask the server for the data; a rejection is shown as `error` and makes the poll back off. */
  protected abstract request(): Promise<TAnswer>;

  /** Take an answer in; `first` on the first one. */
  protected abstract apply(answer: TAnswer, first: boolean): void;

  /** The poll interval that suits the data held now, in ms. */
  protected abstract pollInterval(): number;

  /** Whether an answer must be dropped (e.g. older than data applied since it was asked for). */
  protected isStale(answer: TAnswer): boolean {
    return false;
  }

  /**
   * Whether the poll skips its next tick: as the options say, unless a subclass knows better
   * (its state cannot be read before `super()` returns, so it cannot be an option).
   */
  protected standby(): boolean | Poll.Standby {
    return typeof this._standby === 'function' ? this._standby() : this._standby;
  }

  /** Whether some answer was taken in. */
  protected get loaded(): boolean {
    return this._loaded;
  }

  /** Record that data just came from the server other than through the poll. */
  protected markReceived(): void {
    this._fetchedAt = Date.now();
  }

  /** Move the poll to the interval that suits the data now. */
  protected reschedule(): void {
    const interval = this.pollInterval();
    if (this._poll.frequency.interval !== interval) {
      this._poll.frequency = { ...this._poll.frequency, interval };
    }
  }

  protected emitChanged(): void {
    this._changed.emit();
  }

  /** One request, taken in; the poll's factory, also called directly by subclasses. */
  protected async load(): Promise<void> {
    try {
      const answer = await this.request();
      if (this._isDisposed || this.isStale(answer)) {
        return;
      }
      const first = !this._loaded;
      this._loaded = true;
      this._error = null;
      this._fetchedAt = Date.now();
      this.apply(answer, first);
      this.reschedule();
      this._changed.emit();
    } catch (error) {
      if (this._isDisposed) {
        return;
      }
      this._error = asError(error);
      this._changed.emit();
      // Rejecting makes the poll back off.
      throw error;
    }
  }

  private _poll: Poll;
  private _standby: NonNullable<PollingModel.IOptions['standby']>;
  private _loaded = false;
  private _error: Error | null = null;
  private _fetchedAt = 0;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

export namespace PollingModel {
  /** How a view starts its model's poll. */
  export interface IStartOptions {
    /** Start polling at once (default true). */
    autoStart?: boolean;
    /** When the poll stands by (default: while the page is hidden). */
    standby?: Poll.Standby | (() => boolean | Poll.Standby);
  }

  export interface IOptions extends IStartOptions {
    /** The poll's name (for debugging). */
    name: string;
    /** The first interval, in ms. */
    interval: number;
    /** The longest interval the poll backs off to after errors, in ms. */
    maxInterval: number;
  }
}
