"""boto3 clients from the standard credential chain (never stored), and AWS errors as sentences."""

from __future__ import annotations

import threading
from typing import Any

from ..errors import InfinStorError


class AwsError(InfinStorError):
    status = 502
    reason = "aws_error"


class Clients:
    """One boto3 session and one client per service (clients are thread-safe)."""

    def __init__(self, region: str | None, endpoint_url: str | None = None, profile: str | None = None):
        self.region = region or None
        self.endpoint_url = endpoint_url or None
        self.profile = profile or None
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session = None

    def session(self):
        import boto3

        if self._session is None:
            self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
        return self._session

    def __call__(self, service: str):
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                from botocore.config import Config

                client = self.session().client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60),
                )
                self._clients[service] = client
            return client


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe(exc: BaseException) -> str:
    """`Code: message` for a botocore ClientError; the exception's text otherwise."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        code, message = error.get("Code", ""), error.get("Message") or error.get("message") or ""
        return f"{code}: {message}".strip(": ")
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return (
            f"No AWS credentials found for the Jupyter server ({exc}); configure a profile, SSO, environment variables or an instance role."
        )
    return f"{name}: {exc}"


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in ("NoSuchKey", "404", "NotFound", "ParameterNotFound", "InvalidInstanceID.NotFound")
