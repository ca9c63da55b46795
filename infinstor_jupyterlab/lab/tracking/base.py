"""What the rest of the extension needs from a tracking service, whichever kind it is."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Literal

TrackingMode = Literal["embedded", "remote"]
TrackingState = Literal["starting", "running", "error"]


@dataclass
class TrackingStatus:
    mode: TrackingMode
    state: TrackingState
    message: str
    uri: str
    mlflow_version: str

    def to_json(self) -> dict:
        return asdict(self)


class TrackingBackend(abc.ABC):
    """A tracking server the extension can reach, with the credentials to reach it."""

    mode: TrackingMode

    @property
    @abc.abstractmethod
    def uri(self) -> str:
        """Base URL of the MLflow server (no trailing slash)."""

    @abc.abstractmethod
    async def status(self) -> TrackingStatus:
        """Current state; may kick off a start but never waits for it."""

    @abc.abstractmethod
    async def ensure_running(self, timeout: float | None = None) -> None:
        """Return once the service answers; raise TrackingUnavailable otherwise."""

    @abc.abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate this server-side process to the service (no network I/O)."""

    async def request_headers(self) -> dict[str, str]:
        """Headers for the next request on behalf of the current user.

        May refresh a token that is about to expire (network I/O, hence async). Raises
        `errors.SignInRequired` when there is no usable credential.
        """
        return self.auth_headers()

    async def refresh_credentials(self) -> bool:
        """Called after the service answered 401: get fresh credentials if possible.

        Returns True if a retry with `request_headers()` may succeed.
        """
        return False

    def kernel_environment(self) -> dict[str, str]:
        """Environment for kernels and terminals so that plain `mlflow` calls reach this service."""
        return {"MLFLOW_TRACKING_URI": self.uri}

    async def restart(self) -> TrackingStatus:
        return await self.status()

    async def stop(self) -> None:  # noqa: B027 - optional: a backend that holds nothing keeps this
        """Release whatever the backend holds (processes, connections)."""
