"""How a replica learns that a peer changed grants or tokens, so its caches can live long.

Every change of a grant, an API token's revocation or a user's groups raises a counter in
`infinstor_changes` in the same transaction (service/db.py). A cached decision remembers the counter
it was made under and is reused only while the counter this replica last read is the same. The
counters are read at most once per `poll_seconds`, by whichever request comes first after that (no
thread, nothing read while the service is idle), so a change made on any replica reaches every
other within about twice `poll_seconds`, however long the caches are allowed to live.

If the counters cannot be read (the database is down), `version` answers None once they are stale
and callers then decide from the database itself: a cache never outlives what it can check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ChangeWatcher:
    def __init__(self, read_versions: Callable[[], dict[str, int]], poll_seconds: float = 1.0):
        self._read = read_versions
        self.poll_seconds = poll_seconds
        self._versions: dict[str, int] = {}
        self._read_at = float("-inf")  # monotonic time the last successful read started
        self._lock = threading.Lock()

    def version(self, kind: str) -> int | None:
        """The counter of `kind` as of at most about 2 x poll_seconds ago; None if not known."""
        if time.monotonic() - self._read_at >= self.poll_seconds and self._lock.acquire(blocking=False):
            try:
                started = time.monotonic()
                if started - self._read_at >= self.poll_seconds:
                    try:
                        self._versions = self._read()
                        self._read_at = started
                    except Exception as exc:  # the database is away: callers go to it themselves
                        log.debug("InfinStor: could not read the change counters: %s", exc)
            finally:
                self._lock.release()
        if time.monotonic() - self._read_at > 2 * self.poll_seconds:
            return None
        return self._versions.get(kind)
