/**
 * Shapes of the InfinStor compute REST API (`compute/…`, docs/openapi.yaml).
 */

/** EC2 instance states the API reports for the user's instances. */
export type InstanceState =
  | 'pending'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'shutting-down'
  | 'terminated';

export interface IInstance {
  id: string;
  state: InstanceState | string;
  instance_type: string;
  name?: string | null;
  /** Epoch seconds of the last start. */
  launch_time: number | null;
  /** Seconds since the last start (running only), at the time of the answer. */
  uptime: number | null;
  /** Seconds since its agent last had work (idle only), at the time of the answer. */
  idle_seconds: number | null;
  /** Its agent's last heartbeat state: idle, busy, stopping. */
  agent: string | null;
  /** Id of the job it runs. */
  current_job: string | null;
  /** That job's run name (or notebook/folder name) when this lab knows it. */
  current_job_title?: string | null;
  /** Why it is not running (AWS's state reason). */
  state_reason?: string | null;
}

export interface IInstancesAnswer {
  available: boolean;
  reason: string | null;
  instances: IInstance[];
}

/** The platform admin's EC2 settings, as the lab shows them (no credential). */
export interface IEc2Settings {
  region: string;
  ami: string;
  default_instance_type: string;
  allowed_instance_types: string[];
  subnet_id: string;
  security_group_ids: string[];
  iam_instance_profile: string;
  s3_bucket: string;
  s3_prefix: string;
  idle_timeout: number;
  max_instances_per_user: number;
  tags: Record<string, string>;
}

export interface IComputeConfig {
  /** Whether the EC2 target is one of the server's targets at all. */
  enabled: boolean;
  available: boolean;
  reason: string | null;
  /** Required settings the admin has not set. */
  missing: string[];
  config: IEc2Settings | null;
  /** Who the server's AWS credentials belong to (sts:GetCallerIdentity). */
  identity: { account: string; arn: string } | null;
}

/** What the Compute view can do to an instance. */
export type InstanceAction = 'stop' | 'terminate';

export interface IInstanceActionAnswer {
  id: string;
  state: string | null;
}
