/**
 * Parameter editing and validation for the job dialog, and small formatting
 * helpers for the Jobs view. Pure functions: unit tested without a browser.
 */
import {
  IJob,
  IJobRequest,
  IParameterSpec,
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
  /** Errors not tied to one parameter, by field: target, experiment, runName, options. */
  errors: Record<string, string>;
  parameterErrors: Record<string, string>;
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
  if (Object.keys(errors).length > 0 || !params.valid) {
    return { request: null, errors, parameterErrors: params.errors };
  }
  const request: IJobRequest = {
    path: form.path,
    target: form.target,
    parameters: params.values
  };
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
  return { request, errors, parameterErrors: {} };
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
