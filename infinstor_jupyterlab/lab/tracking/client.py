"""A small async MLflow REST client for the server extension's own calls (jobs, projects).

It goes straight to the tracking service with the backend's credentials, so it works the same
for the embedded service and a remote one, and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ...errors import BadRequest, Forbidden, InfinStorError, NotFound, TrackingUnavailable
from .base import TrackingBackend


class MlflowRestError(InfinStorError):
    status = 502
    reason = "mlflow_error"


class MlflowClientAsync:
    def __init__(self, backend: TrackingBackend, *, timeout: float = 30.0):
        self.backend = backend
        self.timeout = timeout

    async def call(self, method: str, endpoint: str, body: dict | None = None, *, params: dict | None = None) -> dict:
        await self.backend.ensure_running()
        url = f"{self.backend.uri}/api/2.0/mlflow/{endpoint}"
        if params:
            url += "?" + urlencode(params)
        headers = {"Content-Type": "application/json", **(await self.backend.request_headers())}
        try:
            response = await AsyncHTTPClient().fetch(
                url,
                method=method,
                body=json.dumps(body) if body is not None else None,
                headers=headers,
                connect_timeout=10,
                request_timeout=self.timeout,
                raise_error=False,
            )
        except (OSError, HTTPClientError) as exc:
            raise TrackingUnavailable(f"The tracking service did not answer: {exc}") from None
        if response.code == 599:
            raise TrackingUnavailable(f"The tracking service did not answer: {response.error}")
        try:
            payload = json.loads(response.body or b"{}")
        except ValueError:
            payload = {}
        if response.code >= 400:
            message = payload.get("message") or f"HTTP {response.code} from the tracking service"
            error_code = payload.get("error_code", "")
            if response.code == 404 or error_code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFound(message)
            if response.code in (401, 403):
                raise Forbidden(message)
            if response.code == 400:
                raise BadRequest(message)
            raise MlflowRestError(message)
        return payload

    async def get_experiment(self, experiment_id: str) -> dict:
        return (await self.call("GET", "experiments/get", params={"experiment_id": experiment_id}))["experiment"]

    async def get_or_create_experiment(self, name: str) -> str:
        try:
            found = await self.call("GET", "experiments/get-by-name", params={"experiment_name": name})
            return found["experiment"]["experiment_id"]
        except NotFound:
            created = await self.call("POST", "experiments/create", {"name": name})
            return created["experiment_id"]

    async def find_experiment(self, name: str) -> str | None:
        """The id of the experiment called `name`, or None (nothing is created)."""
        try:
            found = await self.call("GET", "experiments/get-by-name", params={"experiment_name": name})
        except NotFound:
            return None
        return found["experiment"]["experiment_id"]

    async def create_run(self, experiment_id: str, run_name: str | None, tags: dict[str, str]) -> dict:
        body = {
            "experiment_id": experiment_id,
            "start_time": int(time.time() * 1000),
            "tags": [{"key": k, "value": str(v)} for k, v in tags.items()],
        }
        if run_name:
            body["run_name"] = run_name
        return (await self.call("POST", "runs/create", body))["run"]

    async def log_params(self, run_id: str, params: dict[str, str]) -> None:
        items = [{"key": k, "value": str(v)} for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow's per-batch limit
            await self.call("POST", "runs/log-batch", {"run_id": run_id, "params": items[start : start + 100]})

    async def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        items = [{"key": k, "value": str(v)} for k, v in tags.items()]
        await self.call("POST", "runs/log-batch", {"run_id": run_id, "tags": items})

    async def get_run(self, run_id: str) -> dict:
        return (await self.call("GET", "runs/get", params={"run_id": run_id}))["run"]

    async def update_run(self, run_id: str, status: str, end: bool = False, run_name: str | None = None) -> None:
        body: dict = {"run_id": run_id, "status": status}
        if end:
            body["end_time"] = int(time.time() * 1000)
        if run_name:
            body["run_name"] = run_name
        await self.call("POST", "runs/update", body)

    async def delete_run(self, run_id: str) -> None:
        await self.call("POST", "runs/delete", {"run_id": run_id})

    async def upload_artifact(self, run: dict, local_path: Path, artifact_path: str) -> None:
        """Upload through the service's artifact proxy (mlflow-artifacts: roots)."""
        root = run["info"]["artifact_uri"]
        prefix = "mlflow-artifacts:"
        if not root.startswith(prefix):
            raise BadRequest(f"Cannot upload to the artifact store {root!r} from the lab")
        relative = root[len(prefix) :].lstrip("/")
        url = f"{self.backend.uri}/api/2.0/mlflow-artifacts/artifacts/{quote(relative)}/{quote(artifact_path)}/{quote(local_path.name)}"
        headers = {"Content-Type": "application/octet-stream", **(await self.backend.request_headers())}
        size = (await asyncio.to_thread(local_path.stat)).st_size

        async def producer(write):
            # Disk reads off the event loop, one chunk at a time.
            handle = await asyncio.to_thread(open, local_path, "rb")
            try:
                while chunk := await asyncio.to_thread(handle.read, 256 * 1024):
                    await write(chunk)
            finally:
                handle.close()

        try:
            response = await AsyncHTTPClient().fetch(
                url,
                method="PUT",
                headers={**headers, "Content-Length": str(size)},
                body_producer=producer,
                request_timeout=600,
                raise_error=False,
            )
        except (OSError, HTTPClientError) as exc:
            raise TrackingUnavailable(f"Uploading {local_path.name} failed: {exc}") from None
        if response.code >= 400:
            raise MlflowRestError(f"Uploading {local_path.name} failed: HTTP {response.code}")
