/**
 * Pure helpers of the Compute view: unit tested without a browser.
 */
import { IComputeConfig, IInstance, InstanceAction } from './types';

/** States in which an instance is changing by itself (polled quickly). */
export const TRANSITION_STATES: ReadonlyArray<string> = ['pending', 'stopping', 'shutting-down'];

/** Badge colour family of an instance state. */
export type InstanceStateKind = 'running' | 'transition' | 'stopped' | 'gone';

export function instanceStateKind(state: string): InstanceStateKind {
  if (state === 'running') {
    return 'running';
  }
  if (TRANSITION_STATES.includes(state)) {
    return 'transition';
  }
  if (state === 'stopped') {
    return 'stopped';
  }
  return 'gone';
}

/** Whether the Compute view offers `action` on an instance in `state`. */
export function canAct(state: string, action: InstanceAction): boolean {
  if (action === 'stop') {
    return state === 'running' || state === 'pending';
  }
  return state !== 'shutting-down' && state !== 'terminated';
}

/**
 * A duration the server measured (`seconds` at `fetchedAt`, ms), advanced to
 * `now` (ms) while it keeps growing; null stays null.
 */
export function advanced(seconds: number | null | undefined, fetchedAt: number, now: number): number | null {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return null;
  }
  return seconds + Math.max(0, now - fetchedAt) / 1000;
}

/** The instance's uptime at `now` (running instances only). */
export function instanceUptime(instance: IInstance, fetchedAt: number, now: number): number | null {
  return instance.state === 'running' ? advanced(instance.uptime, fetchedAt, now) : null;
}

/** How long the instance has been idle at `now` (idle agents only). */
export function instanceIdle(instance: IInstance, fetchedAt: number, now: number): number | null {
  return instance.state === 'running' ? advanced(instance.idle_seconds, fetchedAt, now) : null;
}

/** What the instance is doing, in a few words. */
export function instanceActivity(instance: IInstance): string {
  if (instance.state !== 'running') {
    return instance.state_reason ? `${instance.state}: ${instance.state_reason}` : instance.state;
  }
  if (instance.current_job) {
    return 'running a job';
  }
  if (instance.agent === 'idle') {
    return 'idle';
  }
  if (instance.agent === 'stopping') {
    return 'stopping itself (idle)';
  }
  if (!instance.agent) {
    return 'booting (its agent has not checked in yet)';
  }
  return instance.agent;
}

/** Seconds as `45s`, `12m`, `3h 05m`, `2d 04h`. */
export function formatSpan(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '–';
  }
  const total = Math.max(0, Math.floor(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  if (d > 0) {
    return `${d}d ${pad(h)}h`;
  }
  if (h > 0) {
    return `${h}h ${pad(m)}m`;
  }
  if (m > 0) {
    return `${m}m ${pad(total % 60)}s`;
  }
  return `${total}s`;
}

/** One line of the read-only EC2 settings. */
export interface ISettingRow {
  key: string;
  label: string;
  value: string;
  /** A required setting the admin has not set. */
  missing: boolean;
}

const NOT_SET = 'not set';

/**
 * The EC2 settings as label/value rows, in the order of docs/ec2.md.
 */
export function settingRows(answer: IComputeConfig): ISettingRow[] {
  const config = answer.config;
  if (!config) {
    return [];
  }
  const missing = new Set(answer.missing ?? []);
  const text = (value: string, fallback = NOT_SET) => (value ? value : fallback);
  const list = (values: string[], fallback: string) => (values.length ? values.join(', ') : fallback);
  const tags = Object.entries(config.tags ?? {});
  const rows: Array<[keyof typeof config, string, string]> = [
    ['region', 'Region', text(config.region)],
    ['ami', 'AMI', text(config.ami)],
    ['default_instance_type', 'Default instance type', text(config.default_instance_type)],
    ['allowed_instance_types', 'Allowed instance types', list(config.allowed_instance_types ?? [], 'none')],
    ['subnet_id', 'Subnet', text(config.subnet_id, "the default VPC's")],
    ['security_group_ids', 'Security groups', list(config.security_group_ids ?? [], "the VPC's default")],
    ['iam_instance_profile', 'Instance profile', text(config.iam_instance_profile)],
    ['s3_bucket', 'S3 bucket', text(config.s3_bucket)],
    ['s3_prefix', 'S3 prefix', text(config.s3_prefix, '(bucket root)')],
    ['idle_timeout', 'Idle timeout', formatSpan(config.idle_timeout)],
    ['max_instances_per_user', 'Max instances per user', String(config.max_instances_per_user)],
    ['tags', 'Tags', tags.length ? tags.map(([k, v]) => `${k}=${v}`).join(', ') : 'none']
  ];
  return rows.map(([key, label, value]) => ({
    key: String(key),
    label,
    value,
    missing: missing.has(String(key))
  }));
}
