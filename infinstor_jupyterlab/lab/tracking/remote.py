"""A tracking service run elsewhere (a company's InfinStor service or any MLflow server)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import mlflow
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ...errors import TrackingUnavailable
from .base import TrackingBackend, TrackingStatus

if TYPE_CHECKING:
    from ...credentials.manager import CredentialManager


class RemoteTrackingServer(TrackingBackend):
    mode = "remote"

    def __init__(
        self,
        uri: str,
        *,
        health_timeout: float = 5.0,
        cache_seconds: float = 5.0,
        credentials: CredentialManager | None = None,
    ):
        self._uri = uri.rstrip("/")
        self.credentials = credentials
        self._health_timeout = health_timeout
        self._cache_seconds = cache_seconds
        self._last: tuple[float, TrackingStatus] | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def auth_headers(self) -> dict[str, str]:
        # Signed-in users' tokens come from request_headers() (it may refresh them).
        return {}

    async def request_headers(self) -> dict[str, str]:
        """The signed-in user's bearer token, renewed in a thread when it is about to expire.

        Raises SignInRequired when sign-in is configured and there is no usable token.
        """
        if self.credentials is None:
            return {}
        return await asyncio.to_thread(self.credentials.request_headers)

    async def refresh_credentials(self) -> bool:
        if self.credentials is None:
            return False
        return await asyncio.to_thread(self.credentials.refresh_after_rejection)

    def kernel_environment(self) -> dict[str, str]:
        """MLFLOW_TRACKING_URI plus where credentials live (the token store's path), never a token."""
        env = {"MLFLOW_TRACKING_URI": self._uri}
        if self.credentials is not None:
            from ...credentials.tokens import TOKEN_STORE_ENV
            from ...credentials.urls import SERVICE_URI_ENV

            env[SERVICE_URI_ENV] = self._uri
            env[TOKEN_STORE_ENV] = str(self.credentials.store.path)
            if self.credentials.settings is not None:
                env.update(self.credentials.settings.environment())
        return env

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
            return self._status("error", f"The tracking service at {self._uri} answered HTTP {response.code}.")
        # 2xx, or 401/403 from a service that guards /health: it is up.
        return self._status("running", "")

    def _status(self, state, message) -> TrackingStatus:
        return TrackingStatus(mode="remote", state=state, message=message, uri=self._uri, mlflow_version=mlflow.__version__)

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
