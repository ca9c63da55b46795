import { IComputeClient } from '../client';
import { IComputeConfig, IInstance, IInstancesAnswer, InstanceAction } from '../types';

/** Test data and an in-memory compute API for the compute specs. */

export function instance(id: string, patch: Partial<IInstance> = {}): IInstance {
  return {
    id,
    state: 'running',
    instance_type: 't3.medium',
    name: `infinstor-ann-t3.medium`,
    launch_time: 1000,
    uptime: 120,
    idle_seconds: 30,
    agent: 'idle',
    current_job: null,
    current_job_title: null,
    state_reason: null,
    ...patch
  };
}

export const CONFIG: IComputeConfig = {
  enabled: true,
  available: true,
  reason: null,
  missing: [],
  identity: { account: '123456789012', arn: 'arn:aws:iam::123456789012:user/lab' },
  config: {
    region: 'eu-west-1',
    ami: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    default_instance_type: 't3.medium',
    allowed_instance_types: ['t3.medium', 'g5.xlarge'],
    subnet_id: '',
    security_group_ids: ['sg-0123'],
    iam_instance_profile: 'infinstor-runner',
    s3_bucket: 'staging',
    s3_prefix: 'infinstor',
    idle_timeout: 900,
    max_instances_per_user: 4,
    tags: { 'cost-center': 'ml' }
  }
};

/** An in-memory compute API; tests change `answer` between refreshes. */
export class FakeComputeClient implements IComputeClient {
  answer: IInstancesAnswer = { available: true, reason: null, instances: [] };
  configAnswer: IComputeConfig = CONFIG;
  listError: Error | null = null;
  actError: Error | null = null;
  calls: string[] = [];

  /** When set, listings wait for it (after taking their snapshot), as a slow server would. */
  gate: Promise<void> | null = null;

  async instances(): Promise<IInstancesAnswer> {
    this.calls.push('instances');
    if (this.listError) {
      throw this.listError;
    }
    const snapshot = JSON.parse(JSON.stringify(this.answer));
    if (this.gate) {
      await this.gate;
    }
    return snapshot;
  }

  configError: Error | null = null;

  async config(): Promise<IComputeConfig> {
    this.calls.push('config');
    if (this.configError) {
      throw this.configError;
    }
    return JSON.parse(JSON.stringify(this.configAnswer));
  }

  async act(id: string, action: InstanceAction) {
    this.calls.push(`${action}:${id}`);
    if (this.actError) {
      throw this.actError;
    }
    const found = this.answer.instances.find(i => i.id === id);
    const state = action === 'stop' ? 'stopping' : 'shutting-down';
    if (found) {
      found.state = state;
    }
    return { id, state };
  }
}
