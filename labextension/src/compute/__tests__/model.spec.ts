import {
  advanced,
  canAct,
  formatSpan,
  instanceActivity,
  instanceIdle,
  instanceStateKind,
  instanceUptime,
  settingRows
} from '../format';
import {
  ComputeModel,
  STEADY_INTERVAL,
  TRANSITION_INTERVAL,
  UNAVAILABLE_INTERVAL
} from '../model';
import { CONFIG, FakeComputeClient, instance } from './fixtures';

describe('ComputeModel', () => {
  let client: FakeComputeClient;
  let model: ComputeModel;

  beforeEach(() => {
    client = new FakeComputeClient();
    model = new ComputeModel({ client, autoStart: false, standby: 'never' });
  });

  afterEach(() => model.dispose());

  it('lists the instances and reads the settings on the first load', async () => {
    client.answer.instances = [instance('i-0aaa'), instance('i-0bbb', { current_job: 'job1' })];
    let changes = 0;
    model.changed.connect(() => changes++);
    expect(model.loading).toBe(true);
    await model.refresh();
    expect(model.loading).toBe(false);
    expect(model.available).toBe(true);
    expect(model.reason).toBeNull();
    expect(model.instances.map(i => i.id)).toEqual(['i-0aaa', 'i-0bbb']);
    expect(model.config?.config?.region).toBe('eu-west-1');
    expect(model.find('i-0bbb')?.current_job).toBe('job1');
    expect(changes).toBeGreaterThan(0);
    expect(model.fetchedAt).toBeGreaterThan(0);
    expect(model.interval).toBe(STEADY_INTERVAL);
    expect(client.calls.filter(c => c === 'config')).toHaveLength(1);
  });

  it('reports why EC2 is unavailable and polls slowly then', async () => {
    client.answer = {
      available: false,
      reason: 'EC2 is not configured: the platform admin must set c.EC2Target.region (see docs/ec2.md).',
      instances: []
    };
    await model.refresh();
    expect(model.available).toBe(false);
    expect(model.reason).toContain('EC2 is not configured');
    expect(model.interval).toBe(UNAVAILABLE_INTERVAL);
  });

  it('polls quickly while an instance changes state', async () => {
    client.answer.instances = [instance('i-0aaa', { state: 'pending', uptime: null })];
    await model.refresh();
    expect(model.interval).toBe(TRANSITION_INTERVAL);
    client.answer.instances = [instance('i-0aaa')];
    await model.refresh();
    expect(model.interval).toBe(STEADY_INTERVAL);
  });

  it('stops and terminates through the client, showing the pending action', async () => {
    client.answer.instances = [instance('i-0aaa'), instance('i-0bbb')];
    await model.refresh();
    const seen: Array<string | null> = [];
    model.changed.connect(() => seen.push(model.pending('i-0aaa')));
    await model.stop('i-0aaa');
    expect(client.calls).toContain('stop:i-0aaa');
    expect(seen).toContain('stop');
    expect(model.pending('i-0aaa')).toBeNull();
    expect(model.find('i-0aaa')?.state).toBe('stopping');
    expect(model.interval).toBe(TRANSITION_INTERVAL);
    await model.terminate('i-0bbb');
    expect(client.calls).toContain('terminate:i-0bbb');
    expect(model.find('i-0bbb')?.state).toBe('shutting-down');
  });

  it('never shows a listing taken before an action over its result', async () => {
    client.answer.instances = [instance('i-0aaa')];
    await model.refresh();
    // A slow listing starts while the instance still runs...
    let release: () => void = () => undefined;
    client.gate = new Promise<void>(resolve => (release = resolve));
    const listings = client.calls.filter(c => c === 'instances').length;
    const slow = model.refresh();
    while (client.calls.filter(c => c === 'instances').length === listings) {
      await new Promise(resolve => setTimeout(resolve, 5));
    }
    // ...the user terminates it; the listing answers only afterwards.
    client.gate = null;
    await model.terminate('i-0aaa');
    expect(model.find('i-0aaa')?.state).toBe('shutting-down');
    release();
    await slow;
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(model.find('i-0aaa')?.state).toBe('shutting-down');
    expect(model.interval).toBe(TRANSITION_INTERVAL);
  });

  it('passes action errors on and clears the pending action', async () => {
    client.answer.instances = [instance('i-0aaa')];
    await model.refresh();
    client.actError = new Error('Could not stop i-0aaa: UnauthorizedOperation: no');
    await expect(model.stop('i-0aaa')).rejects.toThrow('UnauthorizedOperation');
    expect(model.pending('i-0aaa')).toBeNull();
    expect(model.find('i-0aaa')?.state).toBe('running');
  });

  it('keeps the last list and reports a failed refresh', async () => {
    client.answer.instances = [instance('i-0aaa')];
    await model.refresh();
    client.listError = new Error('Listing your instances failed: boom');
    await model.refresh();
    expect(model.error?.message).toContain('boom');
    expect(model.instances).toHaveLength(1);
    client.listError = null;
    await model.refresh();
    expect(model.error).toBeNull();
  });

  it('keeps the instances and the last settings when the settings cannot be read', async () => {
    client.answer.instances = [instance('i-0aaa')];
    await model.refresh();
    client.configError = new Error('Forbidden');
    await model.refresh();
    expect(model.error).toBeNull();
    expect(model.configError?.message).toBe('Forbidden');
    expect(model.config?.config?.region).toBe('eu-west-1');
    expect(model.instances).toHaveLength(1);
    client.configError = null;
    await model.refresh();
    expect(model.configError).toBeNull();
  });

  it('re-reads the settings on an explicit refresh only', async () => {
    await model.refresh();
    await model.refresh();
    expect(client.calls.filter(c => c === 'config')).toHaveLength(2);
  });
});

describe('compute formatting', () => {
  it('classifies states and the actions they allow', () => {
    expect(instanceStateKind('running')).toBe('running');
    expect(instanceStateKind('pending')).toBe('transition');
    expect(instanceStateKind('shutting-down')).toBe('transition');
    expect(instanceStateKind('stopped')).toBe('stopped');
    expect(instanceStateKind('terminated')).toBe('gone');
    expect(canAct('running', 'stop')).toBe(true);
    expect(canAct('stopped', 'stop')).toBe(false);
    expect(canAct('stopped', 'terminate')).toBe(true);
    expect(canAct('shutting-down', 'terminate')).toBe(false);
  });

  it('advances uptime and idle time from the answer to now', () => {
    const i = instance('i-0aaa', { uptime: 100, idle_seconds: 10 });
    expect(advanced(null, 0, 5000)).toBeNull();
    expect(instanceUptime(i, 1000, 6000)).toBe(105);
    expect(instanceIdle(i, 1000, 6000)).toBe(15);
    const stopped = instance('i-0bbb', { state: 'stopped', uptime: null, idle_seconds: null });
    expect(instanceUptime(stopped, 1000, 6000)).toBeNull();
    expect(instanceIdle(instance('i-0c', { idle_seconds: null }), 0, 1)).toBeNull();
  });

  it('formats spans', () => {
    expect(formatSpan(null)).toBe('–');
    expect(formatSpan(42.9)).toBe('42s');
    expect(formatSpan(125)).toBe('2m 05s');
    expect(formatSpan(3 * 3600 + 5 * 60)).toBe('3h 05m');
    expect(formatSpan(2 * 86400 + 4 * 3600)).toBe('2d 04h');
  });

  it('says what an instance does', () => {
    expect(instanceActivity(instance('i', { current_job: 'j' , agent: 'busy', idle_seconds: null}))).toBe('running a job');
    expect(instanceActivity(instance('i'))).toBe('idle');
    expect(instanceActivity(instance('i', { agent: null }))).toContain('booting');
    expect(
      instanceActivity(instance('i', { state: 'stopped', state_reason: 'Client.UserInitiatedShutdown: User initiated shutdown' }))
    ).toBe('stopped: Client.UserInitiatedShutdown: User initiated shutdown');
  });

  it('lists the settings, marking missing required ones, and never more', () => {
    const rows = settingRows(CONFIG);
    const byKey = Object.fromEntries(rows.map(r => [r.key, r]));
    expect(rows.map(r => r.key)).toEqual([
      'region',
      'ami',
      'default_instance_type',
      'allowed_instance_types',
      'subnet_id',
      'security_group_ids',
      'iam_instance_profile',
      's3_bucket',
      's3_prefix',
      'idle_timeout',
      'max_instances_per_user',
      'tags'
    ]);
    expect(byKey.allowed_instance_types.value).toBe('t3.medium, g5.xlarge');
    expect(byKey.subnet_id.value).toBe("the default VPC's");
    expect(byKey.idle_timeout.value).toBe('15m 00s');
    expect(byKey.tags.value).toBe('cost-center=ml');
    const missing = settingRows({ ...CONFIG, missing: ['region'], config: { ...CONFIG.config!, region: '' } });
    expect(missing.find(r => r.key === 'region')).toMatchObject({ missing: true, value: 'not set' });
    expect(settingRows({ ...CONFIG, config: null })).toEqual([]);
  });
});
