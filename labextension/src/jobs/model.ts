import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IJobsClient } from './client';
import { IJob, isActive, isEnded } from './types';

/** Job list poll interval while a job is queued or running, in ms. */
export const ACTIVE_JOBS_INTERVAL = 2000;

/** Job list poll interval while nothing runs, in ms (jobs may come from the CLI). */
export const IDLE_JOBS_INTERVAL = 10000;

/** Longest interval the polls back off to after errors, in ms. */
export const MAX_JOBS_INTERVAL = 60000;

/** Log tail poll interval, in ms (backs off while the log does not grow). */
export const LOG_INTERVAL = 1000;

/** Longest log poll interval while the log does not grow, in ms. */
export const MAX_LOG_INTERVAL = 8000;

/** The most log text kept in memory and shown, in characters. */
export const MAX_LOG_CHARS = 200000;

/**
 * A job that ended while the lab was watching it.
 */
export interface IJobEnded {
  job: IJob;
  /** The status the model knew before, or null for a job it had not seen. */
  previous: string | null;
}

/**
 * The jobs of the server, polled.
 *
 * It polls `GET jobs` with a Lumino `Poll` (every 2 s while a job is queued or
 * running, every 10 s otherwise, backing off after errors, standing by while
 * the page is hidden), emits `changed` after every completed request, and
 * `jobEnded` when a job it saw queued or running has ended, or a job first
 * seen after the initial load has already ended (a quick CLI job). Jobs that
 * had ended before the first load are never reported.
 */
export class JobsModel implements IDisposable {
  constructor(options: JobsModel.IOptions) {
    this._client = options.client;
    this._poll = new Poll({
      auto: false,
      factory: () => this._fetch(),
      frequency: {
        interval: IDLE_JOBS_INTERVAL,
        backoff: true,
        max: MAX_JOBS_INTERVAL
      },
      name: 'infinstor-jupyterlab:jobs',
      standby: options.standby ?? 'when-hidden'
    });
    if (options.autoStart ?? true) {
      void this._poll.start();
    }
  }

  get client(): IJobsClient {
    return this._client;
  }

  /** Jobs, newest first. */
  get jobs(): ReadonlyArray<IJob> {
    return this._jobs;
  }

  /** Whether the first request has not completed yet. */
  get loading(): boolean {
    return !this._loaded && this._error === null;
  }

  /** The last request's error, or null after a success. */
  get error(): Error | null {
    return this._error;
  }

  /** When the job list was last received (ms since the epoch). */
  get fetchedAt(): number {
    return this._fetchedAt;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get jobEnded(): ISignal<this, IJobEnded> {
    return this._jobEnded;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  find(id: string): IJob | undefined {
    return this._jobs.find(job => job.id === id);
  }

  /** Whether some job is queued or running. */
  get hasActive(): boolean {
    return this._jobs.some(job => isActive(job.status));
  }

  /**
   * Fetch the job list now (and reschedule the poll).
   */
  async refresh(): Promise<void> {
    if (this._poll.isDisposed) {
      return;
    }
    await this._poll.refresh();
    await this._poll.tick;
  }

  /**
   * Put a job the client just received (submitted, cancelled) into the list.
   */
  upsert(job: IJob): void {
    const index = this._jobs.findIndex(j => j.id === job.id);
    const previous = index >= 0 ? this._jobs[index] : undefined;
    if (index >= 0) {
      this._jobs = [...this._jobs.slice(0, index), job, ...this._jobs.slice(index + 1)];
    } else {
      this._jobs = [job, ...this._jobs];
    }
    this._track(job, previous?.status ?? null);
    this._fetchedAt = Date.now();
    this._schedule();
    this._changed.emit();
  }

  /** Submit a job through the client and add it to the list. */
  async submit(...args: Parameters<IJobsClient['submit']>): Promise<IJob> {
    const job = await this._client.submit(...args);
    this.upsert(job);
    return job;
  }

  async cancel(id: string): Promise<IJob> {
    const job = await this._client.cancel(id);
    this.upsert(job);
    return job;
  }

  async remove(id: string): Promise<void> {
    await this._client.remove(id);
    this._jobs = this._jobs.filter(job => job.id !== id);
    this._known.delete(id);
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

  private async _fetch(): Promise<void> {
    try {
      const jobs = await this._client.listJobs();
      if (this._isDisposed) {
        return;
      }
      const first = !this._loaded;
      this._loaded = true;
      this._error = null;
      this._fetchedAt = Date.now();
      this._jobs = jobs;
      for (const job of jobs) {
        if (first) {
          this._known.set(job.id, job.status);
        } else {
          this._track(job, this._known.has(job.id) ? this._known.get(job.id)! : null);
        }
      }
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

  /** Record a job's status; report it when it has just ended. */
  private _track(job: IJob, previous: string | null): void {
    const known = this._known.has(job.id);
    this._known.set(job.id, job.status);
    if (!isEnded(job.status)) {
      return;
    }
    if ((known && previous !== null && !isEnded(previous)) || (!known && this._loaded)) {
      this._jobEnded.emit({ job, previous: known ? previous : null });
    }
  }

  private _schedule(): void {
    const interval = this.hasActive ? ACTIVE_JOBS_INTERVAL : IDLE_JOBS_INTERVAL;
    if (this._poll.frequency.interval !== interval) {
      this._poll.frequency = { ...this._poll.frequency, interval };
    }
  }

  private _client: IJobsClient;
  private _poll: Poll;
  private _jobs: IJob[] = [];
  private _known = new Map<string, string>();
  private _loaded = false;
  private _error: Error | null = null;
  private _fetchedAt = 0;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
  private _jobEnded = new Signal<this, IJobEnded>(this);
}

export namespace JobsModel {
  export interface IOptions {
    client: IJobsClient;
    /** Start polling at once (default true). */
    autoStart?: boolean;
    standby?: Poll.Standby | (() => boolean | Poll.Standby);
  }
}

/**
 * The tail of one job's log, read incrementally (`GET jobs/{id}/log?offset=N`).
 *
 * It polls only while the job may still write (its log is not complete) and
 * the log is `visible`; each poll reads every chunk available, and the
 * interval backs off while the log does not grow.
 */
export class JobLogModel implements IDisposable {
  constructor(options: JobLogModel.IOptions) {
    this._client = options.client;
    this.jobId = options.jobId;
    this._maxChars = options.maxChars ?? MAX_LOG_CHARS;
    this._visible = options.visible ?? true;
    this._baseInterval = options.interval ?? LOG_INTERVAL;
    // Kept here: Poll raises its own `max` to at least 30 s.
    this._maxInterval = options.maxInterval ?? MAX_LOG_INTERVAL;
    this._poll = new Poll({
      auto: false,
      factory: () => this._read(),
      frequency: {
        interval: this._baseInterval,
        backoff: true,
        max: this._maxInterval
      },
      name: `infinstor-jupyterlab:job-log:${options.jobId}`,
      standby: () => !this._visible || this._complete || 'when-hidden'
    });
    if (options.autoStart ?? true) {
      void this._poll.start();
    }
  }

  readonly jobId: string;

  /** The log text read so far (its last `maxChars` characters). */
  get text(): string {
    return this._text;
  }

  /** Whether earlier text was dropped to keep the tail short. */
  get truncated(): boolean {
    return this._truncated;
  }

  /** Whether the job ended and its whole log was read. */
  get complete(): boolean {
    return this._complete;
  }

  /** The job status the server reported with the last chunk. */
  get status(): string {
    return this._status;
  }

  get error(): Error | null {
    return this._error;
  }

  get offset(): number {
    return this._offset;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Whether the log is on screen; the poll stands by while it is not. */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (value === this._visible) {
      return;
    }
    this._visible = value;
    if (value && !this._complete && !this._poll.isDisposed) {
      void this._poll.refresh();
    }
  }

  /** Whether the poll is currently scheduled to ask the server. */
  get polling(): boolean {
    return !this._poll.isDisposed && this._visible && !this._complete;
  }

  /** The poll's current interval, in ms (grows while the log is quiet). */
  get interval(): number {
    return this._poll.frequency.interval;
  }

  /** Read whatever is new now. */
  async refresh(): Promise<void> {
    if (this._poll.isDisposed) {
      return;
    }
    await this._poll.refresh();
    await this._poll.tick;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _read(): Promise<void> {
    let grew = false;
    try {
      // Read every available chunk (the server caps each answer).
      for (let i = 0; i < 50; i++) {
        const chunk = await this._client.readLog(this.jobId, this._offset);
        if (this._isDisposed) {
          return;
        }
        this._status = chunk.status;
        this._complete = chunk.complete;
        const advanced = chunk.next_offset > this._offset;
        if (chunk.data) {
          this._append(chunk.data);
          grew = true;
        }
        this._offset = Math.max(this._offset, chunk.next_offset);
        if (chunk.complete || !advanced) {
          break;
        }
      }
      this._error = null;
    } catch (error) {
      if (this._isDisposed) {
        return;
      }
      this._error = error instanceof Error ? error : new Error(String(error));
      this._changed.emit();
      throw error;
    }
    // Quick while output flows, slower while it is quiet.
    const base = this._baseInterval;
    const current = this._poll.frequency.interval;
    const next = grew ? base : Math.min(current * 2, this._maxInterval);
    if (next !== current) {
      this._poll.frequency = { ...this._poll.frequency, interval: next };
    }
    this._changed.emit();
  }

  private _append(data: string): void {
    let text = this._text + data;
    if (text.length > this._maxChars) {
      text = text.slice(text.length - this._maxChars);
      // Start at a line boundary.
      const newline = text.indexOf('\n');
      if (newline >= 0 && newline < 1000) {
        text = text.slice(newline + 1);
      }
      this._truncated = true;
    }
    this._text = text;
  }

  private _client: IJobsClient;
  private _poll: Poll;
  private _text = '';
  private _truncated = false;
  private _complete = false;
  private _status = '';
  private _offset = 0;
  private _error: Error | null = null;
  private _visible: boolean;
  private _maxChars: number;
  private _baseInterval: number;
  private _maxInterval: number;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

export namespace JobLogModel {
  export interface IOptions {
    client: IJobsClient;
    jobId: string;
    visible?: boolean;
    autoStart?: boolean;
    interval?: number;
    maxInterval?: number;
    maxChars?: number;
  }
}
