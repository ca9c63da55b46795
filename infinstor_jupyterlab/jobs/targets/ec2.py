"""EC2: each job runs on a VM of the user's (reused while warm, stopped by its agent when idle).

start: stage the project and spec to S3, mint a job token (short-lived, scoped to the job's run)
into an SSM SecureString, take a warm idle instance of this user and type or launch one, and put
the job in that instance's inbox. wait: poll the job's status, heartbeats and log chunks in S3
(copying the chunks into the job's local log), renew the token of long jobs, and fail the job
with the reason when its instance never checks in, stops answering or disappears. Whatever way a
job ends, its staged files and credentials are removed and no instance is left running for it.

Every boto3 call runs in a thread (`asyncio.to_thread`): the Jupyter server's event loop never waits
on AWS. Credentials come from boto3's standard chain; nothing here stores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import time
from pathlib import Path
from typing import Any

from traitlets import Dict, Float, Int, List, Unicode, default

from ... import __version__
from ...ec2 import layout, pool
from ...ec2.aws import AwsError, Clients, describe, error_code
from ...errors import BadRequest, InfinStorError, NotFound
from ...limits import clip, shown
from ...paths import open_private_append, write_private_file
from ..models import Job
from .base import JobFailed, JobTarget, TargetUnavailable

log = logging.getLogger(__name__)

_INSTANCE_ID = r"^i-[0-9a-f]{8,17}$"


class EC2Target(JobTarget):
    name = "ec2"
    display_name = "EC2 (a cloud VM)"

    region = Unicode("", help="AWS region of the instances, bucket and parameters (default: boto3's).").tag(config=True)
    ami = Unicode(
        "",
        help="AMI of the instances: an id (ami-...) or an SSM parameter name holding one "
        "(e.g. /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64). Needs Python 3.10+.",
    ).tag(config=True)
    default_instance_type = Unicode("t3.medium", help="Instance type when the job names none.").tag(config=True)
    allowed_instance_types = List(
        Unicode(),
        default_value=["t3.medium", "t3.large", "m5.xlarge", "c5.2xlarge", "g5.xlarge"],
        help="Instance types users may pick (GPU types included).",
    ).tag(config=True)
    subnet_id = Unicode("", help="Subnet of the instances (default: the default VPC's).").tag(config=True)
    security_group_ids = List(Unicode(), help="Security groups of the instances (egress only is enough).").tag(config=True)
    iam_instance_profile = Unicode(
        "",
        help="Instance profile (name or ARN) of the instances: S3 on the staging prefix, SSM on the job "
        "parameters, ec2:StopInstances on itself (see deploy/aws/infinstor-ec2.yaml).",
    ).tag(config=True)
    s3_bucket = Unicode("", help="S3 bucket for staged projects, job status and logs.").tag(config=True)
    s3_prefix = Unicode("infinstor", help="Key prefix in the bucket.").tag(config=True)
    ssm_prefix = Unicode(layout.DEFAULT_SSM_PREFIX, help="SSM Parameter Store path for job tokens.").tag(config=True)
    idle_timeout = Float(900.0, help="Seconds an instance may sit idle before its agent stops it.").tag(config=True)
    max_instances_per_user = Int(4, help="Running instances per user at most (also caps sweep fan-out).").tag(config=True)
    tags = Dict(value_trait=Unicode(), help="Extra tags on the instances and their volumes (cost allocation).").tag(config=True)
    checkin_timeout = Float(
        900.0,
        help="Seconds an instance has to pick up its job (boot, install, agent start) before the job fails and the instance is terminated.",
    ).tag(config=True)
    heartbeat_timeout = Float(180.0, help="Seconds without a heartbeat before a job's agent counts as lost.").tag(config=True)
    heartbeat_interval = Float(15.0, help="Seconds between the agent's heartbeats.").tag(config=True)
    poll_interval = Float(2.0, help="Seconds between the lab's polls of a running job (status, log).").tag(config=True)
    agent_poll_interval = Float(2.0, help="Seconds between the agent's polls (inbox, cancel requests).").tag(config=True)
    log_interval = Float(2.0, help="Seconds between the log chunks an agent uploads.").tag(config=True)
    job_token_ttl = Float(3600.0, help="Lifetime of a job token; the lab renews it in SSM while the job runs.").tag(config=True)
    endpoint_url = Unicode(
        "",
        help="Endpoint URL for S3, EC2, SSM and STS (VPC endpoints; an emulator in tests). Empty: AWS's.",
    ).tag(config=True)
    aws_profile = Unicode("", help="boto3 profile for the Jupyter server's own AWS calls (default: the standard chain).").tag(config=True)
    tracking_uri = Unicode(
        "", help="Tracking URI the VMs use (default: the lab's tracking service URI). It must be reachable from the subnet."
    ).tag(config=True)
    package_spec = Unicode(
        f"infinstor_jupyterlab[ec2]=={__version__}", help="What the user data pip-installs on a new instance (a version, a URL to a wheel)."
    ).tag(config=True)
    agent_environment = Dict(
        value_trait=Unicode(),
        help="Extra settings for the agent config (e.g. endpoint_url for a VPC endpoint).",
    ).tag(config=True)
    identity_check_interval = Float(
        300.0,
        help="Seconds for which the lab trusts its last successful check of its AWS credentials "
        "(sts:GetCallerIdentity); a failed check is repeated at the next look.",
    ).tag(config=True)

    @default("max_parallel")
    def _default_max_parallel(self):
        return self.max_instances_per_user

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.manager = None
        self._clients: Clients | None = None
        self._pool_lock = asyncio.Lock()
        self._busy: dict[str, str] = {}  # instance id -> job id
        # The last sts:GetCallerIdentity answer: the account and ARN, or why the credentials failed.
        self._identity: dict[str, str] | None = None
        self._identity_error: str | None = None
        self._identity_checked_at = 0.0
        self._identity_lock = asyncio.Lock()

    # -- configuration ---------------------------------------------------------------------------
    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(self.region or None, self.endpoint_url or None, self.aws_profile or None)
        return self._clients

    REQUIRED = ("region", "ami", "s3_bucket", "iam_instance_profile")

    def missing_settings(self) -> list[str]:
        return [name for name in self.REQUIRED if not getattr(self, name)]

    def _static_reason(self) -> str | None:
        """Why not, from the configuration alone (no AWS call)."""
        missing = self.missing_settings()
        if missing:
            return (
                "EC2 is not configured: the platform admin must set "
                + ", ".join(f"c.EC2Target.{m}" for m in missing)
                + " (see docs/ec2.md)."
            )
        try:
            import boto3  # noqa: F401
        except ImportError:
            return "boto3 is not installed on the Jupyter server (pip install boto3)."
        if self.manager is not None and self._token_source() is None:
            return (
                "EC2 jobs need job tokens from the tracking service: the embedded service, or a company "
                "tracking service you are signed in to."
            )
        return None

    def unavailable_reason(self) -> str | None:
        # The configuration, then the last check of the server's AWS credentials (refresh_availability).
        return self._static_reason() or self._identity_error

    async def refresh_availability(self, force: bool = False) -> None:
        """Ask STS who the Jupyter server's AWS credentials belong to (sts:GetCallerIdentity needs no
        permission, so a failure means the credentials themselves are missing, expired or refused)."""
        if self._static_reason():
            return
        async with self._identity_lock:
            fresh = time.monotonic() - self._identity_checked_at < self.identity_check_interval
            if not force and self._identity_error is None and self._identity is not None and fresh:
                return
            try:
                answer = await asyncio.to_thread(self.clients("sts").get_caller_identity)
            except Exception as exc:
                self._identity = None
                self._identity_error = (
                    f"EC2 is not available: AWS did not accept the Jupyter server's credentials ({describe(exc)}). "
                    "The platform admin must give the server a working AWS identity (see docs/ec2.md)."
                )
            else:
                self._identity = {"account": answer.get("Account", ""), "arn": answer.get("Arn", "")}
                self._identity_error = None
            self._identity_checked_at = time.monotonic()

    @property
    def identity(self) -> dict[str, str] | None:
        """The account and ARN of the server's AWS credentials at the last check (no secret)."""
        return dict(self._identity) if self._identity else None

    def public_config(self) -> dict[str, Any]:
        """The settings the lab shows read-only (never a credential, an endpoint or agent settings)."""
        return {
            "region": self.region,
            "ami": self.ami,
            "default_instance_type": self.default_instance_type,
            "allowed_instance_types": list(self.allowed_instance_types),
            "subnet_id": self.subnet_id,
            "security_group_ids": list(self.security_group_ids),
            "iam_instance_profile": self.iam_instance_profile,
            "s3_bucket": self.s3_bucket,
            "s3_prefix": self.s3_prefix,
            "idle_timeout": self.idle_timeout,
            "max_instances_per_user": self.max_instances_per_user,
            "tags": dict(self.tags),
        }

    def capabilities(self) -> dict[str, Any]:
        return {
            **super().capabilities(),
            "env_managers": ["local", "virtualenv", "uv"],
            "instance_types": list(self.allowed_instance_types),
            "default_instance_type": self.default_instance_type,
            "sweeps": True,
            "max_instances": self.max_instances_per_user,
        }

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - {"instance_type", "env_manager"})
        if unknown:
            raise BadRequest(f"The EC2 target has no option(s) {clip(', '.join(unknown))}.")
        instance_type = options.get("instance_type") or self.default_instance_type
        if instance_type not in self.allowed_instance_types:
            raise BadRequest(
                f"instance_type {shown(instance_type)} is not allowed; choose one of {', '.join(self.allowed_instance_types)}."
            )
        env_manager = options.get("env_manager", "local")
        if env_manager not in ("local", "virtualenv", "uv"):
            raise BadRequest(f"env_manager {shown(env_manager)} is not one of local, virtualenv, uv.")
        return {"instance_type": instance_type, "env_manager": env_manager}

    def _settings(self) -> pool.PoolSettings:
        agent_config = {
            "bucket": self.s3_bucket,
            "prefix": self.s3_prefix,
            "region": self.region,
            "idle_timeout": self.idle_timeout,
            "heartbeat_interval": self.heartbeat_interval,
            "poll_interval": self.agent_poll_interval,
            "log_interval": self.log_interval,
            "token_refresh_interval": max(5.0, self.job_token_ttl / 4),
            **({"endpoint_url": self.endpoint_url} if self.endpoint_url else {}),
            **self.agent_environment,
        }
        return pool.PoolSettings(
            bucket=self.s3_bucket,
            prefix=self.s3_prefix,
            ssm_prefix=self.ssm_prefix,
            ami=self.ami,
            subnet_id=self.subnet_id,
            security_group_ids=list(self.security_group_ids),
            iam_instance_profile=self.iam_instance_profile,
            tags=dict(self.tags),
            max_instances_per_user=self.max_instances_per_user,
            agent_config=agent_config,
            package_spec=self.package_spec,
            heartbeat_timeout=self.heartbeat_timeout,
        )

    def _token_key(self) -> bytes | None:
        from ...lab.tracking.embedded import EmbeddedTrackingServer
        from ...tracking_service.job_tokens import derive_key

        tracking = getattr(self.manager, "tracking", None)
        if isinstance(tracking, EmbeddedTrackingServer):
            from ...credentials.secret import read_secret

            return derive_key(read_secret(tracking.secret_path))
        return None

    def _token_source(self) -> str | None:
        """Who mints job tokens: "embedded" (signed here with a key derived from the install
        secret), "service" (a remote company service, asked with the signed-in user's credentials)."""
        from ...lab.tracking.embedded import EmbeddedTrackingServer
        from ...lab.tracking.remote import RemoteTrackingServer

        tracking = getattr(self.manager, "tracking", None)
        if isinstance(tracking, EmbeddedTrackingServer):
            return "embedded"
        if isinstance(tracking, RemoteTrackingServer) and tracking.credentials is not None:
            return "service"
        return None

    async def _issue_token(self, job: Job) -> str:
        from ...tracking_service.job_tokens import issue

        source = self._token_source()
        if source == "embedded":
            key = self._token_key()
            if key is None:
                raise TargetUnavailable("The embedded tracking service has no job token secret yet; restart the lab.")
            return issue(key, job_id=job.id, run_id=job.run_id, experiment_id=job.experiment_id, ttl=self.job_token_ttl)
        if source == "service":
            return await self._service_job_token(self.manager.tracking, job)
        raise TargetUnavailable(
            "EC2 jobs need job tokens from the tracking service: the embedded service, or a company tracking service you are signed in to."
        )

    async def _service_job_token(self, tracking, job: Job) -> str:
        """A job token for the job's run from the company service (POST /api/2.0/infinstor/tokens)."""
        import requests

        url = f"{tracking.credentials.service_url}/api/2.0/infinstor/tokens"
        body: dict[str, Any] = {"kind": "job", "run_id": job.run_id, "job_id": job.id, "ttl_seconds": int(self.job_token_ttl)}
        for attempt in (1, 2):
            headers = await tracking.request_headers()
            try:
                response = await asyncio.to_thread(requests.post, url, json=body, headers=headers, timeout=30)
            except requests.RequestException as exc:
                raise TargetUnavailable(f"Cannot reach the tracking service for a job token ({type(exc).__name__}).") from None
            if response.status_code == 401 and attempt == 1 and await tracking.refresh_credentials():
                continue
            break
        if response.status_code != 200:
            try:
                message = response.json().get("message") or response.reason
            except ValueError:
                message = response.reason
            raise TargetUnavailable(f"The tracking service would not issue a job token (HTTP {response.status_code}): {message}")
        return response.json()["token"]

    def _user(self, job: Job) -> str:
        return job.user or getattr(self.manager, "user", None) or "unknown"

    # -- start -----------------------------------------------------------------------------------
    async def start(self, job: Job, env: dict[str, str], log_path) -> None:
        settings = self._settings()
        user = self._user(job)
        instance_type = job.options.get("instance_type") or self.default_instance_type
        tracking_uri = self.tracking_uri or self.manager.tracking.uri
        token_name = layout.token_parameter(settings.ssm_prefix, user, job.id)
        spec = {
            "job_id": job.id,
            "user": user,
            "run_id": job.run_id,
            "experiment_id": job.experiment_id,
            "entry_point": job.entry_point,
            "parameters": job.parameters,
            "env_manager": job.options.get("env_manager", "local"),
            "tracking_uri": tracking_uri,
            "project_key": layout.project_key(settings.prefix, user, job.id),
            "status_key": layout.status_key(settings.prefix, user, job.id),
            "cancel_key": layout.cancel_key(settings.prefix, user, job.id),
            "log_prefix": layout.log_prefix(settings.prefix, user, job.id),
            "progress_prefix": layout.progress_prefix(settings.prefix, user, job.id),
            "token_parameter": token_name,
            "created_at": time.time(),
        }
        job.target_state = {
            "user": user,
            "bucket": settings.bucket,
            "prefix": settings.prefix,
            "token_parameter": token_name,
            "instance_type": instance_type,
            "instance_id": None,
            "log_path": str(log_path),
        }
        instance_id = None
        how = None
        await self.refresh_availability()
        if self._identity_error:
            raise TargetUnavailable(self._identity_error)
        try:
            await self._write_log(
                log_path, f"[infinstor] staging the project to s3://{settings.bucket}/{layout.job_prefix(settings.prefix, user, job.id)}\n"
            )
            await asyncio.to_thread(pool.stage, self.clients, settings, Path(job.project_dir), spec)
            token = await self._issue_token(job)
            await asyncio.to_thread(pool.put_token, self.clients, token_name, token)
            job.target_state["token_issued_at"] = time.time()
            async with self._pool_lock:
                busy = set(self._busy)
                instance_id, how = await asyncio.to_thread(pool.acquire, self.clients, settings, user, instance_type, job.id, busy)
                self._busy[instance_id] = job.id
            job.target_state.update(instance_id=instance_id, acquired=how, assigned_at=time.time())
            await asyncio.to_thread(pool.assign, self.clients, settings, instance_id, spec)
        except BaseException as exc:
            if instance_id:
                self._busy.pop(instance_id, None)
            await self._cleanup(job, terminate=(how == "launched"), release=(how in ("warm", "restarted")))
            if isinstance(exc, InfinStorError):
                raise
            if isinstance(exc, Exception):
                raise AwsError(describe(exc)) from None
            raise
        verb = {"warm": "reusing the warm instance", "restarted": "starting the stopped instance", "launched": "launched"}[how]
        await self._write_log(log_path, f"[infinstor] {instance_type} {instance_id}: {verb}; waiting for its agent to pick up the job\n")

    @staticmethod
    async def _write_log(log_path, text: str) -> None:
        def write():
            with open_private_append(log_path) as handle:
                handle.write(text.encode())

        await asyncio.to_thread(write)

    # -- wait ------------------------------------------------------------------------------------
    def is_alive(self, job: Job) -> bool:
        # No AWS call here (it is synchronous): `wait` finds out whether the job is still running.
        return bool(job.target_state.get("instance_id"))

    async def wait(self, job: Job) -> int | None:
        state = job.target_state
        instance_id = state["instance_id"]
        self._busy[instance_id] = job.id
        cursor = _LogCursor(Path(state["log_path"]))
        progress = _LogCursor(self.manager.progress_path(job.id))
        last_etag, last_change = None, time.monotonic()
        accepted = False
        restarted_once = False
        polls = 0
        try:
            while True:
                snapshot = await asyncio.to_thread(self._poll, job, cursor, progress)
                polls += 1
                status, beat, beat_etag = snapshot["status"], snapshot["heartbeat"], snapshot["heartbeat_etag"]
                if beat_etag and beat_etag != last_etag:
                    last_etag, last_change = beat_etag, time.monotonic()
                if status and status.get("state") in ("finished", "failed", "killed"):
                    await asyncio.to_thread(cursor.drain, self.clients, state["bucket"], self._log_prefix(job))
                    await asyncio.to_thread(progress.drain, self.clients, state["bucket"], self._progress_prefix(job))
                    await self._cleanup(job, terminate=False)
                    if status["state"] == "finished":
                        return 0
                    if status["state"] == "killed":
                        return status.get("exit_code") if status.get("exit_code") is not None else -15
                    if status.get("exit_code") is None:
                        raise JobFailed(status.get("message") or "The VM agent reported a failure without a message.")
                    return int(status["exit_code"])
                if status and not accepted:
                    accepted = True
                    last_change = time.monotonic()
                if not accepted:
                    instance_state = snapshot["instance_state"]
                    if instance_state is None and polls % 5 == 1:
                        instance_state = await asyncio.to_thread(pool.instance_state, self.clients, instance_id)
                    if instance_state and instance_state[0] in ("terminated", "shutting-down"):
                        await self._fail(
                            job,
                            f"Instance {instance_id} was terminated before it picked up the job ({instance_state[1] or 'no reason given'}).",
                            terminate=False,
                        )
                    if instance_state and instance_state[0] == "stopped" and not restarted_once:
                        # It stopped itself just as the job was addressed to it: start it again.
                        restarted_once = True
                        await asyncio.to_thread(self.clients("ec2").start_instances, InstanceIds=[instance_id])
                    elapsed = time.time() - float(state.get("assigned_at") or time.time())
                    if elapsed > self.checkin_timeout:
                        await self._fail(
                            job,
                            f"Instance {instance_id} did not check in within {self.checkin_timeout:.0f} s; it was terminated. "
                            "Check that the AMI has Python 3.10+, that the subnet reaches S3, SSM (and PyPI for the install), "
                            "and the instance's system log (docs/ec2.md, troubleshooting).",
                            terminate=True,
                        )
                else:
                    if (
                        beat
                        and beat.get("job_id") not in (None, job.id)
                        or (beat and beat.get("state") == "idle" and float(beat.get("agent_started") or 0) > float(status.get("time") or 0))
                    ):
                        await self._fail(
                            job,
                            f"The VM agent on {instance_id} restarted during the job; the job was lost. The instance was terminated.",
                            terminate=True,
                        )
                    age = time.monotonic() - last_change
                    if age > self.heartbeat_timeout:
                        instance_state = await asyncio.to_thread(pool.instance_state, self.clients, instance_id)
                        where = f"instance {instance_id} is {instance_state[0]}" + (f": {instance_state[1]}" if instance_state[1] else "")
                        await self._fail(
                            job,
                            f"The VM agent on {instance_id} stopped sending heartbeats ({age:.0f} s since the last; {where}). "
                            "The job was marked failed and the instance terminated.",
                            terminate=True,
                        )
                    if polls % 5 == 0:
                        instance_state = await asyncio.to_thread(pool.instance_state, self.clients, instance_id)
                        if instance_state[0] not in ("pending", "running"):
                            reason = f" ({instance_state[1]})" if instance_state[1] else ""
                            await self._fail(
                                job, f"Instance {instance_id} is {instance_state[0]}{reason}; the job on it was lost.", terminate=True
                            )
                await self._maybe_renew_token(job)
                await asyncio.sleep(self.poll_interval)
        finally:
            if self._busy.get(instance_id) == job.id:
                self._busy.pop(instance_id, None)

    def _log_prefix(self, job: Job) -> str:
        return layout.log_prefix(job.target_state["prefix"], job.target_state["user"], job.id)

    def _progress_prefix(self, job: Job) -> str:
        return layout.progress_prefix(job.target_state["prefix"], job.target_state["user"], job.id)

    def _poll(self, job: Job, cursor: _LogCursor, progress: _LogCursor) -> dict:
        """One look at the job in S3 (runs in a thread)."""
        state = job.target_state
        bucket, prefix, user = state["bucket"], state["prefix"], state["user"]
        cursor.drain(self.clients, bucket, self._log_prefix(job))
        progress.drain(self.clients, bucket, self._progress_prefix(job))
        status, _ = pool.get_json(self.clients, bucket, layout.status_key(prefix, user, job.id))
        beat, etag = pool.get_json(self.clients, bucket, layout.heartbeat_key(prefix, state["instance_id"]))
        return {"status": status, "heartbeat": beat, "heartbeat_etag": etag, "instance_state": None}

    async def _maybe_renew_token(self, job: Job) -> None:
        issued = float(job.target_state.get("token_issued_at") or 0)
        if time.time() - issued < self.job_token_ttl / 2:
            return
        try:
            token = await self._issue_token(job)
            await asyncio.to_thread(pool.put_token, self.clients, job.target_state["token_parameter"], token, overwrite=True)
            job.target_state["token_issued_at"] = time.time()
        except Exception as exc:
            log.warning("InfinStor: renewing the job token of %s failed: %s", job.id, describe(exc))

    async def _fail(self, job: Job, reason: str, *, terminate: bool) -> None:
        await self._cleanup(job, terminate=terminate)
        raise JobFailed(reason)

    async def _cleanup(self, job: Job, *, terminate: bool, release: bool = True) -> None:
        """Remove the job's staged files, status, logs and credentials; free or terminate its instance."""
        state = job.target_state
        instance_id = state.get("instance_id")

        def work():
            problems = []
            steps = [
                ("credentials", lambda: pool.delete_token(self.clients, state["token_parameter"])),
                (
                    "staged files",
                    lambda: pool.delete_prefix(self.clients, state["bucket"], layout.job_prefix(state["prefix"], state["user"], job.id)),
                ),
            ]
            if instance_id:
                steps.append(
                    (
                        "assignment",
                        lambda: self.clients("s3").delete_object(
                            Bucket=state["bucket"], Key=layout.inbox_key(state["prefix"], instance_id, job.id)
                        ),
                    )
                )
                if terminate:
                    steps.append(("instance", lambda: pool.terminate(self.clients, instance_id)))
                elif release:
                    steps.append(("instance tag", lambda: pool.release(self.clients, instance_id)))
            for what, step in steps:
                try:
                    step()
                except Exception as exc:
                    problems.append(f"{what}: {describe(exc)}")
            return problems

        problems = await asyncio.to_thread(work)
        for problem in problems:
            log.warning("InfinStor: cleaning up EC2 job %s: %s", job.id, problem)
        if instance_id and self._busy.get(instance_id) == job.id:
            self._busy.pop(instance_id, None)

    # -- cancel ----------------------------------------------------------------------------------
    async def cancel(self, job: Job) -> None:
        state = job.target_state
        if not state.get("bucket"):
            return
        await asyncio.to_thread(
            self.clients("s3").put_object,
            Bucket=state["bucket"],
            Key=layout.cancel_key(state["prefix"], state["user"], job.id),
            Body=b"cancel",
        )

    # -- compute view ----------------------------------------------------------------------------
    async def list_instances(self, user: str) -> list[dict[str, Any]]:
        settings = self._settings()

        def work():
            out = []
            now = time.time()
            for instance in pool.user_instances(self.clients, user):
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                state = instance["State"]["Name"]
                launched = instance.get("LaunchTime")
                launched_ts = launched.timestamp() if isinstance(launched, datetime.datetime) else None
                beat = pool.heartbeat(self.clients, settings, instance["InstanceId"]) if state == "running" else None
                idle_since = beat.get("idle_since") if beat and beat.get("state") == "idle" else None
                reason = (instance.get("StateReason") or {}).get("Message") or instance.get("StateTransitionReason") or None
                out.append(
                    {
                        "id": instance["InstanceId"],
                        "state": state,
                        "instance_type": instance["InstanceType"],
                        "launch_time": launched_ts,
                        "uptime": (now - launched_ts) if (launched_ts and state == "running") else None,
                        "idle_seconds": (now - float(idle_since)) if idle_since else None,
                        "agent": beat.get("state") if beat else None,
                        "current_job": tags.get(layout.TAG_JOB) or None,
                        "name": tags.get("Name"),
                        "state_reason": reason if state != "running" else None,
                    }
                )
            return out

        try:
            return await asyncio.to_thread(work)
        except InfinStorError:
            raise
        except Exception as exc:
            raise AwsError(f"Listing your instances failed: {describe(exc)}") from None

    async def control_instance(self, user: str, instance_id: str, action: str) -> dict[str, Any]:
        import re

        if not re.match(_INSTANCE_ID, instance_id):
            raise BadRequest(f"{shown(instance_id)} is not an EC2 instance id.")
        if action not in ("stop", "terminate"):
            raise BadRequest(f"Unknown action {shown(action)}.")

        def work():
            mine = {i["InstanceId"] for i in pool.user_instances(self.clients, user)}
            if instance_id not in mine:
                raise NotFound(f"You have no instance {instance_id}.")
            ec2 = self.clients("ec2")
            if action == "stop":
                changed = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"]
            else:
                changed = ec2.terminate_instances(InstanceIds=[instance_id])["TerminatingInstances"]
            return {"id": instance_id, "state": changed[0]["CurrentState"]["Name"] if changed else None}

        try:
            return await asyncio.to_thread(work)
        except InfinStorError:
            raise
        except Exception as exc:
            status = 403 if error_code(exc) == "UnauthorizedOperation" else 502
            raise AwsError(f"Could not {action} {instance_id}: {describe(exc)}", status=status) from None


class _LogCursor:
    """Copies new log (or progress) chunks from S3 into the job's local file, in order, exactly once.

    The position (last chunk copied) is kept beside the log, so a restarted lab goes on from there.
    """

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.state_path = log_path.with_name(log_path.name + ".ec2-cursor")
        try:
            self.last_key = json.loads(self.state_path.read_text())["last_key"]
        except (OSError, ValueError, KeyError):
            self.last_key = ""

    def drain(self, clients: Clients, bucket: str, prefix: str) -> None:
        s3 = clients("s3")
        while True:
            kwargs = {"Bucket": bucket, "Prefix": prefix}
            if self.last_key:
                kwargs["StartAfter"] = self.last_key
            listed = s3.list_objects_v2(**kwargs)
            keys = sorted(o["Key"] for o in listed.get("Contents", []))
            if not keys:
                return
            for key in keys:
                try:
                    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                except Exception as exc:
                    if error_code(exc) in ("NoSuchKey", "404"):
                        continue
                    raise
                with open_private_append(self.log_path) as handle:
                    handle.write(data)
                self.last_key = key
                with contextlib.suppress(OSError):
                    write_private_file(self.state_path, json.dumps({"last_key": key}))
            if not listed.get("IsTruncated"):
                return
