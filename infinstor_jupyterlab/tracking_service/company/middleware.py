"""The company middleware: one ASGI app in front of MLflow's (FastAPI routes and the Flask app).

Per request: SCIM goes to scim.py; the browser sign-in pages and session cookie (browser.py) give
a bearer token to requests that come without one; the body of a JSON request is read (artifact
uploads stream through untouched); the decision runs in a worker thread (`CompanyService`); then
the request is refused, answered here, or forwarded to MLflow with the caller's workspace (and a
rewritten body or query), and writes are audited once MLflow has answered.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

import requests

from .. import asgi, graphql_authz, web_ui
from ..asgi import ASGIApp, Headers, Message, Receive, Scope, Send, send_response
from ..browser import LOGIN_PATH, LOGOUT_PATH, BrowserSignIn, SignInFailed, sign_in_page
from ..oidc_auth import InvalidToken, VerifierUnavailable
from ..outage import classify_exception, send_outage
from ..policy import is_read, match_route
from .params import json_bytes
from .principals import AuditEntry, Outcome, Principal
from .refusals import Refusal, forbidden, unauthenticated_body
from .rest_api import API_PREFIX
from .service import OPEN_PATHS, CompanyService, is_ui_path

log = logging.getLogger(__name__)

WORKSPACE_HEADER = b"x-mlflow-workspace"
MAX_BODY = 32 * 1024 * 1024
T = TypeVar("T")


def _needs_body(method: str, path: str) -> bool:
    # Artifact uploads stream through untouched; MLflow's JSON APIs are small.
    return method in ("POST", "PATCH", "DELETE", "PUT") and "/mlflow-artifacts/" not in path


def _wants_html(scope: Scope) -> bool:
    return b"text/html" in (asgi.header(scope, b"accept") or b"")


class _Denied(Exception):
    def __init__(self, who: Principal, refusal: Refusal, action: str, audit: AuditEntry | None):
        self.who, self.refusal, self.action, self.audit = who, refusal, action, audit


# (caller, outcome of an MLflow request, or the (status, body) of our own API's answer)
Decision = tuple[Principal, Outcome | None, tuple[int, bytes] | None]


class CompanyASGIMiddleware:
    def __init__(self, app: ASGIApp, service: CompanyService, threads: int = 32):
        self.app = app
        self.service = service
        # Decisions block on the database: they run here, never on the event loop. Sized like the
        # thread pool that serves MLflow's Flask app, so neither starves the other.
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="infinstor-authz")

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # A fresh copy of the context per call: the workspace each decision sets stays its own.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(context.run, fn, *args))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if scope["type"] == "http" and path in OPEN_PATHS:
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and (path == "/scim/v2" or path.startswith("/scim/v2/")):
            from .. import scim  # SCIM 2.0 provisioning: its own credentials (SCIM tokens), its own protocol

            return await scim.serve(self.service, self._in_thread, scope, receive, send)
        if scope["type"] == "websocket":
            return await asgi.close_websocket(send)  # no MLflow operation we authorize uses websockets
        method = scope["method"]
        query = (scope.get("query_string") or b"").decode("latin-1")
        browser = self.service.browser
        cookie_auth = False
        if browser is not None:
            handled = await self._browser_flow(browser, scope, send, path, query)
            if handled:
                return None
            if not any(k == b"authorization" for k, _ in scope.get("headers") or []):
                token, set_cookies = await self._in_thread(browser.session, scope)
                if set_cookies:
                    send = asgi.adding_headers(send, [(b"set-cookie", c) for c in set_cookies])
                if token is None and method == "GET" and (is_ui_path(path) or _wants_html(scope)):
                    target = path + (f"?{query}" if query else "")
                    if path == "/":  # MLflow's UI: its route is in the fragment, which only the page sees
                        return await send_response(send, 200, sign_in_page(target), headers=asgi.HTML)
                    return await asgi.redirect(send, f"{LOGIN_PATH}?{urlencode({'next': target})}")
                if token is not None:
                    cookie_auth = True
                    scope = {**scope, "headers": [*scope.get("headers", []), (b"authorization", f"Bearer {token}".encode())]}
            if cookie_auth and method not in ("GET", "HEAD", "OPTIONS") and not browser.same_origin(scope):
                refusal = forbidden("A change made with the browser session must come from this service's own pages.")
                return await send_response(send, 403, refusal.body())
        body = None
        if _needs_body(method, path):
            try:
                body = await asgi.read_body(receive, MAX_BODY)
            except asgi.BodyTooLarge:
                return await send_response(send, 413, Refusal(413, "INVALID_PARAMETER_VALUE", "request body too large").body())
            if body is None:
                return None  # the client went away
        headers = [(k, v) for k, v in scope.get("headers") or [] if k != WORKSPACE_HEADER]
        authorization = next((v for k, v in headers if k == b"authorization"), None)
        try:
            source = (scope.get("client") or ("",))[0] or ""
            who, outcome, api_answer = await self._in_thread(self._decide, authorization, method, path, query, body, headers, source)
        except InvalidToken as exc:
            return await send_response(send, 401, unauthenticated_body(str(exc)), extra_headers=[asgi.WWW_AUTHENTICATE])
        except VerifierUnavailable as exc:
            log.error("InfinStor company: %s", exc)
            return await send_response(send, 503, Refusal(503, "TEMPORARILY_UNAVAILABLE", f"Cannot verify credentials now: {exc}").body())
        except _Denied as denied:
            if denied.audit:
                await self._in_thread(self.service.record, denied.who, denied.action, denied.refusal.status, denied.audit)
            return await send_response(send, denied.refusal.status, denied.refusal.body())
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if isinstance(exc, MlflowException):  # e.g. a bad search filter, as MLflow would answer
                return await send_response(send, exc.get_http_status_code(), exc.serialize_as_json().encode())
            if unavailable := classify_exception(exc):  # database away or pool exhausted: 503, retry
                log.warning("InfinStor company: %s on %s %s: %s", unavailable, method, path, type(exc).__name__)
                return await send_outage(send, unavailable)
            log.exception("InfinStor company: cannot decide on %s %s", method, path)
            return await send_response(send, 500, Refusal(500, "INTERNAL_ERROR", "The service could not authorize this request.").body())
        if api_answer is not None:
            return await send_response(send, api_answer[0], api_answer[1])
        assert outcome is not None
        if outcome.respond is not None:
            return await send_response(send, *outcome.respond, headers=outcome.respond_headers)
        new_body = outcome.body if outcome.body is not None else body
        headers.append((WORKSPACE_HEADER, who.org.encode()))
        scope = {**scope, "headers": headers}
        if new_body is not None:
            scope = asgi.with_body(scope, new_body)
            receive = asgi.replay(new_body, receive)
        if outcome.query is not None:
            scope["query_string"] = outcome.query.encode("latin-1")
        # MLflow's GraphQL executor finds the caller here (its worker thread gets a copy of this context).
        caller = graphql_authz.CALLER.set(outcome.graphql)
        try:
            status = await self._forward(scope, receive, send, outcome)
        finally:
            graphql_authz.CALLER.reset(caller)
        if outcome.audit is not None:
            await self._in_thread(self.service.record, who, outcome.operation or method, status, outcome.audit, outcome.detail)
        return None

    async def _browser_flow(self, browser: BrowserSignIn, scope: Scope, send: Send, path: str, query: str) -> bool:
        """Serve the sign-in pages; True if this request was one of them."""
        if scope["method"] != "GET" or path not in (LOGIN_PATH, LOGOUT_PATH, browser.config.redirect_path):
            return False
        params = parse_qs(query)
        try:
            if path == LOGIN_PATH:
                location, cookies = await self._in_thread(browser.login, scope, (params.get("next") or ["/"])[0])
            elif path == LOGOUT_PATH:
                location, cookies = browser.logout(scope)
            else:
                location, cookies = await self._in_thread(browser.callback, scope, params, asgi.header(scope, b"cookie"))
        except SignInFailed as exc:
            await send_response(send, 400, f"Sign-in failed: {exc}.".encode(), headers=[(b"content-type", b"text/plain; charset=utf-8")])
            return True
        except requests.RequestException as exc:
            log.error("InfinStor browser sign-in: cannot reach the identity provider: %s", type(exc).__name__)
            await send_response(send, 503, Refusal(503, "TEMPORARILY_UNAVAILABLE", "Cannot reach the identity provider now.").body())
            return True
        await asgi.redirect(asgi.adding_headers(send, [(b"set-cookie", c) for c in cookies]), location)
        return True

    def _decide(
        self, authorization: bytes | None, method: str, path: str, query: str, body: bytes | None, headers: Headers, source: str
    ) -> Decision:
        service = self.service
        try:
            who = service.authn.authenticate(authorization)
        except InvalidToken as exc:
            service.authn.sign_in_failed(authorization, exc, source)  # in this worker thread, like every decision
            raise
        if path.startswith(API_PREFIX):
            try:
                status, data, entry = service.api.answer(who, method, path, query, body)
            except Refusal as refusal:
                raise _Denied(
                    who, refusal, f"infinstor:{method} {path[len(API_PREFIX) :]}", (None, None) if method != "GET" else None
                ) from None
            if entry is not None:
                service.record(
                    who,
                    f"infinstor:{method} {path[len(API_PREFIX) :].split('/')[0]}",
                    status,
                    entry,
                    {k: data.get(k) for k in ("granted", "revoked") if k in data} or None,
                )
            return who, None, (status, json_bytes(data))
        try:
            return who, service.authorize(who, method, path, query, body, headers), None
        except Refusal as refusal:
            matched = match_route(method, path)
            action = matched[0] if matched else method
            is_write = not is_read(matched[0]) if matched else not web_ui.is_read(method, path)
            raise _Denied(who, refusal, action, (None, None) if is_write else None) from None

    async def _forward(self, scope: Scope, receive: Receive, send: Send, outcome: Outcome) -> int:
        status = 500
        if outcome.after is None:

            async def tracking_send(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, receive, tracking_send)
            return status
        # Hold the response until the grants it implies are written: the client's next request
        # must already see them.
        held: list[Message] = []

        async def holding_send(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, holding_send)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        status = start["status"] if start else 500
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        try:
            await self._in_thread(outcome.after, status, body)
        except Exception:
            log.exception("InfinStor: could not record the grants of %s", outcome.operation)
            reason = "The resource was created but its permissions could not be recorded."
            await send_response(send, 500, Refusal(500, "INTERNAL_ERROR", reason).body())
            return 500
        for message in held:
            await send(message)
        return status
