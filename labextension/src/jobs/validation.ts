/**
 * Parameter editing and validation for the job dialog, and small formatting
 * helpers for the Jobs view. Pure functions: unit tested without a browser.
 */
import {
  IJob,
  IJobRequest,
  IParameterSpec,
  ISweep,
  ITarget,
  ParameterValue
} from './types';

/** The value of one parameter field in the dialog: text, or a checkbox state. */
export type FieldValue = string | boolean;

/** How the dialog edits a parameter. */
export type FieldKind = 'int' | 'float' | 'bool' | 'text' | 'literal';

/**
 * The kind of form field for a parameter.
 *
 * Notebook parameters carry the Python type of their default (`int`, `float`,
 * `bool`, `str`, `none`, `list`, `dict`, `tuple`); MLproject parameters are
 * mapped by the server to `float` or `str`.
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

/**
 * Whether a parameter must be given (an MLproject parameter without default).
 */
export function isRequired(spec: IParameterSpec): boolean {
  return spec.default === null || spec.default === undefined
    ? spec.type !== 'none'
    : false;
}

/**
 * The initial field value of a parameter: from `current` (a previous job's
 * value) when given, else from its default.
 */
export function initialFieldValue(spec: IParameterSpec, current?: unknown): FieldValue {
  const value = current === undefined ? spec.default : current;
  const kind = fieldKind(spec);
  if (kind === 'bool') {
    if (typeof value === 'string') {
      return ['true', '1', 'yes'].includes(value.trim().toLowerCase());
    }
    return Boolean(value);
  }
  if (value === null || value === undefined) {
    return spec.type === 'none' && current === undefined ? 'None' : '';
  }
  if (kind === 'literal' && typeof value !== 'string') {
    return toPythonLiteral(value);
  }
  return String(value);
}

/** Result of checking one field. */
export interface IFieldCheck {
  value?: ParameterValue;
  error?: string;
}

/**
 * Check one parameter field and convert it to the value the job API takes.
 * Errors name the parameter.
 */
export function checkParameter(spec: IParameterSpec, raw: FieldValue): IFieldCheck {
  const name = spec.name;
  const kind = fieldKind(spec);
  if (kind === 'bool') {
    return { value: raw === true || raw === 'true' };
  }
  const text = typeof raw === 'string' ? raw : String(raw);
  const trimmed = text.trim();
  if (kind === 'int' || kind === 'float') {
    if (!trimmed) {
      return { error: `Parameter "${name}" needs a ${kind === 'int' ? 'whole number' : 'number'}.` };
    }
    // Number('') and Number('0x1') are accepted by JavaScript; be stricter.
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) {
      return { error: `Parameter "${name}" must be a number; "${trimmed}" is not.` };
    }
    const number = Number(trimmed);
    if (!Number.isFinite(number)) {
      return { error: `Parameter "${name}" must be a finite number.` };
    }
    if (kind === 'int') {
      if (!Number.isInteger(number)) {
        return { error: `Parameter "${name}" must be a whole number (integer); "${trimmed}" is not.` };
      }
      if (!Number.isSafeInteger(number)) {
        return { error: `Parameter "${name}" is too large.` };
      }
    }
    return { value: number };
  }
  if (kind === 'text') {
    if (isRequired(spec) && !trimmed) {
      return { error: `Parameter "${name}" is required.` };
    }
    return { value: text };
  }
  // Python literals: list, dict, tuple, or anything for a `None` default.
  if (!trimmed) {
    return { error: `Parameter "${name}" needs a ${kindLabel(spec)} value.` };
  }
  let parsed: PyValue;
  try {
    parsed = parsePythonLiteral(trimmed);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { error: `Parameter "${name}" is not a valid ${kindLabel(spec)}: ${detail}` };
  }
  if (spec.type !== 'none') {
    const got = pyTypeName(parsed);
    if (got !== spec.type) {
      return {
        error: `Parameter "${name}" must be a ${kindLabel(spec)} like its default; got a ${got}.`
      };
    }
  }
  return { value: trimmed };
}

/** Checked parameters: values for the request, and errors by parameter name. */
export interface IParametersCheck {
  values: Record<string, ParameterValue>;
  errors: Record<string, string>;
  valid: boolean;
}

export function checkParameters(
  specs: IParameterSpec[],
  fields: Record<string, FieldValue>
): IParametersCheck {
  const values: Record<string, ParameterValue> = {};
  const errors: Record<string, string> = {};
  for (const spec of specs) {
    const raw = spec.name in fields ? fields[spec.name] : initialFieldValue(spec);
    const result = checkParameter(spec, raw);
    if (result.error) {
      errors[spec.name] = result.error;
    } else if (result.value !== undefined) {
      values[spec.name] = result.value;
    }
  }
  return { values, errors, valid: Object.keys(errors).length === 0 };
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

/** Result of building a job request from the dialog. */
export interface IRequestCheck {
  request: IJobRequest | null;
  /** Errors not tied to one parameter, by field: target, experiment, runName, options, sweep, maxInstances. */
  errors: Record<string, string>;
  parameterErrors: Record<string, string>;
  /** The number of parameter sets of a sweep (when the sweep fields parse). */
  sweepSize?: number;
}

export const MAX_RUN_NAME = 250;

/**
 * Build the `POST jobs` body from the dialog, or say what is wrong.
 */
export function buildJobRequest(
  form: IJobForm,
  specs: IParameterSpec[],
  fields: Record<string, FieldValue>,
  targets: ITarget[]
): IRequestCheck {
  const errors: Record<string, string> = {};
  const target = targets.find(t => t.name === form.target);
  if (!target) {
    errors.target = 'Choose a target.';
  } else if (!target.available) {
    errors.target = `${target.display_name} is not available${
      target.reason ? `: ${target.reason}` : '.'
    }`;
  }
  if (form.experimentMode === 'existing' && !form.experimentId) {
    errors.experiment = 'Choose an experiment, or create a new one.';
  }
  if (form.experimentMode === 'new' && !form.experimentName.trim()) {
    errors.experiment = 'Give the new experiment a name.';
  }
  if (form.runName.length > MAX_RUN_NAME) {
    errors.runName = `The run name is longer than ${MAX_RUN_NAME} characters.`;
  }
  const params = checkParameters(specs, fields);
  const options: Record<string, unknown> = {};
  const shown = targetOptionsShown(target);
  if (shown.envManager && form.envManager) {
    if (!target!.capabilities.env_managers!.includes(form.envManager)) {
      errors.options = `${target!.display_name} cannot use the ${form.envManager} environment manager.`;
    } else {
      options.env_manager = form.envManager;
    }
  }
  if (shown.instanceType && form.instanceType) {
    options.instance_type = form.instanceType;
  }
  const sweeping = !!form.sweep && form.sweep.mode !== 'none' && sweepSupport(target).shown;
  const sweep = sweeping ? checkSweep(form.sweep!, specs, fields, target!) : null;
  if (sweep) {
    Object.assign(errors, sweep.errors);
  }
  const parameterErrors = sweep ? sweep.parameterErrors : params.errors;
  if (Object.keys(errors).length > 0 || Object.keys(parameterErrors).length > 0) {
    return { request: null, errors, parameterErrors, sweepSize: sweep?.size };
  }
  const request: IJobRequest = {
    path: form.path,
    target: form.target,
    parameters: sweep ? sweep.parameters : params.values
  };
  if (sweep) {
    request.sweep = sweep.sweep!;
    request.max_instances = sweep.maxInstances!;
  }
  if (form.experimentMode === 'existing') {
    request.experiment_id = form.experimentId;
  } else {
    request.experiment_name = form.experimentName.trim();
  }
  if (form.runName.trim()) {
    request.run_name = form.runName.trim();
  }
  if (form.kind === 'notebook') {
    request.include_folder = form.includeFolder;
  }
  if (Object.keys(options).length > 0) {
    request.options = options;
  }
  return { request, errors, parameterErrors: {}, sweepSize: sweep?.size };
}

// ---------------------------------------------------------------------------
// Parameter sweeps

/** Parameter sets a sweep may have at most (the server's limit, jobs/models.py). */
export const MAX_SWEEP_SIZE = 1000;

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
 * Split `text` at its top-level commas: commas inside quotes or brackets
 * (`"a,b"`, `[1, 2]`) do not split. Throws a SyntaxError on an unclosed quote.
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

const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];

/** One value of a sweep, typed like the parameter's own field would type it. */
export function checkSweepValue(spec: IParameterSpec, text: string): IFieldCheck {
  const trimmed = text.trim();
  const kind = fieldKind(spec);
  if (!trimmed) {
    return { error: `Parameter "${spec.name}": a value is empty.` };
  }
  if (kind === 'bool') {
    const word = trimmed.toLowerCase();
    if (TRUE_WORDS.includes(word)) {
      return { value: true };
    }
    if (FALSE_WORDS.includes(word)) {
      return { value: false };
    }
    return { error: `Parameter "${spec.name}" takes true or false; "${trimmed}" is neither.` };
  }
  if (kind === 'text' && (trimmed[0] === '"' || trimmed[0] === "'")) {
    try {
      const parsed = parsePythonLiteral(trimmed);
      if (parsed.type === 'str') {
        return { value: parsed.value };
      }
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return { error: `Parameter "${spec.name}": ${detail}.` };
    }
  }
  return checkParameter(spec, trimmed);
}

/** The comma-separated values of one grid parameter, checked. */
export function checkGridValues(
  spec: IParameterSpec,
  text: string
): { values?: ParameterValue[]; error?: string } {
  let parts: string[];
  try {
    parts = splitValues(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { error: `Parameter "${spec.name}": ${detail}.` };
  }
  const values: ParameterValue[] = [];
  for (const part of parts) {
    const checked = checkSweepValue(spec, part);
    if (checked.error) {
      return { error: checked.error };
    }
    if (values.some(v => v === checked.value)) {
      return { error: `Parameter "${spec.name}": ${JSON.stringify(checked.value)} is listed twice.` };
    }
    values.push(checked.value!);
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
 * The list of parameter sets: one set a line, `name=value` pairs separated by
 * commas (quote strings holding commas). Blank lines are skipped.
 */
export function parseSweepList(
  text: string,
  specs: IParameterSpec[]
): { sets?: Array<Record<string, ParameterValue>>; error?: string } {
  const byName = new Map(specs.map(s => [s.name, s]));
  const sets: Array<Record<string, ParameterValue>> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) {
      continue;
    }
    const where = `Line ${i + 1}`;
    let pairs: string[];
    try {
      pairs = splitValues(line);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return { error: `${where}: ${detail}.` };
    }
    const set: Record<string, ParameterValue> = {};
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        return { error: `${where}: write name=value pairs separated by commas; "${pair}" is not one.` };
      }
      const name = pair.slice(0, eq).trim();
      const spec = byName.get(name);
      if (!spec) {
        const known = specs.map(s => s.name).join(', ');
        return { error: `${where}: there is no parameter "${name}"${known ? ` (parameters: ${known})` : ''}.` };
      }
      if (name in set) {
        return { error: `${where}: "${name}" is given twice.` };
      }
      const checked = checkSweepValue(spec, pair.slice(eq + 1));
      if (checked.error) {
        return { error: `${where}: ${checked.error}` };
      }
      set[name] = checked.value!;
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

/** The checked sweep: what goes into the request, or what is wrong. */
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

/**
 * Check the sweep fields against the parameters and the target's limit.
 */
export function checkSweep(
  form: ISweepForm,
  specs: IParameterSpec[],
  fields: Record<string, FieldValue>,
  target: ITarget
): ISweepCheck {
  const errors: Record<string, string> = {};
  const parameterErrors: Record<string, string> = {};
  const parameters: Record<string, ParameterValue> = {};
  let sweep: ISweep | null = null;
  let size: number | undefined;
  if (specs.length === 0) {
    errors.sweep = 'This project takes no parameters: there is nothing to sweep over.';
  } else if (form.mode === 'grid') {
    const grid: Record<string, ParameterValue[]> = {};
    size = 1;
    for (const spec of specs) {
      const raw = spec.name in form.grid
        ? form.grid[spec.name]
        : gridText(spec, spec.name in fields ? fields[spec.name] : initialFieldValue(spec));
      if (fieldKind(spec) !== 'bool' && !raw.trim()) {
        // An empty field: the parameter's default (or an error for a required one).
        const single = checkParameter(spec, raw);
        if (single.error) {
          parameterErrors[spec.name] = single.error;
        } else if (single.value !== undefined) {
          parameters[spec.name] = single.value;
        }
        continue;
      }
      const checked = checkGridValues(spec, raw);
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
      errors.sweep = 'Give two or more values (comma-separated) for at least one parameter.';
    }
    sweep = { grid };
  } else {
    const single = checkParameters(specs, fields);
    Object.assign(parameterErrors, single.errors);
    Object.assign(parameters, single.values);
    const parsed = parseSweepList(form.list, specs);
    if (parsed.error) {
      errors.sweep = parsed.error;
    } else {
      size = parsed.sets!.length;
      if (size < 2) {
        errors.sweep = 'Give two or more parameter sets, one a line (e.g. alpha=0.1, l1_ratio=0.5).';
      }
      sweep = { list: parsed.sets! };
    }
  }
  if (size !== undefined && size > MAX_SWEEP_SIZE) {
    errors.sweep = `The sweep has ${size} parameter sets; at most ${MAX_SWEEP_SIZE} are allowed.`;
  }
  const limit = sweepSupport(target).maxInstances;
  const typed = form.maxInstances.trim();
  let maxInstances: number | null = null;
  if (!typed) {
    maxInstances = Math.min(limit, size ?? limit);
  } else if (!/^\d+$/.test(typed) || Number(typed) < 1 || Number(typed) > limit) {
    errors.maxInstances = `Run on 1 to ${limit} instance${limit === 1 ? '' : 's'} at once (the admin's limit is ${limit}).`;
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

// ---------------------------------------------------------------------------
// Python literals (what `ast.literal_eval` accepts, minus sets of exotic forms)

/** A parsed Python literal. */
export type PyValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'str'; value: string }
  | { type: 'bool'; value: boolean }
  | { type: 'none' }
  | { type: 'list'; items: PyValue[] }
  | { type: 'tuple'; items: PyValue[] }
  | { type: 'set'; items: PyValue[] }
  | { type: 'dict'; entries: Array<[PyValue, PyValue]> };

/** The Python type name of a parsed literal (`NoneType` as `none`). */
export function pyTypeName(value: PyValue): string {
  return value.type;
}

/**
 * Parse a Python literal (numbers, strings, True/False/None, lists, tuples,
 * dicts, sets). JSON is accepted too (`true`/`false`/`null` as well), since
 * users type it by habit. Throws a SyntaxError saying where it failed.
 */
export function parsePythonLiteral(text: string): PyValue {
  const parser = new LiteralParser(text);
  const value = parser.parseValue();
  parser.skipSpace();
  if (!parser.atEnd()) {
    throw parser.error('unexpected text after the value');
  }
  return value;
}

class LiteralParser {
  constructor(private text: string) {}

  pos = 0;

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  error(message: string): SyntaxError {
    return new SyntaxError(`${message} at character ${this.pos + 1}`);
  }

  skipSpace(): void {
    while (!this.atEnd() && /\s/.test(this.text[this.pos])) {
      this.pos++;
    }
  }

  parseValue(): PyValue {
    this.skipSpace();
    if (this.atEnd()) {
      throw this.error('a value is missing');
    }
    const ch = this.text[this.pos];
    if (ch === '[') {
      this.pos++;
      return { type: 'list', items: this.parseItems(']').items };
    }
    if (ch === '(') {
      this.pos++;
      const { items, trailingComma } = this.parseItems(')');
      if (items.length === 1 && !trailingComma) {
        return items[0];
      }
      return { type: 'tuple', items };
    }
    if (ch === '{') {
      return this.parseBrace();
    }
    if (ch === '"' || ch === "'") {
      return this.parseStrings();
    }
    const word = /^[A-Za-z_][A-Za-z_0-9]*/.exec(this.text.slice(this.pos));
    if (word) {
      const name = word[0];
      const constants: Record<string, PyValue> = {
        True: { type: 'bool', value: true },
        False: { type: 'bool', value: false },
        None: { type: 'none' },
        true: { type: 'bool', value: true },
        false: { type: 'bool', value: false },
        null: { type: 'none' }
      };
      if (name in constants) {
        this.pos += name.length;
        return constants[name];
      }
      throw this.error(`"${name}" is not a literal (quote strings)`);
    }
    return this.parseNumber();
  }

  parseNumber(): PyValue {
    const match = /^[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?/.exec(
      this.text.slice(this.pos)
    );
    if (!match) {
      throw this.error(`unexpected "${this.text[this.pos]}"`);
    }
    this.pos += match[0].length;
    const literal = match[0].replace(/_/g, '');
    const isFloat = /[.eE]/.test(literal);
    return { type: isFloat ? 'float' : 'int', value: Number(literal) };
  }

  parseStrings(): PyValue {
    // Adjacent string literals concatenate, as in Python.
    let value = this.parseString();
    for (;;) {
      const save = this.pos;
      this.skipSpace();
      const ch = this.text[this.pos];
      if (ch === '"' || ch === "'") {
        value += this.parseString();
      } else {
        this.pos = save;
        return { type: 'str', value };
      }
    }
  }

  parseString(): string {
    const quote = this.text[this.pos];
    this.pos++;
    let out = '';
    while (!this.atEnd()) {
      const ch = this.text[this.pos];
      if (ch === quote) {
        this.pos++;
        return out;
      }
      if (ch === '\n') {
        break;
      }
      if (ch === '\\') {
        const next = this.text[this.pos + 1];
        const escapes: Record<string, string> = {
          n: '\n',
          t: '\t',
          r: '\r',
          '\\': '\\',
          "'": "'",
          '"': '"',
          '0': '\0'
        };
        out += next in escapes ? escapes[next] : '\\' + (next ?? '');
        this.pos += 2;
        continue;
      }
      out += ch;
      this.pos++;
    }
    throw this.error('a string is not closed');
  }

  parseItems(close: string): { items: PyValue[]; trailingComma: boolean } {
    const items: PyValue[] = [];
    let trailingComma = false;
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) {
        this.pos++;
        return { items, trailingComma };
      }
      items.push(this.parseValue());
      trailingComma = false;
      this.skipSpace();
      const ch = this.text[this.pos];
      if (ch === ',') {
        this.pos++;
        trailingComma = true;
      } else if (ch !== close) {
        throw this.error(this.atEnd() ? `"${close}" is missing` : `expected "," or "${close}"`);
      }
    }
  }

  parseBrace(): PyValue {
    this.pos++; // {
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return { type: 'dict', entries: [] };
    }
    const first = this.parseValue();
    this.skipSpace();
    if (this.text[this.pos] !== ':') {
      // A set: {1, 2}
      const items = [first];
      if (this.text[this.pos] === ',') {
        this.pos++;
        items.push(...this.parseItems('}').items);
      } else if (this.text[this.pos] === '}') {
        this.pos++;
      } else {
        throw this.error('expected ":" or ","');
      }
      return { type: 'set', items };
    }
    const entries: Array<[PyValue, PyValue]> = [];
    let key = first;
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== ':') {
        throw this.error('expected ":"');
      }
      this.pos++;
      const value = this.parseValue();
      if (['list', 'dict', 'set'].includes(key.type)) {
        throw this.error(`a ${key.type} cannot be a dict key`);
      }
      entries.push([key, value]);
      this.skipSpace();
      const ch = this.text[this.pos];
      if (ch === ',') {
        this.pos++;
        this.skipSpace();
        if (this.text[this.pos] === '}') {
          this.pos++;
          return { type: 'dict', entries };
        }
        key = this.parseValue();
        continue;
      }
      if (ch === '}') {
        this.pos++;
        return { type: 'dict', entries };
      }
      throw this.error(this.atEnd() ? '"}" is missing' : 'expected "," or "}"');
    }
  }
}

/**
 * A JavaScript value (from JSON) written as a Python literal.
 */
export function toPythonLiteral(value: unknown): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'number') {
    return String(value);
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

// ---------------------------------------------------------------------------
// Formatting for the Jobs view

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
