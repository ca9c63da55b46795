import { asError, PollingModel } from '../common/pollingModel';
import { IComputeClient } from './client';
import { TRANSITION_STATES } from './format';
import { IComputeConfig, IInstance, IInstancesAnswer, InstanceAction } from './types';

/** Poll interval while an instance is starting, stopping or terminating, in ms. */
export const TRANSITION_INTERVAL = 3000;

/** Poll interval while instances are steady, in ms. */
export const STEADY_INTERVAL = 15000;

/** Poll interval while EC2 is unavailable (the admin may fix it), in ms. */
export const UNAVAILABLE_INTERVAL = 60000;

/** Longest interval the poll backs off to after errors, in ms. */
export const MAX_COMPUTE_INTERVAL = 120000;

/** One poll's answers, with what tells whether they are stale. */
interface IComputeAnswer {
  listing: IInstancesAnswer;
  config: IComputeConfig | null;
  /** The request's number, in the order they were made. */
  seq: number;
  /** How many instance actions had completed when it was made. */
  actionsDone: number;
}

/**
 * The user's EC2 instances and the EC2 settings, polled.
 *
 * It polls `GET compute/instances` with a Lumino `Poll` (every 3 s while an
 * instance changes state or an action is under way, every 15 s otherwise,
 * every 60 s while EC2 is unavailable, backing off after errors, standing by
 * while the page or the view is hidden), reads `GET compute/config` on the
 * first load and on every explicit refresh, and emits `changed` after each.
 */
export class ComputeModel extends PollingModel<IComputeAnswer> {
  constructor(options: ComputeModel.IOptions) {
    super({
      name: 'infinstor-jupyterlab:compute',
      interval: STEADY_INTERVAL,
      maxInterval: MAX_COMPUTE_INTERVAL,
      autoStart: options.autoStart,
      standby: options.standby
    });
    this._client = options.client;
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

  /** The action under way on an instance, if any. */
  pending(id: string): InstanceAction | null {
    return this._pending.get(id) ?? null;
  }

  find(id: string): IInstance | undefined {
    return this._instances.find(i => i.id === id);
  }

  /**
   * Read the instances and the settings now (and reschedule the poll).
   */
  refresh(): Promise<void> {
    this._configWanted = true;
    return super.refresh();
  }

  /** Stop one of the user's instances; resolves once the list shows its new state. */
  stop(id: string): Promise<void> {
    return this._act(id, 'stop');
  }

  /** Terminate one of the user's instances; resolves once the list shows its new state. */
  terminate(id: string): Promise<void> {
    return this._act(id, 'terminate');
  }

  protected async request(): Promise<IComputeAnswer> {
    // Taken before asking: they tell later whether the answer is stale.
    const seq = ++this._fetchSeq;
    const actionsDone = this._actionsDone;
    const wantConfig = this._configWanted || !this.loaded;
    this._configWanted = false;
    const [listing, config] = await Promise.all([
      this._client.instances(),
      wantConfig ? this._readConfig() : Promise.resolve(this._config)
    ]);
    return { listing, config, seq, actionsDone };
  }

  /**
   * An answer is stale when a later request was already applied, or an action on an
   * instance completed while it was under way (it could show the state before the action).
   */
  protected isStale(answer: IComputeAnswer): boolean {
    return answer.seq < this._appliedSeq || answer.actionsDone !== this._actionsDone;
  }

  protected apply(answer: IComputeAnswer): void {
    const { listing } = answer;
    this._appliedSeq = answer.seq;
    this._available = listing.available;
    this._reason = listing.available ? null : listing.reason;
    this._instances = listing.instances;
    this._config = answer.config;
  }

  protected pollInterval(): number {
    if (!this._available) {
      return UNAVAILABLE_INTERVAL;
    }
    const changing =
      this._pending.size > 0 || this._instances.some(i => TRANSITION_STATES.includes(i.state));
    return changing ? TRANSITION_INTERVAL : STEADY_INTERVAL;
  }

  private async _act(id: string, action: InstanceAction): Promise<void> {
    if (this._pending.has(id)) {
      throw new Error(`An action on ${id} is already under way.`);
    }
    this._pending.set(id, action);
    this.emitChanged();
    try {
      const answer = await this._client.act(id, action);
      if (this.isDisposed) {
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
      if (!this.isDisposed) {
        this.reschedule();
        this.emitChanged();
      }
    }
    // List again now (not through the poll: a listing already under way started before the
    // action, and is discarded when it answers).
    if (!this.isDisposed) {
      await this.load().catch(() => undefined);
    }
  }

  /** The settings; on failure the last ones read (the instances matter more). */
  private async _readConfig(): Promise<IComputeConfig | null> {
    try {
      const config = await this._client.config();
      this._configError = null;
      return config;
    } catch (error) {
      this._configError = asError(error);
      return this._config;
    }
  }

  private _client: IComputeClient;
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
}

export namespace ComputeModel {
  export interface IOptions extends PollingModel.IStartOptions {
    client: IComputeClient;
  }
}
