"""Database outages answered as `503 TEMPORARILY_UNAVAILABLE`, not as 500s.

While PostgreSQL is down or restarting (a fail-over, a minor-version upgrade), requests fail deep
inside MLflow's stores or ours. MLflow answers some of them 503 with the driver's error text (host,
port, SQL) and others 500 with an HTML page; ours would be 500 INTERNAL_ERROR. Clients and load
balancers retry a 503 (MLflow's Python client does, with back-off), so the service says 503 with
one clear message and a `Retry-After`, and nothing about the database's address.

How: `DatabaseOutageASGIMiddleware` wraps the whole ASGI app. Successful answers and 4xx other
than 400 stream through untouched; a 5xx or 400 answer (or an exception) is held, and it becomes
the outage answer when it says TEMPORARILY_UNAVAILABLE, or the exception is a connection-level
database error, or a probe (`SELECT 1` started after the failure; concurrent failures share one)
finds the database unreachable. A 400 is only considered when it is MLflow's BAD_REQUEST for a
SQLAlchemy error (MLflow's answer to any database error other than OperationalError, a lost
connection included). A connection-pool timeout (too much load for the pool) gets the same 503
with a message that says so. Any other answer goes out as it was. The company middleware answers
its own database failures the same way (`classify_exception`).

Health checks: in company mode MLflow's own `/health` resolves the default workspace, so it
needs the database. A load balancer or orchestrator that took that for "this replica is broken"
would drain or restart every replica during a database outage, which helps nothing. So here
`GET /health` is liveness (the process serves requests; no database) and `GET /health/ready` is
readiness (200 when the database answers `SELECT 1`, else the 503 outage answer).

Recovery needs no restart: every engine (MLflow's and ours) is created with `pool_pre_ping`, so
connections from before the outage are tested, found dead, invalidated and replaced.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import sqlalchemy as sa

from . import asgi

log = logging.getLogger(__name__)

OUTAGE_CODE = "TEMPORARILY_UNAVAILABLE"
OUTAGE_MESSAGE = "The tracking database is unavailable; retry shortly."
BUSY_MESSAGE = "The tracking service is overloaded (no database connection was free in time); retry shortly."
RETRY_AFTER_SECONDS = 2
OUTAGE_BODY = json.dumps({"error_code": OUTAGE_CODE, "message": OUTAGE_MESSAGE}).encode()
BUSY_BODY = json.dumps({"error_code": OUTAGE_CODE, "message": BUSY_MESSAGE}).encode()
# SQLAlchemy's error pages (https://sqlalche.me/e/<version>/<code>), as MLflow quotes them in the
# messages of its answers: 3o7r is a connection-pool timeout; the others here are lost connections.
_POOL_TIMEOUT_CODE = "/3o7r"
_SQLALCHEMY_ERROR_PAGE = "sqlalche.me/e/"


def classify_exception(exc: BaseException | None) -> str | None:
    """ "busy" for a connection-pool timeout, "outage" for a lost or refused database connection
    (in `exc` or what caused it), else None."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, sa.exc.TimeoutError):
            return "busy"
        if is_connection_error(exc, chain=False):
            return "outage"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def is_connection_error(exc: BaseException | None, chain: bool = True) -> bool:
    """True if `exc` (or, with `chain`, what caused it) is a lost or refused database connection."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)):
            return True
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return True
        module = type(exc).__module__ or ""
        if module.startswith(("psycopg2", "psycopg")) and type(exc).__name__ in ("OperationalError", "InterfaceError"):
            return True
        if not chain:
            return False
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def store_unavailable(exc: BaseException) -> bool:
    """An MlflowException from a store that says the database failed, not that the item is
    missing: a lookup must pass it on (-> 503), never answer 404 for it."""
    return getattr(exc, "error_code", None) in ("TEMPORARILY_UNAVAILABLE", "BAD_REQUEST", "INTERNAL_ERROR")


class DatabaseProbe:
    """Is the database reachable now? One `SELECT 1` at most every `interval` seconds."""

    def __init__(self, engine: sa.Engine, interval: float = 1.0):
        self.engine, self.interval = engine, interval
        self._lock = threading.Lock()
        self._started_at = self._checked_at = float("-inf")
        self._reachable = True

    def invalidate(self) -> None:
        with self._lock:
            self._started_at = self._checked_at = float("-inf")

    def reachable(self, failed_at: float | None = None) -> bool:
        """With `failed_at` (a time.monotonic() of a failure), only a probe that started after
        it counts: a database going down must not hide behind an answer from just before."""
        with self._lock:
            fresh = time.monotonic() - self._checked_at < self.interval
            if fresh and (failed_at is None or self._started_at >= failed_at):
                return self._reachable
            self._started_at = time.monotonic()
            try:
                with self.engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
                self._reachable = True
            except Exception as exc:  # any failure to run SELECT 1 means "not usable now"
                log.warning("InfinStor: the tracking database is unreachable (%s)", type(exc).__name__)
                self._reachable = False
            self._checked_at = time.monotonic()
            return self._reachable


def _says_unavailable(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("error_code") == OUTAGE_CODE


def _database_error_400(body: bytes) -> str | None:
    """MLflow answers 400 BAD_REQUEST for any SQLAlchemy error that is not an OperationalError,
    including a connection-pool timeout under load and a pool invalidated by a lost database:
    not the client's fault, and a 400 is never retried. "busy", "maybe" (ask the probe) or None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("error_code") != "BAD_REQUEST":
        return None
    message = str(data.get("message", ""))
    if _SQLALCHEMY_ERROR_PAGE not in message:
        return None
    return "busy" if _POOL_TIMEOUT_CODE in message or "QueuePool limit" in message else "maybe"


async def send_outage(send: asgi.Send, kind: str = "outage") -> None:
    """Answer 503 TEMPORARILY_UNAVAILABLE: `outage` (the database is away) or `busy` (overloaded)."""
    body = BUSY_BODY if kind == "busy" else OUTAGE_BODY
    await asgi.send_response(send, 503, body, extra_headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])


class DatabaseOutageASGIMiddleware:
    def __init__(self, app: asgi.ASGIApp, engine: sa.Engine, probe_interval: float = 1.0) -> None:
        self.app = app
        self.probe = DatabaseProbe(engine, probe_interval)

    async def _health(self, scope: asgi.Scope, send: asgi.Send) -> None:
        if scope["path"] == "/health/ready":
            import asyncio

            self.probe.invalidate()
            if not await asyncio.get_running_loop().run_in_executor(None, self.probe.reachable):
                return await send_outage(send)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"OK" if scope["method"] == "GET" else b""})

    async def _verdict(self, status: int, body: bytes, exc: BaseException | None, failed_at: float) -> str | None:
        """ "outage" or "busy" when this failed answer is the database's doing, else None."""
        import asyncio

        if status == 400:
            kind = _database_error_400(body)
            if kind != "maybe":
                return kind
        elif status == 503 and _says_unavailable(body):
            return "busy" if BUSY_MESSAGE.encode() in body else "outage"
        else:
            kind = classify_exception(exc)
            if kind:
                return kind
        reachable = await asyncio.get_running_loop().run_in_executor(None, self.probe.reachable, failed_at)
        return None if reachable else "outage"

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path") in ("/health", "/health/ready") and scope.get("method") in ("GET", "HEAD"):
            return await self._health(scope, send)
        held: list[asgi.Message] = []
        state = {"holding": False, "started": False}

        async def guarded_send(message: asgi.Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                if message["status"] >= 500 or message["status"] == 400:
                    state["holding"] = True
                    held.append(message)
                    return
                return await send(message)
            if state["holding"]:
                held.append(message)
                return
            return await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except Exception as exc:
            if state["started"] and not state["holding"]:
                raise  # part of a good answer is already out: nothing to replace
            kind = await self._verdict(500, b"", exc, time.monotonic())
            if kind:
                return await send_outage(send, kind)
            raise
        if not state["holding"]:
            return None
        status = held[0]["status"]
        body = b"".join(m.get("body", b"") for m in held[1:] if m["type"] == "http.response.body")
        kind = await self._verdict(status, body, None, time.monotonic())
        if kind:
            return await send_outage(send, kind)
        for message in held:
            await send(message)
        return None
