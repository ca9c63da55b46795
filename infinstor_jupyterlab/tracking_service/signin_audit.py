"""Failed sign-ins in the audit log: who claimed to be whom, from where, why it failed, and when.

Every request whose credential the company service refuses with 401 (a bad, expired or foreign
token, a revoked or expired API token, ...) is a failed sign-in; a request with no credential at
all is not (browsers and health checks send those). Failures are coalesced so that a flood of bad
requests cannot flood the audit table: per replica and per window (a minute), the first failure
of each kind (same claimed identity, source address and reason) is written at once, its repeats
are counted and written as one row when the window closes, and past `max_rows` distinct kinds a
window's further failures are only counted, into one overflow row.

The credential itself is never kept. A JWT contributes the names it claims (read without trusting
them unless the failure proved them, e.g. a genuine token that expired), an API token the first
characters of its id (what `infinstor token list` shows), and every value is cut short. Only a
proven identity, or the real token an API token id names, puts a row in an organisation's log;
the rest have no organisation (they are in the table and the service log for the platform admin).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import jwt

from .oidc_auth import ClaimNames, InvalidToken
from .service_store import AuditRow, ServiceStore

log = logging.getLogger(__name__)

ACTION = "signin_failed"
WINDOW_SECONDS = 60.0
MAX_ROWS_PER_WINDOW = 100
TOKEN_ID_CHARS = 8  # of an API token's 16-character id
MAX_VALUE_CHARS = 128


@dataclass(frozen=True)
class FailedSignIn:
    reason: str
    source: str  # the client's address
    org: str  # "" unless the credential proved it (or is a real token of it)
    username: str  # as claimed, or as proven when verified
    verified: bool  # the failure proved who the caller is (e.g. a genuine but expired token)
    subject: str = ""
    issuer: str = ""
    claimed_org: str = ""  # an unverified organisation claim (never used as the row's org)
    token_id: str = ""  # the first characters of an API token's id


def _short(value: object) -> str:
    return str(value)[:MAX_VALUE_CHARS] if isinstance(value, (str, int)) and not isinstance(value, bool) else ""


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def describe(token: str, error: InvalidToken, source: str, claim_names: ClaimNames, to_org: Callable[[str], str]) -> FailedSignIn:
    """The audit facts of a refused credential: what `error` proved about it, else what it claims.
    `to_org` turns an organisation claim into the organisation's name ("" if it names none)."""
    known = error.identity
    if known:
        org = to_org(_short(known.get("org"))) if known.get("verified") or known.get("token_id") else ""
        return FailedSignIn(
            error.reason,
            source,
            org,
            _short(known.get("username")),
            bool(known.get("verified")),
            subject=_short(known.get("subject")),
            issuer=_short(known.get("issuer")),
            token_id=_short(known.get("token_id")),
        )
    claims = _unverified_claims(token)
    username = claims.get(claim_names.username) or claims.get("preferred_username") or claims.get("email") or claims.get("sub")
    return FailedSignIn(
        error.reason,
        source,
        "",
        _short(username),
        False,
        subject=_short(claims.get("sub")),
        issuer=_short(claims.get("iss")),
        claimed_org=_short(claims.get(claim_names.org)),
    )


class FailedSignIns:
    """Coalesces failed sign-ins into audit rows handed to `add` (see the module's docstring)."""

    def __init__(
        self,
        add: Callable[[AuditRow], None],
        window: float = WINDOW_SECONDS,
        max_rows: int = MAX_ROWS_PER_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        self.add, self.window, self.max_rows, self.clock, self.wall = add, window, max_rows, clock, wall
        self._lock = threading.Lock()
        self._window_start = clock()
        self._repeats: dict[FailedSignIn, list[Any]] = {}  # seen this window -> [count, first_at, last_at] of its repeats
        self._overflow: list[Any] = [0, 0.0, 0.0]  # failures beyond max_rows kinds: [count, first_at, last_at]

    def failed(self, attempt: FailedSignIn) -> None:
        rows = self._close_window(force=False)
        now = self.wall()
        with self._lock:
            repeats = self._repeats.get(attempt)
            if repeats is not None:
                repeats[0] += 1
                repeats[1] = repeats[1] or now
                repeats[2] = now
            elif len(self._repeats) < self.max_rows:
                self._repeats[attempt] = [0, 0.0, 0.0]
                rows.append(self._row(attempt, 1, now, now))
            else:
                self._overflow[0] += 1
                self._overflow[1] = self._overflow[1] or now
                self._overflow[2] = now
        self._emit(rows)

    def collect(self, final: bool = False) -> None:
        """Write the counts of a window that is over (every pending count when `final`)."""
        self._emit(self._close_window(force=final))

    def _close_window(self, force: bool) -> list[AuditRow]:
        with self._lock:
            if not force and self.clock() - self._window_start < self.window:
                return []
            rows = [self._row(attempt, *counts) for attempt, counts in self._repeats.items() if counts[0]]
            if self._overflow[0]:
                count, first, last = self._overflow
                rows.append(self._row(FailedSignIn("over_limit", "", "", "", False), count, first, last))
            self._repeats, self._overflow, self._window_start = {}, [0, 0.0, 0.0], self.clock()
        return rows

    def _row(self, attempt: FailedSignIn, count: int, first_at: float, last_at: float) -> AuditRow:
        detail = {k: v for k, v in asdict(attempt).items() if k not in ("org", "username", "token_id") and v not in ("", None)}
        detail.update(count=count, first_at=int(first_at * 1000), last_at=int(last_at * 1000), window_seconds=self.window)
        return ServiceStore.audit_row(attempt.org, attempt.username, ACTION, 401, "credential", attempt.token_id or None, detail)

    def _emit(self, rows: list[AuditRow]) -> None:
        for row in rows:
            self.add(row)
            log.warning("InfinStor: failed sign-in: %s %s", row["username"] or "(nobody)", row["detail"])
