"""Single-user mode: every request must present this install's secret as a bearer token.

This is the mode the embedded default runs in: the port is on loopback, but other local users
could still connect to it, so the secret (readable only by this user) is what keeps them out.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask, Response

from ..credentials.secret import SECRET_FILE_ENV, read_secret
from . import asgi
from .job_tokens import FORBIDDEN_BODY, MAX_BODY, JobScope, JobTokenGuard

UNAUTHENTICATED_BODY = json.dumps(
    {
        "error_code": "UNAUTHENTICATED",
        "message": "This MLflow tracking service is private to its owner; present the install secret as a bearer token.",
    }
).encode()


class SecretChecker:
    def __init__(self, secret: str):
        if not secret:
            raise ValueError("single-user mode needs a non-empty secret")
        self._expected = f"Bearer {secret}".encode()
        # Job tokens (see job_tokens): signed under a key derived from the secret, scoped to a run.
        self.job_tokens = JobTokenGuard.for_secret(secret)

    @classmethod
    def from_environment(cls) -> SecretChecker:
        path = os.environ.get(SECRET_FILE_ENV)
        if not path:
            raise RuntimeError(f"single-user mode needs {SECRET_FILE_ENV} to name the secret file")
        return cls(read_secret(path))

    def is_authorized(self, authorization: bytes | str | None) -> bool:
        if not authorization:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        return hmac.compare_digest(authorization.strip(), self._expected)


class SecretASGIMiddleware:
    """Guards every HTTP and WebSocket request of an ASGI app (FastAPI routes and the Flask app)."""

    def __init__(self, app: asgi.ASGIApp, checker: SecretChecker):
        self.app = app
        self.checker = checker

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        authorization = asgi.header(scope, b"authorization")
        if self.checker.is_authorized(authorization):
            return await self.app(scope, receive, send)
        job_scope = self.checker.job_tokens.scope_for(authorization) if scope["type"] == "http" else None
        if job_scope is not None:
            return await self._as_job(job_scope, scope, receive, send)
        if scope["type"] == "websocket":
            return await asgi.close_websocket(send)
        await asgi.send_response(send, 401, UNAUTHENTICATED_BODY, headers=[*asgi.JSON, asgi.WWW_AUTHENTICATE])

    async def _as_job(self, job_scope: JobScope, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        method, path = scope["method"], scope.get("path", "")
        query = (scope.get("query_string") or b"").decode("latin-1")
        body = None
        if job_scope.needs_body(method, path):
            try:
                body = await asgi.read_body(receive, MAX_BODY)
            except asgi.BodyTooLarge:
                return await asgi.send_response(send, 413, FORBIDDEN_BODY)
            if body is None:
                return None  # the client went away
        # The scope may look up a logged model in the store (blocking): off the event loop.
        if not await asyncio.to_thread(job_scope.allows, method, path, query, body):
            return await asgi.send_response(send, 403, FORBIDDEN_BODY)
        if body is None:
            return await self.app(scope, receive, send)
        return await self.app(scope, asgi.replay(body, receive), send)


def install_flask_guard(flask_app: Flask, checker: SecretChecker) -> None:
    """The same check for WSGI servers (gunicorn, waitress) that serve the Flask app directly."""
    from flask import Response, request

    @flask_app.before_request
    def _require_secret() -> Response | None:
        authorization = request.headers.get("Authorization")
        job_scope = None if checker.is_authorized(authorization) else checker.job_tokens.scope_for(authorization)
        if job_scope is not None:
            body = request.get_data(cache=True) if job_scope.needs_body(request.method, request.path) else None
            query = request.query_string.decode("latin-1")
            if not job_scope.allows(request.method, request.path, query, body):
                return Response(FORBIDDEN_BODY, status=403, mimetype="application/json")
            return None
        if not checker.is_authorized(authorization):
            return Response(
                UNAUTHENTICATED_BODY,
                status=401,
                mimetype="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="infinstor"'},
            )
        return None
