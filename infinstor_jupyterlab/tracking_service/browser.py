"""Browser sign-in to the company service's MLflow web UI, through the same identity provider.

A browser cannot attach a bearer token, so the service runs the OpenID Connect authorization code
flow with PKCE itself and keeps the resulting tokens in an encrypted, HttpOnly cookie:

- `GET /infinstor/auth/login?next=/path`: to the provider's sign-in page. State, PKCE verifier
  and the page to return to travel in a short-lived encrypted cookie. MLflow's UI page (`/`)
  opened without a session gets `sign_in_page`, which adds the address's fragment (the UI's route)
  to `next`, so a deep link lands on its page after signing in.
- `GET <redirect_path>` (the callback): checks the state, exchanges the code, checks the access
  token like any bearer token, and sets the session cookie.
- `GET /infinstor/auth/logout`: forgets the session.

On each request without an Authorization header the session's access token is used (renewed
with the refresh token when it expires). Requests that change something and are authenticated by
the cookie must come from the service's own pages (Origin or Referer is the service's origin):
the cookie is SameSite=Lax, and this closes the rest of cross-site request forgery.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as BadCookie

from .asgi import Scope

LOGIN_PATH = "/infinstor/auth/login"
LOGOUT_PATH = "/infinstor/auth/logout"
SESSION_COOKIE = "infinstor_session"
SIGNIN_COOKIE = "infinstor_signin"
SIGNIN_TTL = 600
# The same path as the lab's own sign-in callback (<lab>/infinstor/api/auth/callback), so the
# provider's client lists one path per surface: <service origin> and <lab origin> + this path.
DEFAULT_REDIRECT_PATH = "/infinstor/api/auth/callback"


@dataclass(frozen=True)
class BrowserConfig:
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: str = "openid profile email"
    redirect_path: str = DEFAULT_REDIRECT_PATH
    session_secret: str = field(default="", repr=False)
    session_hours: float = 12.0
    public_url: str | None = None  # e.g. https://mlflow.example.com when behind a proxy
    # Send the RFC 8707 `resource` parameter (= oidc.audience). Entra ID's v2 endpoints refuse it
    # (AADSTS901002): there the API's scope in `scopes` names the audience instead.
    resource_parameter: bool = True


class SignInFailed(Exception):
    pass


def _cookies(header: bytes | None) -> dict[str, str]:
    if not header:
        return {}
    jar = SimpleCookie()
    try:
        jar.load(header.decode("latin-1"))
    except Exception:
        return {}
    return {k: v.value for k, v in jar.items()}


def _cookie(name: str, value: str, *, path: str = "/", max_age: int | None = None, secure: bool = False) -> bytes:
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


def _script_value(value: str) -> str:
    """A string as a JavaScript literal that is safe inside an HTML <script>."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def sign_in_page(next_path: str) -> bytes:
    """What a browser without a session gets for MLflow's UI page (`/`): it goes on to the sign-in
    with the address's fragment in `next` (MLflow's UI keeps its routes there, which never reach a
    server), so that a deep link such as the run link MLflow's client prints lands on its page."""
    target = safe_next(next_path)
    fallback = html.escape(f"{LOGIN_PATH}?{urlencode({'next': target})}", quote=True)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Signing in</title>'
        f'<noscript><meta http-equiv="refresh" content="0;url={fallback}"></noscript>'
        f"<script>location.replace({_script_value(LOGIN_PATH + '?next=')}+encodeURIComponent({_script_value(target)}+location.hash))</script>"
        f'</head><body><a href="{fallback}">Sign in</a></body></html>'
    ).encode()


def safe_next(value: str | None) -> str:
    """Only a path on this service: never another site (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


class BrowserSignIn:
    def __init__(self, config: BrowserConfig, issuer: str, audience: str, timeout: float = 15.0):
        if len(config.session_secret) < 32:
            raise ValueError("browser sign-in needs a session secret of at least 32 characters")
        self.config, self.issuer, self.audience, self.timeout = config, issuer.rstrip("/"), audience, timeout
        key = hashlib.sha256(b"infinstor browser session v1\0" + config.session_secret.encode()).digest()
        self.fernet = Fernet(base64.urlsafe_b64encode(key))
        self._metadata: dict[str, Any] | None = None  # the provider's discovery document
        self._lock = threading.Lock()

    # -- helpers ------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                response = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout)
                response.raise_for_status()
                self._metadata = response.json()
            return self._metadata

    def origin(self, scope: Scope) -> str:
        if self.config.public_url:
            parts = urlsplit(self.config.public_url)
            return f"{parts.scheme}://{parts.netloc}"
        headers = dict(scope.get("headers") or [])
        host = (headers.get(b"host") or b"").decode("latin-1")
        if not host:
            server = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scope.get('scheme', 'http')}://{host}"

    def _seal(self, data: Mapping[str, object]) -> str:
        return self.fernet.encrypt(json.dumps(data).encode()).decode()

    def _open(self, value: str | None, ttl: int) -> dict[str, Any] | None:
        """What `_seal` sealed, if it is ours and younger than `ttl` seconds."""
        if not value:
            return None
        try:
            sealed: dict[str, Any] = json.loads(self.fernet.decrypt(value.encode(), ttl=ttl))
            return sealed
        except (BadCookie, ValueError):
            return None

    def _token_request(self, data: dict[str, str]) -> dict[str, Any]:
        """The provider's token response (access_token, refresh_token, expires_in, ...)."""
        auth = (self.config.client_id, self.config.client_secret) if self.config.client_secret else None
        if auth is None:
            data = {**data, "client_id": self.config.client_id}
        response = requests.post(self.metadata()["token_endpoint"], data={**data, **self._resource()}, auth=auth, timeout=self.timeout)
        if response.status_code != 200:
            raise SignInFailed(f"the identity provider refused the token request (HTTP {response.status_code})")
        tokens: dict[str, Any] = response.json()
        return tokens

    def _resource(self) -> dict[str, str]:
        return {"resource": self.audience} if self.config.resource_parameter else {}

    def _session_cookie(self, tokens: dict[str, Any], secure: bool, previous_refresh: str | None = None) -> bytes:
        session = {
            "a": tokens["access_token"],
            "r": tokens.get("refresh_token") or previous_refresh,
            "e": time.time() + float(tokens.get("expires_in") or 300),
        }
        return _cookie(SESSION_COOKIE, self._seal(session), max_age=int(self.config.session_hours * 3600), secure=secure)

    # -- the flow -----------------------------------------------------------------------------
    def login(self, scope: Scope, next_path: str | None) -> tuple[str, list[bytes]]:
        origin = self.origin(scope)
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode(
            {
                "client_id": self.config.client_id,
                "response_type": "code",
                "scope": self.config.scopes,
                "redirect_uri": origin + self.config.redirect_path,
                "state": state,
                **self._resource(),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        pending = self._seal({"s": state, "v": verifier, "n": safe_next(next_path)})
        cookie = _cookie(SIGNIN_COOKIE, pending, max_age=SIGNIN_TTL, secure=origin.startswith("https:"))
        return f"{self.metadata()['authorization_endpoint']}?{query}", [cookie]

    def callback(self, scope: Scope, params: dict[str, list[str]], cookie_header: bytes | None) -> tuple[str, list[bytes]]:
        origin = self.origin(scope)
        pending = self._open(_cookies(cookie_header).get(SIGNIN_COOKIE), SIGNIN_TTL)
        if pending is None:
            raise SignInFailed("the sign-in expired or was started elsewhere; start again")
        if (params.get("state") or [""])[0] != pending["s"]:
            raise SignInFailed("the sign-in response does not match this browser's request")
        if params.get("error"):
            raise SignInFailed(f"the identity provider said: {params['error'][0]}")
        code = (params.get("code") or [""])[0]
        if not code:
            raise SignInFailed("the identity provider sent no code")
        tokens = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": origin + self.config.redirect_path,
                "code_verifier": pending["v"],
            }
        )
        secure = origin.startswith("https:")
        clear = _cookie(SIGNIN_COOKIE, "", max_age=0, secure=secure)
        return pending["n"], [self._session_cookie(tokens, secure), clear]

    def logout(self, scope: Scope) -> tuple[str, list[bytes]]:
        return "/", [_cookie(SESSION_COOKIE, "", max_age=0, secure=self.origin(scope).startswith("https:"))]

    def session(self, scope: Scope) -> tuple[str | None, list[bytes]]:
        """The access token of this browser's session (renewed if needed) and any cookie to set."""
        headers = dict(scope.get("headers") or [])
        session = self._open(_cookies(headers.get(b"cookie")).get(SESSION_COOKIE), int(self.config.session_hours * 3600))
        if session is None:
            return None, []
        if session["e"] - 30 > time.time():
            return session["a"], []
        if not session.get("r"):
            return None, []
        try:
            tokens = self._token_request({"grant_type": "refresh_token", "refresh_token": session["r"]})
        except (SignInFailed, requests.RequestException):
            return None, []
        return tokens["access_token"], [self._session_cookie(tokens, self.origin(scope).startswith("https:"), session["r"])]

    def same_origin(self, scope: Scope) -> bool:
        """Did a browser request come from this service's own pages?"""
        headers = dict(scope.get("headers") or [])
        source = headers.get(b"origin") or headers.get(b"referer")
        if not source:
            return False
        parts = urlsplit(source.decode("latin-1"))
        return f"{parts.scheme}://{parts.netloc}" == self.origin(scope)
