"""The Compute view's API: the user's EC2 instances, stop / terminate, and the EC2 settings
(read-only). Thin: EC2Target does the work."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import NotFound
from ..jobs.models import Job
from .base import InfinStorHandler

INSTANCE_ID = r"(?P<instance_id>[^/]+)"

NOT_ENABLED = "EC2 is not configured: the EC2 target is not enabled on this server (c.InfinStor.job_target_classes)."


def _job_title(job: Job) -> str:
    return job.run_name or job.path.rstrip("/").rsplit("/", 1)[-1]


class _ComputeHandler(InfinStorHandler):
    def ec2_target(self):
        return self.infinstor.jobs.targets.get("ec2")

    @property
    def owner(self) -> str:
        return self.infinstor.jobs.user


class ComputeInstancesHandler(_ComputeHandler):
    @web.authenticated
    @authorized
    async def get(self):
        target = self.ec2_target()
        if target is None:
            self.write_json({"available": False, "reason": NOT_ENABLED, "instances": []})
            return
        await target.refresh_availability()
        reason = target.unavailable_reason()
        if reason:
            self.write_json({"available": False, "reason": reason, "instances": []})
            return
        instances = await target.list_instances(self.owner)
        for instance in instances:
            instance["current_job_title"] = None
            if instance["current_job"]:
                try:
                    instance["current_job_title"] = _job_title(await self.infinstor.jobs.get(instance["current_job"]))
                except NotFound:  # another lab's job, or one deleted since
                    pass
        self.write_json({"available": True, "reason": None, "instances": instances})


class ComputeConfigHandler(_ComputeHandler):
    """The EC2 settings the platform admin made (traitlets), for display: no credential."""

    @web.authenticated
    @authorized
    async def get(self):
        target = self.ec2_target()
        if target is None:
            self.write_json({"enabled": False, "available": False, "reason": NOT_ENABLED, "missing": [], "config": None, "identity": None})
            return
        await target.refresh_availability()
        reason = target.unavailable_reason()
        self.write_json(
            {
                "enabled": True,
                "available": reason is None,
                "reason": reason,
                "missing": target.missing_settings(),
                "config": target.public_config(),
                "identity": target.identity,
            }
        )


class _InstanceActionHandler(_ComputeHandler):
    action = ""

    @web.authenticated
    @authorized
    async def post(self, instance_id):
        target = self.ec2_target()
        if target is None or target.unavailable_reason():
            raise NotFound("EC2 is not configured on this server.")
        self.write_json(await target.control_instance(self.owner, instance_id, self.action))


class ComputeInstanceStopHandler(_InstanceActionHandler):
    action = "stop"


class ComputeInstanceTerminateHandler(_InstanceActionHandler):
    action = "terminate"
