import { URLExt } from '@jupyterlab/coreutils';

import { requestAPI } from '../common/request';
import {
  IJob,
  IJobLog,
  IJobProgress,
  IJobRequest,
  IJobValidation,
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
  /** A notebook job's cell progress events from cursor `offset` on. */
  readProgress(id: string, offset: number): Promise<IJobProgress>;
  /** A dry run of `submit`: the server's verdict by field; creates nothing. */
  validate(request: IJobRequest): Promise<IJobValidation>;
  targets(): Promise<ITarget[]>;
  parameters(path: string): Promise<IProjectDescription>;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

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

  readProgress(id: string, offset: number): Promise<IJobProgress> {
    return requestAPI<IJobProgress>(
      `jobs/${encodeURIComponent(id)}/progress` + URLExt.objectToQueryString({ offset })
    );
  }

  validate(request: IJobRequest): Promise<IJobValidation> {
    return requestAPI<IJobValidation>('jobs/validate', {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify(request)
    });
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
}
