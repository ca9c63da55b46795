/**
 * The job dialog's form as pure functions: how each parameter is edited, the `POST jobs` body
 * built from the fields, and the server's verdict (`POST jobs/validate`) put back on the fields.
 *
 * The rules of parameter values (a notebook literal's type, an MLproject's required and numeric
 * parameters) live on the server alone: values go to it as typed, and the dialog shows its
 * answers. What stays here is the form's own structure: which experiment, the sweep fields split
 * into values and sets, how many instances at once.
 */
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import {
  IJob,
  IJobRequest,
  IJobValidation,
  IParameterSpec,
  ISweep,
  ITarget,
  ParameterValue
} from '../types';

/** Messages in English when no translator is given (unit tests). */
const ENGLISH = nullTranslator.load('infinstor_jupyterlab');

/** The value of one parameter field in the dialog: text, or a checkbox state. */
export type FieldValue = string | boolean;

/** How the dialog edits a parameter. */
export type FieldKind = 'int' | 'float' | 'bool' | 'text' | 'literal';

/**
 * The kind of form field for a parameter: notebook parameters carry the Python type of their
 * default (`int`, `float`, `bool`, `str`, `none`, `list`, `dict`, `tuple`); MLproject parameters
 * are mapped by the server to `float` or `str`.
 */
export function fieldKind(spec: IParameterSpec): FieldKind {
  switch (spec.type) {
    case 'int':
      return 'int';
    case 'float':
      return 'float';
    case 'bool':
      return 'bool';
    case 'str':
      return 'text';
    default:
      return 'literal';
  }
}

/** A short, human name of a parameter's expected type. */
export function kindLabel(spec: IParameterSpec): string {
  switch (spec.type) {
    case 'int':
      return 'integer';
    case 'float':
      return 'number';
    case 'bool':
      return 'boolean';
    case 'str':
      return 'string';
    case 'none':
      return 'Python literal';
    default:
      return String(spec.type);
  }
}

/** Whether a parameter must be given (an MLproject parameter without default). */
export function isRequired(spec: IParameterSpec): boolean {
  return (spec.default === null || spec.default === undefined) && spec.type !== 'none';
}

/**
 * A JSON value as the Python literal a field shows (defaults and previous values usually come
 * as text already).
 */
export function toPythonLiteral(value: unknown): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(toPythonLiteral).join(', ')}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${JSON.stringify(k)}: ${toPythonLiteral(v)}`
    );
    return `{${entries.join(', ')}}`;
  }
  return String(value);
}

/**
 * A parameter's initial field value: `current` (a previous job's value) when given, else its
 * default.
 */
export function initialFieldValue(spec: IParameterSpec, current?: unknown): FieldValue {
  const value = current === undefined ? spec.default : current;
  if (fieldKind(spec) === 'bool') {
    if (typeof value === 'string') {
      return ['true', '1', 'yes'].includes(value.trim().toLowerCase());
    }
    return Boolean(value);
  }
  if (value === null || value === undefined) {
    return spec.type === 'none' && current === undefined ? 'None' : '';
  }
  return typeof value === 'string' ? value : fieldKind(spec) === 'literal' ? toPythonLiteral(value) : String(value);
}

/**
 * What a field sends: checkboxes a boolean, other fields their text (the server converts and
 * checks it). An empty field of a required parameter sends nothing, so the server names it as
 * missing.
 */
export function parameterValue(spec: IParameterSpec, raw: FieldValue): ParameterValue | undefined {
  if (fieldKind(spec) === 'bool') {
    return raw === true || raw === 'true';
  }
  const text = String(raw);
  if (!text.trim() && isRequired(spec)) {
    return undefined;
  }
  return fieldKind(spec) === 'text' ? text : text.trim();
}

/** The parameters the fields send, by name. */
export function parameterValues(
  specs: IParameterSpec[],
  fields: Record<string, FieldValue>
): Record<string, ParameterValue> {
  const values: Record<string, ParameterValue> = {};
  for (const spec of specs) {
    const value = parameterValue(spec, spec.name in fields ? fields[spec.name] : initialFieldValue(spec));
    if (value !== undefined) {
      values[spec.name] = value;
    }
  }
  return values;
}

/** The dialog's state, from which a job request is built. */
export interface IJobForm {
  path: string;
  kind: string;
  target: string;
  experimentMode: 'existing' | 'new';
  experimentId: string;
  experimentName: string;
  runName: string;
  includeFolder: boolean;
  envManager: string;
  instanceType: string;
  /** The sweep fields (shown for targets with sweep support). */
  sweep?: ISweepForm;
}

/** Which target options the dialog shows for a target. */
export interface ITargetOptionsShown {
  envManager: boolean;
  instanceType: boolean;
}

export function targetOptionsShown(target: ITarget | undefined): ITargetOptionsShown {
  const caps = target?.capabilities ?? {};
  return {
    envManager: Array.isArray(caps.env_managers) && caps.env_managers.length > 0,
    instanceType: Array.isArray(caps.instance_types) && caps.instance_types.length > 0
  };
}

/**
 * Messages by field: `target`, `options`, `experiment`, `runName`, `sweep`, `maxInstances`,
 * `general` (anything else); parameters apart, by name.
 */
export interface IFieldErrors {
  errors: Record<string, string>;
  parameterErrors: Record<string, string>;
}

/** The request built from the dialog, and what keeps the form from sending it. */
export interface IRequestCheck extends IFieldErrors {
  /**
   * The request as far as the fields go: what the server is asked to judge as the user types.
   * Without an experiment (the server's default) or a sweep while those fields are incomplete.
   */
  request: IJobRequest;
  /** Whether the form itself is complete (no `errors` or `parameterErrors` of its own). */
  complete: boolean;
  /** The number of parameter sets of a sweep (when the sweep fields split). */
  sweepSize?: number;
}

/**
 * Build the `POST jobs` body from the dialog, and say what the form lacks (an experiment, sweep
 * fields that do not split into values). Values are not judged here: the server does that.
 */
export function buildJobRequest(
  form: IJobForm,
  specs: IParameterSpec[],
  fields: Record<string, FieldValue>,
  targets: ITarget[],
  trans: TranslationBundle = ENGLISH
): IRequestCheck {
  const errors: Record<string, string> = {};
  const target = targets.find(t => t.name === form.target);
  if (!target) {
    errors.target = trans.__('Choose a target.');
  }
  const request: IJobRequest = { path: form.path, target: form.target };
  const sweeping = !!form.sweep && form.sweep.mode !== 'none' && sweepSupport(target).shown;
  const sweep = sweeping ? checkSweep(form.sweep!, specs, fields, target!, trans) : null;
  const parameterErrors = sweep ? sweep.parameterErrors : {};
  if (sweep) {
    Object.assign(errors, sweep.errors);
    request.parameters = sweep.parameters;
    if (sweep.sweep) {
      request.sweep = sweep.sweep;
      request.max_instances = sweep.maxInstances!;
    }
  } else {
    request.parameters = parameterValues(specs, fields);
  }
  if (form.experimentMode === 'existing') {
    if (form.experimentId) {
      request.experiment_id = form.experimentId;
    } else {
      errors.experiment = trans.__('Choose an experiment, or create a new one.');
    }
  } else if (form.experimentName.trim()) {
    request.experiment_name = form.experimentName.trim();
  } else {
    errors.experiment = trans.__('Give the new experiment a name.');
  }
  if (form.runName.trim()) {
    request.run_name = form.runName.trim();
  }
  if (form.kind === 'notebook') {
    request.include_folder = form.includeFolder;
  }
  const shown = targetOptionsShown(target);
  const options: Record<string, unknown> = {};
  if (shown.envManager && form.envManager) {
    options.env_manager = form.envManager;
  }
  if (shown.instanceType && form.instanceType) {
    options.instance_type = form.instanceType;
  }
  if (Object.keys(options).length > 0) {
    request.options = options;
  }
  const complete = Object.keys(errors).length === 0 && Object.keys(parameterErrors).length === 0;
  return { request, complete, errors, parameterErrors, sweepSize: sweep?.size };
}

/** Where the dialog shows a message of the server about a request field. */
const FIELD_OF: Record<string, string> = {
  target: 'target',
  options: 'options',
  experiment_id: 'experiment',
  experiment_name: 'experiment',
  run_name: 'runName',
  sweep: 'sweep',
  max_instances: 'maxInstances'
};

/** The server's verdict (`POST jobs/validate`) as messages by dialog field. */
export function serverFieldErrors(validation: IJobValidation | null): IFieldErrors {
  const errors: Record<string, string> = {};
  const parameterErrors: Record<string, string> = {};
  for (const { field, message } of validation?.errors ?? []) {
    if (field.startsWith('parameters.')) {
      parameterErrors[field.slice('parameters.'.length)] = message;
    } else {
      const where = FIELD_OF[field] ?? 'general';
      errors[where] = errors[where] ? `${errors[where]} ${message}` : message;
    }
  }
  return { errors, parameterErrors };
}

// ---------------------------------------------------------------------------
// Parameter sweeps: the fields split into values and sets (their values are judged by the server)

/** How the dialog runs the job: once, over a grid of values, or over a list of parameter sets. */
export type SweepMode = 'none' | 'grid' | 'list';

/** The sweep fields of the dialog. */
export interface ISweepForm {
  mode: SweepMode;
  /** Grid mode: comma-separated values by parameter name (absent: the parameter's own field). */
  grid: Record<string, string>;
  /** List mode: one parameter set a line, `name=value, name=value`. */
  list: string;
  /** "Run on up to N instances at once", as typed. */
  maxInstances: string;
}

export function emptySweepForm(): ISweepForm {
  return { mode: 'none', grid: {}, list: '', maxInstances: '' };
}

/** Whether the dialog offers sweeps for a target, and its limit of instances at once. */
export function sweepSupport(target: ITarget | undefined): { shown: boolean; maxInstances: number } {
  const caps = target?.capabilities ?? {};
  if (!target?.available || caps.sweeps !== true) {
    return { shown: false, maxInstances: 0 };
  }
  const limit = Number(caps.max_instances ?? caps.max_parallel ?? 1);
  return { shown: true, maxInstances: Number.isInteger(limit) && limit >= 1 ? limit : 1 };
}

/**
 * Split `text` at its top-level commas: commas inside quotes or brackets (`"a,b"`, `[1, 2]`)
 * do not split. Throws a SyntaxError on an unclosed quote.
 */
export function splitValues(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quote: string | null = null;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      current += ch;
      if (ch === '\\' && i + 1 < text.length) {
        current += text[++i];
      } else if (ch === quote) {
        quote = null;
      }
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '[' || ch === '(' || ch === '{') {
      depth++;
    } else if ((ch === ']' || ch === ')' || ch === '}') && depth > 0) {
      depth--;
    } else if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  if (quote) {
    throw new SyntaxError(`a ${quote} quote is not closed`);
  }
  parts.push(current.trim());
  return parts;
}

/**
 * One sweep value as sent: a string parameter's quotes (needed around commas) are taken off;
 * every other value goes as typed, for the server to read.
 */
export function sweepValue(spec: IParameterSpec, text: string): ParameterValue {
  const trimmed = text.trim();
  const quote = trimmed[0];
  if (fieldKind(spec) === 'text' && trimmed.length >= 2 && (quote === '"' || quote === "'") && trimmed.endsWith(quote)) {
    return trimmed.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return trimmed;
}

/** The comma-separated values of one grid parameter. */
export function checkGridValues(
  spec: IParameterSpec,
  text: string,
  trans: TranslationBundle = ENGLISH
): { values?: ParameterValue[]; error?: string } {
  let parts: string[];
  try {
    parts = splitValues(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { error: trans.__('Parameter "%1": %2.', spec.name, detail) };
  }
  const values: ParameterValue[] = [];
  for (const part of parts) {
    if (!part.trim()) {
      return { error: trans.__('Parameter "%1": a value is empty.', spec.name) };
    }
    const value = sweepValue(spec, part);
    if (values.includes(value)) {
      return { error: trans.__('Parameter "%1": %2 is listed twice.', spec.name, part.trim()) };
    }
    values.push(value);
  }
  return { values };
}

/** The grid field text of a parameter from its single-value field (when grid mode starts). */
export function gridText(spec: IParameterSpec, value: FieldValue): string {
  if (typeof value === 'boolean') {
    return value ? 'true' : 'false';
  }
  return value;
}

/**
 * The list of parameter sets: one set a line, `name=value` pairs separated by commas (quote
 * strings holding commas). Blank lines are skipped.
 */
export function parseSweepList(
  text: string,
  specs: IParameterSpec[],
  trans: TranslationBundle = ENGLISH
): { sets?: Array<Record<string, ParameterValue>>; error?: string } {
  const byName = new Map(specs.map(s => [s.name, s]));
  const sets: Array<Record<string, ParameterValue>> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) {
      continue;
    }
    const where = trans.__('Line %1', i + 1);
    let pairs: string[];
    try {
      pairs = splitValues(line);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return { error: trans.__('%1: %2.', where, detail) };
    }
    const set: Record<string, ParameterValue> = {};
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        return { error: trans.__('%1: write name=value pairs separated by commas; "%2" is not one.', where, pair) };
      }
      const name = pair.slice(0, eq).trim();
      const spec = byName.get(name);
      if (!spec) {
        const known = specs.map(s => s.name).join(', ');
        return {
          error: known
            ? trans.__('%1: there is no parameter "%2" (parameters: %3).', where, name, known)
            : trans.__('%1: there is no parameter "%2".', where, name)
        };
      }
      if (name in set) {
        return { error: trans.__('%1: "%2" is given twice.', where, name) };
      }
      if (!pair.slice(eq + 1).trim()) {
        return { error: trans.__('%1: "%2" has no value.', where, name) };
      }
      set[name] = sweepValue(spec, pair.slice(eq + 1));
    }
    sets.push(set);
  }
  return { sets };
}

/** A sweep value as the sweep fields show it (quoted when it holds a comma or a quote). */
export function sweepValueText(value: unknown): string {
  if (typeof value === 'string') {
    return /[,"'=]/.test(value) || value !== value.trim() ? JSON.stringify(value) : value;
  }
  return typeof value === 'boolean' ? (value ? 'true' : 'false') : String(value);
}

/** The sweep fields of a previous sweep (re-run), or empty ones. */
export function sweepFormFromJob(job: IJob | null | undefined): ISweepForm {
  const form = emptySweepForm();
  const sweep = job?.options?.sweep as Record<string, unknown> | undefined;
  if (!sweep || typeof sweep !== 'object') {
    return form;
  }
  const max = job?.options?.max_instances;
  form.maxInstances = typeof max === 'number' ? String(max) : '';
  if (sweep.grid && typeof sweep.grid === 'object') {
    form.mode = 'grid';
    for (const [name, values] of Object.entries(sweep.grid as Record<string, unknown[]>)) {
      form.grid[name] = (Array.isArray(values) ? values : [values]).map(sweepValueText).join(', ');
    }
  } else if (Array.isArray(sweep.list)) {
    form.mode = 'list';
    form.list = (sweep.list as Array<Record<string, unknown>>)
      .map(set => Object.entries(set).map(([k, v]) => `${k}=${sweepValueText(v)}`).join(', '))
      .join('\n');
  }
  return form;
}

/** The sweep of the fields: what goes into the request, or what the form lacks. */
export interface ISweepCheck {
  sweep: ISweep | null;
  /** The fixed parameters (each set is merged over them). */
  parameters: Record<string, ParameterValue>;
  maxInstances: number | null;
  /** The number of parameter sets, when known. */
  size?: number;
  /** By field: sweep, maxInstances. */
  errors: Record<string, string>;
  parameterErrors: Record<string, string>;
}

/** Split the sweep fields into a grid or a list of sets, within the target's limit at once. */
export function checkSweep(
  form: ISweepForm,
  specs: IParameterSpec[],
  fields: Record<string, FieldValue>,
  target: ITarget,
  trans: TranslationBundle = ENGLISH
): ISweepCheck {
  const errors: Record<string, string> = {};
  const parameterErrors: Record<string, string> = {};
  const parameters: Record<string, ParameterValue> = {};
  let sweep: ISweep | null = null;
  let size: number | undefined;
  const field = (spec: IParameterSpec) => (spec.name in fields ? fields[spec.name] : initialFieldValue(spec));
  if (specs.length === 0) {
    errors.sweep = trans.__('This project takes no parameters: there is nothing to sweep over.');
  } else if (form.mode === 'grid') {
    const grid: Record<string, ParameterValue[]> = {};
    size = 1;
    for (const spec of specs) {
      const raw = spec.name in form.grid ? form.grid[spec.name] : gridText(spec, field(spec));
      if (fieldKind(spec) !== 'bool' && !raw.trim()) {
        // An empty field: the parameter's default (or missing, which the server says).
        const single = parameterValue(spec, raw);
        if (single !== undefined) {
          parameters[spec.name] = single;
        }
        continue;
      }
      const checked = checkGridValues(spec, raw, trans);
      if (checked.error) {
        parameterErrors[spec.name] = checked.error;
      } else if (checked.values!.length === 1) {
        parameters[spec.name] = checked.values![0];
      } else {
        grid[spec.name] = checked.values!;
        size *= checked.values!.length;
      }
    }
    if (Object.keys(parameterErrors).length === 0 && Object.keys(grid).length === 0) {
      errors.sweep = trans.__('Give two or more values (comma-separated) for at least one parameter.');
    }
    sweep = { grid };
  } else {
    Object.assign(parameters, parameterValues(specs, fields));
    const parsed = parseSweepList(form.list, specs, trans);
    if (parsed.error) {
      errors.sweep = parsed.error;
    } else {
      size = parsed.sets!.length;
      if (size < 2) {
        errors.sweep = trans.__('Give two or more parameter sets, one a line (e.g. alpha=0.1, l1_ratio=0.5).');
      }
      sweep = { list: parsed.sets! };
    }
  }
  const limit = sweepSupport(target).maxInstances;
  const typed = form.maxInstances.trim();
  let maxInstances: number | null = null;
  if (!typed) {
    maxInstances = Math.min(limit, size ?? limit);
  } else if (!/^\d+$/.test(typed) || Number(typed) < 1 || Number(typed) > limit) {
    errors.maxInstances = trans._n(
      "Run on 1 to %1 instance at once (the admin's limit is %1).",
      "Run on 1 to %1 instances at once (the admin's limit is %1).",
      limit
    );
  } else {
    maxInstances = Number(typed);
  }
  const valid = Object.keys(errors).length === 0 && Object.keys(parameterErrors).length === 0;
  return {
    sweep: valid ? sweep : null,
    parameters,
    maxInstances: valid ? maxInstances : null,
    size,
    errors,
    parameterErrors
  };
}
