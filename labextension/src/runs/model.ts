/**
 * The runs of one experiment, shared by its runs tab and the sidebar's compact list: loaded a
 * page at a time (MLflow's page tokens; the filter and, where MLflow can, the sort done by the
 * server), and live while a view of them is visible.
 *
 * Live: a cheap probe (the newest runs, as many as reach back to the oldest running one, with
 * the filter) every few seconds, backing off while nothing changes; when its answer changes,
 * those runs are merged into the loaded ones (a new run, a running run's metrics or status, a
 * finished run) without asking the pages again. Only when more runs are new than the probe saw
 * is the newest page asked. A write through the lab's MLflow client makes it check at once.
 */
import { JSONValue } from '@lumino/coreutils';
import { Poll } from '@lumino/polling';

import { asError } from '../common/pollingModel';
import { columnValue, compareValues, isActive, orderByFor, quoteString, runFilter } from '../mlflow/format';
import { ILiveOptions, LiveModel, probeSize, runSignature } from '../mlflow/models';
import { IRun } from '../mlflow/types';
import { IMlflowClient } from '../tokens';
import { DEFAULT_SORT, ISort } from './viewState';

type Answer =
  | { kind: 'page'; runs: IRun[]; next: string | null }
  | { kind: 'merge'; runs: IRun[] };

/** What a probe saw: the newest runs (all there are, if `complete`) and running runs older than those. */
interface IProbed {
  window: IRun[];
  complete: boolean;
  older: IRun[];
}

/** MLflow's most run ids in one `attributes.run_id IN (…)` search of ours. */
const IDS_PER_SEARCH = 100;

export interface IRunsQuery {
  filter: string;
  sort: ISort;
}

export class ExperimentRunsModel extends LiveModel<Answer> {
  constructor(options: ExperimentRunsModel.IOptions) {
    super(`runs-${options.experimentId}`, { ...options, visible: false });
    this.experimentId = options.experimentId;
    this.firstPageSize = options.firstPageSize ?? 50;
    this.pageSize = options.pageSize ?? 200;
    this._query = { filter: options.query?.filter ?? '', sort: options.query?.sort ?? DEFAULT_SORT };
  }

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
  /** Whether the current query's first page is due or loading. */
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
   * Tell the model whether a view of it is on screen (by view: the runs tab, the sidebar's
   * list): it asks the server only while one is, and loads when the first one shows.
   */
  setVisible(viewer: object, visible: boolean): void {
    if (visible) {
      this._viewers.add(viewer);
    } else {
      this._viewers.delete(viewer);
    }
    this.visible = this._viewers.size > 0;
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

  /**
   * Load the first page again (what is loaded stays, marked stale, until it comes); while no
   * view shows the runs, once one does.
   */
  reload(): void {
    if (this.isDisposed) {
      return;
    }
    this.invalidate();
    this._hasPage = false;
    this._next = null;
    this._moreError = null;
    this._invalid = false;
    this._busy = true;
    this.emitChanged();
    this.refresh().catch(() => undefined); // the error is the model's `error`
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
    const question = this._question;
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
      if (question !== this._question || this.isDisposed) {
        return;
      }
      const seen = new Set(this._runs.map(r => r.info.run_id));
      const runs = this._runs.concat(page.items.filter(r => !seen.has(r.info.run_id)));
      this._runs = this.serverSorted ? runs : this._sorted(runs);
      this._next = page.nextPageToken;
      this.markReceived();
    } catch (reason) {
      if (question === this._question) {
        this._moreError = asError(reason);
      }
    } finally {
      if (question === this._question) {
        this._loadingMore = false;
      }
      this.emitChanged();
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
    // A filter MLflow refused: asking again won't help (a new query asks).
    return this._invalid ? true : super.standby();
  }

  protected invalidate(): void {
    this._question++;
    this._probed = null;
    this._loadingMore = false;
    super.invalidate();
  }

  /** The newest runs (and running runs older than those), with the filter: cheap. */
  protected async probe(): Promise<JSONValue> {
    // Before a first page under a sort other than newest first, the probe is asked first: a
    // filter MLflow refuses fails here, not in `request`.
    const question = this._question;
    try {
      return await this._probe();
    } catch (reason) {
      this._refused(question, reason);
      throw reason;
    }
  }

  private async _probe(): Promise<JSONValue> {
    const size = probeSize(this._runs);
    const filter = runFilter(this._query.filter);
    const page = await this.client.searchRuns({
      experimentIds: [this.experimentId],
      filter,
      orderBy: NEWEST_FIRST,
      maxResults: size
    });
    const complete = page.items.length < size;
    // Running runs the window does not reach (rare: more than PROBE_MAX_RUNS runs since):
    // asked by id, only while there are any.
    const inWindow = new Set(page.items.map(r => r.info.run_id));
    const olderIds = complete
      ? []
      : this._runs
          .filter(r => isActive(r.info.status) && !inWindow.has(r.info.run_id))
          .map(r => r.info.run_id)
          .sort()
          .slice(0, IDS_PER_SEARCH);
    const older = olderIds.length
      ? (
          await this.client.searchRuns({
            experimentIds: [this.experimentId],
            filter: `attributes.run_id IN (${olderIds.map(quoteString).join(', ')})`,
            maxResults: olderIds.length
          })
        ).items.sort((a, b) => a.info.run_id.localeCompare(b.info.run_id))
      : [];
    this._probed = { window: page.items, complete, older };
    return fingerprint(page.items, older);
  }

  /** With the default sort (newest first) the first page holds what the probe would answer. */
  protected fingerprintInAnswer(): boolean {
    return !this._hasPage && isNewestFirst(this._query.sort);
  }

  protected fingerprintOf(answer: Answer): JSONValue | undefined {
    if (answer.kind !== 'page') {
      return undefined;
    }
    const size = probeSize(answer.runs);
    const window = answer.runs.slice(0, size);
    const older =
      window.length < size
        ? []
        : answer.runs
            .slice(size)
            .filter(r => isActive(r.info.status))
            .sort((a, b) => a.info.run_id.localeCompare(b.info.run_id))
            .slice(0, IDS_PER_SEARCH);
    return fingerprint(window, older);
  }

  protected async request(): Promise<Answer> {
    const question = this._question;
    const probed = this._probed;
    this._probed = null;
    try {
      if (!this._hasPage || !probed) {
        return await this._firstPage();
      }
      // A live check saw a change: take the probed runs in, unless they may not be all the new
      // ones (the probe saw as many runs as it asked for, none of them known): then the newest
      // page.
      const known = new Set(this._runs.map(r => r.info.run_id));
      if (probed.complete || probed.window.some(r => known.has(r.info.run_id))) {
        return { kind: 'merge', runs: [...probed.window, ...probed.older] };
      }
      const page = await this.client.searchRuns({
        experimentIds: [this.experimentId],
        filter: runFilter(this._query.filter),
        orderBy: NEWEST_FIRST,
        maxResults: this.pageSize
      });
      return { kind: 'merge', runs: [...page.items, ...probed.older] };
    } catch (reason) {
      this._refused(question, reason);
      throw reason;
    }
  }

  /** A request for `question` failed: if what is on screen answers another query, clear it (the error says why). */
  private _refused(question: number, reason: unknown): void {
    if (question === this._question && !this._hasPage) {
      this._runs = [];
      this._next = null;
      this._busy = false;
      this._invalid = (reason as { status?: number }).status === 400;
    }
  }

  protected apply(answer: Answer, first: boolean): boolean {
    if (answer.kind === 'page') {
      this._runs = this.serverSorted ? answer.runs : this._sorted(answer.runs);
      this._next = answer.next;
      this._hasPage = true;
      this._busy = false;
      return true;
    }
    const byId = new Map(answer.runs.map(r => [r.info.run_id, r]));
    let changed = false;
    const runs = this._runs.map(r => {
      const u = byId.get(r.info.run_id);
      byId.delete(r.info.run_id);
      if (u && runSignature(u) !== runSignature(r)) {
        changed = true;
        return u;
      }
      return r;
    });
    const fresh = [...byId.values()];
    changed = changed || fresh.length > 0 || first;
    this._runs =
      this.serverSorted && isNewestFirst(this._query.sort) ? fresh.concat(runs) : this._sorted(fresh.concat(runs));
    return changed;
  }

  private async _firstPage(): Promise<Answer> {
    const page = await this.client.searchRuns({
      experimentIds: [this.experimentId],
      filter: runFilter(this._query.filter),
      orderBy: this._orderBy(),
      maxResults: this.firstPageSize
    });
    return { kind: 'page', runs: page.items, next: page.nextPageToken };
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
  /** Which query the answers under way belong to (see `invalidate`). */
  private _question = 0;
  private _hasPage = false;
  /** The first page of the current query is due: true from the start. */
  private _busy = true;
  private _invalid = false;
  private _loadingMore = false;
  private _moreError: Error | null = null;
  private _probed: IProbed | null = null;
  private _viewers = new Set<object>();
}

export namespace ExperimentRunsModel {
  export interface IOptions extends ILiveOptions {
    client: IMlflowClient;
    experimentId: string;
    query?: Partial<IRunsQuery>;
    firstPageSize?: number;
    pageSize?: number;
  }
}

/** The newest runs first (with a tiebreaker): the probe's order and the default sort's. */
const NEWEST_FIRST = ['attributes.start_time DESC', 'attributes.run_id ASC'];

function isNewestFirst(sort: ISort): boolean {
  return sort.column === 'start' && sort.desc;
}

/** The probe's answer: which runs, and what each looks like now. */
function fingerprint(window: IRun[], older: IRun[]): JSONValue {
  return [window.map(r => [r.info.run_id, runSignature(r)]), older.map(r => [r.info.run_id, runSignature(r)])];
}
