/**
 * Formatting for the Jobs view: status colours, durations, titles. Pure functions.
 */
import { IJob } from './types';

/** Badge colour family of a job status. */
export type StatusKind = 'queued' | 'running' | 'success' | 'error' | 'killed';

export function statusKind(status: string): StatusKind {
  switch (status) {
    case 'QUEUED':
      return 'queued';
    case 'RUNNING':
      return 'running';
    case 'FINISHED':
      return 'success';
    case 'FAILED':
      return 'error';
    default:
      return 'killed';
  }
}

/**
 * Seconds as `4s`, `2m 05s`, `1h 02m`.
 */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '–';
  }
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) {
    return `${h}h ${pad(m)}m`;
  }
  if (m > 0) {
    return `${m}m ${pad(s)}s`;
  }
  return `${s}s`;
}

/**
 * A job's duration in seconds at `now` (ms): the server's value, advanced by
 * the time since it was fetched while the job runs.
 */
export function jobDuration(job: IJob, fetchedAt: number, now: number): number | null {
  if (job.status === 'RUNNING') {
    const base = job.duration ?? 0;
    return base + Math.max(0, now - fetchedAt) / 1000;
  }
  if (job.duration !== null && job.duration !== undefined) {
    return job.duration;
  }
  if (job.started_at && job.finished_at) {
    return job.finished_at - job.started_at;
  }
  return null;
}

/** The last path segment. */
export function basename(path: string): string {
  const parts = path.split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}

/** A job's title in the list: its run name, else the notebook or folder name. */
export function jobTitle(job: IJob): string {
  return job.run_name || basename(job.path);
}

/**
 * A cell's time: tenths of a second below 10 s (`0.3s`, `4.2s`), else as {@link formatDuration}.
 */
export function formatCellTime(seconds: number): string {
  if (!Number.isFinite(seconds)) {
    return '–';
  }
  return seconds < 10 ? `${Math.max(0, seconds).toFixed(1)}s` : formatDuration(seconds);
}
