"""Sign-in handlers: the browser goes to the identity provider and comes back here.

All three are authenticated to Jupyter: the sign-in window is opened by the lab, so it carries the
Jupyter cookie both when it starts (login) and when the identity provider sends it back
(callback). Tokens stay on the server; the browser gets a redirect, a small page, or JSON about
who is signed in.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import TYPE_CHECKING

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ... import limits
from ...errors import BadRequest, InfinStorError
from .base import API_PREFIX, InfinStorHandler

if TYPE_CHECKING:
    from ..signin import SignInService

CALLBACK_PATH = f"{API_PREFIX}/auth/callback"
SIGNED_IN_MESSAGE = "infinstor:signed-in"


class _AuthHandler(InfinStorHandler):
    @property
    def signin(self) -> SignInService:
        auth = self.infinstor.auth
        if auth is None:
            raise BadRequest(
                "Sign-in applies to a remote tracking service; this server uses the local one.",
                reason="sign_in_not_configured",
            )
        return auth

    def jupyter_user(self) -> str:
        user = self.current_user
        return getattr(user, "username", None) or str(user)

    def lab_origin(self) -> str:
        return f"{self.request.protocol}://{self.request.host}"

    def redirect_uri(self) -> str:
        configured = self.settings.get("infinstor_oidc_redirect_uri")
        if configured:
            return str(configured)
        return self.lab_origin() + url_path_join(self.base_url, CALLBACK_PATH.lstrip("/"))


class AuthLoginHandler(_AuthHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        url = await self.signin.begin(self.redirect_uri(), self.jupyter_user())
        self.set_header("Cache-Control", "no-store")
        self.redirect(url)


class AuthCallbackHandler(_AuthHandler):
    """Renders HTML (it is a page in the sign-in window), including for errors."""

    _script_nonce = ""

    @property
    def content_security_policy(self) -> str:
        nonce = self._script_nonce or "none"
        return (
            "default-src 'none'; style-src 'unsafe-inline'; "
            f"script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )

    @web.authenticated
    @authorized
    async def get(self) -> None:
        state = self.get_query_argument("state", "")
        code = self.get_query_argument("code", "")
        error = self.get_query_argument("error", "")
        description = self.get_query_argument("error_description", "")
        # Keep the authorization code out of every log line, whatever logs the URI.
        self.request.uri = self.request.path
        try:
            self.signin  # noqa: B018 - raises sign_in_not_configured on a lab without sign-in
        except InfinStorError as exc:
            self.render_page(exc.status, "Sign-in failed", exc.message, ok=False)
            return
        if error:
            if state:
                self.signin.forget(state)
            denied = error == "access_denied"
            self.render_page(
                400,
                "Sign-in cancelled" if denied else "Sign-in failed",
                (
                    "The sign-in was cancelled or refused at the identity provider"
                    if denied
                    else f"The identity provider reported an error: {error}"
                )
                + (f" ({description})." if description else "."),
                ok=False,
            )
            return
        try:
            tokens = await self.signin.complete(state, code, self.jupyter_user(), self.get_query_argument("iss", ""))
        except InfinStorError as exc:
            self.log.warning("InfinStor sign-in failed: %s", exc.message)
            self.render_page(exc.status if exc.status < 500 else 502, "Sign-in failed", exc.message, ok=False)
            return
        who = tokens.identity.display_name or tokens.identity.name
        if tokens.identity.display_name and tokens.identity.name and tokens.identity.display_name != tokens.identity.name:
            who = f"{tokens.identity.display_name} ({tokens.identity.name})"
        self.render_page(200, "Signed in", f"Signed in as {who} — you can close this window.", ok=True)

    def render_page(self, status: int, title: str, message: str, *, ok: bool) -> None:
        self._script_nonce = secrets.token_urlsafe(16) if ok else ""
        script = ""
        if ok:
            # Tell the lab that opened this window (and only the lab's origin), then close.
            payload = json.dumps({"type": SIGNED_IN_MESSAGE}).replace("<", "\\u003c")
            origin = json.dumps(self.lab_origin()).replace("<", "\\u003c")
            script = (
                f'<script nonce="{self._script_nonce}">'
                f"if (window.opener) {{ window.opener.postMessage({payload}, {origin}); }}"
                "setTimeout(function () { window.close(); }, 1500);"
                "</script>"
            )
        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<title>InfinStor: {html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:3em auto;max-width:40em;line-height:1.5}"
            ".error{color:#b00020}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            f'<p id="infinstor-signin-message" class="{"ok" if ok else "error"}">{html.escape(message)}</p>'
            + ("" if ok else "<p>Close this window and sign in again from the InfinStor sidebar.</p>")
            + script
            + "</body></html>"
        )
        self.set_status(status)
        self.set_header("Content-Security-Policy", self.content_security_policy)
        self.set_header("Cache-Control", "no-store")
        self.finish(page, set_content_type="text/html; charset=UTF-8")


class AuthLogoutHandler(_AuthHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.signin.sign_out()
        self.write_json({"user": self.infinstor.current_user().to_json()})


class AuthConfigHandler(_AuthHandler):
    """The identity provider from the lab's settings (when the server's configuration has none)."""

    @web.authenticated
    @authorized
    async def put(self) -> None:
        body = self.get_json_body_or_400()
        issuer, client_id = body.get("issuer", ""), body.get("client_id", "")
        if not isinstance(issuer, str) or not isinstance(client_id, str):
            raise BadRequest("issuer and client_id must be strings.", reason="invalid_sign_in_config")
        if len(issuer) > limits.MAX_URL_CHARS:
            raise BadRequest(f"The issuer URL is longer than {limits.MAX_URL_CHARS} characters.", reason="invalid_issuer")
        if len(client_id) > limits.MAX_NAME_CHARS:
            raise BadRequest(f"The client id is longer than {limits.MAX_NAME_CHARS} characters.", reason="invalid_client_id")
        self.write_json({"auth": await self.signin.configure(issuer, client_id)})
