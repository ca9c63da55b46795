import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IComputeClient } from './client';
import { TRANSITION_STATES } from './format';
import { IComputeConfig, IInstance, InstanceAction } from './types';

/** Poll interval while an instance is starting, stopping or terminating, in ms. */
export const TRANSITION_INTERVAL = 3000;

/** Poll interval while instances are steady, in ms. */
export const STEADY_INTERVAL = 15000;

/** Poll interval while EC2 is unavailable (the admin may fix it), in ms. */
export const UNAVAILABLE_INTERVAL = 60000;

/** Longest interval the poll backs off to after errors, in ms. */
export const MAX_COMPUTE_INTERVAL = 120000;

/**
 * The user's EC2 instances and the EC2 settings, polled.
 *
 * It polls `GET compute/instances` with a Lumino `Poll` (every 3 s while an
 * instance changes state or an action is under way, every 15 s otherwise,
 * every 60 s while EC2 is unavailable, backing off after errors, standing by
 * while the page or the view is hidden), reads `GET compute/config` on the
 * first load and on every explicit refresh, and emits `changed` after each.
 */
export class ComputeModel implements IDisposable {
  constructor(options: ComputeModel.IOptions) {
    this._client = options.client;
    this._poll = new Poll({
      auto: false,
      factory: () => this._fetch(),
      frequency: {
        interval: STEADY_INTERVAL,
        backoff: true,
        max: MAX_COMPUTE_INTERVAL
      },
      name: 'infinstor-jupyterlab:compute',
      standby: options.standby ?? 'when-hidden'
    });
    if (options.autoStart ?? true) {
      void this._poll.start();
    }
  }

  get client(): IComputeClient {
    return this._client;
  }

  /** The user's instances, as last listed. */
  get instances(): ReadonlyArray<IInstance> {
    return this._instances;
  }

  /** Whether EC2 can be used (false until the first answer). */
  get available(): boolean {
    return this._available;
  }

  /** Why EC2 cannot be used, from the server; null when it can. */
  get reason(): string | null {
    return this._reason;
  }

  /** The EC2 settings, or null before they were read (or when reading them failed). */
  get config(): IComputeConfig | null {
    return this._config;
  }

  /** Why the settings could not be read the last time, or null. */
  get configError(): Error | null {
    return this._configError;
  }

  /** Whether the first request has not completed yet. */
  get loading(): boolean {
    return !this._loaded && this._error === null;
  }

  /** The last request's error, or null after a success. */
  get error(): Error | null {
    return this._error;
  }

  /** When the instances were last received (ms since the epoch). */
  get fetchedAt(): number {
    return this._fetchedAt;
  }

  /** The poll's current interval, in ms. */
  get interval(): number {
    return this._poll.frequency.interval;
  }

  /** The action under way on an instance, if any. */
  pending(id: string): InstanceAction | null {
    return this._pending.get(id) ?? null;
  }

  find(id: string): IInstance | undefined {
    return this._instances.find(i => i.id === id);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Read the instances and the settings now (and reschedule the poll).
   */
  async refresh(): Promise<void> {
    if (this._poll.isDisposed) {
      return;
    }
    this._configWanted = true;
    await this._poll.refresh();
    await this._poll.tick;
  }

  /** Stop one of the user's instances; resolves once the list shows its new state. */
  stop(id: string): Promise<void> {
    return this._act(id, 'stop');
  }

  /** Terminate one of the user's instances; resolves once the list shows its new state. */
  terminate(id: string): Promise<void> {
    return this._act(id, 'terminate');
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _act(id: string, action: InstanceAction): Promise<void> {
    if (this._pending.has(id)) {
      throw new Error(`An action on ${id} is already under way.`);
    }
    this._pending.set(id, action);
    this._changed.emit();
    try {
      const answer = await this._client.act(id, action);
      if (this._isDisposed) {
        return;
      }
      // Show the state AWS answered at once; the next poll brings the rest.
      const index = this._instances.findIndex(i => i.id === id);
      if (index >= 0 && answer?.state) {
        const updated = { ...this._instances[index], state: answer.state };
        this._instances = [
          ...this._instances.slice(0, index),
          updated,
          ...this._instances.slice(index + 1)
        ];
      }
    } finally {
      this._actionsDone++;
      this._pending.delete(id);
      if (!this._isDisposed) {
        this._schedule();
        this._changed.emit();
      }
    }
    // List again now (not through the poll: a listing already under way started before the
    // action, and is discarded when it answers).
    if (!this._isDisposed) {
      await this._fetch().catch(() => undefined);
    }
  }

  private async _fetch(): Promise<void> {
    // An answer is stale when a later request was already applied, or an action on an
    // instance completed while it was under way (it could show the state before the action).
    const seq = ++this._fetchSeq;
    const actions = this._actionsDone;
    try {
      const wantConfig = this._configWanted || !this._loaded;
      this._configWanted = false;
      const [answer, config] = await Promise.all([
        this._client.instances(),
        wantConfig ? this._readConfig() : Promise.resolve(this._config)
      ]);
      if (this._isDisposed) {
        return;
      }
      if (seq < this._appliedSeq || actions !== this._actionsDone) {
        return;
      }
      this._appliedSeq = seq;
      this._loaded = true;
      this._error = null;
      this._fetchedAt = Date.now();
      this._available = answer.available;
      this._reason = answer.available ? null : answer.reason;
      this._instances = answer.instances;
      this._config = config;
      this._schedule();
      this._changed.emit();
    } catch (error) {
      if (this._isDisposed) {
        return;
      }
      this._error = error instanceof Error ? error : new Error(String(error));
      this._changed.emit();
      // Rejecting makes the poll back off.
      throw error;
    }
  }

  /** The settings; on failure the last ones read (the instances matter more). */
  private async _readConfig(): Promise<IComputeConfig | null> {
    try {
      const config = await this._client.config();
      this._configError = null;
      return config;
    } catch (error) {
      this._configError = error instanceof Error ? error : new Error(String(error));
      return this._config;
    }
  }

  private _schedule(): void {
    let interval = STEADY_INTERVAL;
    if (!this._available) {
      interval = UNAVAILABLE_INTERVAL;
    } else if (
      this._pending.size > 0 ||
      this._instances.some(i => TRANSITION_STATES.includes(i.state))
    ) {
      interval = TRANSITION_INTERVAL;
    }
    if (this._poll.frequency.interval !== interval) {
      this._poll.frequency = { ...this._poll.frequency, interval };
    }
  }

  private _client: IComputeClient;
  private _poll: Poll;
  private _instances: IInstance[] = [];
  private _available = false;
  private _reason: string | null = null;
  private _config: IComputeConfig | null = null;
  private _configError: Error | null = null;
  private _configWanted = true;
  private _pending = new Map<string, InstanceAction>();
  private _fetchSeq = 0;
  private _appliedSeq = 0;
  private _actionsDone = 0;
  private _loaded = false;
  private _error: Error | null = null;
  private _fetchedAt = 0;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

export namespace ComputeModel {
  export interface IOptions {
    client: IComputeClient;
    /** Start polling at once (default true). */
    autoStart?: boolean;
    standby?: Poll.Standby | (() => boolean | Poll.Standby);
  }
}
