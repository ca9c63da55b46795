import { IJob, IParameterSpec, ITarget } from '../types';
import {
  buildJobRequest,
  checkGridValues,
  checkSweep,
  emptySweepForm,
  IJobForm,
  ISweepForm,
  parseSweepList,
  splitValues,
  sweepFormFromJob,
  sweepSupport,
  sweepValueText
} from '../dialog/request';

const p = (name: string, type: string, def: unknown): IParameterSpec => ({ name, type, default: def });

const SPECS = [p('lr', 'float', 0.1), p('epochs', 'int', 3), p('name', 'str', 'demo'), p('verbose', 'bool', true), p('layers', 'list', [16, 8])];

const ec2: ITarget = {
  name: 'ec2',
  display_name: 'EC2 (a cloud VM)',
  available: true,
  reason: null,
  capabilities: { env_managers: ['local'], instance_types: ['t3.medium'], sweeps: true, max_instances: 4, max_parallel: 4 }
};
const inline: ITarget = {
  name: 'inline',
  display_name: 'Inline',
  available: true,
  reason: null,
  capabilities: { env_managers: ['local'], instance_types: [], sweeps: false, max_parallel: 2 }
};

const sweepForm = (patch: Partial<ISweepForm>): ISweepForm => ({ ...emptySweepForm(), ...patch });

const form = (sweep: ISweepForm, target = 'ec2'): IJobForm => ({
  path: 'work/train.ipynb',
  kind: 'notebook',
  target,
  experimentMode: 'existing',
  experimentId: '0',
  experimentName: '',
  runName: '',
  includeFolder: false,
  envManager: 'local',
  instanceType: target === 'ec2' ? 't3.medium' : '',
  sweep
});

const FIELDS = { lr: '0.1', epochs: '3', name: 'demo', verbose: true, layers: '[16, 8]' };

describe('sweep support', () => {
  it('is offered only for available targets that declare it, with their limit', () => {
    expect(sweepSupport(ec2)).toEqual({ shown: true, maxInstances: 4 });
    expect(sweepSupport(inline).shown).toBe(false);
    expect(sweepSupport({ ...ec2, available: false }).shown).toBe(false);
    expect(sweepSupport(undefined).shown).toBe(false);
    expect(sweepSupport({ ...ec2, capabilities: { sweeps: true, max_parallel: 2 } }).maxInstances).toBe(2);
  });
});

describe('splitting values', () => {
  it('splits at top-level commas only', () => {
    expect(splitValues('0.1, 0.2,0.3')).toEqual(['0.1', '0.2', '0.3']);
    expect(splitValues('"a,b", c')).toEqual(['"a,b"', 'c']);
    expect(splitValues('[1, 2], [3, 4]')).toEqual(['[1, 2]', '[3, 4]']);
    expect(splitValues("{'a': 1, 'b': 2}, {}")).toEqual(["{'a': 1, 'b': 2}", '{}']);
    expect(splitValues('x')).toEqual(['x']);
    expect(() => splitValues('"open, b')).toThrow('quote is not closed');
  });
});

describe('grid values', () => {
  it('splits the values, sent as typed (a string parameter loses its quotes)', () => {
    expect(checkGridValues(p('lr', 'float', 0.1), '0.1, 0.01, 1e-3')).toEqual({ values: ['0.1', '0.01', '1e-3'] });
    expect(checkGridValues(p('v', 'bool', true), 'true, False')).toEqual({ values: ['true', 'False'] });
    expect(checkGridValues(p('s', 'str', 'x'), 'adam, "sgd, momentum"')).toEqual({ values: ['adam', 'sgd, momentum'] });
    expect(checkGridValues(p('l', 'list', []), '[16, 8], [32]')).toEqual({ values: ['[16, 8]', '[32]'] });
    // What a value means is the server's to say ("2.5" for an int is its message, not ours).
    expect(checkGridValues(p('n', 'int', 1), '1, 2.5')).toEqual({ values: ['1', '2.5'] });
  });

  it('names the parameter when the field does not split into values', () => {
    expect(checkGridValues(p('lr', 'float', 0.1), '0.1,,0.2').error).toBe('Parameter "lr": a value is empty.');
    expect(checkGridValues(p('lr', 'float', 0.1), '0.1, 0.1').error).toBe('Parameter "lr": 0.1 is listed twice.');
    expect(checkGridValues(p('s', 'str', ''), '"a, b').error).toContain('quote is not closed');
  });
});

describe('lists of parameter sets', () => {
  it('reads one set a line', () => {
    expect(parseSweepList('lr=0.1, epochs=2\n\n  lr=0.2, name="x, y"\n', SPECS)).toEqual({
      sets: [{ lr: '0.1', epochs: '2' }, { lr: '0.2', name: 'x, y' }]
    });
  });

  it('says which line is wrong and why', () => {
    expect(parseSweepList('lr=0.1\nlr', SPECS).error).toBe('Line 2: write name=value pairs separated by commas; "lr" is not one.');
    expect(parseSweepList('alpha=1', SPECS).error).toBe(
      'Line 1: there is no parameter "alpha" (parameters: lr, epochs, name, verbose, layers).'
    );
    expect(parseSweepList('lr=0.1, lr=0.2', SPECS).error).toBe('Line 1: "lr" is given twice.');
    expect(parseSweepList('epochs=', SPECS).error).toBe('Line 1: "epochs" has no value.');
  });
});

describe('building a sweep request', () => {
  it('sends a grid of the parameters with several values, the others fixed', () => {
    const check = buildJobRequest(
      form(sweepForm({ mode: 'grid', grid: { lr: '0.1, 0.01', epochs: '3', verbose: 'true, false' }, maxInstances: '2' })),
      SPECS,
      FIELDS,
      [inline, ec2]
    );
    expect(check.errors).toEqual({});
    expect(check.parameterErrors).toEqual({});
    expect(check.complete).toBe(true);
    expect(check.sweepSize).toBe(4);
    expect(check.request).toEqual({
      path: 'work/train.ipynb',
      target: 'ec2',
      parameters: { epochs: '3', name: 'demo', layers: '[16, 8]' },
      sweep: { grid: { lr: ['0.1', '0.01'], verbose: ['true', 'false'] } },
      max_instances: 2,
      experiment_id: '0',
      include_folder: false,
      options: { env_manager: 'local', instance_type: 't3.medium' }
    });
  });

  it('sends a list of sets over the single parameters, as many at once as sets up to the limit', () => {
    const check = buildJobRequest(
      form(sweepForm({ mode: 'list', list: 'lr=0.5\nlr=0.25, epochs=5' })),
      SPECS,
      FIELDS,
      [ec2]
    );
    expect(check.request?.sweep).toEqual({ list: [{ lr: '0.5' }, { lr: '0.25', epochs: '5' }] });
    expect(check.request?.parameters).toEqual({ lr: '0.1', epochs: '3', name: 'demo', verbose: true, layers: '[16, 8]' });
    expect(check.request?.max_instances).toBe(2);
    expect(check.sweepSize).toBe(2);
  });

  it('caps "at once" by the admin limit the target reports', () => {
    const tooMany = buildJobRequest(form(sweepForm({ mode: 'grid', grid: { lr: '1, 2' }, maxInstances: '5' })), SPECS, FIELDS, [ec2]);
    expect(tooMany.complete).toBe(false);
    expect(tooMany.request.sweep).toBeUndefined();
    expect(tooMany.errors.maxInstances).toBe("Run on 1 to 4 instances at once (the admin's limit is 4).");
    for (const bad of ['0', '-1', '1.5', 'two']) {
      const check = buildJobRequest(form(sweepForm({ mode: 'grid', grid: { lr: '1, 2' }, maxInstances: bad })), SPECS, FIELDS, [ec2]);
      expect(check.errors.maxInstances).toBeDefined();
    }
    const big = buildJobRequest(form(sweepForm({ mode: 'grid', grid: { lr: '1,2,3,4,5,6', epochs: '1,2' } })), SPECS, FIELDS, [ec2]);
    expect(big.request?.max_instances).toBe(4);
  });

  it("refuses sweeps of one set and fields that do not split; sizes and values are the server's", () => {
    const one = buildJobRequest(form(sweepForm({ mode: 'grid' })), SPECS, FIELDS, [ec2]);
    expect(one.errors.sweep).toBe('Give two or more values (comma-separated) for at least one parameter.');
    const oneSet = buildJobRequest(form(sweepForm({ mode: 'list', list: 'lr=1' })), SPECS, FIELDS, [ec2]);
    expect(oneSet.errors.sweep).toContain('two or more parameter sets');
    const values = Array.from({ length: 40 }, (_, i) => String(i + 1)).join(',');
    const huge = buildJobRequest(form(sweepForm({ mode: 'grid', grid: { lr: values, epochs: values } })), SPECS, FIELDS, [ec2]);
    expect(huge.sweepSize).toBe(1600);
    expect(huge.complete).toBe(true); // the server says that 1600 sets are too many
    const bad = buildJobRequest(form(sweepForm({ mode: 'grid', grid: { epochs: '1, "two' } })), SPECS, FIELDS, [ec2]);
    expect(bad.complete).toBe(false);
    expect(bad.parameterErrors.epochs).toBe('Parameter "epochs": a " quote is not closed.');
    const none = checkSweep(sweepForm({ mode: 'grid' }), [], {}, ec2);
    expect(none.errors.sweep).toContain('no parameters');
  });

  it('ignores the sweep fields for a target without sweeps', () => {
    const check = buildJobRequest(
      form(sweepForm({ mode: 'grid', grid: { lr: '1, 2' } }), 'inline'),
      SPECS,
      FIELDS,
      [inline, ec2]
    );
    expect(check.request?.sweep).toBeUndefined();
    expect(check.request?.max_instances).toBeUndefined();
    expect(check.request?.parameters?.lr).toBe('0.1');
  });
});

describe('re-running a sweep', () => {
  it('fills the sweep fields from the previous sweep', () => {
    const job = { options: { sweep: { grid: { lr: [0.1, 0.2], name: ['a,b', 'c'] } }, max_instances: 2 } } as unknown as IJob;
    expect(sweepFormFromJob(job)).toEqual({ mode: 'grid', grid: { lr: '0.1, 0.2', name: '"a,b", c' }, list: '', maxInstances: '2' });
    const list = { options: { sweep: { list: [{ lr: 1, verbose: false }, { lr: 2 }] } } } as unknown as IJob;
    expect(sweepFormFromJob(list)).toEqual({ mode: 'list', grid: {}, list: 'lr=1, verbose=false\nlr=2', maxInstances: '' });
    expect(sweepFormFromJob(null)).toEqual(emptySweepForm());
    expect(sweepValueText(' padded')).toBe('" padded"');
    // What the fields show reads back as the same sweep.
    const again = checkSweep(sweepFormFromJob(job), [p('lr', 'float', 0.1), p('name', 'str', '')], {}, ec2);
    expect(again.sweep).toEqual({ grid: { lr: ['0.1', '0.2'], name: ['a,b', 'c'] } });
  });
});
