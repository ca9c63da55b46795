from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...errors import BadRequest
from ...jobs.schema import JobRequest
from .base import InfinStorHandler

JOB_ID = r"(?P<job_id>[0-9a-f]{16})"


class JobsHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        jobs = await self.infinstor.jobs.list()
        self.write_json({"jobs": [job.to_json() for job in jobs]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = JobRequest.from_json(self.get_json_body_or_400())
        job = await self.infinstor.jobs.submit(request)
        self.write_json(job.to_json(), status=201)


class JobValidateHandler(InfinStorHandler):
    """A dry run of POST jobs: 200 with every problem by field; creates nothing."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.write_json(await self.infinstor.jobs.dry_run(self.get_json_body_or_400(check_values=False)))


class JobHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.write_json((await self.infinstor.jobs.get(job_id)).to_json())

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        await self.infinstor.jobs.delete(job_id)
        self.set_status(204)
        self.finish()


class JobLogHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        try:
            offset = int(self.get_query_argument("offset", "0"))
        except ValueError:
            raise BadRequest("offset must be an integer") from None
        self.write_json(await self.infinstor.jobs.read_log(job_id, offset))


class JobProgressHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        try:
            offset = int(self.get_query_argument("offset", "0"))
        except ValueError:
            raise BadRequest("offset must be an integer") from None
        self.write_json(await self.infinstor.jobs.read_progress(job_id, offset))


class JobCancelHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        self.write_json((await self.infinstor.jobs.cancel(job_id)).to_json())


class TargetsHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        for target in self.infinstor.jobs.targets.values():
            await target.refresh_availability()
        self.write_json({"targets": self.infinstor.jobs.describe_targets()})
