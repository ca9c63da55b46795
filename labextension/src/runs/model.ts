/**
 * The runs of one experiment, shared by its runs tab and the sidebar's compact list: loaded a
 * page at a time (MLflow's page tokens; the filter and, where MLflow can, the sort done by the
 * server), kept fresh by a PollingModel while a view of them is visible.
 */
import { Poll } from '@lumino/polling';

import { PollingModel, asError } from '../common/pollingModel';
import { MlflowClient } from '../mlflow/client';
import { columnValue, compareValues, isActive, orderByFor, quoteString, runFilter } from '../mlflow/format';
import { IRun } from '../mlflow/types';
import { DEFAULT_SORT, ISort } from './viewState';

/** Poll interval while some loaded run is active, and while none is (ms). */
export const ACTIVE_INTERVAL = 5000;
export const IDLE_INTERVAL = 15000;
export const MAX_INTERVAL = 60000;

type Answer =
  | { kind: 'page'; seq: number; runs: IRun[]; next: string | null }
  | { kind: 'tick'; seq: number; updated: IRun[]; fresh: IRun[] };

export interface IRunsQuery {
  filter: string;
  sort: ISort;
}

export class ExperimentRunsModel extends PollingModel<Answer> {
  constructor(options: ExperimentRunsModel.IOptions) {
    super({
      name: `infinstor-jupyterlab:runs-${options.experimentId}`,
      interval: options.interval ?? ACTIVE_INTERVAL,
      maxInterval: options.maxInterval ?? MAX_INTERVAL,
      autoStart: true
    });
    this.client = options.client;
    this.experimentId = options.experimentId;
    this.firstPageSize = options.firstPageSize ?? 50;
    this.pageSize = options.pageSize ?? 200;
    this._activeInterval = options.interval ?? ACTIVE_INTERVAL;
    this._idleInterval = options.idleInterval ?? IDLE_INTERVAL;
    this._maxInterval = options.maxInterval ?? MAX_INTERVAL;
    this._query = { filter: options.query?.filter ?? '', sort: options.query?.sort ?? DEFAULT_SORT };
  }

  readonly client: MlflowClient;
  readonly experimentId: string;
  /** The first page is small: the first rows come sooner. */
  readonly firstPageSize: number;
  readonly pageSize: number;

  /** The loaded runs, in the query's order. */
  get runs(): readonly IRun[] {
    return this._runs;
  }
  get query(): IRunsQuery {
    return this._query;
  }
  /** Whether more runs exist than are loaded. */
  get hasMore(): boolean {
    return this._next !== null;
  }
  /** Whether the rows shown belong to an earlier query (the new one is loading). */
  get stale(): boolean {
    return this._busy && this._runs.length > 0;
  }
  /** Whether the current query's first page is loading. */
  get busy(): boolean {
    return this._busy;
  }
  /** Whether the current query has an answer (rows, possibly none). */
  get hasPage(): boolean {
    return this._hasPage;
  }
  get loadingMore(): boolean {
    return this._loadingMore;
  }
  /** Whether the current sort is done by MLflow (else: over the loaded rows). */
  get serverSorted(): boolean {
    return orderByFor(this._query.sort.column, this._query.sort.desc) !== null;
  }

  /**
   * Tell the model whether a view of it is visible (by view): it polls only while one is,
   * and loads when the first one shows.
   */
  setVisible(viewer: object, visible: boolean): void {
    const had = this._viewers.size > 0;
    if (visible) {
      this._viewers.add(viewer);
    } else {
      this._viewers.delete(viewer);
    }
    if (!had && this._viewers.size > 0) {
      if (!this._hasPage) {
        this._loadNow();
      } else if (Date.now() - this.fetchedAt > this._activeInterval) {
        void this.refresh();
      }
    }
  }

  /**
   * Change the filter or the sort: the rows shown are marked stale until the new answer comes
   * (then replaced; after an error, cleared).
   */
  setQuery(query: IRunsQuery): void {
    const same =
      query.filter.trim() === this._query.filter.trim() &&
      query.sort.column === this._query.sort.column &&
      query.sort.desc === this._query.sort.desc;
    if (same) {
      return;
    }
    const onlySort = query.filter.trim() === this._query.filter.trim();
    this._query = { filter: query.filter, sort: { ...query.sort } };
    if (onlySort && !this.serverSorted && this._hasPage && !this._busy) {
      // MLflow cannot sort by it: sort the loaded rows, no request.
      this._runs = this._sorted(this._runs);
      this.emitChanged();
      return;
    }
    this.reload();
  }

  /** Load the first page again (what is loaded stays, marked stale, until it comes). */
  reload(): void {
    this._seq++;
    this._hasPage = false;
    this._next = null;
    this._moreError = null;
    this._invalid = false;
    this._loadNow();
  }

  /** The error of the last "load more", if it failed. */
  get moreError(): Error | null {
    return this._moreError;
  }

  /** Load the next page (no-op while loading or at the end). */
  async loadMore(): Promise<void> {
    if (this._busy || this._loadingMore || this._next === null || this.isDisposed) {
      return;
    }
    const seq = this._seq;
    this._loadingMore = true;
    this._moreError = null;
    this.emitChanged();
    try {
      const page = await this.client.searchRuns({
        experimentIds: [this.experimentId],
        filter: runFilter(this._query.filter),
        orderBy: this._orderBy(),
        maxResults: this.pageSize,
        pageToken: this._next
      });
      if (seq !== this._seq || this.isDisposed) {
        return;
      }
      const seen = new Set(this._runs.map(r => r.info.run_id));
      const runs = this._runs.concat(page.items.filter(r => !seen.has(r.info.run_id)));
      this._runs = this.serverSorted ? runs : this._sorted(runs);
      this._next = page.nextPageToken;
      this.markReceived();
    } catch (reason) {
      if (seq === this._seq) {
        this._moreError = asError(reason);
      }
    } finally {
      if (seq === this._seq) {
        this._loadingMore = false;
      }
      if (!this.isDisposed) {
        this.emitChanged();
      }
    }
  }

  /** Replace runs in place (e.g. after a tag edit elsewhere). */
  updateRuns(updated: IRun[]): void {
    const byId = new Map(updated.map(r => [r.info.run_id, r]));
    if (this._runs.some(r => byId.has(r.info.run_id))) {
      this._runs = this._runs.map(r => byId.get(r.info.run_id) ?? r);
      this.emitChanged();
    }
  }

  protected standby(): boolean | Poll.Standby {
    // Nobody looks, a first page is on its way, or the filter is invalid (asking again won't help).
    if (this._viewers.size === 0 || this._busy || this._invalid) {
      return true;
    }
    return 'when-hidden';
  }

  protected pollInterval(): number {
    const base = this._runs.some(r => isActive(r.info.status)) ? this._activeInterval : this._idleInterval;
    // Back off while nothing changes.
    return Math.min(this._maxInterval, base * 2 ** Math.min(this._quiet, 4));
  }

  protected isStale(answer: Answer): boolean {
    return answer.seq !== this._seq;
  }

  protected async request(): Promise<Answer> {
    const seq = this._seq;
    if (!this._hasPage) {
      return this._requestPage(seq);
    }
    return this._requestTick(seq);
  }

  protected apply(answer: Answer): void {
    if (answer.kind === 'page') {
      this._runs = this.serverSorted ? answer.runs : this._sorted(answer.runs);
      this._next = answer.next;
      this._hasPage = true;
      this._busy = false;
      this._quiet = 0;
      return;
    }
    const byId = new Map(answer.updated.map(r => [r.info.run_id, r]));
    let changed = false;
    let runs = this._runs.map(r => {
      const u = byId.get(r.info.run_id);
      if (u && signature(u) !== signature(r)) {
        changed = true;
        return u;
      }
      return r;
    });
    const known = new Set(runs.map(r => r.info.run_id));
    const fresh = answer.fresh.filter(r => !known.has(r.info.run_id));
    if (fresh.length) {
      changed = true;
      const newestFirst = this._query.sort.column === 'start' && this._query.sort.desc;
      runs = newestFirst ? fresh.concat(runs) : this._sorted(fresh.concat(runs));
    }
    this._runs = runs;
    this._quiet = changed ? 0 : this._quiet + 1;
  }

  private _loadNow(): void {
    if (this.isDisposed) {
      return;
    }
    this._busy = true;
    this.emitChanged();
    this.load().catch(() => undefined); // the error is the model's `error`
  }

  private async _requestPage(seq: number): Promise<Answer> {
    this._busy = true;
    try {
      const page = await this.client.searchRuns({
        experimentIds: [this.experimentId],
        filter: runFilter(this._query.filter),
        orderBy: this._orderBy(),
        maxResults: this.firstPageSize
      });
      return { kind: 'page', seq, runs: page.items, next: page.nextPageToken };
    } catch (reason) {
      if (seq !== this._seq) {
        // A newer query was asked since: this failure no longer matters (dropped as stale).
        return { kind: 'page', seq, runs: [], next: null };
      }
      // What is on screen answers another query: clear it; the error says why.
      this._runs = [];
      this._next = null;
      this._busy = false;
      this._invalid = (reason as { status?: number }).status === 400;
      throw reason;
    }
  }

  /** Refresh the active runs and pick up runs started since the newest one loaded. */
  private async _requestTick(seq: number): Promise<Answer> {
    try {
      return await this._tick(seq);
    } catch (reason) {
      if (seq !== this._seq) {
        return { kind: 'tick', seq, updated: [], fresh: [] };
      }
      throw reason;
    }
  }

  private async _tick(seq: number): Promise<Answer> {
    const active = this._runs.filter(r => isActive(r.info.status)).map(r => r.info.run_id);
    const updated: IRun[] = [];
    for (let i = 0; i < active.length; i += 100) {
      const ids = active.slice(i, i + 100).map(quoteString).join(', ');
      const page = await this.client.searchRuns({
        experimentIds: [this.experimentId],
        filter: `attributes.run_id IN (${ids})`,
        maxResults: 100
      });
      updated.push(...page.items);
    }
    const newest = this._runs.reduce((t, r) => Math.max(t, r.info.start_time ?? 0), 0);
    const filter = runFilter(this._query.filter);
    const since = `attributes.start_time >= ${newest}`;
    const page = await this.client.searchRuns({
      experimentIds: [this.experimentId],
      filter: filter ? `${filter} and ${since}` : since,
      orderBy: ['attributes.start_time DESC'],
      maxResults: 50
    });
    return { kind: 'tick', seq, updated, fresh: page.items };
  }

  private _orderBy(): string[] {
    const { column, desc } = this._query.sort;
    const order = orderByFor(column, desc);
    const out = order ? [order] : ['attributes.start_time DESC'];
    // A stable tiebreaker so page tokens walk a consistent order.
    out.push('attributes.run_id ASC');
    return out;
  }

  private _sorted(runs: IRun[]): IRun[] {
    const { column, desc } = this._query.sort;
    const now = Date.now();
    return runs.slice().sort((a, b) => {
      const c = compareValues(columnValue(a, column, now), columnValue(b, column, now));
      return desc ? -c : c;
    });
  }

  private _query: IRunsQuery;
  private _runs: IRun[] = [];
  private _next: string | null = null;
  private _seq = 0;
  private _hasPage = false;
  private _busy = false;
  private _invalid = false;
  private _loadingMore = false;
  private _moreError: Error | null = null;
  private _quiet = 0;
  private _viewers = new Set<object>();
  private _activeInterval: number;
  private _idleInterval: number;
  private _maxInterval: number;
}

export namespace ExperimentRunsModel {
  export interface IOptions {
    client: MlflowClient;
    experimentId: string;
    query?: Partial<IRunsQuery>;
    firstPageSize?: number;
    pageSize?: number;
    /** Poll interval while a loaded run is active (ms). */
    interval?: number;
    /** Poll interval while none is (ms). */
    idleInterval?: number;
    maxInterval?: number;
  }
}

/** What a poll compares to tell whether a run changed. */
function signature(run: IRun): string {
  const metrics = (run.data.metrics ?? []).map(m => `${m.key}=${m.value}@${m.step}`).join(',');
  return `${run.info.status}|${run.info.end_time ?? ''}|${metrics}|${(run.data.tags ?? []).length}|${(run.data.params ?? []).length}`;
}
