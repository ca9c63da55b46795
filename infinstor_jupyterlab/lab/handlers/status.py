from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import InfinStorHandler


class StatusHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await self.infinstor.status())


class TrackingRestartHandler(InfinStorHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        status = await self.infinstor.tracking.restart()
        self.write_json({"tracking": status.to_json()})
