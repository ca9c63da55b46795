"""The service's caches: a bounded LRU, and decisions reused while nothing they depend on changed.

A reused decision (a caller's role on a resource, a checked API token) carries the change counter
of its kind ("grants", "tokens") it was made under (see changes.py) and a deadline: it is reused
only while the counter is unchanged, for at most `grant_cache_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from ..changes import ChangeWatcher


class LRU:
    def __init__(self, size: int = 100_000):
        self.size = size
        self.data: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def clear(self) -> None:
        with self.lock:
            self.data.clear()

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


class ReusedDecisions:
    """Decisions of one kind of change ("grants" or "tokens"), reused under its change counter."""

    def __init__(self, kind: str, changes: ChangeWatcher, seconds: float, size: int = 50_000):
        self.kind, self.changes, self.seconds = kind, changes, seconds
        self._cache = LRU(size)  # key -> (decision, reuse until, change counter it was made under)

    def counter(self) -> int | None:
        """Read before the database: a change made after it shows as a new counter."""
        return self.changes.version(self.kind)

    def get(self, key: Hashable) -> Any:
        """A decision cached under the current change counter, or None."""
        cached = self._cache.get(key)
        if cached is None or cached[1] <= time.monotonic():
            return None
        return cached[0] if cached[2] == self.changes.version(self.kind) else None

    def put(self, key: Hashable, value: Any, counter: int | None) -> None:
        if counter is not None and self.seconds > 0:
            self._cache.put(key, (value, time.monotonic() + self.seconds, counter))

    def clear(self) -> None:
        self._cache.clear()
