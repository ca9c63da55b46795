"""CredentialManager: the signed-in user's credentials for one tracking service.

The same class serves the Jupyter server extension (through `asyncio.to_thread`), kernels (the
MLflow request header provider) and the `infinstor` CLI. They share one `TokenStore`; a refresh
happens under the store's cross-process lock and re-reads the store first, so when several
processes find the access token near expiry only one of them uses (and rotates) the refresh token.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import BadRequest, SignInRequired
from .oidc import DeviceAuthorization, OIDCClient, OIDCSettings
from .tokens import Identity, TokenSet, TokenStore
from .urls import service_http_url, service_origin

log = logging.getLogger(__name__)

REFRESH_MARGIN_ENV = "INFINSTOR_TOKEN_REFRESH_MARGIN"
DEFAULT_REFRESH_MARGIN = 60.0


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a JWT *without* checking it: only to show who an API token says it is."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError):
        return {}


def refresh_margin_default() -> float:
    try:
        return float(os.environ.get(REFRESH_MARGIN_ENV) or DEFAULT_REFRESH_MARGIN)
    except ValueError:
        return DEFAULT_REFRESH_MARGIN


# -- the manager ---------------------------------------------------------------------------------------
class CredentialManager:
    def __init__(
        self,
        service: str,
        *,
        store: TokenStore | None = None,
        settings: OIDCSettings | None = None,
        refresh_margin: float | None = None,
    ):
        self.service_url = service_http_url(service)
        self.service = service_origin(service)
        self.store = store or TokenStore()
        self.settings = settings if settings and settings.configured else None
        self.refresh_margin = refresh_margin_default() if refresh_margin is None else refresh_margin
        self._served: str | None = None  # fingerprint of the last access token handed out
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CredentialManager(service={self.service!r}, store={self.store!r})"

    @property
    def auth_configured(self) -> bool:
        return self.settings is not None

    def _client(self, tokens: TokenSet | None = None) -> OIDCClient:
        if self.settings is not None and (tokens is None or tokens.issuer in (None, self.settings.issuer)):
            return OIDCClient(self.settings)
        if tokens is not None and tokens.issuer and tokens.client_id:
            # Kernels and the CLI may know only what the store recorded at sign-in.
            return OIDCClient(
                OIDCSettings(issuer=tokens.issuer, client_id=tokens.client_id, scopes=tuple((tokens.scope or "openid").split()))
            )
        return OIDCClient(OIDCSettings(issuer="", client_id=""))  # raises SignInRequired

    # -- reading ---------------------------------------------------------------------------------------
    def tokens(self) -> TokenSet | None:
        return self.store.get(self.service)

    def identity(self) -> Identity | None:
        tokens = self.tokens()
        if tokens is None:
            return None
        if tokens.expired and not tokens.refreshable:
            return None
        return tokens.identity

    def not_signed_in(self) -> SignInRequired:
        return SignInRequired(
            f"Not signed in to {self.service}: sign in from the InfinStor sidebar, or run "
            f"`infinstor login --service {self.service_url}` in a terminal."
        )

    def access_token(self) -> str:
        """A valid access token, refreshed first when it expires within `refresh_margin`."""
        tokens = self.tokens()
        if tokens is None:
            raise self.not_signed_in()
        if tokens.expires_within(self.refresh_margin) and tokens.refreshable:
            tokens = self._refresh(tokens.access_token, force=False)
        elif tokens.expired:
            raise SignInRequired(f"The credentials for {self.service} have expired; sign in again.")
        self._served = _fingerprint(tokens.access_token)
        return tokens.access_token

    def request_headers(self) -> dict[str, str]:
        """Headers for a request to the service. An anonymous service (no sign-in configured, no
        stored credential) gets none; a configured one raises SignInRequired."""
        if self.tokens() is None and not self.auth_configured:
            return {}
        return {"Authorization": f"Bearer {self.access_token()}"}

    def refresh_after_rejection(self) -> bool:
        """The service answered 401 to the token last handed out: renew it if we can."""
        tokens = self.tokens()
        if tokens is None:
            return False
        if self._served and _fingerprint(tokens.access_token) != self._served:
            return True  # another process (or thread) already renewed it
        if not tokens.refreshable:
            return False
        try:
            self._refresh(tokens.access_token, force=True)
        except SignInRequired:
            return False
        return True

    def _refresh(self, seen: str, *, force: bool) -> TokenSet:
        with self._lock, self.store.lock():
            current = self.tokens()
            if current is None:
                raise self.not_signed_in()
            if current.access_token != seen and current.expires_in() > 0:
                return current  # renewed by someone else (another process) while we waited
            if not force and not current.expires_within(self.refresh_margin):
                return current
            if not current.refreshable:
                if current.expired:
                    raise SignInRequired(f"The credentials for {self.service} have expired; sign in again.")
                return current
            try:
                renewed = self._client(current).refresh(current)
            except SignInRequired:
                # The refresh token is dead (revoked, expired, rotated away): forget it.
                self.store.delete(self.service)
                log.info("InfinStor: the session for %s ended; sign-in required", self.service)
                raise
            self.store.put(self.service, renewed)
            log.info("InfinStor: renewed the access token for %s (user %s)", self.service, renewed.identity.name)
            return renewed

    # -- signing in --------------------------------------------------------------------------------------
    def save(self, tokens: TokenSet) -> TokenSet:
        self.store.put(self.service, tokens)
        self._served = None
        log.info("InfinStor: signed in to %s as %s", self.service, tokens.identity.name)
        return tokens

    def begin_browser_sign_in(self, redirect_uri: str):
        return self._client().start_authorization(redirect_uri)

    def complete_browser_sign_in(self, request, code: str) -> TokenSet:
        return self.save(self._client().exchange_code(request, code))

    def begin_device_sign_in(self) -> DeviceAuthorization:
        return self._client().start_device_authorization()

    def complete_device_sign_in(self, device: DeviceAuthorization, *, on_poll: Callable[[str], None] | None = None) -> TokenSet:
        return self.save(self._client().poll_device_authorization(device, on_poll=on_poll))

    def save_api_token(self, token: str) -> TokenSet:
        token = token.strip()
        if not token or any(c.isspace() for c in token) or not token.isprintable():
            raise BadRequest("The API token is empty or contains spaces or control characters.")
        claims = unverified_claims(token)
        exp = claims.get("exp")
        tokens = TokenSet(
            access_token=token,
            kind="api_token",
            expires_at=float(exp) if isinstance(exp, (int, float)) else None,
            issuer=claims.get("iss"),
            client_id=claims.get("client_id") or claims.get("azp"),
            identity=Identity.from_claims(claims) if claims else Identity(name="api-token", display_name="API token"),
        )
        if tokens.expired:
            raise BadRequest("This API token has already expired.")
        return self.save(tokens)

    def sign_out(self) -> TokenSet | None:
        """Revoke what the identity provider can revoke (best effort) and forget the credentials."""
        with self.store.lock():
            tokens = self.store.delete(self.service)
        self._served = None
        if tokens is None:
            return None
        if tokens.kind == "oidc" and tokens.issuer:
            try:
                client = self._client(tokens)
                if tokens.refresh_token:
                    client.revoke(tokens.refresh_token, "refresh_token")
                client.revoke(tokens.access_token, "access_token")
            except Exception as exc:  # never keep the user signed in because the IdP is down
                log.warning("InfinStor: could not revoke the tokens for %s: %s", self.service, type(exc).__name__)
        log.info("InfinStor: signed out of %s", self.service)
        return tokens


def _fingerprint(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()[:16]


def expiry_text(tokens: TokenSet, now: float | None = None) -> str:
    if tokens.expires_at is None:
        return "no expiry"
    now = time.time() if now is None else now
    left = tokens.expires_at - now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(tokens.expires_at))
    if left <= 0:
        return f"expired {stamp}"
    return f"expires {stamp} (in {int(left // 60)} min {int(left % 60)} s)"
