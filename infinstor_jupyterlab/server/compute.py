"""The Compute view's API: the user's EC2 instances, and stop / terminate. Thin: EC2Target does the work."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import NotFound
from .base import InfinStorHandler

INSTANCE_ID = r"(?P<instance_id>[^/]+)"


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
            self.write_json({"available": False, "reason": "The EC2 target is not enabled on this server.", "instances": []})
            return
        reason = target.unavailable_reason()
        if reason:
            self.write_json({"available": False, "reason": reason, "instances": []})
            return
        instances = await target.list_instances(self.owner)
        self.write_json({"available": True, "reason": None, "instances": instances})


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
