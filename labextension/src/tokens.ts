/**
 * The services InfinStor's plugins offer each other (Lumino tokens), so a plugin asks for what
 * it needs instead of finding another plugin's widget by id or calling a command that may not
 * be registered.
 */
import { ServerConnection } from '@jupyterlab/services';
import { Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal } from '@lumino/signaling';
import React from 'react';

import type { StatusModel } from './status/model';
import type {
  IExperiment,
  IFileInfo,
  IKeyValue,
  ILoggedModel,
  IMetricPoint,
  IModelVersion,
  IPage,
  IRegisteredModel,
  IRun,
  ISearchExperimentsQuery,
  ISearchModelsQuery,
  ISearchRunsQuery
} from './mlflow/types';

// -- the MLflow client ----------------------------------------------------------------------------

/**
 * A change to tracking data that this lab knows of.
 */
export interface IMlflowChange {
  /**
   * What changed it: `lab` (a write through this client), or the name given to
   * `notifyChanged` (e.g. `job` when a job ended).
   */
  readonly source: string;
  /** The MLflow REST path written to (e.g. `api/2.0/mlflow/runs/set-tag`), or ''. */
  readonly path: string;
}

/**
 * The typed MLflow REST client: every call goes through the lab's authenticated proxy
 * (`<base url>infinstor/api/mlflow/…`), so no credential reaches the browser. Every failure is
 * an `InfinStorRequestError` carrying the server's message and reason (e.g. `PERMISSION_DENIED`,
 * `sign_in_required`).
 *
 * It also tells the live views when this lab changed tracking data (`changed`), so they check
 * at once instead of at their next poll.
 */
export interface IMlflowClient {
  readonly serverSettings: ServerConnection.ISettings;

  /** Emitted after every successful write through this client, and by `notifyChanged`. */
  readonly changed: ISignal<IMlflowClient, IMlflowChange>;

  /** Tell the live views that tracking data changed elsewhere (e.g. `job` when a job ended). */
  notifyChanged(source: string): void;

  /** Absolute URL of a proxied path (`api/2.0/mlflow/...`, `get-artifact?...`, `''` for the UI). */
  url(path: string, query?: Record<string, string | string[] | number | undefined | null>): string;
  /** URL of MLflow's own UI at a hash route, e.g. `#/experiments/1/runs`. */
  uiUrl(hash?: string): string;
  /** A raw proxied request (throws on a non-2xx answer). */
  fetch(path: string, init?: RequestInit, query?: Record<string, any>): Promise<Response>;
  /** A JSON endpoint of the MLflow REST API. */
  json<T>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: Record<string, any>,
    query?: Record<string, any>
  ): Promise<T>;

  searchExperiments(query?: ISearchExperimentsQuery): Promise<IPage<IExperiment>>;
  getExperiment(experimentId: string): Promise<IExperiment>;
  createExperiment(name: string, tags?: IKeyValue[]): Promise<string>;
  renameExperiment(experimentId: string, newName: string): Promise<void>;
  deleteExperiment(experimentId: string): Promise<void>;

  searchRuns(query: ISearchRunsQuery): Promise<IPage<IRun>>;
  getRun(runId: string): Promise<IRun>;
  setTag(runId: string, key: string, value: string): Promise<void>;
  deleteTag(runId: string, key: string): Promise<void>;
  getMetricHistory(runId: string, metricKey: string): Promise<IMetricPoint[]>;
  /**
   * One metric's history for many runs, a hundred runs a request (MLflow samples long
   * histories down to `maxResults` points a run, keeping the first and last). Points by run id.
   */
  getMetricHistoryBulk(runIds: string[], metricKey: string, maxResults?: number): Promise<Map<string, IMetricPoint[]>>;

  listArtifacts(runId: string, path?: string): Promise<IFileInfo[]>;
  artifactUrl(runId: string, path: string): string;
  fetchArtifact(runId: string, path: string): Promise<Response>;

  searchRegisteredModels(query?: ISearchModelsQuery): Promise<IPage<IRegisteredModel>>;
  getRegisteredModel(name: string): Promise<IRegisteredModel>;
  searchModelVersions(query?: ISearchModelsQuery): Promise<IPage<IModelVersion>>;
  getModelVersion(name: string, version: string): Promise<IModelVersion>;
  /** Create a registered model; resolves `false` when it already exists. */
  createRegisteredModel(name: string, description?: string): Promise<boolean>;
  createModelVersion(options: {
    name: string;
    source: string;
    runId?: string;
    modelId?: string;
    description?: string;
    tags?: IKeyValue[];
  }): Promise<IModelVersion>;
  /** Point `alias` of a registered model at `version` (moving it if it pointed elsewhere). */
  setModelAlias(name: string, alias: string, version: string): Promise<void>;
  deleteModelAlias(name: string, alias: string): Promise<void>;
  /** Logged models (MLflow 3) produced by a run. */
  searchLoggedModels(experimentId: string, runId: string): Promise<ILoggedModel[]>;
}

export const IMlflowClient = new Token<IMlflowClient>(
  'infinstor-jupyterlab:IMlflowClient',
  "The typed MLflow REST client (through the lab's authenticated proxy) and the lab's notices of changes to tracking data."
);

// -- the MLflow views ----------------------------------------------------------------------------

/**
 * The MLflow views (the sidebar's experiments, runs and models; the runs tabs, run pages and
 * comparisons) as the other plugins use them.
 */
export interface IMlflowViews {
  /**
   * The experiment whose runs the sidebar shows, or null (the job dialog's default when the
   * notebook has logged no run yet).
   */
  readonly openedExperiment: IExperiment | null;
  /** Open a run's page in a main-area tab. */
  openRun(runId: string): Promise<void>;
  /**
   * How a run page opens the job that made the run (the jobs plugin sets it; null: the page
   * names the job without a link). Disposing the answer takes it back.
   */
  setJobOpener(open: (jobId: string) => void): IDisposable;
}

export const IMlflowViews = new Token<IMlflowViews>(
  'infinstor-jupyterlab:IMlflowViews',
  "InfinStor's MLflow views: the experiment open in the sidebar, run pages, and the Jobs view's link from a run page."
);

// -- the sidebar ----------------------------------------------------------------------------------

/**
 * A part of the InfinStor sidebar below its status and user sections (e.g. the MLflow browser).
 */
export interface ISidebarSection {
  /** Asked by the header's Refresh button. */
  refresh(): Promise<void>;
  /**
   * When what the section shows was last checked with the server (ms since the epoch; 0: not
   * yet). The footer's "Last checked" is the oldest of these and the status's.
   */
  readonly checkedAt: number;
}

/**
 * The InfinStor sidebar: the tracking service's status, who is signed in, and the sections
 * other plugins mount below them.
 */
export interface IInfinStorSidebar {
  /** The widget's id (to activate it). */
  readonly id: string;
  /** The polled status of the server extension (tracking service, signed-in user). */
  readonly status: StatusModel;
  /** Whether the sidebar is on screen. */
  readonly isVisible: boolean;
  /** Emitted when the sidebar is shown or hidden. */
  readonly visibilityChanged: ISignal<IInfinStorSidebar, boolean>;
  /** Mount a section (its view and what Refresh and "Last checked" take into account). */
  addSection(section: ISidebarSection, view: React.ReactNode): IDisposable;
}

export const IInfinStorSidebar = new Token<IInfinStorSidebar>(
  'infinstor-jupyterlab:IInfinStorSidebar',
  'The InfinStor sidebar: its status model, its visibility, and the sections mounted in it.'
);
