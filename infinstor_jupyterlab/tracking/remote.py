"""A tracking service run elsewhere (a company's InfinStor service or any MLflow server)."""

from __future__ import annotations

import time

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

import mlflow

from ..errors import TrackingUnavailable
from .base import TrackingBackend, TrackingStatus


class RemoteTrackingServer(TrackingBackend):
    mode = "remote"

    def __init__(self, uri: str, *, health_timeout: float = 5.0, cache_seconds: float = 5.0):
        self._uri = uri.rstrip("/")
        self._health_timeout = health_timeout
        self._cache_seconds = cache_seconds
        self._last: tuple[float, TrackingStatus] | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def auth_headers(self) -> dict[str, str]:
        # Signed-in users' tokens are added by the credentials layer.
        return {}

    async def _probe(self) -> TrackingStatus:
        client = AsyncHTTPClient()
        url = f"{self._uri}/health"
        try:
            response = await client.fetch(
                url,
                headers=self.auth_headers(),
                connect_timeout=self._health_timeout,
                request_timeout=self._health_timeout,
                raise_error=False,
            )
        except (OSError, HTTPClientError) as exc:  # tornado raises for connection errors
            return self._status("error", f"Cannot reach the tracking service at {self._uri}: {exc}")
        if response.code == 599:
            reason = response.error or "no answer"
            return self._status("error", f"Cannot reach the tracking service at {self._uri}: {reason}")
        if response.code >= 500:
            return self._status(
                "error", f"The tracking service at {self._uri} answered HTTP {response.code}."
            )
        # 2xx, or 401/403 from a service that guards /health: it is up.
        return self._status("running", "")

    def _status(self, state, message) -> TrackingStatus:
        return TrackingStatus(
            mode="remote", state=state, message=message, uri=self._uri, mlflow_version=mlflow.__version__
        )

    async def status(self) -> TrackingStatus:
        now = time.monotonic()
        if self._last and now - self._last[0] < self._cache_seconds:
            return self._last[1]
        result = await self._probe()
        self._last = (now, result)
        return result

    async def ensure_running(self, timeout: float | None = None) -> None:
        self._last = None
        result = await self.status()
        if result.state != "running":
            raise TrackingUnavailable(result.message)
