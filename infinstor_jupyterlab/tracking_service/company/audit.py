"""The audit log's writer: rows written in batches by one background thread."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

from ..service_store import AuditRow, ServiceStore

log = logging.getLogger(__name__)


class AuditWriter:
    """Audit rows written in batches by one background thread (a few per second), so a busy
    service does not pay a database transaction per write; `flush` writes what is pending now.
    `collectors` are asked for rows that have become due (e.g. coalesced counts) before each
    flush, with final=True at shut-down."""

    def __init__(self, store: ServiceStore, interval: float = 0.25, max_pending: int = 10_000):
        self.store, self.interval, self.max_pending = store, interval, max_pending
        self._pending: list[AuditRow] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self.collectors: list[Callable[[bool], None]] = []
        self._thread = threading.Thread(target=self._run, name="infinstor-audit", daemon=True)
        self._thread.start()
        atexit.register(self.flush, final=True)

    def add(self, row: AuditRow) -> None:
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= 500
        if full:
            self._wake.set()

    def flush(self, final: bool = False) -> None:
        for collect in self.collectors:
            try:
                collect(final)
            except Exception:  # never let one source stop the writer thread
                log.exception("InfinStor: could not collect due audit records")
        with self._flush_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                self.store.record_many(rows)
            except Exception:
                log.exception("InfinStor: could not write %d audit records; keeping them for the next attempt", len(rows))
                with self._lock:  # keep them, but never grow without bound
                    self._pending = (rows + self._pending)[-self.max_pending :]

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
