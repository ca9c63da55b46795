"""How many MLflow handlers may run at once: never more than the database pool can serve.

MLflow's Flask handlers run in threads (starlette's WSGI bridge, on anyio's default thread
limiter: 40). Some of them hold two pooled connections at once: `log_batch` keeps its session open
while `_log_metrics` opens a second one. With the pool's default 5 + 10 connections, 8 concurrent
log-batch calls can each hold one connection and wait for a second that never frees up, and every
request then waits for the pool's 30 s timeout (MLflow answers 400; measured: 32 writers to the
embedded service took 60 s and 42 of 96 calls failed). So the handler threads are capped at half
the pool's capacity (`MLFLOW_SQLALCHEMYSTORE_POOL_SIZE` + `MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW`),
which makes that wait impossible. Requests beyond the cap queue in the event loop instead.
"""

from __future__ import annotations

import logging
import os

from .asgi import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

SQLALCHEMY_POOL_SIZE = 5  # SQLAlchemy's QueuePool defaults, used when MLflow's variables are unset
SQLALCHEMY_MAX_OVERFLOW = 10
CONNECTIONS_PER_HANDLER = 2
DEFAULT_HANDLER_THREADS = 40  # anyio's default limiter


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a whole number") from None


def handler_threads() -> int:
    """The most MLflow handlers that can run at once without starving the connection pool."""
    capacity = _int_env("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", SQLALCHEMY_POOL_SIZE) + _int_env(
        "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", SQLALCHEMY_MAX_OVERFLOW
    )
    return max(1, min(DEFAULT_HANDLER_THREADS, capacity // CONNECTIONS_PER_HANDLER))


class HandlerThreadLimit:
    """ASGI wrapper that sets the cap in the server's event loop (anyio's limiter is per loop)."""

    def __init__(self, app: ASGIApp, threads: int | None = None) -> None:
        self.app = app
        self.threads = threads if threads is not None else handler_threads()
        self._applied = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applied:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
            self._applied = True
            if self.threads < DEFAULT_HANDLER_THREADS:
                log.info(
                    "InfinStor: at most %d MLflow handlers run at once (half the database pool); "
                    "raise MLFLOW_SQLALCHEMYSTORE_POOL_SIZE/MAX_OVERFLOW for more",
                    self.threads,
                )
        await self.app(scope, receive, send)
