import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { PollingModel } from '../common/pollingModel';
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
export class JobsModel extends PollingModel<IJob[]> {
  constructor(options: JobsModel.IOptions) {
    super({
      name: 'infinstor-jupyterlab:jobs',
      interval: IDLE_JOBS_INTERVAL,
      maxInterval: MAX_JOBS_INTERVAL,
      autoStart: options.autoStart,
      standby: options.standby
    });
    this._client = options.client;
  }

  get client(): IJobsClient {
    return this._client;
  }

  /** Jobs, newest first. */
  get jobs(): ReadonlyArray<IJob> {
    return this._jobs;
  }

  get jobEnded(): ISignal<this, IJobEnded> {
    return this._jobEnded;
  }

  find(id: string): IJob | undefined {
    return this._jobs.find(job => job.id === id);
  }

  /** Whether some job is queued or running. */
  get hasActive(): boolean {
    return this._jobs.some(job => isActive(job.status));
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
    this.markReceived();
    this.reschedule();
    this.emitChanged();
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
    this.emitChanged();
  }

  protected request(): Promise<IJob[]> {
    return this._client.listJobs();
  }

  protected apply(jobs: IJob[], first: boolean): void {
    this._jobs = jobs;
    for (const job of jobs) {
      if (first) {
        this._known.set(job.id, job.status);
      } else {
        this._track(job, this._known.has(job.id) ? this._known.get(job.id)! : null);
      }
    }
  }

  protected pollInterval(): number {
    return this.hasActive ? ACTIVE_JOBS_INTERVAL : IDLE_JOBS_INTERVAL;
  }

  /** Record a job's status; report it when it has just ended. */
  private _track(job: IJob, previous: string | null): void {
    const known = this._known.has(job.id);
    this._known.set(job.id, job.status);
    if (!isEnded(job.status)) {
      return;
    }
    if ((known && previous !== null && !isEnded(previous)) || (!known && this.loaded)) {
      this._jobEnded.emit({ job, previous: known ? previous : null });
    }
  }

  private _client: IJobsClient;
  private _jobs: IJob[] = [];
  private _known = new Map<string, string>();
  private _jobEnded = new Signal<this, IJobEnded>(this);
}

export namespace JobsModel {
  export interface IOptions extends PollingModel.IStartOptions {
    client: IJobsClient;
  }
}

/**
 * The tail of one job's log, read incrementally (`GET jobs/{id}/log?offset=N`).
 *
 * It polls only while the job may still write (its log is not complete) and
 * the log is `visible`; each poll reads every chunk available, and the
 * interval backs off while the log does not grow.
 */
export class JobLogModel extends PollingModel<boolean> {
  constructor(options: JobLogModel.IOptions) {
    const interval = options.interval ?? LOG_INTERVAL;
    const maxInterval = options.maxInterval ?? MAX_LOG_INTERVAL;
    super({
      name: `infinstor-jupyterlab:job-log:${options.jobId}`,
      interval,
      maxInterval,
      autoStart: options.autoStart
    });
    this._client = options.client;
    this.jobId = options.jobId;
    this._maxChars = options.maxChars ?? MAX_LOG_CHARS;
    this._visible = options.visible ?? true;
    this._baseInterval = interval;
    // Kept here: Poll raises its own `max` to at least 30 s.
    this._maxInterval = maxInterval;
    this._nextInterval = interval;
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

  get offset(): number {
    return this._offset;
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
    if (value && !this._complete) {
      // Nobody waits for it; disposal while it waits would reject it.
      void this.refresh().catch(() => undefined);
    }
  }

  /** Whether the poll is currently scheduled to ask the server. */
  get polling(): boolean {
    return !this.isDisposed && this._visible && !this._complete;
  }

  protected standby(): boolean | Poll.Standby {
    return !this._visible || this._complete || 'when-hidden';
  }

  /**
   * Read every available chunk (the server caps each answer), taking each in as it comes so a
   * later failure keeps what was read; resolves whether the log grew.
   */
  protected async request(): Promise<boolean> {
    let grew = false;
    for (let i = 0; i < 50; i++) {
      const chunk = await this._client.readLog(this.jobId, this._offset);
      if (this.isDisposed) {
        return grew;
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
    return grew;
  }

  protected apply(grew: boolean): void {
    // Quick while output flows, slower while it is quiet.
    this._nextInterval = grew ? this._baseInterval : Math.min(this.interval * 2, this._maxInterval);
  }

  protected pollInterval(): number {
    return this._nextInterval;
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
  private _text = '';
  private _truncated = false;
  private _complete = false;
  private _status = '';
  private _offset = 0;
  private _visible: boolean;
  private _maxChars: number;
  private _baseInterval: number;
  private _maxInterval: number;
  private _nextInterval: number;
}

export namespace JobLogModel {
  export interface IOptions {
    client: IJobsClient;
    jobId: string;
    visible?: boolean;
    /** Start polling at once (default true). */
    autoStart?: boolean;
    interval?: number;
    maxInterval?: number;
    maxChars?: number;
  }
}
