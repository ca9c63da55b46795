/**
 * Formatting and small pure helpers for the MLflow views (unit-tested).
 */
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { InfinStorRequestError } from '../common/request';
import { IKeyValue, IRun, RunStatus } from './types';

/**
 * The bundle the helpers below translate with when a view passes none (English).
 */
export const DEFAULT_TRANS: TranslationBundle = nullTranslator.load('infinstor_jupyterlab');

export const SOURCE_NAME_TAG = 'mlflow.source.name';
export const SOURCE_TYPE_TAG = 'mlflow.source.type';
export const PARENT_RUN_TAG = 'mlflow.parentRunId';
export const USER_TAG = 'mlflow.user';
export const RUN_NAME_TAG = 'mlflow.runName';
export const NOTE_TAG = 'mlflow.note.content';
export const LOGGED_MODELS_TAG = 'mlflow.log-model.history';

/**
 * `1 h 2 min`, `3 min 4 s`, `5.2 s`, `120 ms`; `—` for unknown.
 */
export function formatDuration(ms: number | null | undefined, trans: TranslationBundle = DEFAULT_TRANS): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) {
    return '—';
  }
  if (ms < 1000) {
    return trans.__('%1 ms', Math.round(ms));
  }
  const s = ms / 1000;
  if (s < 60) {
    return trans.__('%1 s', s < 10 ? s.toFixed(1) : Math.round(s));
  }
  const totalSeconds = Math.round(s);
  const days = Math.floor(totalSeconds / 86400);
  const hours = Math.floor((totalSeconds % 86400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) {
    return trans.__('%1 d %2 h', days, hours);
  }
  if (hours > 0) {
    return trans.__('%1 h %2 min', hours, minutes);
  }
  return trans.__('%1 min %2 s', minutes, seconds);
}

/**
 * A run's duration: end - start, or now - start while it runs.
 */
export function runDuration(run: IRun, now: number = Date.now()): number | null {
  const start = run.info.start_time;
  if (!start) {
    return null;
  }
  const end = run.info.end_time || (isActive(run.info.status) ? now : null);
  return end ? Math.max(0, end - start) : null;
}

export function isActive(status: RunStatus | string | undefined): boolean {
  return status === 'RUNNING' || status === 'SCHEDULED';
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * `2026-11-25 07:31:02` in local time; `—` for unknown.
 */
export function formatTimestamp(ms: number | null | undefined): string {
  if (!ms || !Number.isFinite(ms)) {
    return '—';
  }
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/**
 * `just now`, `5 min ago`, `3 h ago`, `2 d ago`, else the date.
 */
export function formatRelative(
  ms: number | null | undefined,
  now: number = Date.now(),
  trans: TranslationBundle = DEFAULT_TRANS
): string {
  if (!ms || !Number.isFinite(ms)) {
    return '—';
  }
  const diff = now - ms;
  if (diff < 0) {
    return formatTimestamp(ms);
  }
  if (diff < 45 * 1000) {
    return trans.__('just now');
  }
  if (diff < 60 * 60 * 1000) {
    return trans.__('%1 min ago', Math.max(1, Math.round(diff / 60000)));
  }
  if (diff < 24 * 60 * 60 * 1000) {
    return trans.__('%1 h ago', Math.round(diff / 3600000));
  }
  if (diff < 30 * 24 * 60 * 60 * 1000) {
    return trans.__('%1 d ago', Math.round(diff / 86400000));
  }
  return formatTimestamp(ms).slice(0, 10);
}

/**
 * ISO 8601 in UTC to the second (`2026-11-25T06:31:02Z`), for tooltips; `''` for unknown.
 */
export function formatIso(ms: number | null | undefined): string {
  if (!ms || !Number.isFinite(ms)) {
    return '';
  }
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A metric value with up to 4 significant decimals: `0.1235`, `1.235e-7`, `12345.68`, `NaN`.
 */
export function formatMetric(value: number | string | null | undefined): string {
  if (value === null || value === undefined || value === '') {
    return '—';
  }
  const n = typeof value === 'number' ? value : Number(value);
  if (Number.isNaN(n)) {
    return 'NaN';
  }
  if (!Number.isFinite(n)) {
    return n > 0 ? '∞' : '-∞';
  }
  if (Number.isInteger(n) && Math.abs(n) < 1e15) {
    return String(n);
  }
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e12)) {
    return n.toExponential(3);
  }
  if (abs >= 1000) {
    return String(Math.round(n * 100) / 100);
  }
  return String(Number(n.toPrecision(4)));
}

/**
 * A formatter for one table column of numbers: the same number of decimals for every value
 * (so they line up), enough for `significant` digits of the column's largest value and no more
 * than the values need (`0.15`, not `0.15000000000000002`; `0.10, 0.25` for a column of both).
 * Integers stay integers; a column of very large or very small numbers uses exponents; a
 * non-zero value that would round to zero keeps its own precision.
 */
export function numberFormatter(
  values: Iterable<number | string | null | undefined>,
  significant = 4
): (value: number | string | null | undefined) => string {
  const finite: number[] = [];
  for (const v of values) {
    const n = typeof v === 'number' ? v : v === null || v === undefined || v === '' ? NaN : Number(v);
    if (Number.isFinite(n)) {
      finite.push(n);
    }
  }
  if (!finite.length) {
    return formatMetric;
  }
  if (finite.every(n => Number.isInteger(n) && Math.abs(n) < 1e15)) {
    return formatMetric;
  }
  const maxAbs = Math.max(...finite.map(Math.abs));
  if (maxAbs >= 1e12 || maxAbs < 1e-4) {
    return v => {
      const n = typeof v === 'number' ? v : Number(v);
      return v === null || v === undefined || v === '' || !Number.isFinite(n) || n === 0
        ? formatMetric(v)
        : n.toExponential(Math.max(0, significant - 1));
    };
  }
  const most = Math.min(10, Math.max(0, significant - 1 - Math.floor(Math.log10(maxAbs))));
  let decimals = 0;
  for (const n of finite) {
    decimals = Math.max(decimals, decimalsUsed(n, most));
    if (decimals === most) {
      break;
    }
  }
  return v => {
    const n = typeof v === 'number' ? v : v === null || v === undefined || v === '' ? NaN : Number(v);
    if (!Number.isFinite(n)) {
      return formatMetric(v);
    }
    const text = n.toFixed(decimals);
    if (n !== 0 && Number(text) === 0) {
      // Too small for this column's precision: keep its own.
      return formatMetric(n);
    }
    return text;
  };
}

/** How many of `most` decimals `n` needs (trailing zeros dropped): 0.15 at 4 -> 2. */
function decimalsUsed(n: number, most: number): number {
  const text = n.toFixed(most);
  const point = text.indexOf('.');
  if (point < 0) {
    return 0;
  }
  let end = text.length;
  while (end > point + 1 && text[end - 1] === '0') {
    end--;
  }
  return end - point - 1;
}

/**
 * `1.5 KB` etc.
 */
export function formatBytes(bytes: number | string | null | undefined): string {
  const n = Number(bytes);
  if (bytes === null || bytes === undefined || bytes === '' || !Number.isFinite(n)) {
    return '';
  }
  if (n < 1024) {
    return `${n} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function tagMap(tags: IKeyValue[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) {
    out[t.key] = t.value;
  }
  return out;
}

export function runName(run: IRun): string {
  return run.info.run_name || tagMap(run.data.tags)[RUN_NAME_TAG] || run.info.run_id.slice(0, 8);
}

export function runUser(run: IRun): string {
  return run.info.user_id || tagMap(run.data.tags)[USER_TAG] || '';
}

export function runSource(run: IRun): string {
  return tagMap(run.data.tags)[SOURCE_NAME_TAG] || '';
}

/**
 * Whether the source is a notebook the lab can open (a relative `.ipynb` path).
 */
export function isLabNotebookPath(source: string): boolean {
  return /\.ipynb$/i.test(source) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('/');
}

export function statusLabel(status: string | undefined, trans: TranslationBundle = DEFAULT_TRANS): string {
  switch (status) {
    case 'RUNNING':
      return trans.__('Running');
    case 'SCHEDULED':
      return trans.__('Scheduled');
    case 'FINISHED':
      return trans.__('Finished');
    case 'FAILED':
      return trans.__('Failed');
    case 'KILLED':
      return trans.__('Killed');
    default:
      return status ? status.charAt(0) + status.slice(1).toLowerCase() : trans.__('Unknown');
  }
}

/**
 * `ok` / `pending` / `error` / `neutral` (CSS modifier for the status dot).
 */
export function statusKind(status: string | undefined): 'ok' | 'pending' | 'error' | 'neutral' {
  switch (status) {
    case 'FINISHED':
      return 'ok';
    case 'RUNNING':
    case 'SCHEDULED':
      return 'pending';
    case 'FAILED':
      return 'error';
    default:
      return 'neutral';
  }
}

// -- search syntax --------------------------------------------------------------------------------

/**
 * Quote a key for MLflow's search / order_by syntax: `lr` stays, `my key` becomes `` `my key` ``.
 */
export function quoteKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `\`${key.replace(/`/g, '')}\``;
}

export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const SEARCH_SYNTAX = /(=|<|>|!=|\b(LIKE|ILIKE|IN|AND|IS)\b)/i;

/**
 * The experiments search box: plain text is a case-insensitive name filter
 * (`name ILIKE '%text%'`); text with MLflow search syntax (an operator such as
 * `=`, `<`, `LIKE`) is passed through unchanged.
 */
export function experimentFilter(text: string): string {
  const t = text.trim();
  if (!t) {
    return '';
  }
  if (SEARCH_SYNTAX.test(t)) {
    return t;
  }
  return `name ILIKE ${quoteString(`%${t}%`)}`;
}

/**
 * Same idea for registered models: plain text becomes `name ILIKE '%text%'`.
 */
export function modelFilter(text: string): string {
  const t = text.trim();
  if (!t) {
    return '';
  }
  if (SEARCH_SYNTAX.test(t)) {
    return t;
  }
  return `name ILIKE ${quoteString(`%${t}%`)}`;
}

/**
 * The runs filter box: plain text is a case-insensitive run-name filter
 * (`attributes.run_name ILIKE '%text%'`, as in MLflow's own UI); text with MLflow search
 * syntax is passed through unchanged.
 */
export function runFilter(text: string): string {
  const t = text.trim();
  if (!t) {
    return '';
  }
  if (SEARCH_SYNTAX.test(t)) {
    return t;
  }
  return `attributes.run_name ILIKE ${quoteString(`%${t}%`)}`;
}

/**
 * What is wrong with a runs filter MLflow refused, in a sentence a user can act on
 * (MLflow's own message names parser internals).
 */
export function explainFilterError(message: string, trans: TranslationBundle = DEFAULT_TRANS): string {
  const attribute = /Invalid attribute key '([^']+)'/.exec(message);
  if (attribute) {
    const key = attribute[1];
    return trans.__(
      '"%1" is not a run attribute. Metrics, parameters and tags need their prefix: metrics.%1, params.%1 or tags.%1.',
      key
    );
  }
  if (/quoted string value for (parameter|tag)/i.test(message)) {
    return trans.__("Parameter and tag values are text: quote them, e.g. params.lr = '0.01'.");
  }
  if (/numeric value type for metric/i.test(message)) {
    return trans.__('Metric values are numbers: compare them with a number, e.g. metrics.loss < 0.2.');
  }
  return trans.__(
    "This is not MLflow search syntax. Write conditions such as metrics.loss < 0.2 and params.lr = '0.01', joined by and."
  );
}

/**
 * A sortable column of the runs table.
 */
export type ColumnId =
  | 'status'
  | 'name'
  | 'start'
  | 'duration'
  | 'user'
  | 'source'
  | `param:${string}`
  | `metric:${string}`
  | `tag:${string}`;

/**
 * MLflow `order_by` for a column, or `null` when MLflow cannot sort by it
 * (then the view sorts the loaded rows).
 */
export function orderByFor(column: ColumnId, desc: boolean): string | null {
  const dir = desc ? 'DESC' : 'ASC';
  switch (column) {
    case 'status':
      return `attributes.status ${dir}`;
    case 'name':
      return `attributes.run_name ${dir}`;
    case 'start':
      return `attributes.start_time ${dir}`;
    case 'user':
      return `attributes.user_id ${dir}`;
    case 'source':
      return `tags.${quoteKey(SOURCE_NAME_TAG)} ${dir}`;
    case 'duration':
      return null;
    default: {
      const [kind, ...rest] = column.split(':');
      const key = rest.join(':');
      const prefix = kind === 'param' ? 'params' : kind === 'metric' ? 'metrics' : 'tags';
      return `${prefix}.${quoteKey(key)} ${dir}`;
    }
  }
}

/**
 * The value of a column for a run (used for display and client-side sorting).
 */
export function columnValue(run: IRun, column: ColumnId, now: number = Date.now()): string | number | null {
  switch (column) {
    case 'status':
      return run.info.status;
    case 'name':
      return runName(run);
    case 'start':
      return run.info.start_time ?? null;
    case 'duration':
      return runDuration(run, now);
    case 'user':
      return runUser(run);
    case 'source':
      return runSource(run);
    default: {
      const [kind, ...rest] = column.split(':');
      const key = rest.join(':');
      if (kind === 'metric') {
        const m = run.data.metrics?.find(x => x.key === key);
        return m ? Number(m.value) : null;
      }
      const list = kind === 'param' ? run.data.params : run.data.tags;
      const kv = list?.find(x => x.key === key);
      return kv ? kv.value : null;
    }
  }
}

/**
 * Compare two column values for sorting; missing values sort last.
 */
export function compareValues(a: string | number | null, b: string | number | null): number {
  if (a === null || a === undefined || a === '') {
    return b === null || b === undefined || b === '' ? 0 : 1;
  }
  if (b === null || b === undefined || b === '') {
    return -1;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  const na = Number(a);
  const nb = Number(b);
  if (!Number.isNaN(na) && !Number.isNaN(nb)) {
    return na - nb;
  }
  return String(a).localeCompare(String(b));
}

/**
 * Whether values differ across runs (for the compare view's highlighting).
 */
export function valuesDiffer(values: Array<string | number | null | undefined>): boolean {
  const seen = new Set(values.map(v => (v === undefined || v === null ? '\u0000' : String(v))));
  return seen.size > 1;
}

// -- errors ---------------------------------------------------------------------------------------

export type ErrorKind = 'signed-out' | 'unavailable' | 'forbidden' | 'not-found' | 'network' | 'invalid' | 'other';

export interface IErrorDescription {
  kind: ErrorKind;
  /** What went wrong, in a short sentence. */
  title: string;
  /** The server's own message. */
  message: string;
  /** What the user can do about it. */
  hint: string;
}

/**
 * Turn a client error into what the UI says: the server's reason plus what to do.
 */
export function describeError(error: unknown, trans: TranslationBundle = DEFAULT_TRANS): IErrorDescription {
  const message = error instanceof Error ? error.message : String(error);
  const status = error instanceof InfinStorRequestError ? error.status : -1;
  const reason = error instanceof InfinStorRequestError ? error.reason : '';
  if (status === 0) {
    return {
      kind: 'network',
      title: trans.__('The Jupyter server does not answer.'),
      message,
      hint: trans.__('Check that the Jupyter server is still running, then retry.')
    };
  }
  if (reason === 'sign_in_required' || reason === 'UNAUTHENTICATED' || status === 401) {
    return {
      kind: 'signed-out',
      title: trans.__('You are signed out of the tracking service.'),
      message,
      hint: trans.__('Sign in from the InfinStor panel, then retry.')
    };
  }
  if (
    reason === 'tracking_unavailable' ||
    reason === 'TEMPORARILY_UNAVAILABLE' ||
    status === 502 ||
    status === 503 ||
    status === 504
  ) {
    return {
      kind: 'unavailable',
      title: trans.__('The tracking service is not available.'),
      message,
      hint: trans.__('See "Tracking service" above (restart it if it failed), then retry.')
    };
  }
  if (reason === 'PERMISSION_DENIED' || status === 403) {
    return {
      kind: 'forbidden',
      title: trans.__('You do not have permission to do this.'),
      message,
      hint: trans.__('Ask the owner of the experiment or model (or your platform admin) for access.')
    };
  }
  if (reason === 'RESOURCE_DOES_NOT_EXIST' || status === 404) {
    return {
      kind: 'not-found',
      title: trans.__('Not found.'),
      message,
      hint: trans.__('It may have been deleted or renamed. Refresh the list.')
    };
  }
  if (reason === 'INVALID_PARAMETER_VALUE' || reason === 'BAD_REQUEST' || status === 400) {
    return {
      kind: 'invalid',
      title: trans.__('The tracking service refused the request.'),
      message,
      hint: trans.__('Check the value you entered (for filters, MLflow search syntax such as metrics.loss < 0.2).')
    };
  }
  return {
    kind: 'other',
    title: trans.__('The request failed.'),
    message,
    hint: trans.__('Retry; if it keeps failing, look at the Jupyter server log.')
  };
}

// -- CSV ------------------------------------------------------------------------------------------

/**
 * Parse CSV (RFC 4180 quotes, `,` or tab separated), at most `maxRows` rows.
 */
export function parseCsv(text: string, maxRows = 1000): { rows: string[][]; truncated: boolean } {
  const firstLine = text.slice(0, text.indexOf('\n') === -1 ? text.length : text.indexOf('\n'));
  const sep = firstLine.split('\t').length > firstLine.split(',').length ? '\t' : ',';
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i++;
      continue;
    }
    if (c === sep) {
      row.push(field);
      field = '';
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') {
      row.push(field);
      field = '';
      rows.push(row);
      row = [];
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
      }
      i++;
      if (rows.length >= maxRows) {
        return { rows, truncated: i < n };
      }
      continue;
    }
    field += c;
    i++;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return { rows, truncated: false };
}

/**
 * How to preview an artifact, from its name.
 */
export type PreviewKind = 'image' | 'csv' | 'json' | 'html' | 'notebook' | 'text' | 'none';

export function previewKind(path: string): PreviewKind {
  const name = path.toLowerCase();
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : '';
  if (['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp'].includes(ext)) {
    return 'image';
  }
  if (['csv', 'tsv'].includes(ext)) {
    return 'csv';
  }
  if (['json', 'geojson'].includes(ext)) {
    return 'json';
  }
  if (['html', 'htm'].includes(ext)) {
    return 'html';
  }
  if (ext === 'ipynb') {
    return 'notebook';
  }
  const base = name.slice(name.lastIndexOf('/') + 1);
  if (
    ['txt', 'log', 'md', 'py', 'yaml', 'yml', 'toml', 'cfg', 'ini', 'sh', 'r', 'sql', 'xml', 'js', 'ts'].includes(ext) ||
    ['mlmodel', 'mlproject', 'requirements.txt', 'conda.yaml', 'python_env.yaml', 'license'].includes(base)
  ) {
    return 'text';
  }
  return 'none';
}

// -- HTML artifact previews -----------------------------------------------------------------------

/** The lab theme's colours an HTML preview starts from. */
export interface IPreviewTheme {
  light: boolean;
  background: string;
  color: string;
  link: string;
  font: string;
}

/** Only what a CSS value may hold here (no `;`, `}`, `<`: a theme value cannot end the rule). */
function cssValue(value: string, fallback: string): string {
  const v = value.trim();
  return v && /^[-\w\s#(),.%'"]+$/.test(v) ? v : fallback;
}

/**
 * An HTML artifact as the preview's document: it starts from the lab theme's colours (and says
 * its colour scheme, so a dark lab does not frame it in white), and the artifact's own styles
 * still win (the defaults are on `html`, which a page's `body` styles paint over).
 */
export function htmlPreviewDocument(html: string, theme: IPreviewTheme): string {
  const scheme = theme.light ? 'light' : 'dark';
  const style =
    `<meta name="color-scheme" content="${scheme}">` +
    `<style>:root{color-scheme:${scheme}}` +
    `html{background:${cssValue(theme.background, theme.light ? '#fff' : '#111')};` +
    `color:${cssValue(theme.color, theme.light ? '#000' : '#eee')};` +
    `font-family:${cssValue(theme.font, 'sans-serif')}}` +
    `a{color:${cssValue(theme.link, theme.light ? '#0645ad' : '#8ab4f8')}}</style>`;
  const head = /<head(\s[^>]*)?>/i.exec(html);
  if (head) {
    const at = head.index + head[0].length;
    return html.slice(0, at) + style + html.slice(at);
  }
  const root = /<html(\s[^>]*)?>/i.exec(html);
  if (root) {
    const at = root.index + root[0].length;
    return html.slice(0, at) + `<head>${style}</head>` + html.slice(at);
  }
  return `<!DOCTYPE html><html><head>${style}</head><body>${html}</body></html>`;
}
