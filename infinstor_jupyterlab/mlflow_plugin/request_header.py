"""Adds the current user's credentials to MLflow requests bound for the configured service only."""

from __future__ import annotations

from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

from .credentials import authorization_for


def _current_tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


class InfinStorRequestHeaderProvider(RequestHeaderProvider):
    def in_context(self) -> bool:
        return authorization_for(_current_tracking_uri()) is not None

    def request_headers(self) -> dict[str, str]:
        value = authorization_for(_current_tracking_uri())
        return {"Authorization": value} if value else {}
