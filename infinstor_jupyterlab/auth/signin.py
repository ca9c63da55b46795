"""Browser sign-in for the server extension: the pending requests and the async face of it.

The `state`, PKCE verifier and nonce of a sign-in stay here, in the server's memory, for a few
minutes; the browser only ever sees the authorization URL (which carries the state and the code
challenge, not the verifier) and, at the end, a page naming the user.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import threading
import time
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..errors import BadRequest, InfinStorError
from ..limits import shown
from .credentials import CredentialManager
from .oidc import DEFAULT_SCOPES, AuthorizationRequest, OIDCClient, OIDCSettings
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


_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~:/@+=-]{1,256}$")


class SignInLocked(InfinStorError):
    status = 409
    reason = "sign_in_config_locked"


def _check_issuer(issuer: str) -> str:
    """An issuer URL the lab may use: https, or http on a loopback host (a local provider)."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadRequest(f"The issuer must be an https:// URL, not {shown(issuer)}.", reason="invalid_issuer")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise BadRequest("The issuer URL must not carry a query, fragment or credentials.", reason="invalid_issuer")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise BadRequest(
                "The issuer must use https:// (plain http only for a provider on this machine).",
                reason="invalid_issuer",
            )
    return issuer.rstrip("/")


class SignInService:
    """What the HTTP handlers call; everything blocking runs in a thread.

    The identity provider comes from the server's configuration (traitlets or environment) and
    then cannot be changed from the lab; without one, the user may set it in the lab's settings
    (`source` = "settings"), checked against the provider's discovery document first.
    """

    def __init__(
        self,
        credentials: CredentialManager,
        settings: OIDCSettings | None,
        *,
        pending_ttl: float = PENDING_TTL,
        template: OIDCSettings | None = None,
    ):
        self.credentials = credentials
        self.settings = settings if settings and settings.configured else None
        self.source = "server" if self.settings is not None else None
        # Scopes, audience and claim names from the server's configuration, for a provider the
        # lab's settings name.
        self.template = template
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
            "source": self.source,
        }

    async def configure(self, issuer: str, client_id: str) -> dict:
        """Use the identity provider the user set in the lab's settings (empty: none)."""
        if self.source == "server":
            raise SignInLocked(
                "The identity provider is set by the server's configuration "
                "(c.InfinStor.oidc_issuer); it cannot be changed from the lab."
            )
        issuer, client_id = issuer.strip(), client_id.strip()
        if not issuer and not client_id:
            self._apply(None, None)
            return self.status_json()
        if not issuer or not client_id:
            raise BadRequest("Give both the issuer URL and the client id.", reason="incomplete_sign_in_config")
        issuer = _check_issuer(issuer)
        if not _CLIENT_ID.match(client_id):
            raise BadRequest("The client id has characters a client id cannot have.", reason="invalid_client_id")
        if self.settings is not None and (self.settings.issuer, self.settings.client_id) == (issuer, client_id):
            return self.status_json()
        base = self.template or self.credentials.settings
        settings = (
            replace(base, issuer=issuer, client_id=client_id)
            if base is not None
            else OIDCSettings(issuer=issuer, client_id=client_id, scopes=DEFAULT_SCOPES)
        )
        # The provider must answer discovery for this issuer before anyone is sent to it.
        await asyncio.to_thread(OIDCClient(settings).metadata, refresh=True)
        self._apply(settings, "settings")
        return self.status_json()

    def _apply(self, settings: OIDCSettings | None, source: str | None) -> None:
        with self._lock:
            self._pending.clear()  # a sign-in started with the old provider cannot complete
            self.settings = settings
            self.source = source if settings is not None else None
            self.credentials.settings = settings

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
