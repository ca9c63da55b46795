import { URLExt } from '@jupyterlab/coreutils';

import { requestAPI } from '../common/request';
import {
  IExperiment,
  IJob,
  IJobLog,
  IJobRequest,
  IProjectDescription,
  ITarget
} from './types';

/**
 * What the jobs model and views need from the server; {@link JobsClient}
 * implements it over REST, tests implement it in memory.
 */
export interface IJobsClient {
  listJobs(): Promise<IJob[]>;
  getJob(id: string): Promise<IJob>;
  submit(request: IJobRequest): Promise<IJob>;
  cancel(id: string): Promise<IJob>;
  remove(id: string): Promise<void>;
  readLog(id: string, offset: number): Promise<IJobLog>;
  targets(): Promise<ITarget[]>;
  parameters(path: string): Promise<IProjectDescription>;
  searchExperiments(query: string, maxResults?: number): Promise<IExperiment[]>;
}

const MLFLOW_API = 'mlflow/ajax-api/2.0/mlflow';

/** MLflow's REST API only takes JSON bodies labelled as such. */
const JSON_HEADERS = { 'Content-Type': 'application/json' };

/**
 * MLflow search filter for experiment names containing `query` (case-insensitive).
 */
export function experimentFilter(query: string): string {
  const text = query.trim();
  if (!text) {
    return '';
  }
  // MLflow's filter grammar: single-quoted strings, '' for a quote; % and _ are LIKE wildcards.
  const escaped = text.replace(/'/g, "''");
  return `name ILIKE '%${escaped}%'`;
}

/**
 * Typed client of the InfinStor job REST API (`<baseUrl>infinstor/api/`).
 */
export class JobsClient implements IJobsClient {
  async listJobs(): Promise<IJob[]> {
    const data = await requestAPI<{ jobs?: IJob[] }>('jobs');
    return Array.isArray(data?.jobs) ? data.jobs : [];
  }

  getJob(id: string): Promise<IJob> {
    return requestAPI<IJob>(`jobs/${encodeURIComponent(id)}`);
  }

  submit(request: IJobRequest): Promise<IJob> {
    return requestAPI<IJob>('jobs', {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify(request)
    });
  }

  cancel(id: string): Promise<IJob> {
    return requestAPI<IJob>(`jobs/${encodeURIComponent(id)}/cancel`, {
      method: 'POST'
    });
  }

  async remove(id: string): Promise<void> {
    await requestAPI<void>(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  readLog(id: string, offset: number): Promise<IJobLog> {
    return requestAPI<IJobLog>(
      `jobs/${encodeURIComponent(id)}/log` + URLExt.objectToQueryString({ offset })
    );
  }

  async targets(): Promise<ITarget[]> {
    const data = await requestAPI<{ targets?: ITarget[] }>('targets');
    return Array.isArray(data?.targets) ? data.targets : [];
  }

  parameters(path: string): Promise<IProjectDescription> {
    return requestAPI<IProjectDescription>(
      'projects/parameters' + URLExt.objectToQueryString({ path })
    );
  }

  async searchExperiments(query: string, maxResults = 200): Promise<IExperiment[]> {
    const body: Record<string, unknown> = {
      max_results: maxResults,
      order_by: ['last_update_time DESC']
    };
    const filter = experimentFilter(query);
    if (filter) {
      body.filter = filter;
    }
    const data = await requestAPI<{ experiments?: IExperiment[] }>(
      `${MLFLOW_API}/experiments/search`,
      { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) }
    );
    return (data?.experiments ?? []).filter(
      e => !e.lifecycle_stage || e.lifecycle_stage === 'active'
    );
  }
}
