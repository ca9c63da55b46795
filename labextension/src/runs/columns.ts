/**
 * Which columns the runs tab shows: by default the run's attributes plus every metric and
 * parameter whose value differs across the loaded runs; or the columns the user picked.
 * Pure functions (unit-tested).
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { ColumnId, columnValue, DEFAULT_TRANS, runSource, runUser } from '../mlflow/format';
import { IRun } from '../mlflow/types';

export type ColumnKind = 'attribute' | 'metric' | 'param' | 'tag';

/** The attribute columns a user can pick (the run name is always shown, first). */
export const ATTRIBUTE_COLUMNS: ColumnId[] = ['status', 'start', 'duration', 'user', 'source'];

/** At most this many columns are added automatically (a user can pick more). */
export const MAX_AUTO_COLUMNS = 60;

export function columnKind(id: ColumnId): ColumnKind {
  if (id.startsWith('metric:')) {
    return 'metric';
  }
  if (id.startsWith('param:')) {
    return 'param';
  }
  if (id.startsWith('tag:')) {
    return 'tag';
  }
  return 'attribute';
}

/** The metric, param or tag key of a column (`''` for attributes). */
export function columnKey(id: ColumnId): string {
  const colon = id.indexOf(':');
  return colon < 0 ? '' : id.slice(colon + 1);
}

export function columnLabel(id: ColumnId, trans: TranslationBundle = DEFAULT_TRANS): string {
  switch (id) {
    case 'status':
      return trans.__('Status');
    case 'name':
      return trans.__('Run name');
    case 'start':
      return trans.__('Started');
    case 'duration':
      return trans.__('Duration');
    case 'user':
      return trans.__('User');
    case 'source':
      return trans.__('Source');
    default:
      return columnKey(id);
  }
}

const byName = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/**
 * Every metric, param and tag key of the runs, sorted (MLflow's own `mlflow.*` tags last).
 */
export function availableKeys(runs: readonly IRun[]): { metrics: string[]; params: string[]; tags: string[] } {
  const metrics = new Set<string>();
  const params = new Set<string>();
  const tags = new Set<string>();
  for (const run of runs) {
    run.data.metrics?.forEach(m => metrics.add(m.key));
    run.data.params?.forEach(p => params.add(p.key));
    run.data.tags?.forEach(t => tags.add(t.key));
  }
  const tagOrder = (a: string, b: string) =>
    Number(a.startsWith('mlflow.')) - Number(b.startsWith('mlflow.')) || byName(a, b);
  return {
    metrics: [...metrics].sort(byName),
    params: [...params].sort(byName),
    tags: [...tags].sort(tagOrder)
  };
}

/**
 * The metric and param columns whose values differ across the runs (a key some runs lack
 * differs too), metrics first, each sorted by name. One run: every metric and param (nothing
 * to compare it with, and they are what a user looks at).
 */
export function differingColumns(runs: readonly IRun[]): ColumnId[] {
  const keys = availableKeys(runs);
  const metrics = keys.metrics.map(k => `metric:${k}` as ColumnId);
  const params = keys.params.map(k => `param:${k}` as ColumnId);
  if (runs.length <= 1) {
    return [...metrics, ...params];
  }
  return [...metrics, ...params].filter(id => differs(runs, id));
}

function differs(runs: readonly IRun[], id: ColumnId): boolean {
  const first = String(columnValue(runs[0], id));
  for (let i = 1; i < runs.length; i++) {
    if (String(columnValue(runs[i], id)) !== first) {
      return true;
    }
  }
  return false;
}

/**
 * The default columns: when it started, how long it took, its source notebook, who ran it
 * (only when runs of several users are shown), then the differing metrics and params.
 */
export function automaticColumns(runs: readonly IRun[], max = MAX_AUTO_COLUMNS): ColumnId[] {
  const out: ColumnId[] = ['start', 'duration'];
  const users = new Set(runs.map(runUser));
  if (users.size > 1) {
    out.push('user');
  }
  if (runs.some(r => runSource(r))) {
    out.push('source');
  }
  return out.concat(differingColumns(runs).slice(0, max));
}

/**
 * Metric columns of any kind a user has: used to offer the sidebar's "one chosen metric".
 */
export function metricKeys(runs: readonly IRun[]): string[] {
  return availableKeys(runs).metrics;
}
