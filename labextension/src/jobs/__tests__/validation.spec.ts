import { IJob, IParameterSpec, ITarget } from '../types';
import {
  buildJobRequest,
  checkParameter,
  checkParameters,
  fieldKind,
  formatDuration,
  IJobForm,
  initialFieldValue,
  jobDuration,
  jobTitle,
  parsePythonLiteral,
  statusKind,
  targetOptionsShown,
  toPythonLiteral
} from '../validation';
import { experimentFilter } from '../client';

const p = (name: string, type: string, def: unknown): IParameterSpec => ({
  name,
  type,
  mlflow_type: type === 'int' || type === 'float' ? 'float' : 'string',
  default: def
});

const inline: ITarget = {
  name: 'inline',
  display_name: 'Inline (this Jupyter host)',
  available: true,
  reason: null,
  capabilities: { env_managers: ['local', 'uv'], instance_types: [], sweeps: false, max_parallel: 2 }
};
const ec2: ITarget = {
  name: 'ec2',
  display_name: 'EC2',
  available: false,
  reason: 'no AWS credentials',
  capabilities: { env_managers: ['virtualenv'], instance_types: ['t3.small', 'g5.xlarge'] }
};

const form = (patch: Partial<IJobForm> = {}): IJobForm => ({
  path: 'work/train.ipynb',
  kind: 'notebook',
  target: 'inline',
  experimentMode: 'existing',
  experimentId: '0',
  experimentName: '',
  runName: '',
  includeFolder: false,
  envManager: 'local',
  instanceType: '',
  ...patch
});

describe('field kinds and initial values', () => {
  it('maps parameter types to fields', () => {
    expect(fieldKind(p('a', 'int', 1))).toBe('int');
    expect(fieldKind(p('a', 'float', 1.5))).toBe('float');
    expect(fieldKind(p('a', 'bool', true))).toBe('bool');
    expect(fieldKind(p('a', 'str', 'x'))).toBe('text');
    expect(fieldKind(p('a', 'list', '[1]'))).toBe('literal');
    expect(fieldKind(p('a', 'dict', '{}'))).toBe('literal');
    expect(fieldKind(p('a', 'none', null))).toBe('literal');
  });

  it('pre-fills from defaults, or from a previous job', () => {
    expect(initialFieldValue(p('n', 'int', 10))).toBe('10');
    expect(initialFieldValue(p('lr', 'float', 0.01))).toBe('0.01');
    expect(initialFieldValue(p('b', 'bool', true))).toBe(true);
    expect(initialFieldValue(p('s', 'str', 'hi'))).toBe('hi');
    expect(initialFieldValue(p('l', 'list', '[1, 2]'))).toBe('[1, 2]');
    expect(initialFieldValue(p('x', 'none', null))).toBe('None');
    expect(initialFieldValue(p('n', 'int', 10), 7)).toBe('7');
    expect(initialFieldValue(p('b', 'bool', true), false)).toBe(false);
    expect(initialFieldValue(p('b', 'bool', true), 'false')).toBe(false);
    expect(initialFieldValue(p('l', 'list', '[1]'), [3, 'a'])).toBe('[3, "a"]');
  });
});

describe('checkParameter', () => {
  it('accepts and converts valid values', () => {
    expect(checkParameter(p('n', 'int', 1), '42')).toEqual({ value: 42 });
    expect(checkParameter(p('n', 'int', 1), ' -3 ')).toEqual({ value: -3 });
    expect(checkParameter(p('n', 'int', 1), '2.0')).toEqual({ value: 2 });
    expect(checkParameter(p('lr', 'float', 1.0), '1e-3')).toEqual({ value: 0.001 });
    expect(checkParameter(p('lr', 'float', 1.0), '.5')).toEqual({ value: 0.5 });
    expect(checkParameter(p('b', 'bool', true), false)).toEqual({ value: false });
    expect(checkParameter(p('s', 'str', 'x'), '')).toEqual({ value: '' });
    expect(checkParameter(p('l', 'list', '[]'), "[1, 'a', (2,)]")).toEqual({ value: "[1, 'a', (2,)]" });
    expect(checkParameter(p('d', 'dict', '{}'), '{"a": [1, 2]}')).toEqual({ value: '{"a": [1, 2]}' });
    expect(checkParameter(p('t', 'tuple', '()'), '(1, 2)')).toEqual({ value: '(1, 2)' });
    expect(checkParameter(p('x', 'none', null), "'anything'")).toEqual({ value: "'anything'" });
  });

  it('refuses a non-integer for an int, naming the parameter', () => {
    const result = checkParameter(p('epochs', 'int', 5), '2.5');
    expect(result.value).toBeUndefined();
    expect(result.error).toMatch(/"epochs"/);
    expect(result.error).toMatch(/whole number/);
  });

  it('refuses empty and non-numeric numbers', () => {
    expect(checkParameter(p('n', 'int', 1), '').error).toMatch(/"n" needs a whole number/);
    expect(checkParameter(p('lr', 'float', 1), ' ').error).toMatch(/"lr" needs a number/);
    expect(checkParameter(p('lr', 'float', 1), 'abc').error).toMatch(/"lr" must be a number/);
    expect(checkParameter(p('lr', 'float', 1), '0x10').error).toMatch(/must be a number/);
    expect(checkParameter(p('lr', 'float', 1), '1e999').error).toMatch(/finite/);
    expect(checkParameter(p('n', 'int', 1), '1e20').error).toMatch(/too large/);
  });

  it('refuses literals of the wrong type or syntax', () => {
    expect(checkParameter(p('l', 'list', '[]'), '{"a": 1}').error).toMatch(
      /"l" must be a list like its default; got a dict/
    );
    expect(checkParameter(p('l', 'list', '[]'), '[1, 2').error).toMatch(/"l" is not a valid list: "\]" is missing/);
    expect(checkParameter(p('d', 'dict', '{}'), 'abc').error).toMatch(/"abc" is not a literal/);
    expect(checkParameter(p('d', 'dict', '{}'), '').error).toMatch(/needs a dict value/);
  });

  it('requires MLproject parameters without default', () => {
    expect(checkParameter(p('data', 'str', null), '').error).toMatch(/"data" is required/);
    expect(checkParameter(p('alpha', 'float', null), '').error).toMatch(/"alpha" needs a number/);
  });

  it('collects all errors', () => {
    const specs = [p('n', 'int', 1), p('lr', 'float', 0.1), p('flag', 'bool', false)];
    const result = checkParameters(specs, { n: '1.5', lr: '0.2', flag: true });
    expect(result.valid).toBe(false);
    expect(Object.keys(result.errors)).toEqual(['n']);
    expect(result.values).toEqual({ lr: 0.2, flag: true });
    expect(checkParameters(specs, {}).values).toEqual({ n: 1, lr: 0.1, flag: false });
  });
});

describe('parsePythonLiteral', () => {
  it('parses Python and JSON literals', () => {
    expect(parsePythonLiteral('1')).toEqual({ type: 'int', value: 1 });
    expect(parsePythonLiteral('1_000')).toEqual({ type: 'int', value: 1000 });
    expect(parsePythonLiteral('-1.5e2')).toEqual({ type: 'float', value: -150 });
    expect(parsePythonLiteral('True')).toEqual({ type: 'bool', value: true });
    expect(parsePythonLiteral('null')).toEqual({ type: 'none' });
    expect(parsePythonLiteral("'a\\'b' \"c\"")).toEqual({ type: 'str', value: "a'bc" });
    expect(parsePythonLiteral('(1)')).toEqual({ type: 'int', value: 1 });
    expect(parsePythonLiteral('(1,)').type).toBe('tuple');
    expect(parsePythonLiteral('()').type).toBe('tuple');
    expect(parsePythonLiteral('{1, 2}').type).toBe('set');
    expect(parsePythonLiteral('{}').type).toBe('dict');
    expect(parsePythonLiteral("{'a': [1, {'b': None}], 2: (3,),}")).toMatchObject({ type: 'dict' });
    expect(parsePythonLiteral('[ ]')).toEqual({ type: 'list', items: [] });
  });

  it('says where it fails', () => {
    expect(() => parsePythonLiteral('[1 2]')).toThrow(/expected "," or "\]" at character 4/);
    expect(() => parsePythonLiteral("'abc")).toThrow(/string is not closed/);
    expect(() => parsePythonLiteral('1 2')).toThrow(/unexpected text after the value/);
    expect(() => parsePythonLiteral('{[1]: 2}')).toThrow(/cannot be a dict key/);
    expect(() => parsePythonLiteral('os.system')).toThrow(/not a literal/);
    expect(() => parsePythonLiteral('')).toThrow(/missing/);
  });

  it('writes JSON values as Python literals', () => {
    expect(toPythonLiteral([1, 'a', true, null, { k: 2.5 }])).toBe('[1, "a", True, None, {"k": 2.5}]');
  });
});

describe('buildJobRequest', () => {
  const specs = [p('n', 'int', 1), p('flag', 'bool', false)];

  it('builds the POST body', () => {
    const result = buildJobRequest(form({ runName: ' r1 ' }), specs, { n: '3', flag: true }, [inline]);
    expect(result.request).toEqual({
      path: 'work/train.ipynb',
      target: 'inline',
      parameters: { n: 3, flag: true },
      experiment_id: '0',
      run_name: 'r1',
      include_folder: false,
      options: { env_manager: 'local' }
    });
  });

  it('uses experiment_name for a new experiment and omits include_folder for projects', () => {
    const result = buildJobRequest(
      form({ kind: 'project', path: 'proj', experimentMode: 'new', experimentName: ' exp ' }),
      [],
      {},
      [inline]
    );
    expect(result.request).toEqual({
      path: 'proj',
      target: 'inline',
      parameters: {},
      experiment_name: 'exp',
      options: { env_manager: 'local' }
    });
  });

  it('refuses invalid forms', () => {
    expect(buildJobRequest(form(), specs, { n: 'x' }, [inline]).parameterErrors.n).toMatch(/"n"/);
    expect(buildJobRequest(form({ target: 'ec2' }), [], {}, [inline, ec2]).errors.target).toMatch(
      /EC2 is not available: no AWS credentials/
    );
    expect(buildJobRequest(form({ target: 'nope' }), [], {}, [inline]).errors.target).toBeTruthy();
    expect(buildJobRequest(form({ experimentId: '' }), [], {}, [inline]).errors.experiment).toBeTruthy();
    expect(
      buildJobRequest(form({ experimentMode: 'new', experimentName: ' ' }), [], {}, [inline]).errors.experiment
    ).toBeTruthy();
    expect(buildJobRequest(form({ runName: 'x'.repeat(251) }), [], {}, [inline]).errors.runName).toBeTruthy();
    expect(buildJobRequest(form({ envManager: 'conda' }), [], {}, [inline]).errors.options).toMatch(/conda/);
    expect(buildJobRequest(form(), specs, { n: 'x' }, [inline]).request).toBeNull();
  });

  it('sends only the options the target declares', () => {
    const noOptions: ITarget = { ...inline, capabilities: {} };
    expect(targetOptionsShown(noOptions)).toEqual({ envManager: false, instanceType: false });
    expect(targetOptionsShown(ec2)).toEqual({ envManager: true, instanceType: true });
    expect(buildJobRequest(form(), [], {}, [noOptions]).request?.options).toBeUndefined();
    const ec2Up = { ...ec2, available: true };
    expect(
      buildJobRequest(form({ target: 'ec2', envManager: 'virtualenv', instanceType: 'g5.xlarge' }), [], {}, [ec2Up])
        .request?.options
    ).toEqual({ env_manager: 'virtualenv', instance_type: 'g5.xlarge' });
  });
});

describe('formatting', () => {
  const job = (patch: Partial<IJob>): IJob => ({
    id: 'a'.repeat(16),
    path: 'dir/train.ipynb',
    kind: 'notebook',
    target: 'inline',
    status: 'RUNNING',
    parameters: {},
    experiment_id: '0',
    run_id: 'r',
    run_name: null,
    created_at: 100,
    started_at: 100,
    finished_at: null,
    duration: 5,
    failure_reason: null,
    ...patch
  });

  it('formats durations', () => {
    expect(formatDuration(null)).toBe('–');
    expect(formatDuration(4.7)).toBe('4s');
    expect(formatDuration(125)).toBe('2m 05s');
    expect(formatDuration(3720)).toBe('1h 02m');
  });

  it('ticks the duration of running jobs only', () => {
    expect(jobDuration(job({}), 1000, 4000)).toBe(8);
    expect(jobDuration(job({ status: 'FINISHED' }), 1000, 4000)).toBe(5);
    expect(jobDuration(job({ status: 'FAILED', duration: null, finished_at: 130 }), 0, 0)).toBe(30);
    expect(jobDuration(job({ status: 'QUEUED', duration: null, started_at: null }), 0, 0)).toBeNull();
  });

  it('names jobs and colours statuses', () => {
    expect(jobTitle(job({}))).toBe('train.ipynb');
    expect(jobTitle(job({ run_name: 'nightly' }))).toBe('nightly');
    expect(statusKind('FINISHED')).toBe('success');
    expect(statusKind('FAILED')).toBe('error');
    expect(statusKind('KILLED')).toBe('killed');
    expect(statusKind('RUNNING')).toBe('running');
    expect(statusKind('QUEUED')).toBe('queued');
  });

  it('builds experiment search filters', () => {
    expect(experimentFilter('  ')).toBe('');
    expect(experimentFilter("bob's")).toBe("name ILIKE '%bob''s%'");
  });
});

describe('runUrl', () => {
  it('deep-links the MLflow UI through the proxy', () => {
    // Imported lazily: the plugin module pulls in JupyterLab packages.
    const { runUrl } = require('../plugin');
    expect(runUrl('/user/a/', '3', 'abc')).toBe('/user/a/infinstor/api/mlflow/#/experiments/3/runs/abc');
  });
});
