"""An OpenID Connect client for the lab, kernels and the CLI (authlib for OAuth 2, PyJWT for JWTs).

- discovery (`.well-known/openid-configuration`, cached per issuer)
- authorization code with PKCE (S256), `state` and `nonce`
- device authorization (RFC 8628) with polling that honours `interval`, `slow_down`,
  `authorization_pending`, `access_denied` and `expired_token`
- refresh, revocation
- id_token validation against the issuer's JWKS (signature, issuer, audience = client id, nonce,
  expiry)

All calls are blocking (requests); async callers run them in a thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from ..errors import InfinStorError, SignInRequired
from .tokens import Identity, TokenSet

ISSUER_ENV = "INFINSTOR_OIDC_ISSUER"
CLIENT_ID_ENV = "INFINSTOR_OIDC_CLIENT_ID"
SCOPES_ENV = "INFINSTOR_OIDC_SCOPES"
AUDIENCE_ENV = "INFINSTOR_OIDC_AUDIENCE"
DEVICE_INTERVAL_ENV = "INFINSTOR_DEVICE_POLL_INTERVAL"

DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access")
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
_DISCOVERY_TTL = 3600.0


class IdentityProviderError(InfinStorError):
    """The identity provider answered with an error we cannot turn into 'sign in again'."""

    status = 502
    reason = "identity_provider_error"


class IdentityProviderUnavailable(InfinStorError):
    status = 503
    reason = "identity_provider_unavailable"


def split_scopes(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(s for s in value if s)


@dataclass(frozen=True)
class OIDCSettings:
    issuer: str
    client_id: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    audience: str = ""
    client_secret: str = field(default="", repr=False)
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    org_claim: str = "org"

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.client_id)

    @classmethod
    def from_environment(
        cls, *, issuer: str | None = None, client_id: str | None = None, scopes: str | None = None, audience: str | None = None
    ) -> OIDCSettings:
        env = os.environ
        return cls(
            issuer=(issuer or env.get(ISSUER_ENV, "")).strip(),
            client_id=(client_id or env.get(CLIENT_ID_ENV, "")).strip(),
            scopes=split_scopes(scopes or env.get(SCOPES_ENV)) or DEFAULT_SCOPES,
            audience=(audience if audience is not None else env.get(AUDIENCE_ENV, "")).strip(),
        )

    def environment(self) -> dict[str, str]:
        """The non-secret settings, for kernels and terminals (so `infinstor login` just works)."""
        if not self.configured:
            return {}
        env = {ISSUER_ENV: self.issuer, CLIENT_ID_ENV: self.client_id, SCOPES_ENV: " ".join(self.scopes)}
        if self.audience:
            env[AUDIENCE_ENV] = self.audience
        return env


@dataclass
class AuthorizationRequest:
    """One browser sign-in in flight (kept server-side; nothing here goes to the browser but url)."""

    url: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    nonce: str = field(repr=False)
    redirect_uri: str
    created: float = field(default_factory=time.monotonic)


@dataclass
class DeviceAuthorization:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float
    started: float = field(default_factory=time.monotonic)


_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_cache_lock = threading.Lock()


def _normalize_issuer(issuer: str) -> str:
    return issuer.rstrip("/")


class OIDCClient:
    def __init__(self, settings: OIDCSettings, *, timeout: float = 30.0, leeway: float = 60.0):
        if not settings.configured:
            raise SignInRequired(
                "Sign-in is not configured: set the identity provider's issuer URL and client id "
                f"(c.InfinStor.oidc_issuer / oidc_client_id, or ${ISSUER_ENV} / ${CLIENT_ID_ENV})."
            )
        self.settings = settings
        self.timeout = timeout
        self.leeway = leeway

    # -- discovery -------------------------------------------------------------------------------
    def metadata(self, *, refresh: bool = False) -> dict[str, Any]:
        issuer = _normalize_issuer(self.settings.issuer)
        now = time.monotonic()
        with _cache_lock:
            hit = _discovery_cache.get(issuer)
        if hit and not refresh and now - hit[0] < _DISCOVERY_TTL:
            return hit[1]
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise IdentityProviderUnavailable(f"Cannot reach the identity provider at {issuer}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise IdentityProviderError(f"{url} answered HTTP {response.status_code}")
        try:
            metadata = response.json()
        except ValueError:
            raise IdentityProviderError(f"{url} did not return JSON") from None
        if _normalize_issuer(str(metadata.get("issuer", ""))) != issuer:
            raise IdentityProviderError(
                f"The identity provider's discovery document names issuer {metadata.get('issuer')!r}, not {issuer!r}"
            )
        for required in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not metadata.get(required):
                raise IdentityProviderError(f"The identity provider's discovery document lacks {required}")
        with _cache_lock:
            _discovery_cache[issuer] = (now, metadata)
        return metadata

    def _session(self, *, with_scope: bool = True, **kwargs) -> OAuth2Session:
        secret = self.settings.client_secret or None
        return OAuth2Session(
            client_id=self.settings.client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            revocation_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=" ".join(self.settings.scopes) if with_scope else None,
            code_challenge_method="S256",
            default_timeout=self.timeout,
            **kwargs,
        )

    def _resource(self) -> dict[str, str]:
        return {"resource": self.settings.audience} if self.settings.audience else {}

    def _token_request(self, call: Callable[[], dict]) -> dict:
        try:
            return dict(call())
        except OAuthError as exc:
            raise _oauth_error(exc) from None
        except requests.RequestException as exc:
            raise IdentityProviderUnavailable(f"Cannot reach the identity provider's token endpoint: {type(exc).__name__}") from None
        except ValueError:
            raise IdentityProviderError("The identity provider's token endpoint did not return JSON") from None

    # -- authorization code + PKCE -----------------------------------------------------------------
    def start_authorization(self, redirect_uri: str) -> AuthorizationRequest:
        metadata = self.metadata()
        state, verifier, nonce = generate_token(32), generate_token(64), generate_token(32)
        session = self._session(redirect_uri=redirect_uri)
        url, _ = session.create_authorization_url(
            metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce, **self._resource()
        )
        return AuthorizationRequest(url=url, state=state, code_verifier=verifier, nonce=nonce, redirect_uri=redirect_uri)

    def exchange_code(self, request: AuthorizationRequest, code: str) -> TokenSet:
        metadata = self.metadata()
        session = self._session(redirect_uri=request.redirect_uri)
        response = self._token_request(
            lambda: session.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=request.code_verifier,
                **self._resource(),
            )
        )
        return self.token_set(response, nonce=request.nonce)

    # -- device authorization ------------------------------------------------------------------------
    def start_device_authorization(self) -> DeviceAuthorization:
        metadata = self.metadata()
        endpoint = metadata.get("device_authorization_endpoint")
        if not endpoint:
            raise IdentityProviderError("The identity provider does not offer device sign-in")
        data = {"client_id": self.settings.client_id, "scope": " ".join(self.settings.scopes), **self._resource()}
        auth = (self.settings.client_id, self.settings.client_secret) if self.settings.client_secret else None
        try:
            response = requests.post(endpoint, data=data, auth=auth, timeout=self.timeout, headers={"Accept": "application/json"})
            body = response.json()
        except requests.RequestException as exc:
            raise IdentityProviderUnavailable(f"Cannot reach the identity provider: {type(exc).__name__}") from None
        except ValueError:
            raise IdentityProviderError("The device authorization endpoint did not return JSON") from None
        if response.status_code != 200 or "device_code" not in body:
            raise IdentityProviderError(
                f"Device sign-in was refused: {body.get('error', response.status_code)} {body.get('error_description', '')}".strip()
            )
        default_interval = float(os.environ.get(DEVICE_INTERVAL_ENV) or 5)
        return DeviceAuthorization(
            device_code=body["device_code"],
            user_code=body["user_code"],
            verification_uri=body.get("verification_uri") or body.get("verification_url", ""),
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_in=float(body.get("expires_in") or 600),
            interval=float(body.get("interval") or default_interval),
        )

    def poll_device_authorization(
        self,
        device: DeviceAuthorization,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_poll: Callable[[str], None] | None = None,
    ) -> TokenSet:
        metadata = self.metadata()
        session = self._session()
        interval = max(device.interval, 0.2)
        deadline = device.started + device.expires_in
        while True:
            if time.monotonic() > deadline:
                raise SignInRequired("The sign-in code expired before it was used; run the sign-in again.")
            sleep(interval)
            try:
                response = session.fetch_token(
                    metadata["token_endpoint"], grant_type=DEVICE_CODE_GRANT, device_code=device.device_code, **self._resource()
                )
            except OAuthError as exc:
                if exc.error == "authorization_pending":
                    if on_poll:
                        on_poll("pending")
                    continue
                if exc.error == "slow_down":
                    interval += 5  # RFC 8628 section 3.5
                    if on_poll:
                        on_poll("slow_down")
                    continue
                if exc.error == "expired_token":
                    raise SignInRequired("The sign-in code expired before it was used; run the sign-in again.") from None
                if exc.error == "access_denied":
                    raise SignInRequired("The sign-in was denied at the identity provider.") from None
                raise _oauth_error(exc) from None
            except requests.RequestException as exc:
                raise IdentityProviderUnavailable(f"Cannot reach the identity provider: {type(exc).__name__}") from None
            return self.token_set(dict(response))

    # -- refresh, revocation -----------------------------------------------------------------------
    def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise SignInRequired("The session has ended and cannot be renewed; sign in again.")
        endpoint = tokens.token_endpoint or self.metadata()["token_endpoint"]
        # No `scope`: the renewed grant keeps what was granted (asking again may be refused).
        session = self._session(with_scope=False)
        response = self._token_request(lambda: session.refresh_token(endpoint, refresh_token=tokens.refresh_token, **self._resource()))
        refreshed = self.token_set(response, previous=tokens)
        return refreshed

    def revoke(self, token: str, hint: str) -> bool:
        endpoint = self.metadata().get("revocation_endpoint")
        if not endpoint:
            return False
        try:
            response = self._session().revoke_token(endpoint, token=token, token_type_hint=hint)
        except (OAuthError, requests.RequestException):
            return False
        return response.status_code == 200

    # -- id_token, identity ---------------------------------------------------------------------------
    def _jwks_client(self) -> jwt.PyJWKClient:
        uri = self.metadata()["jwks_uri"]
        with _cache_lock:
            client = _jwks_clients.get(uri)
            if client is None:
                client = jwt.PyJWKClient(uri, cache_keys=True, lifespan=600, timeout=int(self.timeout))
                _jwks_clients[uri] = client
        return client

    def validate_id_token(self, id_token: str, *, nonce: str | None = None) -> dict[str, Any]:
        try:
            key = self._jwks_client().get_signing_key_from_jwt(id_token)
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=self.settings.client_id,
                issuer=self.metadata()["issuer"],
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientConnectionError:
            raise IdentityProviderUnavailable("Cannot fetch the identity provider's signing keys") from None
        except jwt.PyJWTError as exc:
            raise IdentityProviderError(f"The identity provider's id_token is not valid: {type(exc).__name__}: {exc}") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise IdentityProviderError("The id_token's nonce does not match this sign-in")
        return claims

    def userinfo(self, access_token: str) -> dict[str, Any]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not endpoint:
            return {}
        try:
            response = requests.get(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=self.timeout)
            return response.json() if response.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return {}

    def identity(self, claims: dict[str, Any]) -> Identity:
        s = self.settings
        return Identity.from_claims(claims, username_claim=s.username_claim, groups_claim=s.groups_claim, org_claim=s.org_claim)

    def token_set(self, response: dict[str, Any], *, nonce: str | None = None, previous: TokenSet | None = None) -> TokenSet:
        access_token = response.get("access_token")
        if not access_token:
            raise IdentityProviderError("The identity provider returned no access token")
        metadata = self.metadata()
        identity = previous.identity if previous else Identity()
        id_token = response.get("id_token") or (previous.id_token if previous else None)
        if response.get("id_token"):
            # On refresh the new id_token carries no nonce (OIDC core 12.2).
            identity = self.identity(self.validate_id_token(response["id_token"], nonce=nonce))
        if previous is None and not (identity.email and identity.groups):
            info = self.userinfo(access_token)
            if info and (not identity.subject or info.get("sub") == identity.subject):
                identity = identity.merged(self.identity(info))
        if not identity.name and not previous:
            raise IdentityProviderError("The identity provider did not say who signed in (no id_token)")
        expires_in = response.get("expires_in")
        expires_at = response.get("expires_at")
        if expires_in is not None:
            expires_at = time.time() + float(expires_in)
        return TokenSet(
            access_token=access_token,
            token_type=response.get("token_type") or "Bearer",
            refresh_token=response.get("refresh_token") or (previous.refresh_token if previous else None),
            id_token=id_token,
            expires_at=float(expires_at) if expires_at is not None else None,
            scope=response.get("scope") or (previous.scope if previous else None),
            issuer=metadata["issuer"],
            client_id=self.settings.client_id,
            token_endpoint=metadata["token_endpoint"],
            revocation_endpoint=metadata.get("revocation_endpoint"),
            kind="oidc",
            identity=identity,
        )


def _oauth_error(exc: OAuthError) -> InfinStorError:
    error = exc.error or "error"
    description = f": {exc.description}" if exc.description else ""
    if error in ("invalid_grant", "invalid_token", "access_denied", "login_required", "consent_required"):
        return SignInRequired(f"The identity provider ended the session ({error}{description}); sign in again.")
    return IdentityProviderError(f"The identity provider refused the request ({error}{description})")


def clear_caches() -> None:
    with _cache_lock:
        _discovery_cache.clear()
        _jwks_clients.clear()
