/**
 * Shapes of the InfinStor job REST API (docs/openapi.yaml).
 *
 * JobStatus, JobKind, IJob, IJobLog, IJobRequest, ParameterValue and ISweep come from api.gen.ts,
 * generated from the OpenAPI document (`jlpm gen:api`), whose job schemas are generated from the
 * server's pydantic models.
 */

import type { components } from './api.gen';

type Schemas = components['schemas'];

export type JobStatus = Schemas['JobStatus'];
export type JobKind = Schemas['JobKind'];
export type IJob = Schemas['Job'];
export type IJobLog = Schemas['JobLog'];

/** Every job status, in lifecycle order. */
export const JOB_STATUSES: ReadonlyArray<JobStatus> = ['QUEUED', 'RUNNING', 'FINISHED', 'FAILED', 'KILLED'];

/** Statuses after which a job never changes again. */
export const ENDED_STATUSES: ReadonlyArray<JobStatus> = ['FINISHED', 'FAILED', 'KILLED'];

/** Whether a job in `status` has ended. */
export function isEnded(status: string): boolean {
  return (ENDED_STATUSES as ReadonlyArray<string>).includes(status);
}

/** Whether a job in `status` may still change (and be cancelled). */
export function isActive(status: string): boolean {
  return status === 'QUEUED' || status === 'RUNNING';
}

/** A job request (`POST jobs`, `POST jobs/validate`); fields with a server default are optional. */
export type IJobRequest = Schemas['JobRequest'];

/** A parameter value as the job API takes it (any JSON value; the project's parameters decide). */
export type ParameterValue = Schemas['ParameterValue'];

/** A parameter sweep: a grid (every combination of the values) or a list of parameter sets. */
export type ISweep = Schemas['SweepGrid'] | Schemas['SweepList'];

/** One problem of a job request, from `POST jobs/validate`. */
export interface IValidationError {
  /** `parameters.<name>` for a parameter, else the request's field (`target`, `options`, ...). */
  field: string;
  message: string;
}

/** A parameter as the run would get it. */
export interface IResolvedParameter {
  name: string;
  type: string;
  default: unknown;
  /** The text the run gets: the given value, else the default; null when missing. */
  value: string | null;
  given: boolean;
}

/** The server's verdict on a job request (`POST jobs/validate`, a dry run). */
export interface IJobValidation {
  valid: boolean;
  errors: IValidationError[];
  parameters: IResolvedParameter[];
}

/** One event of a notebook job's progress record (docs/jobs.md, "Live cell progress"). */
export type IProgressEvent =
  | { event: 'notebook'; cells: number; time?: number }
  | {
      event: 'start';
      cell: number;
      index?: number;
      source: string;
      injected?: boolean;
      time: number;
    }
  | { event: 'output'; cell: number; name: 'stdout' | 'stderr' | string; text: string; truncated?: boolean }
  | {
      event: 'end';
      cell: number;
      time: number;
      status: 'ok' | 'error' | string;
      outputs?: Array<{ type: string; text: string }>;
      error?: { ename: string; evalue: string; traceback: string[] };
      truncated?: number;
    }
  | { event: 'done'; status: 'finished' | 'failed' | string; message?: string; time?: number };

/** A page of a job's progress events (`GET jobs/{id}/progress?offset=`). */
export interface IJobProgress {
  job_id: string;
  offset: number;
  next_offset: number;
  events: IProgressEvent[];
  complete: boolean;
  status: string;
  /** The server's clock, in epoch seconds. */
  now: number;
}

export interface ITargetCapabilities {
  env_managers?: string[];
  instance_types?: string[];
  sweeps?: boolean;
  max_parallel?: number;
  /** Instances a sweep may use at once at most (the admin's limit), for targets with sweeps. */
  max_instances?: number;
  [key: string]: unknown;
}

export interface ITarget {
  name: string;
  display_name: string;
  available: boolean;
  reason: string | null;
  capabilities: ITargetCapabilities;
}

/** Python literal type of a notebook parameter's default, or an MLproject type mapped to one. */
export type ParameterKind =
  | 'int'
  | 'float'
  | 'bool'
  | 'str'
  | 'none'
  | 'list'
  | 'dict'
  | 'tuple';

export interface IParameterSpec {
  name: string;
  type: ParameterKind | string;
  mlflow_type?: string;
  default: unknown;
}

export interface IProjectDescription {
  kind: 'notebook' | 'project' | string;
  path: string;
  name?: string;
  parameters: IParameterSpec[];
}
