"""Browser sign-in for the server extension: the pending requests and the async face of it.

The `state`, PKCE verifier and nonce of a sign-in stay here, in the server's memory, for a few
minutes; the browser only ever sees the authorization URL (which carries the state and the code
challenge, not the verifier) and, at the end, a page naming the user.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from ..errors import BadRequest, InfinStorError
from .credentials import CredentialManager
from .oidc import AuthorizationRequest, OIDCSettings
from .tokens import Identity, TokenSet

PENDING_TTL = 600.0
MAX_PENDING = 64


class InvalidSignInState(InfinStorError):
    status = 400
    reason = "invalid_state"


@dataclass
class _Pending:
    request: AuthorizationRequest
    jupyter_user: str  # who started it (for the log); the callback is Jupyter-authenticated too


class SignInService:
    """What the HTTP handlers call; everything blocking runs in a thread."""

    def __init__(self, credentials: CredentialManager, settings: OIDCSettings | None, *, pending_ttl: float = PENDING_TTL):
        self.credentials = credentials
        self.settings = settings if settings and settings.configured else None
        self.pending_ttl = pending_ttl
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return self.settings is not None

    def status_json(self) -> dict:
        return {
            "configured": self.configured,
            "issuer": self.settings.issuer if self.settings else None,
            "client_id": self.settings.client_id if self.settings else None,
            "service": self.credentials.service,
        }

    def identity(self) -> Identity | None:
        return self.credentials.identity()

    def _prune(self, now: float) -> None:
        for state in [s for s, p in self._pending.items() if now - p.request.created > self.pending_ttl]:
            del self._pending[state]
        while len(self._pending) >= MAX_PENDING:
            oldest = min(self._pending, key=lambda s: self._pending[s].request.created)
            del self._pending[oldest]

    async def begin(self, redirect_uri: str, jupyter_user: str) -> str:
        """Start a sign-in; returns the identity provider URL to send the browser to."""
        if not self.configured:
            raise BadRequest(
                "Sign-in is not configured: set c.InfinStor.oidc_issuer and c.InfinStor.oidc_client_id.",
                reason="sign_in_not_configured",
            )
        request = await asyncio.to_thread(self.credentials.begin_browser_sign_in, redirect_uri)
        with self._lock:
            self._prune(time.monotonic())
            self._pending[request.state] = _Pending(request, jupyter_user)
        return request.url

    async def complete(self, state: str, code: str, jupyter_user: str, iss: str = "") -> TokenSet:
        with self._lock:
            self._prune(time.monotonic())
            pending = self._pending.pop(state, None) if state else None
        if pending is None:
            raise InvalidSignInState(
                "This sign-in request is unknown or has expired (it is valid for "
                f"{int(self.pending_ttl // 60)} minutes and can be used once). Start the sign-in again."
            )
        if iss and self.settings and iss.rstrip("/") != self.settings.issuer.rstrip("/"):
            # RFC 9207: the response names its issuer; a different one means a mix-up attack.
            raise InvalidSignInState("The sign-in response comes from an unexpected identity provider.")
        if not code:
            raise BadRequest("The identity provider sent no authorization code.", reason="missing_code")
        return await asyncio.to_thread(self.credentials.complete_browser_sign_in, pending.request, code)

    def forget(self, state: str) -> None:
        with self._lock:
            self._pending.pop(state, None)

    async def sign_out(self) -> bool:
        with self._lock:
            self._pending.clear()
        return await asyncio.to_thread(self.credentials.sign_out) is not None
