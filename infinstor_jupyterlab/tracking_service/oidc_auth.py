"""OIDC mode: every request must carry a bearer JWT from the configured identity provider.

The token's signature is checked against the issuer's JWKS (keys cached; an unknown `kid` makes
us fetch the JWKS again, at most every few seconds, which handles key rotation), then its issuer,
audience and expiry. Anything else gets 401 JSON. The caller's username (a claim, default
`preferred_username`) is what the service records: on `runs/create` it replaces whatever
`mlflow.user` / `user_id` the client claimed.

Configuration (environment): INFINSTOR_SERVICE_MODE=oidc, INFINSTOR_OIDC_ISSUER,
INFINSTOR_OIDC_AUDIENCE, optionally INFINSTOR_OIDC_JWKS_URI, INFINSTOR_OIDC_LEEWAY (seconds,
default 5), INFINSTOR_OIDC_USERNAME_CLAIM.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import jwt
import requests

from . import asgi, claims

log = logging.getLogger(__name__)

ISSUER_ENV = "INFINSTOR_OIDC_ISSUER"
AUDIENCE_ENV = "INFINSTOR_OIDC_AUDIENCE"
JWKS_URI_ENV = "INFINSTOR_OIDC_JWKS_URI"
LEEWAY_ENV = "INFINSTOR_OIDC_LEEWAY"
USERNAME_CLAIM_ENV = "INFINSTOR_OIDC_USERNAME_CLAIM"

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
OPEN_PATHS = frozenset({"/health"})
_RUNS_CREATE = re.compile(r"^(?:/.*)?/(?:ajax-)?api/2\.0/mlflow/runs/create$")
MAX_REWRITE_BODY = 1024 * 1024


class Identity(TypedDict, total=False):
    """What a refused credential tells about its holder (signin_audit.py writes it down).

    `verified`: proven (a genuine but expired token, a revoked API token whose secret matched);
    otherwise only claimed."""

    username: str
    subject: str
    org: str | None
    issuer: str
    verified: bool
    token_id: str  # an API token's id, its first characters


class InvalidToken(Exception):
    """The request's credential is missing or not acceptable (the message is safe to return).

    `reason` is a short code for the audit log; `identity` holds what the failure proves about the
    holder, if anything (e.g. the claims of a token that is genuine but expired): never the
    credential itself."""

    def __init__(self, message: str, reason: str = "invalid", identity: Identity | None = None):
        super().__init__(message)
        self.reason = reason
        self.identity: Identity = identity or {}


class VerifierUnavailable(Exception):
    """The identity provider's keys cannot be fetched right now."""


@dataclass(frozen=True)
class ClaimNames:
    """Which token claims name the user, their email, groups and organisation (IdPs differ:
    Azure AD has `groups` of object ids and `tid`, Okta `groups`, Keycloak often `org` mappers).
    A name is a claim's key, or a dotted path into nested claims (see `claims.py`).
    `organisations` maps an org claim's values (e.g. an Entra tenant id) to organisation names."""

    username: str = "preferred_username"
    email: str = "email"
    groups: str = "groups"
    org: str = "org"
    organisations: tuple[tuple[str, str], ...] = ()


@dataclass
class Caller:
    username: str
    subject: str
    claims: dict[str, Any] = field(repr=False)
    claim_names: ClaimNames = field(default=ClaimNames(), repr=False)

    @property
    def org(self) -> str | None:
        raw = claims.org_value(claims.claim(self.claims, self.claim_names.org))
        return claims.organisation(raw, dict(self.claim_names.organisations))

    @property
    def email(self) -> str | None:
        value = claims.claim(self.claims, self.claim_names.email)
        return value if isinstance(value, str) and value else None

    @property
    def groups(self) -> list[str]:
        return claims.groups_value(claims.claim(self.claims, self.claim_names.groups))

    @property
    def groups_overage(self) -> bool:
        """The provider left the groups out: too many for a token (Entra ID)."""
        return claims.groups_overage(self.claims, self.claim_names.groups)


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_uri: str | None = None,
        leeway: float = 5.0,
        username_claim: str = "preferred_username",
        claim_names: ClaimNames | None = None,
        audience_claim: str = "aud",
        min_refetch_interval: float = 5.0,
        cache_lifespan: float = 300.0,
        timeout: float = 10.0,
    ):
        if not issuer or not audience:
            raise RuntimeError(f"oidc mode needs {ISSUER_ENV} and {AUDIENCE_ENV}")
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.leeway = leeway
        self.claim_names = claim_names or ClaimNames(username=username_claim)
        self.username_claim = self.claim_names.username
        # Amazon Cognito's access tokens carry no `aud`: their audience is the app client, in `client_id`.
        self.audience_claim = audience_claim
        self.min_refetch_interval = min_refetch_interval
        self.cache_lifespan = cache_lifespan
        self.timeout = timeout
        self._jwks_uri = jwks_uri
        self._client: jwt.PyJWKClient | None = None
        self._last_refetch = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> TokenVerifier:
        env = os.environ
        return cls(
            env.get(ISSUER_ENV, "").strip(),
            env.get(AUDIENCE_ENV, "").strip(),
            jwks_uri=env.get(JWKS_URI_ENV) or None,
            leeway=float(env.get(LEEWAY_ENV) or 5),
            username_claim=env.get(USERNAME_CLAIM_ENV) or "preferred_username",
        )

    def _jwks_client(self) -> jwt.PyJWKClient:
        if self._client is None:
            uri = self._jwks_uri
            if not uri:
                try:
                    response = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout)
                    response.raise_for_status()
                    metadata = response.json()
                except (requests.RequestException, ValueError) as exc:
                    raise VerifierUnavailable(f"cannot read the identity provider's discovery document: {type(exc).__name__}") from None
                if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
                    raise VerifierUnavailable("the identity provider's discovery document names another issuer")
                uri = metadata["jwks_uri"]
            self._client = jwt.PyJWKClient(
                uri, cache_keys=False, cache_jwk_set=True, lifespan=int(self.cache_lifespan), timeout=int(self.timeout)
            )
        return self._client

    def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            client = self._jwks_client()
            try:
                keys = client.get_signing_keys()
                match = _find_key(keys, kid)
                if match is None and time.monotonic() - self._last_refetch >= self.min_refetch_interval:
                    # Maybe the provider rotated its keys: fetch them again (rate-limited).
                    self._last_refetch = time.monotonic()
                    match = _find_key(client.get_signing_keys(refresh=True), kid)
            except jwt.PyJWKClientConnectionError:
                raise VerifierUnavailable("cannot fetch the identity provider's signing keys") from None
            except jwt.PyJWKClientError as exc:
                raise InvalidToken(f"no usable signing key: {exc}", "unknown_key") from None
        if match is None:
            raise InvalidToken("the token is signed with an unknown key", "unknown_key")
        return match

    def verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the bearer token is not a JWT", "malformed") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("the token's signing algorithm is not accepted", "algorithm")
        key = self._signing_key(header.get("kid"))
        by_aud = self.audience_claim == "aud"
        decode = functools.partial(
            jwt.decode,
            token,
            key.key,
            algorithms=[header["alg"]],
            audience=self.audience if by_aud else None,
            issuer=self.issuer,
            leeway=self.leeway,
        )
        required = ["exp", "iss", "aud"] if by_aud else ["exp", "iss"]
        try:
            found = decode(options={"require": required, **({} if by_aud else {"verify_aud": False})})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired", "expired", self._expired_identity(decode)) from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is not meant for this service (audience)", "wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token comes from another issuer", "wrong_issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token is not valid (InvalidSignatureError)", "bad_signature") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid ({type(exc).__name__})") from None
        if not by_aud and not claims.audience_matches(found, self.audience_claim, self.audience):
            raise InvalidToken(f"the token is not meant for this service (audience, in {self.audience_claim})", "wrong_audience")
        username = self._username(found)
        if not username:
            raise InvalidToken("the token names no user", "no_user")
        return Caller(username=str(username), subject=str(found.get("sub") or ""), claims=found, claim_names=self.claim_names)

    def _username(self, found: dict[str, Any]) -> object:
        """The user a token names: the configured claim, else the usual ones (a claim may hold any JSON)."""
        return (
            claims.text(claims.claim(found, self.username_claim))
            or found.get("preferred_username")
            or found.get("email")
            or found.get("sub")
            or found.get("client_id")
        )

    def _expired_identity(self, decode: Callable[..., dict[str, Any]]) -> Identity:
        """Who an expired token names, if it is otherwise genuine (signature, issuer, audience):
        PyJWT checks expiry before issuer, so an expiry error alone does not prove the issuer."""
        by_aud = self.audience_claim == "aud"
        try:
            found = decode(
                options={
                    "require": ["exp", "iss", "aud"] if by_aud else ["exp", "iss"],
                    "verify_exp": False,
                    **({} if by_aud else {"verify_aud": False}),
                }
            )
        except jwt.PyJWTError:
            return {}
        if not by_aud and not claims.audience_matches(found, self.audience_claim, self.audience):
            return {}
        caller = Caller(
            username=str(self._username(found) or ""), subject=str(found.get("sub") or ""), claims=found, claim_names=self.claim_names
        )
        return {"username": caller.username, "subject": caller.subject, "org": caller.org, "issuer": self.issuer, "verified": True}


def _find_key(keys: list[jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((k for k in keys if k.key_id == kid), None)


def _bearer(authorization: bytes | str | None) -> str | None:
    if not authorization:
        return None
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _error_body(message: str, code: str = "UNAUTHENTICATED") -> bytes:
    return json.dumps({"error_code": code, "message": message}).encode()


def _sign_in_hint(message: str) -> str:
    return (
        f"Authentication required: {message}. Sign in from the InfinStor sidebar or run "
        "`infinstor login` (or pass an API token with `infinstor login --token`)."
    )


def rewrite_create_run(body: bytes, username: str) -> bytes:
    """The runs/create body with the user set to the authenticated caller."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    data["user_id"] = username
    tags = [t for t in data.get("tags") or [] if not (isinstance(t, dict) and t.get("key") == "mlflow.user")]
    tags.append({"key": "mlflow.user", "value": username})
    data["tags"] = tags
    return json.dumps(data).encode()


class OIDCASGIMiddleware:
    """Guards every HTTP and WebSocket request of the ASGI app (FastAPI routes and the Flask app)."""

    def __init__(self, app: asgi.ASGIApp, verifier: TokenVerifier):
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        token = _bearer(asgi.header(scope, b"authorization"))
        try:
            if token is None:
                raise InvalidToken("no bearer token")
            caller = await asyncio.to_thread(self.verifier.verify, token)
        except InvalidToken as exc:
            return await self._refuse(scope, send, 401, _error_body(_sign_in_hint(str(exc))))
        except VerifierUnavailable as exc:
            log.error("InfinStor oidc: %s", exc)
            return await self._refuse(scope, send, 503, _error_body(f"Cannot verify credentials now: {exc}", "TEMPORARILY_UNAVAILABLE"))
        scope = dict(scope)
        scope.setdefault("state", {})
        scope["state"] = {**scope["state"], "infinstor_caller": caller}
        if scope["type"] == "http" and scope.get("method") == "POST" and _RUNS_CREATE.match(scope.get("path", "")):
            try:
                body = await asgi.read_body(receive, MAX_REWRITE_BODY)
            except asgi.BodyTooLarge:
                return await self._refuse(scope, send, 413, _error_body("request body too large", "INVALID_PARAMETER_VALUE"))
            if body is None:
                return None  # the client went away
            body = rewrite_create_run(body, caller.username)
            return await self.app(asgi.with_body(scope, body), asgi.replay(body, receive), send)
        return await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: asgi.Scope, send: asgi.Send, status: int, body: bytes) -> None:
        if scope["type"] == "websocket":
            return await asgi.close_websocket(send)
        await asgi.send_response(send, status, body, headers=[*asgi.JSON, asgi.WWW_AUTHENTICATE])


class OIDCWSGIMiddleware:
    """The same for WSGI servers (gunicorn, waitress) that serve the Flask app directly."""

    def __init__(self, app: WSGIApplication, verifier: TokenVerifier):
        self.app = app
        self.verifier = verifier

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in OPEN_PATHS:
            return self.app(environ, start_response)
        token = _bearer(environ.get("HTTP_AUTHORIZATION"))
        try:
            if token is None:
                raise InvalidToken("no bearer token")
            caller = self.verifier.verify(token)
        except InvalidToken as exc:
            return self._refuse(start_response, "401 UNAUTHORIZED", _error_body(_sign_in_hint(str(exc))))
        except VerifierUnavailable as exc:
            return self._refuse(
                start_response, "503 SERVICE UNAVAILABLE", _error_body(f"Cannot verify credentials now: {exc}", "TEMPORARILY_UNAVAILABLE")
            )
        environ["infinstor.caller"] = caller
        if environ.get("REQUEST_METHOD") == "POST" and _RUNS_CREATE.match(environ.get("PATH_INFO", "")):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_REWRITE_BODY:
                return self._refuse(
                    start_response, "413 REQUEST ENTITY TOO LARGE", _error_body("request body too large", "INVALID_PARAMETER_VALUE")
                )
            body = rewrite_create_run(environ["wsgi.input"].read(length), caller.username)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    @staticmethod
    def _refuse(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
        start_response(
            status,
            [("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer realm="infinstor"'), ("Content-Length", str(len(body)))],
        )
        return [body]
