/**
 * Types of the MLflow REST API (2.0/3.0) as the proxy returns them.
 *
 * Only the fields the sidebar uses are declared; MLflow may send more.
 */

export interface IKeyValue {
  key: string;
  value: string;
}

export interface IExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
  creation_time?: number;
  last_update_time?: number;
  tags?: IKeyValue[];
}

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface IRunInfo {
  run_id: string;
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: RunStatus;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage?: string;
}

export interface IMetric {
  key: string;
  value: number | string;
  timestamp?: number;
  step?: number;
}

export interface IRunData {
  metrics?: IMetric[];
  params?: IKeyValue[];
  tags?: IKeyValue[];
}

export interface IModelOutput {
  model_id: string;
  step?: number;
}

export interface IRun {
  info: IRunInfo;
  data: IRunData;
  outputs?: { model_outputs?: IModelOutput[] };
}

export interface IFileInfo {
  path: string;
  is_dir?: boolean;
  file_size?: number | string;
}

export interface IModelVersionAlias {
  alias: string;
  version: string;
}

export interface IRegisteredModel {
  name: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  description?: string;
  latest_versions?: IModelVersion[];
  tags?: IKeyValue[];
  aliases?: IModelVersionAlias[];
}

export interface IModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  status?: string;
  status_message?: string;
  tags?: IKeyValue[];
  aliases?: string[];
  model_id?: string;
  user_id?: string;
}

export interface ILoggedModel {
  info: {
    model_id: string;
    experiment_id?: string;
    name?: string;
    source_run_id?: string;
    artifact_uri?: string;
    status?: string;
    creation_timestamp_ms?: number;
  };
}

/**
 * A page of results with MLflow's opaque page token.
 */
export interface IPage<T> {
  items: T[];
  nextPageToken: string | null;
}

export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

export interface ISearchRunsQuery {
  experimentIds: string[];
  filter?: string;
  orderBy?: string[];
  maxResults?: number;
  pageToken?: string | null;
  viewType?: ViewType;
}

export interface ISearchExperimentsQuery {
  filter?: string;
  orderBy?: string[];
  maxResults?: number;
  pageToken?: string | null;
  viewType?: ViewType;
}

export interface ISearchModelsQuery {
  filter?: string;
  maxResults?: number;
  pageToken?: string | null;
  orderBy?: string[];
}

/**
 * A metric history point.
 */
export interface IMetricPoint {
  step: number;
  timestamp: number;
  value: number;
}
