"""`<base_url>infinstor/api/mlflow/<path>`: the tracking server's REST API, artifacts and web UI.

A thin tornado adapter around `proxy.forwarder.MlflowProxy`; the path rules live in `proxy.policy`.

Authentication is Jupyter's, checked in `prepare()` before any request body is read (request
bodies are streamed). The MLflow web UI, loaded from this prefix, sends its own POSTs without
Jupyter's XSRF token; for cookie-authenticated unsafe requests the proxy accepts instead the
browser's proof that the request comes from this origin (`Sec-Fetch-Site: same-origin`, or an
`Origin` equal to the request's host), which a cross-site page cannot forge.
"""

from __future__ import annotations

import asyncio
import json
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import unquote_to_bytes, urlsplit

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.http1connection import HTTP1Connection

from ...errors import BadRequest, Forbidden
from ..proxy.forwarder import IncomingRequest, MlflowProxy, StreamingBody
from ..proxy.policy import PathRefused, ProxyRoute, resolve
from .base import InfinStorHandler

PROXY_PATH = "infinstor/api/mlflow/"
SETTINGS_KEY = "infinstor_proxy"

_ARTIFACT_CSP = (
    "sandbox",
    "default-src 'none'",
    "img-src 'self' data:",
    "media-src 'self'",
    "style-src 'unsafe-inline'",
)


def proxy_prefix(base_url: str) -> str:
    return url_path_join(base_url, PROXY_PATH)


class _Browser:
    """The browser's side of the exchange (`forwarder.Downstream`)."""

    def __init__(self, handler: MlflowProxyHandler):
        self.handler = handler

    @property
    def headers_written(self) -> bool:
        return self.handler._headers_written

    def start(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        h = self.handler
        h.set_status(status, reason or None)
        h.clear_header("Content-Type")
        h._proxied_content_type = "application/octet-stream"
        seen: set[str] = set()
        for name, value in headers:
            lower = name.lower()
            if lower == "content-type":
                h._proxied_content_type = value
            if lower in seen:
                h.add_header(name, value)
            else:
                h.set_header(name, value)
                seen.add(lower)
        if "content-type" not in seen:
            h.set_header("Content-Type", h._proxied_content_type)
        h._proxied = True

    def write(self, chunk: bytes, flush: bool) -> Future[None] | None:
        self.handler.write(chunk)
        return self.handler.flush() if flush else None

    def flush(self) -> Future[None]:
        return self.handler.flush()

    def finish(self) -> Future[None]:
        return self.handler.finish()

    def abort(self) -> None:
        if self.handler._finished:
            return
        stream = self.handler.detach()
        if stream is not None:
            stream.close()

    def on_close(self, callback: Callable[[], None] | None) -> None:
        self.handler._on_browser_gone = callback


@web.stream_request_body
class MlflowProxyHandler(InfinStorHandler):
    """Forwards to the tracking server; see `proxy.forwarder` for streaming, timeouts, retries."""

    _proxied = False
    _proxied_content_type = "application/octet-stream"
    # (raw path, method, route or None if refused); the CSP is computed before initialize() runs
    _resolved: tuple[str, str, ProxyRoute | None] | None = None

    def initialize(self) -> None:
        self._route: ProxyRoute | None = None
        self._incoming: IncomingRequest | None = None
        self._buffer: list[bytes] | None = None
        self._body: StreamingBody | None = None
        self._task: asyncio.Future[None] | None = None
        self._on_browser_gone: Callable[[], None] | None = None  # set by the forwarder while an exchange is in progress
        # A refusal decided in prepare() but answered once the (small) body is read, so the
        # browser's keep-alive connection stays usable (see prepare).
        self._refusal: BaseException | None = None

    @property
    def proxy(self) -> MlflowProxy:
        return cast(MlflowProxy, self.settings[SETTINGS_KEY])

    # -- what the browser may do with what we send ------------------------------------------------
    def _raw_path(self) -> str | None:
        """The part after `…/mlflow/` exactly as the browser sent it (still percent-encoded)."""
        path = self.request.path
        marker = "/" + PROXY_PATH
        decoded = (getattr(self, "path_kwargs", None) or {}).get("path")
        start = path.find(marker)
        while start != -1:
            raw = path[start + len(marker) :]
            # tornado routed on the raw path and decoded the group once: they must agree.
            if decoded is None or unquote_to_bytes(raw) == decoded.encode("utf-8", "surrogateescape"):
                return raw
            start = path.find(marker, start + 1)
        return None

    def _resolve(self, raw: str) -> ProxyRoute:
        """`policy.resolve`, once per request (the CSP header and `prepare` both need it)."""
        method = self.request.method or "GET"
        cached = self._resolved
        if cached is None or cached[0] != raw or cached[1] != method:
            try:
                cached = (raw, method, resolve(raw, method))
            except PathRefused:
                cached = (raw, method, None)
            self._resolved = cached
        if cached[2] is None:
            return resolve(raw, method)  # raises the refusal again, with its message
        return cached[2]

    @property
    def content_security_policy(self) -> str:
        try:
            kind = self._resolve(self._raw_path() or "").kind
        except PathRefused:
            kind = "api"
        jupyter_csp = super(APIHandler, self).content_security_policy  # Jupyter's page policy: frame-ancestors 'self'
        if kind == "ui":  # MLflow's own pages: its scripts must run; framed only by the lab
            return jupyter_csp
        if kind == "artifact":  # user content: never active on this origin
            return "; ".join([jupyter_csp, *_ARTIFACT_CSP])
        return super().content_security_policy  # JSON: default-src 'none'

    def compute_etag(self) -> None:
        return None  # the tracking server's ETag (if any) is passed through; never hash bodies

    def clear(self) -> None:
        super().clear()
        self._proxied = False

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None, **kwargs: Any) -> Future[None]:
        if self._proxied:
            kwargs.setdefault("set_content_type", self._proxied_content_type)
        return super().finish(chunk, **kwargs)

    # -- authentication, XSRF ---------------------------------------------------------------------
    def set_secure_cookie(self, name: str, value: str | bytes, *args: Any, **kwargs: Any) -> None:
        # Kernels and the CLI send `Authorization: token …` on every call and keep no cookies:
        # Jupyter would sign and send them a login cookie on each one (~0.1 ms a call) for nothing.
        # A browser that brings the token in the URL still gets its cookie.
        if (
            "Authorization" in self.request.headers
            and "token" not in self.request.query_arguments
            and name == self.identity_provider.get_cookie_name(self)
        ):
            return
        super().set_secure_cookie(name, value, *args, **kwargs)

    def _same_origin_evidence(self) -> bool:
        site = self.request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site == "same-origin"
        origin = self.request.headers.get("Origin")
        host = self.request.headers.get("Host")
        if not origin or origin == "null" or not host:
            return False
        try:
            return urlsplit(origin).netloc.lower() == host.lower()
        except ValueError:  # e.g. `http://[`: not this origin
            return False

    def check_xsrf_cookie(self) -> None:
        try:
            return super().check_xsrf_cookie()
        except web.HTTPError:
            # The MLflow UI cannot send Jupyter's XSRF token; a same-origin request is as good.
            if self.request.method not in ("GET", "HEAD") and self._same_origin_evidence():
                return None
            raise

    async def prepare(self, *, _redirect_to_login: bool = True) -> None:
        try:
            await super().prepare()  # Jupyter's checks, then admit()
        except Exception as exc:
            if not self._drainable():
                raise  # answered now, with `Connection: close` (see finish)
            # Read (and drop) the body first, then refuse in the verb (each verb starts with
            # _forward, which raises it): the browser's keep-alive connection stays usable.
            self._refusal = exc
            self._prepared = True

    def _drainable(self) -> bool:
        """A refused request's body small enough to read and discard (declared, not chunked)."""
        headers = self.request.headers
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            return False
        length = headers.get("Content-Length", "0")
        return length.isdigit() and int(length) <= self.proxy.settings.replay_limit

    async def admit(self) -> None:
        if self.request.method == "OPTIONS":
            return
        # The verbs are @authenticated/@authorized too, but they run only after the body has been
        # received: check before streaming anything to the tracking server.
        if not self.current_user:
            raise web.HTTPError(403)
        action = HTTP_METHOD_TO_AUTH_ACTION[self.request.method]
        if not await ensure_async(self.authorizer.is_authorized(self, self.current_user, action, self.auth_resource)):
            raise web.HTTPError(403, f"User is not authorized to {action} on {self.auth_resource}.")

        raw = self._raw_path()
        if raw is None:
            raise BadRequest("The proxied path could not be determined.")
        route = self._resolve(raw)
        self._refuse_cross_site(route)
        if route.kind == "local":
            return  # answered by the verb, nothing goes to the tracking server

        headers = self.request.headers
        length_header = headers.get("Content-Length")
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        try:
            length = int(length_header) if length_header is not None else None
        except ValueError:
            raise BadRequest("Invalid Content-Length.") from None
        self._incoming = IncomingRequest(
            method=self.request.method,
            route=route,
            query=self.request.query,
            headers=list(headers.get_all()),
            content_length=length,
        )
        has_body = self.request.method not in ("GET", "HEAD") and (chunked or bool(length))
        if not has_body:
            return
        if length is not None and length <= self.proxy.settings.replay_limit:
            self._buffer = []  # small: buffered, so it can be replayed after a 401
            return
        # Large (or of unknown size): streamed to the tracking server as it arrives.
        cast(HTTP1Connection, self.request.connection).set_max_body_size(self.proxy.settings.max_upload_size or 1 << 50)
        self._body = StreamingBody(self.proxy.settings.upload_high_water)
        self._task = asyncio.ensure_future(self.proxy.forward(self._incoming, self._body, _Browser(self)))
        body = self._body
        self._task.add_done_callback(lambda _task: body.discard())

    def _refuse_cross_site(self, route: ProxyRoute) -> None:
        if self.token_authenticated:
            return
        site = self.request.headers.get("Sec-Fetch-Site")
        if site not in ("cross-site", "same-site"):
            return
        navigation = self.request.method == "GET" and self.request.headers.get("Sec-Fetch-Mode") == "navigate" and route.kind == "ui"
        if not navigation:
            raise Forbidden("The MLflow proxy refuses requests from other sites.")

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._body is not None:
            return self._body.feed(chunk)
        if self._buffer is not None:
            self._buffer.append(chunk)
        return None

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._body is not None:
            self._body.fail(ConnectionResetError("the browser closed the connection"))
        callback, self._on_browser_gone = self._on_browser_gone, None
        if callback is not None:
            callback()  # stop talking to the tracking server; its connection is not reused

    async def _forward(self) -> None:
        if self._refusal is not None:
            raise self._refusal
        route = self._resolved[2] if self._resolved else None
        if route is not None and route.kind == "local":
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            await self.finish(json.dumps(route.answer) if self.request.method == "GET" else None)
            return
        if self._task is not None:
            assert self._body is not None
            self._body.end()
            await self._task
            return
        assert self._incoming is not None
        body = b"".join(self._buffer) if self._buffer is not None else None
        await self.proxy.forward(self._incoming, body, _Browser(self))

    # -- verbs ------------------------------------------------------------------------------------
    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self._forward()

    @web.authenticated
    @authorized
    async def head(self, path: str) -> None:
        await self._forward()

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self._forward()

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        await self._forward()

    @web.authenticated
    @authorized
    async def patch(self, path: str) -> None:
        await self._forward()

    @web.authenticated
    @authorized
    async def delete(self, path: str) -> None:
        await self._forward()


class MlflowUIRedirectHandler(InfinStorHandler):
    """`…/mlflow` → `…/mlflow/`: the UI's relative URLs need the trailing slash."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        target = proxy_prefix(self.base_url)
        if self.request.query:
            target += "?" + self.request.query
        self.redirect(target)
