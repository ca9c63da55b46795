/**
 * A notebook job's live cell progress: the runner's events (docs/jobs.md, "Live cell progress")
 * folded into one entry per cell, read incrementally from `GET jobs/{id}/progress?offset=`.
 */
import { Poll } from '@lumino/polling';

import { PollingModel } from '../common/pollingModel';
import { IJobsClient } from './client';
import { IProgressEvent } from './types';

/** Progress poll interval, in ms (backs off while nothing happens). */
export const PROGRESS_INTERVAL = 1000;

/** Longest progress poll interval while nothing happens, in ms. */
export const MAX_PROGRESS_INTERVAL = 8000;

/** The most streamed output kept for one cell, in characters (its tail). */
export const MAX_CELL_CHARS = 20000;

/** One cell as far as it ran. */
export interface ICellProgress {
  /** 1-based number among the code cells that run. */
  cell: number;
  source: string;
  /** papermill's injected parameters cell. */
  injected: boolean;
  /** Epoch seconds (the runner's clock). */
  start: number;
  end: number | null;
  /** `stopped`: the job ended while it ran. */
  status: 'running' | 'ok' | 'error' | 'stopped';
  /** Streamed output, stdout and stderr in the order they came. */
  output: Array<{ name: string; text: string }>;
  /** Whether earlier streamed output was dropped here to keep the tail short. */
  clipped: boolean;
  /** Results and displays, as text. */
  results: Array<{ type: string; text: string }>;
  error: { ename: string; evalue: string; traceback: string[] } | null;
  /** Characters of its output the runner left out (known at its end). */
  truncated: number;
  /** Whether the runner stopped keeping its output (the rest is in the log). */
  limited: boolean;
}

export interface IProgressState {
  /** How many code cells run (null until the notebook started). */
  total: number | null;
  cells: ICellProgress[];
  done: { status: string; message?: string } | null;
}

export function emptyProgress(): IProgressState {
  return { total: null, cells: [], done: null };
}

function appendOutput(cell: ICellProgress, name: string, text: string): ICellProgress {
  const output = [...cell.output];
  const last = output[output.length - 1];
  if (last && last.name === name) {
    output[output.length - 1] = { name, text: last.text + text };
  } else {
    output.push({ name, text });
  }
  let size = output.reduce((n, o) => n + o.text.length, 0);
  let clipped = cell.clipped;
  while (size > MAX_CELL_CHARS && output.length > 0) {
    const extra = size - MAX_CELL_CHARS;
    if (output[0].text.length <= extra) {
      size -= output.shift()!.text.length;
    } else {
      output[0] = { ...output[0], text: output[0].text.slice(extra) };
      size -= extra;
    }
    clipped = true;
  }
  return { ...cell, output, clipped };
}

/** The state after `events` (a new state; `state` is left as it was). */
export function foldProgress(state: IProgressState, events: IProgressEvent[]): IProgressState {
  let { total, done } = state;
  const cells = [...state.cells];
  const at = (number: number) => cells.findIndex(c => c.cell === number);
  for (const event of events) {
    switch (event.event) {
      case 'notebook':
        total = event.cells;
        break;
      case 'start': {
        const cell: ICellProgress = {
          cell: event.cell,
          source: event.source ?? '',
          injected: !!event.injected,
          start: event.time,
          end: null,
          status: 'running',
          output: [],
          clipped: false,
          results: [],
          error: null,
          truncated: 0,
          limited: false
        };
        const i = at(event.cell);
        if (i >= 0) {
          cells[i] = cell;
        } else {
          cells.push(cell);
        }
        break;
      }
      case 'output': {
        const i = at(event.cell);
        if (i >= 0 && event.text) {
          cells[i] = appendOutput(cells[i], event.name, event.text);
        }
        if (i >= 0 && event.truncated) {
          cells[i] = { ...cells[i], limited: true };
        }
        break;
      }
      case 'end': {
        const i = at(event.cell);
        if (i >= 0) {
          cells[i] = {
            ...cells[i],
            end: event.time,
            status: event.status === 'error' ? 'error' : 'ok',
            results: event.outputs ?? [],
            error: event.error ?? null,
            truncated: event.truncated ?? 0,
            limited: cells[i].limited || !!event.truncated
          };
        }
        break;
      }
      case 'done':
        done = { status: event.status, ...(event.message ? { message: event.message } : {}) };
        break;
      default:
        break; // an event of a newer runner
    }
  }
  return { total, cells, done };
}

/** The cell running now, or null. */
export function runningCell(state: IProgressState): ICellProgress | null {
  return state.cells.find(c => c.status === 'running') ?? null;
}

/** The cell whose error ended the notebook, or null. */
export function failedCell(state: IProgressState): ICellProgress | null {
  return state.cells.find(c => c.status === 'error') ?? null;
}

/** A cell's time in seconds: to its end, or to `now` (epoch seconds) while it runs. */
export function cellElapsed(cell: ICellProgress, now: number): number {
  return Math.max(0, (cell.end ?? now) - cell.start);
}

/**
 * One job's progress, polled incrementally while it is `visible` and not `complete`; the poll
 * backs off while nothing happens. A cell still running when the job ended is `stopped`.
 */
export class JobProgressModel extends PollingModel<boolean> {
  constructor(options: JobProgressModel.IOptions) {
    const interval = options.interval ?? PROGRESS_INTERVAL;
    super({
      name: `infinstor-jupyterlab:job-progress:${options.jobId}`,
      interval,
      maxInterval: MAX_PROGRESS_INTERVAL,
      autoStart: options.autoStart
    });
    this._client = options.client;
    this.jobId = options.jobId;
    this._visible = options.visible ?? true;
    this._baseInterval = interval;
    this._nextInterval = interval;
  }

  readonly jobId: string;

  get state(): IProgressState {
    return this._state;
  }

  /** Whether the job ended and every event was read. */
  get complete(): boolean {
    return this._complete;
  }

  /** The job status the server reported with the last page. */
  get status(): string {
    return this._status;
  }

  /** The server's clock (epoch seconds) at browser time `now` (ms). */
  serverNow(now: number): number {
    return now / 1000 + this._skew;
  }

  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (value === this._visible) {
      return;
    }
    this._visible = value;
    if (value && !this._complete) {
      void this.refresh().catch(() => undefined);
    }
  }

  /** Whether the poll is scheduled to ask the server. */
  get polling(): boolean {
    return !this.isDisposed && this._visible && !this._complete;
  }

  protected standby(): boolean | Poll.Standby {
    return !this._visible || this._complete || 'when-hidden';
  }

  /** Read every page available (the server caps each); resolves whether anything came. */
  protected async request(): Promise<boolean> {
    let grew = false;
    for (let i = 0; i < 50; i++) {
      const page = await this._client.readProgress(this.jobId, this._offset);
      if (this.isDisposed) {
        return grew;
      }
      this._skew = page.now - Date.now() / 1000;
      this._status = page.status;
      this._complete = page.complete;
      if (page.events.length) {
        this._state = foldProgress(this._state, page.events);
        grew = true;
      }
      const advanced = page.next_offset > this._offset;
      this._offset = Math.max(this._offset, page.next_offset);
      if (page.complete || !advanced) {
        break;
      }
    }
    if (this._complete && runningCell(this._state)) {
      this._state = {
        ...this._state,
        cells: this._state.cells.map(c => (c.status === 'running' ? { ...c, status: 'stopped' } : c))
      };
    }
    return grew;
  }

  protected apply(grew: boolean): void {
    this._nextInterval = grew ? this._baseInterval : Math.min(this.interval * 2, MAX_PROGRESS_INTERVAL);
  }

  protected pollInterval(): number {
    return this._nextInterval;
  }

  private _client: IJobsClient;
  private _state: IProgressState = emptyProgress();
  private _offset = 0;
  private _complete = false;
  private _status = '';
  private _skew = 0;
  private _visible: boolean;
  private _baseInterval: number;
  private _nextInterval: number;
}

export namespace JobProgressModel {
  export interface IOptions {
    client: IJobsClient;
    jobId: string;
    visible?: boolean;
    /** Start polling at once (default true). */
    autoStart?: boolean;
    interval?: number;
  }
}
