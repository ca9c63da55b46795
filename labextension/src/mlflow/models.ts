/**
 * Models of the MLflow views: they fetch through {@link MlflowClient}, keep
 * state, poll with `@lumino/polling` and announce changes with
 * `@lumino/signaling`. No DOM here; the views render them.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { MlflowClient } from './client';
import { experimentFilter, modelFilter, quoteKey, quoteString, SOURCE_NAME_TAG, tagMap } from './format';
import { IExperiment, IModelVersion, IRegisteredModel, IRun } from './types';

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
