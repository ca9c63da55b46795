import { buildJobRequest, fieldKind, IJobForm, initialFieldValue, parameterValue, parameterValues, serverFieldErrors, targetOptionsShown } from '../dialog/request';
import { formatCellTime, formatDuration, jobDuration, jobTitle, statusKind } from '../format';
import { IJob, IParameterSpec, ITarget } from '../types';

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

describe('fields', () => {
  it('maps parameter types to fields', () => {
    expect(fieldKind(p('a', 'int', 1))).toBe('int');
    expect(fieldKind(p('a', 'float', 1.5))).toBe('float');
    expect(fieldKind(p('a', 'bool', true))).toBe('bool');
    expect(fieldKind(p('a', 'str', 'x'))).toBe('text');
    expect(fieldKind(p('a', 'list', '[1]'))).toBe('literal');
    expect(fieldKind(p('a', 'none', null))).toBe('literal');
  });

  it('pre-fills from defaults, or from a previous job', () => {
    expect(initialFieldValue(p('n', 'int', 10))).toBe('10');
    expect(initialFieldValue(p('b', 'bool', true))).toBe(true);
    expect(initialFieldValue(p('l', 'list', '[1, 2]'))).toBe('[1, 2]');
    expect(initialFieldValue(p('x', 'none', null))).toBe('None');
    expect(initialFieldValue(p('data', 'str', null))).toBe('');
    expect(initialFieldValue(p('n', 'int', 10), '7')).toBe('7');
    expect(initialFieldValue(p('b', 'bool', true), 'False')).toBe(false);
    expect(initialFieldValue(p('l', 'list', '[1]'), [3, 'a'])).toBe('[3, "a"]');
  });

  it('sends values as typed: the server judges them, the dialog does not parse Python', () => {
    expect(parameterValue(p('n', 'int', 1), ' 2.5 ')).toBe('2.5');
    expect(parameterValue(p('l', 'list', '[]'), '{"a": 1')).toBe('{"a": 1');
    expect(parameterValue(p('msg', 'none', null), 'Hello')).toBe('Hello');
    expect(parameterValue(p('s', 'str', 'x'), ' padded ')).toBe(' padded ');
    expect(parameterValue(p('s', 'str', 'x'), '')).toBe('');
    expect(parameterValue(p('b', 'bool', false), true)).toBe(true);
    // An empty required MLproject parameter is left out: the server names it as missing.
    expect(parameterValue(p('data', 'str', null), '  ')).toBeUndefined();
    expect(parameterValues([p('n', 'int', 1), p('flag', 'bool', false), p('data', 'str', null)], { n: '3' })).toEqual({
      n: '3',
      flag: false
    });
  });
});

describe('buildJobRequest', () => {
  const specs = [p('n', 'int', 1), p('flag', 'bool', false)];

  it('builds the POST body', () => {
    const result = buildJobRequest(form({ runName: ' r1 ' }), specs, { n: '3', flag: true }, [inline]);
    expect(result.complete).toBe(true);
    expect(result.request).toEqual({
      path: 'work/train.ipynb',
      target: 'inline',
      parameters: { n: '3', flag: true },
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

  it('says what the form lacks, and still builds what the server can judge', () => {
    const noExperiment = buildJobRequest(form({ experimentId: '' }), specs, { n: 'x' }, [inline]);
    expect(noExperiment.complete).toBe(false);
    expect(noExperiment.errors.experiment).toBe('Choose an experiment, or create a new one.');
    expect(noExperiment.request.parameters).toEqual({ n: 'x', flag: false });
    expect(noExperiment.request.experiment_id).toBeUndefined();
    const unnamed = buildJobRequest(form({ experimentMode: 'new', experimentName: ' ' }), [], {}, [inline]);
    expect(unnamed.errors.experiment).toBe('Give the new experiment a name.');
    expect(buildJobRequest(form({ target: 'nope' }), [], {}, [inline]).errors.target).toBe('Choose a target.');
    // Values, run names and target options are the server's to judge.
    const judged = buildJobRequest(form({ target: 'ec2', runName: 'x'.repeat(300), envManager: 'conda' }), specs, { n: '2.5' }, [inline, ec2]);
    expect(judged.complete).toBe(true);
    expect(judged.errors).toEqual({});
  });

  it('sends only the options the target declares', () => {
    const noOptions: ITarget = { ...inline, capabilities: {} };
    expect(targetOptionsShown(noOptions)).toEqual({ envManager: false, instanceType: false });
    expect(targetOptionsShown(ec2)).toEqual({ envManager: true, instanceType: true });
    expect(buildJobRequest(form(), [], {}, [noOptions]).request.options).toBeUndefined();
    expect(
      buildJobRequest(form({ target: 'ec2', envManager: 'virtualenv', instanceType: 'g5.xlarge' }), [], {}, [ec2]).request.options
    ).toEqual({ env_manager: 'virtualenv', instance_type: 'g5.xlarge' });
  });
});

describe("the server's verdict on the fields", () => {
  it('puts each message beside its field', () => {
    const shown = serverFieldErrors({
      valid: false,
      errors: [
        { field: 'parameters.epochs', message: "parameter 'epochs' must be a int like its default 3; got '2.5'" },
        { field: 'parameters.data', message: "Missing value for parameter 'data'." },
        { field: 'options', message: "env_manager 'conda' is not available on this host" },
        { field: 'experiment_id', message: 'Experiment not found: 42' },
        { field: 'run_name', message: '`run_name` must be a string of at most 250 characters.' },
        { field: 'max_instances', message: 'too many' },
        { field: 'path', message: 'gone' },
        { field: 'entry_point', message: 'no such entry point' }
      ],
      parameters: []
    });
    expect(shown.parameterErrors).toEqual({
      epochs: "parameter 'epochs' must be a int like its default 3; got '2.5'",
      data: "Missing value for parameter 'data'."
    });
    expect(shown.errors).toEqual({
      options: "env_manager 'conda' is not available on this host",
      experiment: 'Experiment not found: 42',
      runName: '`run_name` must be a string of at most 250 characters.',
      maxInstances: 'too many',
      general: 'gone no such entry point'
    });
    expect(serverFieldErrors(null)).toEqual({ errors: {}, parameterErrors: {} });
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
    expect(formatCellTime(0.04)).toBe('0.0s');
    expect(formatCellTime(4.26)).toBe('4.3s');
    expect(formatCellTime(65)).toBe('1m 05s');
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
});

describe('runUrl', () => {
  it('deep-links the MLflow UI through the proxy', () => {
    // Imported lazily: the plugin module pulls in JupyterLab packages.
    const { runUrl } = require('../plugin');
    expect(runUrl('/user/a/', '3', 'abc')).toBe('/user/a/infinstor/api/mlflow/#/experiments/3/runs/abc');
  });
});
