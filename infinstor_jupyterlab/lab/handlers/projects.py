from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...errors import BadRequest
from .base import InfinStorHandler


class ProjectsHandler(InfinStorHandler):
    """Convert a notebook into an MLflow project directory."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.get_json_body_or_400()
        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise BadRequest("`path` must name a notebook.")
        output_dir = body.get("output_dir")
        if output_dir is not None and not isinstance(output_dir, str):
            raise BadRequest("`output_dir` must be a path inside the Jupyter root.")
        include_folder = body.get("include_folder", False)
        if not isinstance(include_folder, bool):
            raise BadRequest("`include_folder` must be true or false.")
        info = await self.infinstor.projects.convert(path, output_dir, include_folder=include_folder)
        self.write_json(info, status=201)


class ProjectParametersHandler(InfinStorHandler):
    """What the job dialog pre-fills: a notebook's or MLproject's parameters, typed."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        if not path:
            raise BadRequest("`path` is required.")
        self.write_json(await self.infinstor.projects.describe(path))
