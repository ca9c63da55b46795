/**
 * Models of the MLflow views. Each is a {@link PollingModel}: it fetches through the
 * {@link IMlflowClient}, keeps what the view shows, and stays live while the view is visible:
 * a cheap "what changed since" probe (a search for the newest item, `max_results` small)
 * every few seconds, the full request only when the probe's answer changed, backing off while
 * nothing changes, and a check at once when this lab writes (the client's `changed`).
 * No DOM here; the views render them.
 */
import { JSONValue } from '@lumino/coreutils';

import { PollingModel } from '../common/pollingModel';
import { IMlflowClient } from '../tokens';
import { experimentFilter, isActive, modelFilter, quoteKey, quoteString, SOURCE_NAME_TAG, tagMap } from './format';
import { IExperiment, IModelVersion, IRegisteredModel, IRun } from './types';

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
export abstract class LiveModel<TAnswer> extends PollingModel<TAnswer> {
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
export function sameJSON(a: unknown, b: unknown): boolean {
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

// -- runs (the runs views' models are in runs/; these are shared with them) -------------------------

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
export const PROBE_MAX_RUNS = 50;

/**
 * How many of the newest runs a probe must ask for to see every running one and one run known
 * before (so a new run shows, and whether there are more new runs than it saw).
 */
export function probeSize(runs: IRun[]): number {
  return Math.min(PROBE_MAX_RUNS, runningSpan(runs) + 1);
}

/** How many of the newest runs reach back to the oldest running one (at least 1). */
export function runningSpan(runs: IRun[]): number {
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
