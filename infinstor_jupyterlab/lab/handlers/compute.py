"""The Compute view's API: the user's EC2 instances, stop / terminate, and the EC2 settings
(read-only). Thin: jobs.compute decides the answers, EC2Target does the work."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...jobs import compute
from .base import InfinStorHandler

INSTANCE_ID = r"(?P<instance_id>[^/]+)"


class ComputeInstancesHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await compute.list_instances(self.infinstor.jobs))


class ComputeConfigHandler(InfinStorHandler):
    """The EC2 settings the platform admin made (traitlets), for display: no credential."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await compute.describe_settings(self.infinstor.jobs))


class _InstanceActionHandler(InfinStorHandler):
    action = ""

    @web.authenticated
    @authorized
    async def post(self, instance_id: str) -> None:
        self.write_json(await compute.control_instance(self.infinstor.jobs, instance_id, self.action))


class ComputeInstanceStopHandler(_InstanceActionHandler):
    action = "stop"


class ComputeInstanceTerminateHandler(_InstanceActionHandler):
    action = "terminate"
