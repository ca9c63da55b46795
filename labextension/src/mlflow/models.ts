/**
 * Models of the MLflow views. Each is a {@link PollingModel}: it fetches through the
 * {@link IMlflowClient}, keeps what the view shows, and stays live while the view is visible:
 * a cheap "what changed since" probe (a search for the newest item, `max_results` small)
 * every few seconds, the full request only when the probe's answer changed, backing off while
 * nothing changes, and a check at once when this lab writes (the client's `changed`).
 * No DOM here; the views render them.
 */
import { JSONValue } from '@lumino/coreutils';
import { Poll } from '@lumino/polling';

import { PollingModel } from '../common/pollingModel';
import { IMlflowClient } from '../tokens';
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

// -- how live ---------------------------------------------------------------------------------------

/** Interval of the live views' checks right after a change, in ms. */
export const LIVE_INTERVAL = 2000;

/**
 * The longest interval the checks back off to while nothing changes, in ms: a write made
 * anywhere (a kernel, a job, the CLI, a colleague) shows within it (and a request's time).
 * The `refreshInterval` setting changes it.
 */
export const LIVE_IDLE_INTERVAL = 4000;

/** The longest interval the checks back off to after errors, in ms. */
export const LIVE_ERROR_INTERVAL = 60000;

/**
 * How often a visible list is requested in full even when its probe sees no change, in ms:
 * for the changes a probe cannot see (an experiment shared with you, a tag or an alias set by
 * someone else).
 */
export const LIVE_RELOAD_EVERY = 60000;

/** Options every live MLflow model takes. */
export interface ILiveOptions extends PollingModel.IStartOptions {
  client: IMlflowClient;
  /** The interval right after a change, in ms (default {@link LIVE_INTERVAL}). */
  interval?: number;
  /** The back-off ceiling while nothing changes, in ms (default {@link LIVE_IDLE_INTERVAL}). */
  idleInterval?: number;
  /** See {@link LIVE_RELOAD_EVERY} (0: never). */
  reloadEvery?: number;
}

/**
 * A model of MLflow data that checks at once when this lab writes through the client.
 */
abstract class LiveModel<TAnswer> extends PollingModel<TAnswer> {
  constructor(name: string, options: ILiveOptions, defaults: { reloadEvery?: number } = {}) {
    const interval = options.interval ?? LIVE_INTERVAL;
    super({
      name: `infinstor-jupyterlab:${name}`,
      interval,
      idleInterval: options.idleInterval ?? LIVE_IDLE_INTERVAL,
      maxInterval: Math.max(LIVE_ERROR_INTERVAL, interval),
      reloadEvery: options.reloadEvery ?? defaults.reloadEvery ?? 0,
      autoStart: options.autoStart,
      standby: options.standby,
      visible: options.visible
    });
    this.client = options.client;
    this._interval = interval;
    this.client.changed.connect(this._onWrite, this);
  }

  readonly client: IMlflowClient;

  dispose(): void {
    if (!this.isDisposed) {
      this.client.changed.disconnect(this._onWrite, this);
    }
    super.dispose();
  }

  protected pollInterval(): number {
    return this._interval;
  }

  private _onWrite(): void {
    this.nudge();
  }

  private _interval: number;
}

/** What tells two answers apart, as JSON (for `apply`'s "did anything change"). */
function sameJSON(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// -- experiments ----------------------------------------------------------------------------------

/**
 * A fingerprint of the experiments a filter matches: the one changed last, deleted ones
 * included (MLflow sets `last_update_time` when an experiment is created, renamed, deleted or
 * restored), so a new, renamed or deleted experiment changes it.
 */
async function experimentsFingerprint(client: IMlflowClient, filter: string): Promise<JSONValue> {
  const page = await client.searchExperiments({
    filter,
    orderBy: ['last_update_time DESC'],
    maxResults: 1,
    viewType: 'ALL'
  });
  return page.items.map(e => [e.experiment_id, e.name, e.last_update_time ?? 0, e.lifecycle_stage ?? '']);
}

interface IExperimentsAnswer {
  experiments: IExperiment[];
  truncated: boolean;
}

/**
 * The experiments list: a search (plain text = name filter, or MLflow search syntax), all
 * pages loaded (experiments are few compared with runs), newest change first; live.
 */
export class ExperimentsModel extends LiveModel<IExperimentsAnswer> {
  constructor(options: ExperimentsModel.IOptions) {
    super('experiments', { autoStart: false, ...options }, { reloadEvery: LIVE_RELOAD_EVERY });
    this._maxPages = options.maxPages ?? 20;
  }

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
    return super.loaded || this.error !== null;
  }

  async setQuery(query: string): Promise<void> {
    if (query === this._query && this.loaded) {
      return;
    }
    this._query = query;
    this.invalidate();
    await this.refresh();
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

  protected probe(): Promise<JSONValue> {
    return experimentsFingerprint(this.client, experimentFilter(this._query));
  }

  protected async request(): Promise<IExperimentsAnswer> {
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
    return { experiments: all, truncated: token !== null };
  }

  protected apply(answer: IExperimentsAnswer, first: boolean): boolean {
    const changed = first || !sameJSON(answer, { experiments: this._experiments, truncated: this._truncated });
    this._experiments = answer.experiments;
    this._truncated = answer.truncated;
    return changed;
  }

  private _experiments: IExperiment[] = [];
  private _query = '';
  private _truncated = false;
  private _maxPages: number;
}

export namespace ExperimentsModel {
  export interface IOptions extends ILiveOptions {
    maxPages?: number;
  }
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
 * Initial interval of the runs' checks, and their back-off ceiling after errors (ms).
 */
export const RUNS_POLL_INTERVAL = LIVE_INTERVAL;
export const RUNS_POLL_MAX = LIVE_ERROR_INTERVAL;

/** What changes when a run does: status, end, name, latest metrics, how many tags and params. */
export function runSignature(run: IRun): string {
  const metrics = (run.data.metrics ?? []).map(m => `${m.key}=${m.value}@${m.step}`).join(',');
  return [
    run.info.status,
    run.info.end_time ?? '',
    run.info.run_name ?? '',
    run.info.lifecycle_stage ?? '',
    metrics,
    (run.data.tags ?? []).length,
    (run.data.params ?? []).length
  ].join('|');
}

/** The most runs a probe asks for (to cover the running ones among the newest). */
const PROBE_MAX_RUNS = 50;

/**
 * How many of the newest runs a probe must ask for to see every running one and one run known
 * before (so a new run shows, and whether there are more new runs than it saw).
 */
function probeSize(runs: IRun[]): number {
  return Math.min(PROBE_MAX_RUNS, runningSpan(runs) + 1);
}

/** How many of the newest runs reach back to the oldest running one (at least 1). */
function runningSpan(runs: IRun[]): number {
  let oldestActive = 0;
  for (const run of runs) {
    if (isActive(run.info.status)) {
      oldestActive = Math.max(oldestActive, run.info.start_time ?? 0);
    }
  }
  if (!oldestActive) {
    return 1;
  }
  const newer = runs.filter(r => (r.info.start_time ?? 0) >= oldestActive).length;
  return Math.min(PROBE_MAX_RUNS, Math.max(1, newer));
}

type RunsAnswer =
  | { kind: 'replace'; runs: IRun[]; nextPageToken: string | null }
  | { kind: 'merge'; runs: IRun[] };

/**
 * Runs of one or more experiments, loaded a page at a time with MLflow's page tokens
 * (server-side filter and `order_by`; columns MLflow cannot sort are sorted over the loaded
 * rows); live.
 *
 * While visible it probes the newest runs (as many as it takes to cover the running ones,
 * with the filter): a new run, a running run's latest metrics or status, or a finished run
 * changes the probe's answer, and those runs are merged into the loaded ones (the first
 * page is asked again only when there are more new runs than the probe covered).
 */
export class RunsModel extends LiveModel<RunsAnswer> {
  constructor(options: RunsModel.IOptions) {
    super('runs', {
      autoStart: false,
      ...options,
      interval: options.pollInterval ?? options.interval,
      idleInterval: options.maxPollInterval ?? options.idleInterval
    });
    this.experimentIds = options.experimentIds;
    this.pageSize = options.pageSize ?? 100;
    this._filter = options.filter ?? '';
    this._sort = options.sort ?? { column: 'start', desc: true };
  }

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
  /** Whether a first answer (or error) has come. */
  get loaded(): boolean {
    return super.loaded || this.error !== null;
  }
  /** Whether the first page or the next one is being loaded. */
  get loading(): boolean {
    return this._busy > 0;
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
      this.emitChanged();
      return;
    }
    await this.reload();
  }

  /**
   * Drop what is loaded and load the first page again.
   */
  async reload(): Promise<void> {
    this._replace = true;
    this._nextPageToken = null;
    this.invalidate();
    this._busy++;
    this.emitChanged();
    try {
      await this.refresh();
    } finally {
      this._busy--;
      this.emitChanged();
    }
  }

  /**
   * Load the next page (no-op while loading or at the end).
   */
  async loadMore(): Promise<void> {
    const token = this._nextPageToken;
    if (this.loading || token === null) {
      return;
    }
    this._busy++;
    this.emitChanged();
    const question = this._question;
    try {
      const page = await this.client.searchRuns({
        experimentIds: this.experimentIds,
        filter: this._filter,
        orderBy: this._orderBy(),
        maxResults: this.pageSize,
        pageToken: token
      });
      if (this.isDisposed || question !== this._question) {
        return;
      }
      const seen = new Set(this._runs.map(r => r.info.run_id));
      const runs = this._runs.concat(page.items.filter(r => !seen.has(r.info.run_id)));
      this._runs = this.serverSorted ? runs : this._sorted(runs);
      this._nextPageToken = page.nextPageToken;
      this.markReceived();
    } catch (reason) {
      if (!this.isDisposed && question === this._question) {
        this._moreError = reason instanceof Error ? reason : new Error(String(reason));
      }
    } finally {
      this._busy--;
      this.emitChanged();
    }
  }

  /** The last request's error: the first page's or the live checks', else loading more's. */
  get error(): Error | null {
    return super.error ?? this._moreError;
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
      this.emitChanged();
    }
  }

  protected invalidate(): void {
    this._question++;
    this._probed = null;
    super.invalidate();
  }

  protected async probe(): Promise<JSONValue> {
    const size = probeSize(this._runs);
    const page = await this.client.searchRuns({
      experimentIds: this.experimentIds,
      filter: this._filter,
      orderBy: ['attributes.start_time DESC', 'attributes.run_id ASC'],
      maxResults: size
    });
    this._probed = { runs: page.items, complete: page.items.length < size };
    return page.items.map(r => [r.info.run_id, runSignature(r)]);
  }

  protected async request(): Promise<RunsAnswer> {
    const probed = this._probed;
    this._probed = null;
    if (!this._replace && super.loaded && probed) {
      // A live check saw a change: take the probed runs in, unless they may not be all the new
      // ones (the probe saw as many runs as it asked for, none of them known): then the first
      // page.
      const known = new Set(this._runs.map(r => r.info.run_id));
      if (probed.complete || probed.runs.some(r => known.has(r.info.run_id))) {
        return { kind: 'merge', runs: probed.runs };
      }
      const page = await this.client.searchRuns({
        experimentIds: this.experimentIds,
        filter: this._filter,
        orderBy: ['attributes.start_time DESC', 'attributes.run_id ASC'],
        maxResults: this.pageSize
      });
      return { kind: 'merge', runs: page.items };
    }
    const page = await this.client.searchRuns({
      experimentIds: this.experimentIds,
      filter: this._filter,
      orderBy: this._orderBy(),
      maxResults: this.pageSize
    });
    return { kind: 'replace', runs: page.items, nextPageToken: page.nextPageToken };
  }

  protected apply(answer: RunsAnswer, first: boolean): boolean {
    this._moreError = null;
    if (answer.kind === 'replace') {
      this._replace = false;
      this._runs = this.serverSorted ? answer.runs : this._sorted(answer.runs);
      this._nextPageToken = answer.nextPageToken;
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
    const newestFirst = this.serverSorted && this._sort.column === 'start' && this._sort.desc;
    this._runs = newestFirst ? fresh.concat(runs) : this._sorted(fresh.concat(runs));
    return changed;
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

  private _sorted(runs: IRun[]): IRun[] {
    const { column, desc } = this._sort;
    const now = Date.now();
    return runs.slice().sort((a, b) => {
      const c = compareValues(columnValue(a, column, now), columnValue(b, column, now));
      return desc ? -c : c;
    });
  }

  private _runs: IRun[] = [];
  private _filter: string;
  private _sort: ISort;
  private _nextPageToken: string | null = null;
  /** The newest runs the last probe saw, and whether they are all there are. */
  private _probed: { runs: IRun[]; complete: boolean } | null = null;
  /** Whether the next answer replaces the loaded runs (first page, new filter or sort). */
  private _replace = true;
  private _question = 0;
  private _busy = 0;
  private _moreError: Error | null = null;
}

export namespace RunsModel {
  export interface IOptions extends ILiveOptions {
    experimentIds: string[];
    filter?: string;
    sort?: ISort;
    pageSize?: number;
    /** The interval right after a change, in ms (same as `interval`). */
    pollInterval?: number;
    /** The back-off ceiling while nothing changes, in ms (same as `idleInterval`). */
    maxPollInterval?: number;
  }
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

interface IRunDetailAnswer {
  run: IRun;
  parent: IRun | null;
  children: IRun[];
}

/**
 * One run with its parent and children; live while the run (or one of its children) runs.
 */
export class RunDetailModel extends LiveModel<IRunDetailAnswer> {
  constructor(options: { client: IMlflowClient; runId: string; pollInterval?: number } & ILiveOptions) {
    super('run', { autoStart: false, ...options, interval: options.pollInterval ?? options.interval });
    this.runId = options.runId;
  }

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

  /**
   * Load (or reload) the run, its parent and children.
   *
   * @param quiet kept for callers of the earlier API (a refresh never blanks the view)
   */
  async refresh(quiet = false): Promise<void> {
    await super.refresh();
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

  protected standby(): boolean | Poll.Standby {
    // A finished run (and its finished children) does not change by itself.
    const live = !this._run || isActive(this._run.info.status) || this._children.some(c => isActive(c.info.status));
    return live ? super.standby() : true;
  }

  protected async probe(): Promise<JSONValue> {
    const run = await this.client.getRun(this.runId);
    return runSignature(run);
  }

  protected async request(): Promise<IRunDetailAnswer> {
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
    return { run, parent, children };
  }

  protected apply(answer: IRunDetailAnswer): void {
    this._run = answer.run;
    this._parent = answer.parent;
    this._children = answer.children;
  }

  private _run: IRun | null = null;
  private _parent: IRun | null = null;
  private _children: IRun[] = [];
  private _histories = new Map<string, Promise<IMetricPoint[]>>();
}

// -- comparison -----------------------------------------------------------------------------------

/**
 * Several runs side by side; live while one of them runs.
 */
export class CompareModel extends LiveModel<IRun[]> {
  constructor(options: { client: IMlflowClient; runIds: string[] } & ILiveOptions) {
    super('compare', { autoStart: false, ...options });
    this.runIds = options.runIds;
  }
  readonly runIds: string[];

  get runs(): IRun[] {
    return this._runs;
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

  protected standby(): boolean | Poll.Standby {
    const live = this._runs.length === 0 || this._runs.some(r => isActive(r.info.status));
    return live ? super.standby() : true;
  }

  protected request(): Promise<IRun[]> {
    return Promise.all(this.runIds.map(id => this.client.getRun(id)));
  }

  protected apply(runs: IRun[], first: boolean): boolean {
    const changed = first || runs.map(runSignature).join('\n') !== this._runs.map(runSignature).join('\n');
    this._runs = runs;
    return changed;
  }

  private _runs: IRun[] = [];
}

// -- this notebook --------------------------------------------------------------------------------

/** MLflow caps the experiment ids of one runs search; larger lists are searched in chunks. */
const EXPERIMENTS_PER_SEARCH = 100;

interface INotebookAnswer {
  experimentIds: string[];
  runs: IRun[];
}

/**
 * Runs whose `mlflow.source.name` tag is a given notebook path, newest first, across every
 * experiment the user can see; live.
 *
 * Its probe asks two cheap searches: the experiment changed last (a new experiment must be
 * searched too) and the notebook's newest runs (as many as cover its running ones).
 */
export class NotebookRunsModel extends LiveModel<INotebookAnswer> {
  constructor(options: { client: IMlflowClient; maxResults?: number } & ILiveOptions) {
    super('notebook-runs', { autoStart: false, ...options });
    this._maxResults = options.maxResults ?? 100;
  }

  get path(): string | null {
    return this._path;
  }
  get runs(): IRun[] {
    return this._runs;
  }
  /** Whether a first answer (or error) has come for this path. */
  get loaded(): boolean {
    return super.loaded || this.error !== null;
  }

  async setPath(path: string | null): Promise<void> {
    if (path === this._path && this.loaded) {
      return;
    }
    this._path = path;
    this.invalidate();
    await this.refresh();
  }

  protected async probe(): Promise<JSONValue> {
    const path = this._path;
    if (!path) {
      return null;
    }
    const ids = this._experimentIds;
    const [experiments, runs] = await Promise.all([
      experimentsFingerprint(this.client, ''),
      ids.length
        ? this._search(ids, probeSize(this._runs))
        : Promise.resolve([] as IRun[])
    ]);
    return [experiments, runs.map(r => [r.info.run_id, runSignature(r)])];
  }

  protected async request(): Promise<INotebookAnswer> {
    if (!this._path) {
      return { experimentIds: [], runs: [] };
    }
    const ids: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const page = await this.client.searchExperiments({ pageToken: token, maxResults: 1000 });
      ids.push(...page.items.map(e => e.experiment_id));
      token = page.nextPageToken;
    } while (token && ++pages < 10);
    const runs = await this._search(ids, this._maxResults);
    return { experimentIds: ids, runs };
  }

  protected apply(answer: INotebookAnswer, first: boolean): boolean {
    const changed = first || answer.runs.map(runSignature).join('\n') !== this._runs.map(runSignature).join('\n');
    this._experimentIds = answer.experimentIds;
    this._runs = answer.runs;
    return changed;
  }

  /** The notebook's newest runs in these experiments (searched in chunks, merged). */
  private async _search(ids: string[], maxResults: number): Promise<IRun[]> {
    const filter = `tags.${quoteKey(SOURCE_NAME_TAG)} = ${quoteString(this._path ?? '')}`;
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += EXPERIMENTS_PER_SEARCH) {
      chunks.push(ids.slice(i, i + EXPERIMENTS_PER_SEARCH));
    }
    const pages = await Promise.all(
      chunks.map(chunk =>
        this.client.searchRuns({
          experimentIds: chunk,
          filter,
          orderBy: ['attributes.start_time DESC', 'attributes.run_id ASC'],
          maxResults
        })
      )
    );
    const runs = pages.flatMap(p => p.items);
    runs.sort((a, b) => (b.info.start_time ?? 0) - (a.info.start_time ?? 0));
    return runs.slice(0, maxResults);
  }

  private _path: string | null = null;
  private _experimentIds: string[] = [];
  private _runs: IRun[] = [];
  private _maxResults: number;
}

// -- registered models ----------------------------------------------------------------------------

interface IModelsAnswer {
  models: IRegisteredModel[];
}

/**
 * Registered models (searchable), by name; live. Its probe is the model changed last (MLflow
 * updates a model's `last_updated_timestamp` for a new, changed or deleted version); aliases and
 * tags set elsewhere show at the next full request (every {@link LIVE_RELOAD_EVERY}).
 */
export class RegisteredModelsModel extends LiveModel<IModelsAnswer> {
  constructor(options: ILiveOptions) {
    super('registered-models', { autoStart: false, ...options }, { reloadEvery: LIVE_RELOAD_EVERY });
  }

  get models(): IRegisteredModel[] {
    return this._models;
  }
  get query(): string {
    return this._query;
  }
  /** Whether a first answer (or error) has come. */
  get loaded(): boolean {
    return super.loaded || this.error !== null;
  }

  async setQuery(query: string): Promise<void> {
    if (query === this._query && this.loaded) {
      return;
    }
    this._query = query;
    this.invalidate();
    await this.refresh();
  }

  /** All versions of a model, newest first. */
  versions(name: string): Promise<IModelVersion[]> {
    return allVersions(this.client, name);
  }

  /** The model shown expanded (its versions, live while this list is shown), or null. */
  get expanded(): ModelVersionsModel | null {
    return this._expanded;
  }

  /** Show one model's versions (null: none). */
  expand(name: string | null): void {
    if (name === (this._expanded?.name ?? null)) {
      return;
    }
    this._expanded?.dispose();
    this._expanded = name
      ? new ModelVersionsModel({
          client: this.client,
          name,
          idleInterval: this.idleInterval,
          visible: this.visible
        })
      : null;
    if (this._expanded) {
      void this._expanded.refresh();
    }
    this.emitChanged();
  }

  get visible(): boolean {
    return super.visible;
  }
  set visible(value: boolean) {
    super.visible = value;
    if (this._expanded) {
      this._expanded.visible = value;
    }
  }

  get idleInterval(): number {
    return super.idleInterval;
  }
  set idleInterval(value: number) {
    super.idleInterval = value;
    if (this._expanded) {
      this._expanded.idleInterval = value;
    }
  }

  dispose(): void {
    this._expanded?.dispose();
    this._expanded = null;
    super.dispose();
  }

  protected async probe(): Promise<JSONValue> {
    const page = await this.client.searchRegisteredModels({
      filter: modelFilter(this._query),
      orderBy: ['last_updated_timestamp DESC'],
      maxResults: 1
    });
    return page.items.map(m => [m.name, m.last_updated_timestamp ?? 0]);
  }

  protected async request(): Promise<IModelsAnswer> {
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
    return { models: all };
  }

  protected apply(answer: IModelsAnswer, first: boolean): boolean {
    const changed = first || !sameJSON(answer.models, this._models);
    this._models = answer.models;
    return changed;
  }

  private _models: IRegisteredModel[] = [];
  private _query = '';
  private _expanded: ModelVersionsModel | null = null;
}

/** Every version of a registered model, newest first. */
async function allVersions(client: IMlflowClient, name: string): Promise<IModelVersion[]> {
  const out: IModelVersion[] = [];
  let token: string | null = null;
  let pages = 0;
  do {
    const page = await client.searchModelVersions({
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

interface IVersionsAnswer {
  model: IRegisteredModel;
  versions: IModelVersion[];
}

/**
 * One registered model with its versions (aliases, tags, description, status, the source run
 * by name), and its aliases set or moved from the sidebar; live while shown. Its probe is the
 * registered model itself (its aliases, tags, description and latest versions).
 */
export class ModelVersionsModel extends LiveModel<IVersionsAnswer> {
  constructor(options: { name: string } & ILiveOptions) {
    super('model-versions', { autoStart: false, ...options }, { reloadEvery: LIVE_RELOAD_EVERY });
    this.name = options.name;
  }

  readonly name: string;

  /** The registered model as last read (null before). */
  get model(): IRegisteredModel | null {
    return this._model;
  }
  /** Its versions, newest first. */
  get versions(): IModelVersion[] {
    return this._versions;
  }
  /** Whether a first answer (or error) has come. */
  get loaded(): boolean {
    return super.loaded || this.error !== null;
  }

  /** The name of a version's source run, once known (else null: show its id). */
  runName(runId: string): string | null {
    return this._runNames.get(runId) ?? null;
  }

  /** Aliases on a version (from the model's alias list and the version's own). */
  aliases(version: IModelVersion): string[] {
    return versionAliases(this._model, version);
  }

  /** The version an alias points at now, or null. */
  aliasTarget(alias: string): string | null {
    const own = this._model?.aliases?.find(a => a.alias === alias)?.version;
    if (own) {
      return own;
    }
    const version = this._versions.find(v => (v.aliases ?? []).includes(alias));
    return version ? version.version : null;
  }

  /**
   * Point `alias` at `version` (moving it from another version); the server's refusal is
   * thrown to the caller.
   */
  async setAlias(alias: string, version: string): Promise<void> {
    await this.client.setModelAlias(this.name, alias.trim(), version);
    await this.refresh();
  }

  async deleteAlias(alias: string): Promise<void> {
    await this.client.deleteModelAlias(this.name, alias);
    await this.refresh();
  }

  protected async probe(): Promise<JSONValue> {
    const model = await this.client.getRegisteredModel(this.name);
    return modelFingerprint(model);
  }

  protected async request(): Promise<IVersionsAnswer> {
    const [model, versions] = await Promise.all([
      this.client.getRegisteredModel(this.name),
      allVersions(this.client, this.name)
    ]);
    // Run names, once per run (a name rarely changes); a run that cannot be read shows its id.
    const unknown = [...new Set(versions.map(v => v.run_id).filter((id): id is string => !!id))].filter(
      id => !this._runNames.has(id)
    );
    const runs = await Promise.all(unknown.map(id => this.client.getRun(id).catch(() => null)));
    runs.forEach((run, i) => {
      if (run?.info.run_name) {
        this._runNames.set(unknown[i], run.info.run_name);
      }
    });
    return { model, versions };
  }

  protected apply(answer: IVersionsAnswer, first: boolean): boolean {
    const changed = first || !sameJSON(answer, { model: this._model, versions: this._versions });
    this._model = answer.model;
    this._versions = answer.versions;
    return changed;
  }

  private _model: IRegisteredModel | null = null;
  private _versions: IModelVersion[] = [];
  private _runNames = new Map<string, string>();
}

/** What changes when a registered model or one of its latest versions does. */
function modelFingerprint(model: IRegisteredModel): JSONValue {
  return [
    model.last_updated_timestamp ?? 0,
    model.description ?? '',
    (model.aliases ?? []).map(a => `${a.alias}=${a.version}`).sort(),
    (model.tags ?? []).map(t => `${t.key}=${t.value}`).sort(),
    (model.latest_versions ?? []).map(v => `${v.version}:${v.status ?? ''}:${v.last_updated_timestamp ?? 0}`)
  ];
}

/**
 * Aliases pointing at a version (from the registered model's alias list or the version's own).
 */
export function versionAliases(model: IRegisteredModel | null, version: IModelVersion): string[] {
  const own = version.aliases ?? [];
  const fromModel = (model?.aliases ?? []).filter(a => a.version === version.version).map(a => a.alias);
  return [...new Set([...own, ...fromModel])].sort();
}
