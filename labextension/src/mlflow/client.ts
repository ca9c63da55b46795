import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { InfinStorRequestError } from '../common/request';
import { IMlflowChange, IMlflowClient } from '../tokens';
import {
  IExperiment,
  IFileInfo,
  ILoggedModel,
  IMetricPoint,
  IModelVersion,
  IPage,
  IRegisteredModel,
  IRun,
  ISearchExperimentsQuery,
  ISearchModelsQuery,
  ISearchRunsQuery,
  IKeyValue
} from './types';

/**
 * Path of the MLflow proxy below the Jupyter base URL.
 */
export const PROXY_PATH = 'infinstor/api/mlflow/';

/**
 * Largest page MLflow's metrics/get-history returns.
 */
export const HISTORY_PAGE_SIZE = 25000;

/**
 * A typed MLflow REST client that talks to the tracking service through the
 * InfinStor server extension's authenticated proxy
 * (`<baseUrl>infinstor/api/mlflow/<path>`), with Jupyter's token and XSRF
 * handling (ServerConnection).
 *
 * Every failure is an {@link InfinStorRequestError}: `reason` is the proxy's
 * `reason` (e.g. `sign_in_required`, `tracking_unavailable`) or MLflow's
 * `error_code` (e.g. `PERMISSION_DENIED`), `message` the server's message.
 *
 * After each successful write (any method but GET and HEAD, to a path that is
 * not a `…/search`) it emits `changed`, so the live views check at once.
 */
export class MlflowClient implements IMlflowClient {
  constructor(options: MlflowClient.IOptions = {}) {
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
  }

  get serverSettings(): ServerConnection.ISettings {
    return this._settings;
  }

  get changed(): ISignal<this, IMlflowChange> {
    return this._changed;
  }

  notifyChanged(source: string): void {
    this._changed.emit({ source, path: '' });
  }

  /**
   * Absolute URL of a proxied path (`api/2.0/mlflow/...`, `get-artifact?...`, or `''` for the UI).
   */
  url(path: string, query?: Record<string, string | string[] | number | undefined | null>): string {
    let url = URLExt.join(this._settings.baseUrl, PROXY_PATH) + path;
    const q = encodeQuery(query ?? {});
    if (q) {
      url += (url.includes('?') ? '&' : '?') + q;
    }
    return url;
  }

  /**
   * URL of MLflow's own UI at a hash route, e.g. `#/experiments/1/runs`.
   */
  uiUrl(hash = ''): string {
    return URLExt.join(this._settings.baseUrl, PROXY_PATH) + hash;
  }

  /**
   * Send a request to the proxy and return the raw response (throws on non-2xx).
   */
  async fetch(path: string, init: RequestInit = {}, query?: Record<string, any>): Promise<Response> {
    const url = this.url(path, query);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this._settings);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new InfinStorRequestError(
        `Could not reach the Jupyter server (${detail}). Check that it is still running.`,
        { status: 0, url, cause: error, reason: 'network_error' }
      );
    }
    if (!response.ok) {
      throw await errorFromResponse(response, url);
    }
    if (isWrite(init.method ?? 'GET', path)) {
      this._changed.emit({ source: 'lab', path });
    }
    return response;
  }

  /**
   * GET or POST a JSON endpoint of the MLflow REST API.
   */
  async json<T>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: Record<string, any>,
    query?: Record<string, any>
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const response = await this.fetch(path, init, query);
    const text = await response.text();
    if (!text) {
      return {} as T;
    }
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new InfinStorRequestError(
        `The tracking service answered ${path} with a body that is not JSON.`,
        { status: response.status, reason: 'invalid_json', url: response.url, cause: error }
      );
    }
  }

  // -- experiments ------------------------------------------------------------------------------

  async searchExperiments(query: ISearchExperimentsQuery = {}): Promise<IPage<IExperiment>> {
    const data = await this.json<{ experiments?: IExperiment[]; next_page_token?: string }>(
      'POST',
      'api/2.0/mlflow/experiments/search',
      prune({
        max_results: query.maxResults ?? 1000,
        filter: query.filter || undefined,
        order_by: query.orderBy?.length ? query.orderBy : undefined,
        page_token: query.pageToken || undefined,
        view_type: query.viewType ?? 'ACTIVE_ONLY'
      })
    );
    return { items: data.experiments ?? [], nextPageToken: data.next_page_token || null };
  }

  async getExperiment(experimentId: string): Promise<IExperiment> {
    const data = await this.json<{ experiment: IExperiment }>(
      'GET',
      'api/2.0/mlflow/experiments/get',
      undefined,
      { experiment_id: experimentId }
    );
    return data.experiment;
  }

  async createExperiment(name: string, tags: IKeyValue[] = []): Promise<string> {
    const data = await this.json<{ experiment_id: string }>(
      'POST',
      'api/2.0/mlflow/experiments/create',
      prune({ name, tags: tags.length ? tags : undefined })
    );
    return data.experiment_id;
  }

  async renameExperiment(experimentId: string, newName: string): Promise<void> {
    await this.json('POST', 'api/2.0/mlflow/experiments/update', {
      experiment_id: experimentId,
      new_name: newName
    });
  }

  async deleteExperiment(experimentId: string): Promise<void> {
    await this.json('POST', 'api/2.0/mlflow/experiments/delete', { experiment_id: experimentId });
  }

  // -- runs -------------------------------------------------------------------------------------

  async searchRuns(query: ISearchRunsQuery): Promise<IPage<IRun>> {
    const data = await this.json<{ runs?: IRun[]; next_page_token?: string }>(
      'POST',
      'api/2.0/mlflow/runs/search',
      prune({
        experiment_ids: query.experimentIds,
        filter: query.filter || undefined,
        order_by: query.orderBy?.length ? query.orderBy : undefined,
        max_results: query.maxResults ?? 100,
        page_token: query.pageToken || undefined,
        run_view_type: query.viewType ?? 'ACTIVE_ONLY'
      })
    );
    return { items: (data.runs ?? []).map(normalizeRun), nextPageToken: data.next_page_token || null };
  }

  async getRun(runId: string): Promise<IRun> {
    const data = await this.json<{ run: IRun }>('GET', 'api/2.0/mlflow/runs/get', undefined, {
      run_id: runId
    });
    return normalizeRun(data.run);
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.json('POST', 'api/2.0/mlflow/runs/set-tag', { run_id: runId, key, value });
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    await this.json('POST', 'api/2.0/mlflow/runs/delete-tag', { run_id: runId, key });
  }

  /**
   * The full history of one metric of one run (follows page tokens).
   */
  async getMetricHistory(runId: string, metricKey: string): Promise<IMetricPoint[]> {
    const points: IMetricPoint[] = [];
    let pageToken: string | undefined = undefined;
    for (let page = 0; page < 100; page++) {
      const data: { metrics?: any[]; next_page_token?: string } = await this.json(
        'GET',
        'api/2.0/mlflow/metrics/get-history',
        undefined,
        prune({
          run_id: runId,
          metric_key: metricKey,
          max_results: HISTORY_PAGE_SIZE,
          page_token: pageToken
        })
      );
      for (const m of data.metrics ?? []) {
        points.push({
          step: Number(m.step ?? 0),
          timestamp: Number(m.timestamp ?? 0),
          value: toNumber(m.value)
        });
      }
      pageToken = data.next_page_token || undefined;
      if (!pageToken) {
        break;
      }
    }
    points.sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
    return points;
  }

  /**
   * One metric's history for up to 100 runs in one request (MLflow samples long histories
   * down to `maxResults` points a run, keeping the first and last). Points by run id.
   */
  async getMetricHistoryBulk(runIds: string[], metricKey: string, maxResults = 1000): Promise<Map<string, IMetricPoint[]>> {
    const out = new Map<string, IMetricPoint[]>(runIds.map(id => [id, []]));
    for (let i = 0; i < runIds.length; i += 100) {
      const data: { metrics?: any[] } = await this.json(
        'GET',
        'api/2.0/mlflow/metrics/get-history-bulk-interval',
        undefined,
        { run_ids: runIds.slice(i, i + 100), metric_key: metricKey, max_results: maxResults }
      );
      for (const m of data.metrics ?? []) {
        out.get(m.run_id)?.push({ step: Number(m.step ?? 0), timestamp: Number(m.timestamp ?? 0), value: toNumber(m.value) });
      }
    }
    for (const points of out.values()) {
      points.sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
    }
    return out;
  }

  // -- artifacts --------------------------------------------------------------------------------

  async listArtifacts(runId: string, path = ''): Promise<IFileInfo[]> {
    const files: IFileInfo[] = [];
    let pageToken: string | undefined = undefined;
    for (let page = 0; page < 50; page++) {
      const data: { files?: IFileInfo[]; next_page_token?: string } = await this.json(
        'GET',
        'api/2.0/mlflow/artifacts/list',
        undefined,
        prune({ run_id: runId, path: path || undefined, page_token: pageToken })
      );
      files.push(...(data.files ?? []));
      pageToken = data.next_page_token || undefined;
      if (!pageToken) {
        break;
      }
    }
    files.sort((a, b) =>
      a.is_dir === b.is_dir ? a.path.localeCompare(b.path) : a.is_dir ? -1 : 1
    );
    return files;
  }

  /**
   * URL of a run's artifact (served through the proxy as an attachment-safe download).
   */
  artifactUrl(runId: string, path: string): string {
    return this.url('get-artifact', { path, run_uuid: runId });
  }

  async fetchArtifact(runId: string, path: string): Promise<Response> {
    return this.fetch('get-artifact', { method: 'GET' }, { path, run_uuid: runId });
  }

  // -- models -----------------------------------------------------------------------------------

  async searchRegisteredModels(query: ISearchModelsQuery = {}): Promise<IPage<IRegisteredModel>> {
    const data = await this.json<{ registered_models?: IRegisteredModel[]; next_page_token?: string }>(
      'GET',
      'api/2.0/mlflow/registered-models/search',
      undefined,
      prune({
        filter: query.filter || undefined,
        max_results: query.maxResults ?? 100,
        page_token: query.pageToken || undefined,
        order_by: query.orderBy?.length ? query.orderBy : undefined
      })
    );
    return {
      items: data.registered_models ?? [],
      nextPageToken: data.next_page_token || null
    };
  }

  async getRegisteredModel(name: string): Promise<IRegisteredModel> {
    const data = await this.json<{ registered_model: IRegisteredModel }>(
      'GET',
      'api/2.0/mlflow/registered-models/get',
      undefined,
      { name }
    );
    return data.registered_model;
  }

  async searchModelVersions(query: ISearchModelsQuery = {}): Promise<IPage<IModelVersion>> {
    const data = await this.json<{ model_versions?: IModelVersion[]; next_page_token?: string }>(
      'GET',
      'api/2.0/mlflow/model-versions/search',
      undefined,
      prune({
        filter: query.filter || undefined,
        max_results: query.maxResults ?? 200,
        page_token: query.pageToken || undefined,
        order_by: query.orderBy?.length ? query.orderBy : undefined
      })
    );
    return { items: data.model_versions ?? [], nextPageToken: data.next_page_token || null };
  }

  async getModelVersion(name: string, version: string): Promise<IModelVersion> {
    const data = await this.json<{ model_version: IModelVersion }>(
      'GET',
      'api/2.0/mlflow/model-versions/get',
      undefined,
      { name, version }
    );
    return data.model_version;
  }

  /**
   * Create a registered model; resolves `false` when it already exists.
   */
  async createRegisteredModel(name: string, description?: string): Promise<boolean> {
    try {
      await this.json('POST', 'api/2.0/mlflow/registered-models/create', prune({ name, description }));
      return true;
    } catch (error) {
      if (error instanceof InfinStorRequestError && error.reason === 'RESOURCE_ALREADY_EXISTS') {
        return false;
      }
      throw error;
    }
  }

  async createModelVersion(options: {
    name: string;
    source: string;
    runId?: string;
    modelId?: string;
    description?: string;
    tags?: IKeyValue[];
  }): Promise<IModelVersion> {
    const data = await this.json<{ model_version: IModelVersion }>(
      'POST',
      'api/2.0/mlflow/model-versions/create',
      prune({
        name: options.name,
        source: options.source,
        run_id: options.runId,
        model_id: options.modelId,
        description: options.description,
        tags: options.tags?.length ? options.tags : undefined
      })
    );
    return data.model_version;
  }

  /**
   * Point a registered model's alias at a version; an alias on another version moves.
   */
  async setModelAlias(name: string, alias: string, version: string): Promise<void> {
    await this.json('POST', 'api/2.0/mlflow/registered-models/alias', { name, alias, version });
  }

  async deleteModelAlias(name: string, alias: string): Promise<void> {
    await this.json('DELETE', 'api/2.0/mlflow/registered-models/alias', { name, alias });
  }

  /**
   * Logged models (MLflow 3) produced by a run.
   */
  async searchLoggedModels(experimentId: string, runId: string): Promise<ILoggedModel[]> {
    const data = await this.json<{ models?: ILoggedModel[] }>(
      'POST',
      'api/2.0/mlflow/logged-models/search',
      {
        experiment_ids: [experimentId],
        filter: `source_run_id = '${escapeQuotes(runId)}'`,
        max_results: 100
      }
    );
    return data.models ?? [];
  }

  private _settings: ServerConnection.ISettings;
  private _changed = new Signal<this, IMlflowChange>(this);
}

/**
 * Whether a request may change tracking data: any method but GET and HEAD, except searches
 * (MLflow's searches of experiments, runs and logged models are POSTs).
 */
export function isWrite(method: string, path: string): boolean {
  const verb = method.toUpperCase();
  if (verb === 'GET' || verb === 'HEAD') {
    return false;
  }
  return !/\/search$/.test(path.split('?')[0]);
}

export namespace MlflowClient {
  export interface IOptions {
    serverSettings?: ServerConnection.ISettings;
  }
}

/**
 * Build the {@link InfinStorRequestError} for a non-2xx response: the proxy's
 * `{"message","reason"}` or MLflow's `{"error_code","message"}`.
 */
export async function errorFromResponse(response: Response, url: string): Promise<InfinStorRequestError> {
  let body: any = {};
  try {
    const text = await response.text();
    body = text ? JSON.parse(text) : {};
  } catch {
    body = {};
  }
  if (!body || typeof body !== 'object') {
    body = {};
  }
  const message =
    typeof body.message === 'string' && body.message
      ? body.message
      : `The request failed with HTTP ${response.status}${response.statusText ? ' ' + response.statusText : ''}.`;
  const reason =
    (typeof body.reason === 'string' && body.reason) ||
    (typeof body.error_code === 'string' && body.error_code) ||
    '';
  return new InfinStorRequestError(message, { status: response.status, reason, url });
}

/**
 * Encode a query string (arrays repeat the key, as MLflow's GET endpoints expect).
 */
export function encodeQuery(query: Record<string, any>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) {
      continue;
    }
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
    }
  }
  return parts.join('&');
}

function prune<T extends Record<string, any>>(value: T): T {
  const out: Record<string, any> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined && v !== null) {
      out[k] = v;
    }
  }
  return out as T;
}

function escapeQuotes(value: string): string {
  return value.replace(/'/g, "\\'");
}

/**
 * MLflow sends NaN/Infinity metric values as strings.
 */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'NaN') {
    return NaN;
  }
  if (value === 'Infinity') {
    return Infinity;
  }
  if (value === '-Infinity') {
    return -Infinity;
  }
  const n = Number(value);
  return Number.isNaN(n) ? NaN : n;
}

/**
 * Fill in what older servers leave out (run_id vs run_uuid, missing data).
 */
export function normalizeRun(run: IRun): IRun {
  const info = { ...run.info };
  info.run_id = info.run_id || info.run_uuid || '';
  info.start_time = info.start_time !== undefined ? Number(info.start_time) : undefined;
  info.end_time = info.end_time !== undefined ? Number(info.end_time) : undefined;
  const data = run.data ?? {};
  return {
    ...run,
    info,
    data: {
      metrics: (data.metrics ?? []).map(m => ({ ...m, value: toNumber(m.value) })),
      params: data.params ?? [],
      tags: data.tags ?? []
    }
  };
}
