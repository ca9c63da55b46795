"""Where the lab and the VM agent meet: S3 keys, SSM parameter names, EC2 tags.

    <prefix>/users/<user>/jobs/<job>/project.tar.gz   staged project            lab -> agent
    <prefix>/users/<user>/jobs/<job>/spec.json        job spec (no secret)      lab -> agent
    <prefix>/users/<user>/jobs/<job>/cancel           cancel request            lab -> agent
    <prefix>/users/<user>/jobs/<job>/status.json      accepted/running/ended    agent -> lab
    <prefix>/users/<user>/jobs/<job>/log/<seq>        log chunks, in order      agent -> lab
    <prefix>/users/<user>/jobs/<job>/progress/<seq>   cell progress chunks      agent -> lab
    <prefix>/instances/<instance>/inbox/<job>.json    a job addressed to it     lab -> agent
    <prefix>/instances/<instance>/heartbeat.json      alive, idle or busy       agent -> lab
    <ssm_prefix>/<user>/<job>/token                   the job token (SecureString), deleted at the end
"""

from __future__ import annotations

import re

PURPOSE = "infinstor-job-runner"
TAG_PURPOSE = "infinstor:purpose"
TAG_USER = "infinstor:user"
TAG_TYPE = "infinstor:instance-type"
TAG_JOB = "infinstor:job"
DEFAULT_SSM_PREFIX = "/infinstor/jobs"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def safe(part: str) -> str:
    """A user or job name as one safe key / parameter-path segment."""
    cleaned = _UNSAFE.sub("_", part or "unknown")
    return cleaned[:128] or "unknown"


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def job_prefix(prefix: str, user: str, job_id: str) -> str:
    return _join(prefix, "users", safe(user), "jobs", safe(job_id)) + "/"


def project_key(prefix: str, user: str, job_id: str) -> str:
    return job_prefix(prefix, user, job_id) + "project.tar.gz"


def spec_key(prefix: str, user: str, job_id: str) -> str:
    return job_prefix(prefix, user, job_id) + "spec.json"


def status_key(prefix: str, user: str, job_id: str) -> str:
    return job_prefix(prefix, user, job_id) + "status.json"


def cancel_key(prefix: str, user: str, job_id: str) -> str:
    return job_prefix(prefix, user, job_id) + "cancel"


def log_prefix(prefix: str, user: str, job_id: str) -> str:
    return job_prefix(prefix, user, job_id) + "log/"


def progress_prefix(prefix: str, user: str, job_id: str) -> str:
    return job_prefix(prefix, user, job_id) + "progress/"


def log_key(prefix: str, user: str, job_id: str, seq: int) -> str:
    return f"{log_prefix(prefix, user, job_id)}{seq:08d}"


def instance_prefix(prefix: str, instance_id: str) -> str:
    return _join(prefix, "instances", safe(instance_id)) + "/"


def inbox_prefix(prefix: str, instance_id: str) -> str:
    return instance_prefix(prefix, instance_id) + "inbox/"


def inbox_key(prefix: str, instance_id: str, job_id: str) -> str:
    return f"{inbox_prefix(prefix, instance_id)}{safe(job_id)}.json"


def heartbeat_key(prefix: str, instance_id: str) -> str:
    return instance_prefix(prefix, instance_id) + "heartbeat.json"


def token_parameter(ssm_prefix: str, user: str, job_id: str) -> str:
    return "/" + _join(ssm_prefix, safe(user), safe(job_id), "token")
