/**
 * Models of the MLflow views: they fetch through {@link MlflowClient}, keep
 * state, poll with `@lumino/polling` and announce changes with
 * `@lumino/signaling`. No DOM here; the views render them.
 */
import { IDisposable } from '@lumino/disposable';
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { MlflowClient } from './client';
import {
  compareValues,
  ColumnId,
  columnValue,
  experimentFilter,
  isActive,
  modelFilter,
  orderByFor,
  PARENT_RUN_TAG,
  quoteKey,
  quoteString,
  SOURCE_NAME_TAG,
  tagMap
} from './format';
import { IExperiment, IMetricPoint, IModelVersion, IRegisteredModel, IRun } from './types';

/**
 * Base: a `changed` signal, loading/error state, disposal.
 */
export abstract class BaseModel implements IDisposable {
  get changed(): ISignal<this, void> {
    return this._changed;
  }
  get loading(): boolean {
    return this._loading;
  }
  get error(): Error | null {
    return this._error;
  }
  get isDisposed(): boolean {
    return this._isDisposed;
  }
  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }
  protected emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }
  protected _loading = false;
  protected _error: Error | null = null;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

// -- experiments ----------------------------------------------------------------------------------

/**
 * The experiments list: a search (plain text = name filter, or MLflow search
 * syntax), all pages loaded (experiments are few compared with runs).
 */
export class ExperimentsModel extends BaseModel {
  constructor(options: { client: MlflowClient; maxPages?: number }) {
    super();
    this.client = options.client;
    this._maxPages = options.maxPages ?? 20;
  }

  readonly client: MlflowClient;

  get experiments(): IExperiment[] {
    return this._experiments;
  }
  get query(): string {
    return this._query;
  }
  /** Whether more experiments exist than were loaded. */
  get truncated(): boolean {
    return this._truncated;
  }
  /** Whether a first answer (or error) has come. */
  get loaded(): boolean {
    return this._loaded;
  }

  async setQuery(query: string): Promise<void> {
    if (query === this._query && this._loaded) {
      return;
    }
    this._query = query;
    await this.refresh();
  }

  async refresh(): Promise<void> {
    const seq = ++this._seq;
    this._loading = true;
    this.emit();
    try {
      const filter = experimentFilter(this._query);
      const all: IExperiment[] = [];
      let token: string | null = null;
      let pages = 0;
      do {
        const page = await this.client.searchExperiments({
          filter,
          pageToken: token,
          orderBy: ['last_update_time DESC'],
          maxResults: 500
        });
        all.push(...page.items);
        token = page.nextPageToken;
        pages++;
      } while (token && pages < this._maxPages);
      if (seq !== this._seq) {
        return;
      }
      this._experiments = all;
      this._truncated = token !== null;
      this._error = null;
    } catch (reason) {
      if (seq !== this._seq) {
        return;
      }
      this._error = asError(reason);
    }
    this._loading = false;
    this._loaded = true;
    this.emit();
  }

  /** Create an experiment; the server's refusal is thrown to the caller. */
  async create(name: string): Promise<string> {
    const id = await this.client.createExperiment(name.trim());
    await this.refresh();
    return id;
  }

  async rename(experimentId: string, name: string): Promise<void> {
    await this.client.renameExperiment(experimentId, name.trim());
    await this.refresh();
  }

  async remove(experimentId: string): Promise<void> {
    await this.client.deleteExperiment(experimentId);
    await this.refresh();
  }

  private _experiments: IExperiment[] = [];
  private _query = '';
  private _seq = 0;
  private _loaded = false;
  private _truncated = false;
  private _maxPages: number;
}

/**
 * Owner of an experiment, from its tags.
 */
export function experimentOwner(experiment: IExperiment): string {
  const tags = tagMap(experiment.tags);
  return tags['mlflow.owner'] || tags['infinstor.owner'] || tags['mlflow.user'] || '';
}

// -- runs -----------------------------------------------------------------------------------------

export interface ISort {
  column: ColumnId;
  desc: boolean;
}

/**
 * Initial interval of the running-runs poll, and its back-off ceiling (ms).
 */
export const RUNS_POLL_INTERVAL = 5000;
export const RUNS_POLL_MAX = 60000;

/**
 * Runs of one or more experiments, loaded a page at a time with MLflow's
 * page tokens (server-side filter and `order_by`; columns MLflow cannot sort
 * are sorted over the loaded rows).
 *
 * While runs are RUNNING it polls them (every 5 s, backing off to a minute
 * while nothing changes, also after errors) and picks up new runs; the poll
 * stands by while the view is hidden (`visible = false`) or the page is.
 */
export class RunsModel extends BaseModel {
  constructor(options: RunsModel.IOptions) {
    super();
    this.client = options.client;
    this.experimentIds = options.experimentIds;
    this.pageSize = options.pageSize ?? 100;
    this._filter = options.filter ?? '';
    this._sort = options.sort ?? { column: 'start', desc: true };
    this._interval = options.pollInterval ?? RUNS_POLL_INTERVAL;
    this._maxInterval = options.maxPollInterval ?? RUNS_POLL_MAX;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
      frequency: { interval: this._interval, backoff: true, max: this._maxInterval },
      name: 'infinstor-jupyterlab:runs',
      standby: () => (!this._visible || !this._hasActive() ? true : 'when-hidden')
    });
    void this._poll.start();
  }

  readonly client: MlflowClient;
  readonly experimentIds: string[];
  readonly pageSize: number;

  get runs(): IRun[] {
    return this._runs;
  }
  get filter(): string {
    return this._filter;
  }
  get sort(): ISort {
    return this._sort;
  }
  /** Whether the current sort is done by MLflow (else: over the loaded rows). */
  get serverSorted(): boolean {
    return orderByFor(this._sort.column, this._sort.desc) !== null;
  }
  get hasMore(): boolean {
    return this._nextPageToken !== null;
  }
  get loaded(): boolean {
    return this._loaded;
  }
  get poll(): Poll {
    return this._poll;
  }
  /** Current poll interval (ms), grows while nothing changes. */
  get pollInterval(): number {
    return this._poll.frequency.interval;
  }

  /**
   * Whether the view showing these runs is visible; when not, the poll stands by.
   */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (value === this._visible) {
      return;
    }
    this._visible = value;
    if (value && this._hasActive()) {
      void this._poll.refresh();
    }
  }

  async setFilter(filter: string): Promise<void> {
    this._filter = filter.trim();
    await this.reload();
  }

  async setSort(sort: ISort): Promise<void> {
    this._sort = sort;
    if (!this.serverSorted) {
      // Sorted over the loaded rows: no request needed.
      this._runs = this._sorted(this._runs);
      this.emit();
      return;
    }
    await this.reload();
  }

  /**
   * Drop what is loaded and load the first page again.
   */
  async reload(): Promise<void> {
    const seq = ++this._seq;
    this._nextPageToken = null;
    this._loading = true;
    this.emit();
    await this._load(seq, null, true);
  }

  /**
   * Load the next page (no-op while loading or at the end).
   */
  async loadMore(): Promise<void> {
    if (this._loading || this._nextPageToken === null) {
      return;
    }
    this._loading = true;
    this.emit();
    await this._load(this._seq, this._nextPageToken, false);
  }

  /**
   * Replace runs in place (e.g. after a tag edit in the run detail).
   */
  updateRuns(updated: IRun[]): void {
    const byId = new Map(updated.map(r => [r.info.run_id, r]));
    let changed = false;
    this._runs = this._runs.map(r => {
      const u = byId.get(r.info.run_id);
      if (u) {
        changed = true;
        return u;
      }
      return r;
    });
    if (changed) {
      this.emit();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    super.dispose();
  }

  private _orderBy(): string[] {
    const order = orderByFor(this._sort.column, this._sort.desc);
    const out = order ? [order] : ['attributes.start_time DESC'];
    // A stable tiebreaker so page tokens walk a consistent order.
    if (!out[0].startsWith('attributes.run_id')) {
      out.push('attributes.run_id ASC');
    }
    return out;
  }

  private async _load(seq: number, pageToken: string | null, replace: boolean): Promise<void> {
    try {
      const page = await this.client.searchRuns({
        experimentIds: this.experimentIds,
        filter: this._filter,
        orderBy: this._orderBy(),
        maxResults: this.pageSize,
        pageToken
      });
      if (seq !== this._seq || this.isDisposed) {
        return;
      }
      let runs: IRun[];
      if (replace) {
        runs = page.items;
      } else {
        const seen = new Set(this._runs.map(r => r.info.run_id));
        runs = this._runs.concat(page.items.filter(r => !seen.has(r.info.run_id)));
      }
      this._runs = this.serverSorted ? runs : this._sorted(runs);
      this._nextPageToken = page.nextPageToken;
      this._error = null;
      this._loaded = true;
      this._loading = false;
      this.emit();
      if (this._hasActive()) {
        this._resetInterval();
        void this._poll.schedule({ phase: 'reconnected', interval: this._interval });
      }
    } catch (reason) {
      if (seq !== this._seq || this.isDisposed) {
        return;
      }
      this._error = asError(reason);
      this._loaded = true;
      this._loading = false;
      this.emit();
    }
  }

  private _sorted(runs: IRun[]): IRun[] {
    const { column, desc } = this._sort;
    const now = Date.now();
    const sorted = runs.slice().sort((a, b) => {
      const c = compareValues(columnValue(a, column, now), columnValue(b, column, now));
      return desc ? -c : c;
    });
    return sorted;
  }

  private _hasActive(): boolean {
    return this._runs.some(r => isActive(r.info.status));
  }

  private _resetInterval(): void {
    this._poll.frequency = { interval: this._interval, backoff: true, max: this._maxInterval };
  }

  /**
   * One poll: refresh the active runs and pick up new ones.
   */
  private async _tick(): Promise<void> {
    if (!this._loaded || this._loading || this.isDisposed) {
      return;
    }
    const seq = this._seq;
    const active = this._runs.filter(r => isActive(r.info.status)).map(r => r.info.run_id);
    let changed = false;
    const updated: IRun[] = [];
    for (let i = 0; i < active.length; i += 100) {
      const ids = active.slice(i, i + 100).map(quoteString).join(', ');
      const page = await this.client.searchRuns({
        experimentIds: this.experimentIds,
        filter: `attributes.run_id IN (${ids})`,
        maxResults: 100
      });
      updated.push(...page.items);
    }
    // New runs (started since the first page was loaded) that match the filter.
    const first = await this.client.searchRuns({
      experimentIds: this.experimentIds,
      filter: this._filter,
      orderBy: ['attributes.start_time DESC'],
      maxResults: Math.min(this.pageSize, 50)
    });
    if (seq !== this._seq || this.isDisposed) {
      return;
    }
    const byId = new Map(updated.map(r => [r.info.run_id, r]));
    const runs = this._runs.map(r => {
      const u = byId.get(r.info.run_id);
      if (u && runSignature(u) !== runSignature(r)) {
        changed = true;
        return u;
      }
      return r;
    });
    const known = new Set(runs.map(r => r.info.run_id));
    const fresh = first.items.filter(r => !known.has(r.info.run_id));
    if (fresh.length) {
      changed = true;
    }
    this._runs = this.serverSorted && this._sort.column === 'start' && this._sort.desc
      ? fresh.concat(runs)
      : this._sorted(fresh.concat(runs));
    if (changed) {
      this._resetInterval();
      this.emit();
    } else {
      // Nothing changed: back off (double the interval up to the ceiling).
      const interval = Math.min(this._maxInterval, this._poll.frequency.interval * 2);
      this._poll.frequency = { interval, backoff: true, max: this._maxInterval };
    }
  }

  private _runs: IRun[] = [];
  private _filter: string;
  private _sort: ISort;
  private _nextPageToken: string | null = null;
  private _seq = 0;
  private _loaded = false;
  private _visible = true;
  private _interval: number;
  private _maxInterval: number;
  private _poll: Poll;
}

export namespace RunsModel {
  export interface IOptions {
    client: MlflowClient;
    experimentIds: string[];
    filter?: string;
    sort?: ISort;
    pageSize?: number;
    pollInterval?: number;
    maxPollInterval?: number;
  }
}

function runSignature(run: IRun): string {
  const metrics = (run.data.metrics ?? []).map(m => `${m.key}=${m.value}@${m.step}`).join(',');
  return `${run.info.status}|${run.info.end_time ?? ''}|${metrics}|${(run.data.tags ?? []).length}|${(run.data.params ?? []).length}`;
}

/**
 * Keys of params, metrics and tags across runs, sorted (system tags last).
 */
export function availableKeys(runs: IRun[]): { params: string[]; metrics: string[]; tags: string[] } {
  const params = new Set<string>();
  const metrics = new Set<string>();
  const tags = new Set<string>();
  for (const run of runs) {
    run.data.params?.forEach(p => params.add(p.key));
    run.data.metrics?.forEach(m => metrics.add(m.key));
    run.data.tags?.forEach(t => tags.add(t.key));
  }
  const byName = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });
  const tagOrder = (a: string, b: string) =>
    Number(a.startsWith('mlflow.')) - Number(b.startsWith('mlflow.')) || byName(a, b);
  return {
    params: [...params].sort(byName),
    metrics: [...metrics].sort(byName),
    tags: [...tags].sort(tagOrder)
  };
}

// -- run detail -----------------------------------------------------------------------------------

/**
 * One run with its parent and children; polls while the run is active.
 */
export class RunDetailModel extends BaseModel {
  constructor(options: { client: MlflowClient; runId: string; pollInterval?: number }) {
    super();
    this.client = options.client;
    this.runId = options.runId;
    const interval = options.pollInterval ?? RUNS_POLL_INTERVAL;
    this._poll = new Poll({
      auto: false,
      factory: () => this.refresh(true),
      frequency: { interval, backoff: true, max: RUNS_POLL_MAX },
      name: 'infinstor-jupyterlab:run',
      standby: () => (!this._visible || !this._run || !isActive(this._run.info.status) ? true : 'when-hidden')
    });
    void this._poll.start();
  }

  readonly client: MlflowClient;
  readonly runId: string;

  get run(): IRun | null {
    return this._run;
  }
  get parent(): IRun | null {
    return this._parent;
  }
  get children(): IRun[] {
    return this._children;
  }
  set visible(value: boolean) {
    this._visible = value;
  }

  /**
   * Load (or reload) the run, its parent and children.
   *
   * @param quiet do not show the loading state (poll refreshes)
   */
  async refresh(quiet = false): Promise<void> {
    if (!quiet) {
      this._loading = true;
      this.emit();
    }
    try {
      const run = await this.client.getRun(this.runId);
      const parentId = tagMap(run.data.tags)[PARENT_RUN_TAG];
      const [parent, children] = await Promise.all([
        parentId ? this.client.getRun(parentId).catch(() => null) : Promise.resolve(null),
        this.client
          .searchRuns({
            experimentIds: [run.info.experiment_id],
            filter: `tags.${quoteKey(PARENT_RUN_TAG)} = ${quoteString(this.runId)}`,
            orderBy: ['attributes.start_time DESC'],
            maxResults: 200
          })
          .then(p => p.items)
          .catch(() => [] as IRun[])
      ]);
      this._run = run;
      this._parent = parent;
      this._children = children;
      this._error = null;
    } catch (reason) {
      this._error = asError(reason);
    }
    this._loading = false;
    this.emit();
  }

  /**
   * The history of a metric (cached; `force` reloads).
   */
  history(key: string, force = false): Promise<IMetricPoint[]> {
    let h = this._histories.get(key);
    if (!h || force) {
      h = this.client.getMetricHistory(this.runId, key);
      h.catch(() => this._histories.delete(key));
      this._histories.set(key, h);
    }
    return h;
  }

  async setTag(key: string, value: string): Promise<void> {
    await this.client.setTag(this.runId, key, value);
    await this.refresh(true);
  }

  async deleteTag(key: string): Promise<void> {
    await this.client.deleteTag(this.runId, key);
    await this.refresh(true);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    super.dispose();
  }

  get poll(): IPoll<any, any, any> {
    return this._poll;
  }

  private _run: IRun | null = null;
  private _parent: IRun | null = null;
  private _children: IRun[] = [];
  private _visible = true;
  private _histories = new Map<string, Promise<IMetricPoint[]>>();
  private _poll: Poll;
}

// -- comparison -----------------------------------------------------------------------------------

/**
 * Several runs side by side.
 */
export class CompareModel extends BaseModel {
  constructor(options: { client: MlflowClient; runIds: string[] }) {
    super();
    this.client = options.client;
    this.runIds = options.runIds;
  }
  readonly client: MlflowClient;
  readonly runIds: string[];

  get runs(): IRun[] {
    return this._runs;
  }

  async refresh(): Promise<void> {
    this._loading = true;
    this.emit();
    try {
      this._runs = await Promise.all(this.runIds.map(id => this.client.getRun(id)));
      this._error = null;
    } catch (reason) {
      this._error = asError(reason);
    }
    this._loading = false;
    this.emit();
  }

  /** Metric histories of every run for one key (runs without it get []). */
  async histories(key: string): Promise<Array<{ run: IRun; points: IMetricPoint[] }>> {
    return Promise.all(
      this._runs.map(async run => ({
        run,
        points: run.data.metrics?.some(m => m.key === key)
          ? await this.client.getMetricHistory(run.info.run_id, key)
          : []
      }))
    );
  }

  private _runs: IRun[] = [];
}

// -- this notebook --------------------------------------------------------------------------------

/**
 * Runs whose `mlflow.source.name` tag is a given notebook path, newest first,
 * across every experiment the user can see.
 */
export class NotebookRunsModel extends BaseModel {
  constructor(options: { client: MlflowClient; maxResults?: number }) {
    super();
    this.client = options.client;
    this._maxResults = options.maxResults ?? 100;
  }
  readonly client: MlflowClient;

  get path(): string | null {
    return this._path;
  }
  get runs(): IRun[] {
    return this._runs;
  }
  get loaded(): boolean {
    return this._loaded;
  }

  async setPath(path: string | null): Promise<void> {
    if (path === this._path && this._loaded) {
      return;
    }
    this._path = path;
    await this.refresh();
  }

  async refresh(): Promise<void> {
    const seq = ++this._seq;
    const path = this._path;
    if (!path) {
      this._runs = [];
      this._error = null;
      this._loaded = true;
      this._loading = false;
      this.emit();
      return;
    }
    this._loading = true;
    this.emit();
    try {
      const ids: string[] = [];
      let token: string | null = null;
      let pages = 0;
      do {
        const page = await this.client.searchExperiments({ pageToken: token, maxResults: 1000 });
        ids.push(...page.items.map(e => e.experiment_id));
        token = page.nextPageToken;
      } while (token && ++pages < 10);
      let runs: IRun[] = [];
      // MLflow caps experiment_ids per search; query in chunks and merge.
      for (let i = 0; i < ids.length; i += 100) {
        const page = await this.client.searchRuns({
          experimentIds: ids.slice(i, i + 100),
          filter: `tags.${quoteKey(SOURCE_NAME_TAG)} = ${quoteString(path)}`,
          orderBy: ['attributes.start_time DESC'],
          maxResults: this._maxResults
        });
        runs = runs.concat(page.items);
      }
      runs.sort((a, b) => (b.info.start_time ?? 0) - (a.info.start_time ?? 0));
      if (seq !== this._seq) {
        return;
      }
      this._runs = runs.slice(0, this._maxResults);
      this._error = null;
    } catch (reason) {
      if (seq !== this._seq) {
        return;
      }
      this._error = asError(reason);
    }
    this._loaded = true;
    this._loading = false;
    this.emit();
  }

  private _path: string | null = null;
  private _runs: IRun[] = [];
  private _seq = 0;
  private _loaded = false;
  private _maxResults: number;
}

// -- registered models ----------------------------------------------------------------------------

export class RegisteredModelsModel extends BaseModel {
  constructor(options: { client: MlflowClient }) {
    super();
    this.client = options.client;
  }
  readonly client: MlflowClient;

  get models(): IRegisteredModel[] {
    return this._models;
  }
  get query(): string {
    return this._query;
  }
  get loaded(): boolean {
    return this._loaded;
  }

  async setQuery(query: string): Promise<void> {
    this._query = query;
    await this.refresh();
  }

  async refresh(): Promise<void> {
    const seq = ++this._seq;
    this._loading = true;
    this.emit();
    try {
      const all: IRegisteredModel[] = [];
      let token: string | null = null;
      let pages = 0;
      do {
        const page = await this.client.searchRegisteredModels({
          filter: modelFilter(this._query),
          pageToken: token,
          maxResults: 100,
          orderBy: ['name ASC']
        });
        all.push(...page.items);
        token = page.nextPageToken;
      } while (token && ++pages < 20);
      if (seq !== this._seq) {
        return;
      }
      this._models = all;
      this._error = null;
    } catch (reason) {
      if (seq !== this._seq) {
        return;
      }
      this._error = asError(reason);
    }
    this._loading = false;
    this._loaded = true;
    this.emit();
  }

  /** All versions of a model, newest first. */
  async versions(name: string): Promise<IModelVersion[]> {
    const out: IModelVersion[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const page = await this.client.searchModelVersions({
        filter: `name = ${quoteString(name)}`,
        pageToken: token,
        maxResults: 200
      });
      out.push(...page.items);
      token = page.nextPageToken;
    } while (token && ++pages < 20);
    out.sort((a, b) => Number(b.version) - Number(a.version));
    return out;
  }

  private _models: IRegisteredModel[] = [];
  private _query = '';
  private _seq = 0;
  private _loaded = false;
}

/**
 * Aliases pointing at a version (from the registered model's alias list or the version's own).
 */
export function versionAliases(model: IRegisteredModel | null, version: IModelVersion): string[] {
  const own = version.aliases ?? [];
  const fromModel = (model?.aliases ?? []).filter(a => a.version === version.version).map(a => a.alias);
  return [...new Set([...own, ...fromModel])].sort();
}
