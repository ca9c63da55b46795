import { JSONExt, JSONValue } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

/** An unknown thrown value as an Error (rejections need not be Errors). */
export function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/**
 * Server data kept fresh by a Lumino `Poll`: the base of every polled or live view's model
 * (the sidebar's status, the MLflow lists, run pages, jobs, compute).
 *
 * It owns the poll and the state every polled view shows: loading, the last error, when data
 * last came (`fetchedAt`) and when it was last checked (`checkedAt`), and the `changed` signal,
 * emitted after a request that changed something.
 *
 * A subclass says how to request its data (`request`), how to take an answer in (`apply`) and
 * which interval suits what it holds now (`pollInterval`). Optionally:
 *
 * - `probe()`: a cheap "did anything change?" request answering a fingerprint of the data (e.g.
 *   the newest run's id, status and metrics). While the fingerprint stays the same the poll asks
 *   only the probe, and backs off from `pollInterval()` up to `idleInterval`; when it differs
 *   the data is requested again and the interval starts over.
 * - `apply()` answering `false`: nothing changed; the same back-off, and no `changed`.
 * - `fingerprintInAnswer()` / `fingerprintOf()`: when a full answer holds what the probe would
 *   answer (e.g. the newest runs, sorted newest first), the full request goes without a probe.
 *
 * The poll asks only while the model is `visible` (the view showing it is on screen) and the
 * page is (unless `standby` says otherwise); `nudge()` says something probably changed (a write
 * this lab made): check now and start over from the short interval.
 */
export abstract class PollingModel<TAnswer> implements IDisposable {
  constructor(options: PollingModel.IOptions) {
    this._standby = options.standby ?? 'when-hidden';
    this._onScreen = options.visible ?? true;
    this._errorMaxInterval = options.maxInterval;
    this._idleInterval = options.idleInterval ?? 0;
    this._reloadEvery = options.reloadEvery ?? 0;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
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

  /**
   * When the server last answered (data or probe; ms since the epoch): what is shown was
   * current then.
   */
  get checkedAt(): number {
    return this._checkedAt;
  }

  /** The poll's current interval, in ms. */
  get interval(): number {
    return this._poll.frequency.interval;
  }

  /**
   * The longest interval the poll backs off to while nothing changes, in ms (0: no back-off);
   * e.g. from a setting.
   */
  get idleInterval(): number {
    return this._idleInterval;
  }
  set idleInterval(value: number) {
    if (!Number.isFinite(value) || value < 0 || value === this._idleInterval) {
      return;
    }
    this._idleInterval = value;
    const ceiling = Math.max(this.pollInterval(), value);
    if (this._poll.frequency.interval > ceiling) {
      this._setInterval(ceiling);
    }
  }

  /** The underlying poll (for diagnostics and tests). */
  get poll(): Poll {
    return this._poll;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Whether the view showing this model is on screen; while it is not, the poll asks nothing.
   * Shown again, it checks at once if what it holds may be out of date.
   */
  get visible(): boolean {
    return this._onScreen;
  }
  set visible(value: boolean) {
    if (value === this._onScreen) {
      return;
    }
    this._onScreen = value;
    if (value && !this._isDisposed && (this._dirty || !this._loaded || this._overdue())) {
      void this._poll.refresh();
    }
  }

  /**
   * Request the data now (and restart the poll's timer); resolves once it was taken in. While the
   * view is not on screen it only marks the data as due for when it is.
   */
  async refresh(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    if (!this.visible) {
      // Not on screen: asked for once it is.
      this._dirty = true;
      return;
    }
    // Directly, not through the poll: the poll would let this wait for a tick under way, which
    // may only be a probe, or answer a question asked before `invalidate`. A request for the
    // data under way for the same question is this refresh's answer (a subclass's request may
    // keep state, e.g. a log offset: two at once would read the same part twice).
    let failed = false;
    try {
      await (this._joinable() ? this._loading!.promise : this.load());
    } catch {
      failed = true;
    }
    if (this._isDisposed) {
      return;
    }
    // Restart the poll's timer from now (a tick still under way is ignored when it ends).
    const { interval, max } = this._poll.frequency;
    void this._poll.schedule({
      interval: failed ? Math.min(max, 2 * Math.max(interval, this._poll.state.interval)) : interval,
      // (Not 'refreshed': the poll would then take a later `nudge` for a refresh already due.)
      phase: failed ? 'rejected' : 'resolved'
    });
  }

  /**
   * Something probably changed (e.g. this lab wrote to the server): check now if visible (else
   * as soon as it is shown) and poll at the short interval again.
   */
  nudge(): void {
    if (this._isDisposed) {
      return;
    }
    this._setInterval(this.pollInterval());
    if (this.visible) {
      void this._poll.refresh();
    } else {
      this._dirty = true;
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  /**
   * Ask the server for the data; a rejection is shown as `error` and makes the poll back off.
   * `afterProbe`: a probe has just answered (what it read may be reused).
   */
  protected abstract request(afterProbe: boolean): Promise<TAnswer>;

  /**
   * Take an answer in; `first` on the first one. Answer `false` when nothing changed: the poll
   * then backs off (up to `idleInterval`) and `changed` is not emitted.
   */
  protected abstract apply(answer: TAnswer, first: boolean): boolean | void;

  /** The poll interval that suits the data held now, in ms. */
  protected abstract pollInterval(): number;

  /**
   * A cheap request whose answer changes whenever the data does (a JSON fingerprint), or null
   * when there is none (every tick then requests the data).
   */
  protected probe(): Promise<JSONValue> | null {
    return null;
  }

  /**
   * Whether the next full request's answer holds the probe's answer (asked before the
   * request; then no probe is asked with it, and {@link fingerprintOf} reads it).
   */
  protected fingerprintInAnswer(): boolean {
    return false;
  }

  /** The probe's answer read from a full request's answer (see {@link fingerprintInAnswer}). */
  protected fingerprintOf(answer: TAnswer): JSONValue | undefined {
    return undefined;
  }

  /** Whether an answer must be dropped (e.g. older than data applied since it was asked for). */
  protected isStale(answer: TAnswer): boolean {
    return false;
  }

  /**
   * Whether the poll skips its next tick: while the view is not visible, else as the options say
   * (a subclass that knows better overrides this and asks `super.standby()`).
   */
  protected standby(): boolean | Poll.Standby {
    if (!this._onScreen) {
      return true;
    }
    return typeof this._standby === 'function' ? this._standby() : this._standby;
  }

  /** Whether some answer was taken in. */
  protected get loaded(): boolean {
    return this._loaded;
  }

  /** Record that data just came from the server other than through the poll. */
  protected markReceived(): void {
    this._fetchedAt = this._checkedAt = Date.now();
  }

  /** Move the poll to the interval that suits the data now. */
  protected reschedule(): void {
    this._setInterval(this.pollInterval());
  }

  protected emitChanged(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  /**
   * What was asked for changed (a new query, filter or sort): answers to requests made before
   * are dropped, and the next tick requests the data. Call `refresh()` after to ask now.
   */
  protected invalidate(): void {
    this._generation++;
    this._fingerprint = undefined;
  }

  /**
   * One request, taken in; also called directly by subclasses (e.g. after an action, when a
   * request under way may answer with the state before it: see `isStale`). `fingerprint` is the
   * probe's answer when the caller already has it.
   */
  protected load(fingerprint?: JSONValue): Promise<void> {
    const loading = this._load(fingerprint);
    const current = { generation: this._generation, promise: loading };
    this._loading = current;
    const done = () => {
      if (this._loading === current) {
        this._loading = null;
      }
    };
    loading.then(done, done);
    return loading;
  }

  private async _load(fingerprint?: JSONValue): Promise<void> {
    const generation = this._generation;
    const seq = ++this._requested;
    try {
      // The fingerprint is taken before the data (a change in between is seen by the next
      // probe), unless the answer will hold it (no probe then).
      const derive = fingerprint === undefined && this.fingerprintInAnswer();
      const probe = fingerprint === undefined && !derive ? this.probe() : null;
      const print = probe ? await probe : fingerprint;
      const answer = await this.request(print !== undefined);
      if (
        this._isDisposed ||
        generation !== this._generation ||
        seq < this._applied ||
        this.isStale(answer)
      ) {
        return;
      }
      this._applied = seq;
      const first = !this._loaded;
      this._loaded = true;
      const recovered = this._error !== null;
      this._error = null;
      this._fetchedAt = this._checkedAt = Date.now();
      this._fingerprint = derive ? this.fingerprintOf(answer) : print;
      this._dirty = false;
      const changed = this.apply(answer, first) !== false;
      if (changed || first || recovered) {
        this.reschedule();
        this._changed.emit();
      } else {
        this._backOff();
      }
    } catch (error) {
      if (this._isDisposed || generation !== this._generation) {
        return;
      }
      this._error = asError(error);
      this._changed.emit();
      // Rejecting makes the poll back off.
      throw error;
    }
  }

  /** A tick, the poll's factory: the probe while it has something to compare with, else the data. */
  private async _tick(): Promise<void> {
    if (this._joinable()) {
      // The data is being requested already (a refresh): that is this tick's answer.
      return this._loading!.promise;
    }
    const probe =
      !this._loaded || this._fingerprint === undefined || this._reloadDue()
        ? null
        : this.probe();
    if (!probe) {
      return this.load();
    }
    const generation = this._generation;
    let print: JSONValue;
    try {
      print = await probe;
    } catch (error) {
      if (this._isDisposed || generation !== this._generation) {
        return;
      }
      this._error = asError(error);
      this._changed.emit();
      throw error;
    }
    if (this._isDisposed || generation !== this._generation) {
      return;
    }
    if (JSONExt.deepEqual(print, this._fingerprint as JSONValue)) {
      this._checkedAt = Date.now();
      this._dirty = false;
      if (this._error !== null) {
        this._error = null;
        this._changed.emit();
      }
      this._backOff();
      return;
    }
    return this.load(print);
  }

  /** Whether a request for the data is under way for the current question. */
  private _joinable(): boolean {
    return this._loading !== null && this._loading.generation === this._generation;
  }

  /** Nothing changed: wait longer next time, up to `idleInterval`. */
  private _backOff(): void {
    const base = this.pollInterval();
    const ceiling = Math.max(base, this._idleInterval);
    this._setInterval(Math.min(ceiling, Math.max(base, this._poll.frequency.interval * 2)));
  }

  private _setInterval(interval: number): void {
    if (this._poll.isDisposed) {
      return;
    }
    const max = Math.max(this._errorMaxInterval, interval);
    const frequency = this._poll.frequency;
    if (frequency.interval !== interval || frequency.max !== max) {
      this._poll.frequency = { ...frequency, interval, max };
    }
  }

  /** Whether the safety-net full reload (`reloadEvery`) is due. */
  private _reloadDue(): boolean {
    return this._reloadEvery > 0 && Date.now() - this._fetchedAt >= this._reloadEvery;
  }

  /** Whether the last check is older than the current interval. */
  private _overdue(): boolean {
    return Date.now() - this._checkedAt >= this._poll.frequency.interval;
  }

  private _poll: Poll;
  private _standby: NonNullable<PollingModel.IOptions['standby']>;
  private _onScreen: boolean;
  private _errorMaxInterval: number;
  private _idleInterval: number;
  private _reloadEvery: number;
  private _loaded = false;
  private _error: Error | null = null;
  private _fetchedAt = 0;
  private _checkedAt = 0;
  private _fingerprint: JSONValue | undefined = undefined;
  private _generation = 0;
  /** Numbers of the last request made and of the last one taken in (older answers are dropped). */
  private _requested = 0;
  private _applied = 0;
  /** The request for the data under way, and for which question (`_generation`). */
  private _loading: { generation: number; promise: Promise<void> } | null = null;
  private _dirty = false;
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
    /** Whether the view is on screen at first (default true); see `visible`. */
    visible?: boolean;
  }

  export interface IOptions extends IStartOptions {
    /** The poll's name (for debugging). */
    name: string;
    /** The first interval, in ms. */
    interval: number;
    /** The longest interval the poll backs off to after errors, in ms. */
    maxInterval: number;
    /**
     * The longest interval the poll backs off to while nothing changes, in ms (default: no
     * back-off, `pollInterval()` every time).
     */
    idleInterval?: number;
    /**
     * Request the data at least this often even when the probe sees no change, in ms (for
     * changes the probe cannot see; default never).
     */
    reloadEvery?: number;
  }
}
