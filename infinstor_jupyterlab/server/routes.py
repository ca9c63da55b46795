"""Every InfinStor route, in one list (the authentication test walks it)."""

from __future__ import annotations

API_PREFIX = "/infinstor/api"


def build_handlers() -> list[tuple[str, type]]:
    from .status import StatusHandler, TrackingRestartHandler

    return [
        (rf"{API_PREFIX}/status", StatusHandler),
        (rf"{API_PREFIX}/tracking/restart", TrackingRestartHandler),
    ]
