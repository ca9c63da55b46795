"""Adds the current user's credentials to MLflow requests bound for the configured service only."""

from __future__ import annotations

import sys
from types import FrameType

from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

from .credentials import authorization_for


def _current_tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def _request_target() -> str:
    """Where the request being prepared goes.

    MLflow asks header providers for headers from `mlflow.utils.rest_utils.http_request`, without
    telling them the URL; its `host_creds` names the host (the tracking server, or an artifact
    server). When found, that host decides, so a credential never goes to a host other than the
    one it is for. Otherwise the current tracking URI does.
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(12):
        if frame is None:
            break
        if frame.f_code.co_name == "http_request":
            host = getattr(frame.f_locals.get("host_creds"), "host", None)
            if isinstance(host, str) and host:
                return host
        frame = frame.f_back
    return _current_tracking_uri()


class InfinStorRequestHeaderProvider(RequestHeaderProvider):
    def in_context(self) -> bool:
        # Cheap: whether a credential could apply; request_headers() does the work.
        import os

        from .credentials import EMBEDDED_URI_ENV, same_origin, signed_in_service_for

        target = _request_target()
        from .credentials import job_token_applies

        if job_token_applies(target):
            return True
        embedded = os.environ.get(EMBEDDED_URI_ENV)
        if embedded and same_origin(target, embedded):
            return True
        return signed_in_service_for(target) is not None

    def request_headers(self) -> dict[str, str]:
        value = authorization_for(_request_target())
        return {"Authorization": value} if value else {}
