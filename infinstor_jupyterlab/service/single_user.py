"""Single-user mode: every request must present this install's secret as a bearer token.

This is the mode the embedded default runs in: the port is on loopback, but other local users
could still connect to it, so the secret (readable only by this user) is what keeps them out.
"""

from __future__ import annotations

import hmac
import json
import os

from ..auth.secret import SECRET_FILE_ENV, read_secret

UNAUTHENTICATED_BODY = json.dumps(
    {
        "error_code": "UNAUTHENTICATED",
        "message": "This MLflow tracking service is private to its owner; "
        "present the install secret as a bearer token.",
    }
).encode()


class SecretChecker:
    def __init__(self, secret: str):
        if not secret:
            raise ValueError("single-user mode needs a non-empty secret")
        self._expected = f"Bearer {secret}".encode()

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

    def __init__(self, app, checker: SecretChecker):
        self.app = app
        self.checker = checker

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        authorization = dict(scope.get("headers") or []).get(b"authorization")
        if self.checker.is_authorized(authorization):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="infinstor"'),
                    (b"content-length", str(len(UNAUTHENTICATED_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": UNAUTHENTICATED_BODY})
        return None


def install_flask_guard(flask_app, checker: SecretChecker) -> None:
    """The same check for WSGI servers (gunicorn, waitress) that serve the Flask app directly."""
    from flask import Response, request

    @flask_app.before_request
    def _require_secret():
        if not checker.is_authorized(request.headers.get("Authorization")):
            return Response(
                UNAUTHENTICATED_BODY,
                status=401,
                mimetype="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="infinstor"'},
            )
        return None
