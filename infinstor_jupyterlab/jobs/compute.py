"""The Compute view's answers: the user's EC2 instances, each with the title of the job it runs,
stop / terminate, and the EC2 settings (read-only).

The EC2 target does the AWS work; this module decides what the view is told when EC2 cannot be
used (the target is left out of the server's job targets, is not configured, or AWS refuses the
server's credentials) and names each instance's job from the job store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ..errors import NotFound
from .models import Job

if TYPE_CHECKING:
    from .manager import JobManager
    from .targets.ec2 import EC2Target

NOT_ENABLED = "EC2 is not configured: the EC2 target is not enabled on this server (c.InfinStor.job_target_classes)."


def job_title(job: Job) -> str:
    """What the view calls a job: its run name, else its notebook's or project's file name."""
    return job.run_name or job.path.rstrip("/").rsplit("/", 1)[-1]


async def _ec2_availability(jobs: JobManager) -> tuple[EC2Target | None, str | None]:
    """The EC2 target (None when the server has none) and why it cannot be used now (None when
    it can), after checking the server's AWS credentials if that check is due."""
    target = cast("EC2Target | None", jobs.targets.get("ec2"))
    if target is None:
        return None, NOT_ENABLED
    await target.refresh_availability()
    return target, target.unavailable_reason()


async def list_instances(jobs: JobManager) -> dict[str, Any]:
    """The user's instances, or why there can be none (`available` false, `reason`)."""
    target, reason = await _ec2_availability(jobs)
    if reason or target is None:
        return {"available": False, "reason": reason, "instances": []}
    instances = await target.list_instances(jobs.user)
    for instance in instances:
        instance["current_job_title"] = await _current_job_title(jobs, instance["current_job"])
    return {"available": True, "reason": None, "instances": instances}


async def _current_job_title(jobs: JobManager, job_id: str | None) -> str | None:
    if not job_id:
        return None
    try:
        return job_title(await jobs.get(job_id))
    except NotFound:  # another lab's job, or one deleted since
        return None


async def describe_settings(jobs: JobManager) -> dict[str, Any]:
    """The EC2 settings the platform admin made (traitlets), for display: never a credential."""
    target, reason = await _ec2_availability(jobs)
    if target is None:
        return {"enabled": False, "available": False, "reason": reason, "missing": [], "config": None, "identity": None}
    return {
        "enabled": True,
        "available": reason is None,
        "reason": reason,
        "missing": target.missing_settings(),
        "config": target.public_config(),
        "identity": target.identity,
    }


async def control_instance(jobs: JobManager, instance_id: str, action: str) -> dict[str, Any]:
    """Stop or terminate one of the user's instances; its id and the state AWS answered."""
    target = cast("EC2Target | None", jobs.targets.get("ec2"))
    # The last check's answer will do: the action itself reaches AWS and reports a refusal.
    if target is None or target.unavailable_reason():
        raise NotFound("EC2 is not configured on this server.")
    return await target.control_instance(jobs.user, instance_id, action)
