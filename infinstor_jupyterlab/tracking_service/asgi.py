"""What the service's ASGI middlewares (company, OIDC, single-user, SCIM, outages) share: reading a
request body with a size limit and replaying it to the app, sending a whole response (JSON unless
told otherwise), redirecting, adding headers to the app's response, and refusing a websocket.

Plain ASGI callables and messages (no framework): each middleware sits in front of MLflow's whole
app, FastAPI routes and the Flask app alike, and must pass what it does not handle through
untouched (streaming artifact uploads included).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = [(b"content-type", b"application/json")]
HTML = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]
WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="infinstor"')
POLICY_VIOLATION = 1008  # the websocket close code for "refused"


class BodyTooLarge(Exception):
    """The request body is larger than the middleware accepts."""


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None if the client went away; BodyTooLarge past `limit` bytes."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app `body` (read already) first, then the client's messages."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


def with_body(scope: Scope, body: bytes) -> Scope:
    """The scope with its content-length set for a body that replaces the client's."""
    headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}


async def send_response(send: Send, status: int, body: bytes, headers: Headers | None = None, extra_headers: Headers | None = None) -> None:
    """A whole response: JSON unless `headers` say otherwise (then they replace the content type)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": (headers or JSON) + [(b"content-length", str(len(body)).encode())] + (extra_headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 302,
            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def close_websocket(send: Send) -> None:
    """Refuse a websocket (none of the operations the service authorizes uses one)."""
    await send({"type": "websocket.close", "code": POLICY_VIOLATION})


def adding_headers(send: Send, extra: Headers) -> Send:
    """A `send` that adds `extra` to the app's response headers."""
    if not extra:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value by its lower-case name (the last one, if it was sent twice)."""
    return dict(scope.get("headers") or []).get(name)
