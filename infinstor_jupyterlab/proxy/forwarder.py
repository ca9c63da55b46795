"""Forward one browser request to the tracking server and stream the answer back.

Design:
- One HTTP client for all proxied requests (`max_clients` concurrent upstream requests; more wait
  in its queue for at most `connect_timeout`).
- Request bodies up to `replay_limit` are buffered, so a request can be replayed once after the
  tracking server answered 401 and the backend refreshed its credentials. Larger bodies are
  streamed to the tracking server as they arrive (`StreamingBody`, bounded by `high_water` bytes).
- Responses are streamed with back-pressure: each chunk read from the tracking server is written
  to the browser and the next one is read only once that write has reached the socket, so a slow
  browser slows the tracking server down instead of filling our memory.
- Timeouts: `connect_timeout` for the TCP connection, `request_timeout` for the tracking server
  to start answering once the request is sent, `idle_timeout` for any stall while a body streams
  in either direction. Failures become JSON errors (502/503/504) unless the response had already
  begun, in which case the browser's connection is closed (a truncated response, never a hang).
- Headers: hop-by-hop headers and the browser's Jupyter credentials never go upstream; the
  credentials the backend provides are added instead. Upstream cookies, authentication challenges
  and site-wide directives (HSTS, Clear-Site-Data) never reach the browser; redirects are
  rewritten into the proxy or refused.

This module knows nothing of tornado.web: the handler adapts itself to `Downstream`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from tornado import httputil
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import IOStream, StreamClosedError
from tornado.netutil import DefaultLoopResolver, Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient, _HTTPConnection

from ..errors import InfinStorError, SignInRequired
from ..tracking.base import TrackingBackend
from .policy import ProxyRoute, strip_credentials_from_query

log = logging.getLogger(__name__)

# -- errors ---------------------------------------------------------------------------------------


class UpstreamUnreachable(InfinStorError):
    status = 502
    reason = "tracking_unreachable"


class UpstreamBadResponse(InfinStorError):
    status = 502
    reason = "tracking_bad_response"


class UpstreamTimeout(InfinStorError):
    status = 504
    reason = "tracking_timeout"


class ProxyBusy(InfinStorError):
    status = 503
    reason = "proxy_busy"


class _ClientGone(Exception):
    """The browser went away: stop talking to the tracking server."""


CHUNK_SIZE = 512 * 1024

SIGN_IN_MESSAGE = (
    "The tracking service did not accept your credentials; sign in again, then retry."
)

# -- headers --------------------------------------------------------------------------------------

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

# What the browser sends that must not reach the tracking server: Jupyter's credentials, what
# the HTTP client sets itself, and anything that would let a browser speak for the proxy.
REQUEST_DROP = HOP_BY_HOP | {
    "host",
    "content-length",
    "expect",
    "cookie",
    "authorization",
    "x-xsrftoken",
    "x-xsrf-token",
    "x-csrftoken",
    "origin",
    "referer",
    "forwarded",
    "x-real-ip",
}
REQUEST_DROP_PREFIXES = ("x-forwarded-", "sec-", "proxy-", "x-xsrf", "x-jupyter")

# What the tracking server answers that must not reach the browser.
RESPONSE_DROP = HOP_BY_HOP | {
    "set-cookie",
    "set-cookie2",
    "www-authenticate",
    "authentication-info",
    "strict-transport-security",
    "clear-site-data",
    "content-security-policy",
    "content-security-policy-report-only",
    "public-key-pins",
    "alt-svc",
    "report-to",
    "nel",
    "server",
    "date",
    "location",  # rewritten, see rewrite_location
    "content-location",
    "refresh",
}
RESPONSE_DROP_PREFIXES = ("access-control-", "proxy-")


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def upstream_request_headers(
    browser_headers: Iterable[tuple[str, str]], credentials: dict[str, str]
) -> httputil.HTTPHeaders:
    """The browser's headers minus credentials and hop-by-hop ones, plus the backend's credentials."""
    browser_headers = list(browser_headers)
    extra_hop = _connection_tokens(browser_headers)
    credential_names = {name.lower() for name in credentials}
    out = httputil.HTTPHeaders()
    for name, value in browser_headers:
        lower = name.lower()
        if (
            lower in REQUEST_DROP
            or lower in extra_hop
            or lower in credential_names
            or lower.startswith(REQUEST_DROP_PREFIXES)
        ):
            continue
        out.add(name, value)
    for name, value in credentials.items():
        out[name] = value
    return out


def browser_response_headers(
    upstream_headers: Iterable[tuple[str, str]], secrets: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The tracking server's headers minus cookies, challenges, hop-by-hop and site-wide ones.

    Any header whose value contains one of `secrets` (the credentials we sent) is dropped too.
    """
    upstream_headers = list(upstream_headers)
    extra_hop = _connection_tokens(upstream_headers)
    secrets = [s for s in secrets if len(s) >= 8]
    out = []
    for name, value in upstream_headers:
        lower = name.lower()
        if lower in RESPONSE_DROP or lower in extra_hop or lower.startswith(RESPONSE_DROP_PREFIXES):
            continue
        if any(secret in value for secret in secrets):
            continue
        out.append((name, value))
    return out


def credential_secrets(credentials: dict[str, str]) -> list[str]:
    """The secret parts of credential headers (`Bearer abc` → `Bearer abc`, `abc`)."""
    secrets = []
    for value in credentials.values():
        secrets.append(value)
        scheme, _, token = value.partition(" ")
        if token:
            secrets.append(token.strip())
    return [s for s in secrets if s]


def rewrite_location(location: str, upstream_uri: str, proxy_prefix: str) -> str | None:
    """Map a redirect from the tracking server into the proxy; None if it leaves the server.

    `proxy_prefix` is the proxy's absolute path ending in `/` (e.g. `/lab/infinstor/api/mlflow/`).
    """
    location = location.strip()
    if not location:
        return None
    parts = urlsplit(location)
    up = urlsplit(upstream_uri)
    if parts.scheme or parts.netloc:
        same_origin = (parts.scheme or up.scheme).lower() == up.scheme.lower() and (
            parts.netloc.lower() == up.netloc.lower()
        )
        if not same_origin:
            return None
    elif not location.startswith("/"):
        return location  # relative: the browser resolves it against the proxied URL
    path = parts.path or "/"
    base = up.path.rstrip("/")
    if base:
        if path != base and not path.startswith(base + "/"):
            return None
        path = path[len(base):] or "/"
    rewritten = proxy_prefix + path.lstrip("/")
    if parts.query:
        rewritten += "?" + parts.query
    if parts.fragment:
        rewritten += "#" + parts.fragment
    return rewritten


# -- the browser side -----------------------------------------------------------------------------


class Downstream(Protocol):
    """The browser's side of one exchange (implemented by the tornado handler)."""

    @property
    def headers_written(self) -> bool:
        """True once anything was sent to the browser (an error can no longer be reported)."""

    def start(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        """Set status and headers (not sent until the first flushed write or finish)."""

    def write(self, chunk: bytes, flush: bool) -> Awaitable[None] | None:
        """Queue `chunk`; with `flush`, send it and return an awaitable done once it is sent."""

    def finish(self) -> Awaitable[None] | None: ...

    def abort(self) -> None:
        """Close the browser's connection (a response that began cannot be completed)."""


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    route: ProxyRoute
    query: str
    headers: list[tuple[str, str]]
    content_length: int | None


@dataclass(frozen=True)
class ProxySettings:
    connect_timeout: float = 10.0
    request_timeout: float = 120.0
    idle_timeout: float = 60.0
    max_clients: int = 64
    replay_limit: int = 10 * 1024 * 1024
    # Largest request body accepted (0: no limit beyond what the tracking server accepts).
    max_upload_size: int = 0
    # Responses up to this size (by Content-Length) are sent in one write, larger ones streamed.
    small_response: int = 256 * 1024
    # Upload bytes buffered between the browser and the tracking server.
    upload_high_water: int = 1024 * 1024
    # How long a successful exchange vouches for the tracking service (skips ensure_running).
    healthy_for: float = 5.0


class StreamingBody:
    """A request body streamed from the browser to the tracking server, with flow control.

    The handler `feed`s chunks as tornado receives them; `feed` returns an awaitable while more
    than `high_water` bytes wait, which tornado awaits before reading more from the browser.
    `produce` is the HTTP client's body_producer.
    """

    def __init__(self, high_water: int = 1024 * 1024):
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._high_water = high_water
        self._data_ready: asyncio.Future | None = None
        self._space: asyncio.Future | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._discarding = False
        self.started = False
        self.sent = 0
        self.on_progress: Callable[[], None] = lambda: None
        self.on_sent: Callable[[], None] = lambda: None

    def feed(self, chunk: bytes) -> Awaitable[None] | None:
        if self._discarding or self._error is not None:
            return None
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        self._wake_producer()
        if self._buffered >= self._high_water:
            self._space = asyncio.get_running_loop().create_future()
            return self._space
        return None

    def end(self) -> None:
        self._ended = True
        self._wake_producer()

    def fail(self, exc: BaseException) -> None:
        """The browser went away: make the producer (and so the upstream request) fail."""
        self._error = exc
        self._wake_producer()
        self._release_feeder()

    def discard(self) -> None:
        """The upstream request is over: swallow the rest of the body without buffering it."""
        self._discarding = True
        self._chunks.clear()
        self._buffered = 0
        self._release_feeder()

    def _wake_producer(self) -> None:
        if self._data_ready is not None and not self._data_ready.done():
            self._data_ready.set_result(None)

    def _release_feeder(self) -> None:
        if self._space is not None and not self._space.done():
            self._space.set_result(None)

    async def produce(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self.started = True
        while True:
            if self._error is not None:
                raise self._error
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered < self._high_water:
                    self._release_feeder()
                await write(chunk)
                self.sent += len(chunk)
                self.on_progress()
                continue
            if self._ended:
                self.on_sent()
                return
            self._data_ready = asyncio.get_running_loop().create_future()
            await self._data_ready


Body = bytes | StreamingBody | None

# -- the tracking server side ---------------------------------------------------------------------


class _ProxyConnection(_HTTPConnection):
    """tornado's client connection, made abortable by the exchange that owns its request."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        exchange = getattr(self.request, "infinstor_exchange", None)
        if exchange is not None:
            exchange._connection = self

    def _create_connection(self, stream: IOStream) -> HTTP1Connection:
        # Bigger reads than tornado's 64 KiB: fewer, larger writes to the browser per artifact.
        stream.set_nodelay(True)
        stream.read_chunk_size = CHUNK_SIZE
        return HTTP1Connection(
            stream,
            True,
            HTTP1ConnectionParameters(
                no_keep_alive=True,
                max_header_size=self.max_header_size,
                max_body_size=self.max_body_size,
                decompress=bool(self.request.decompress_response),
                chunk_size=CHUNK_SIZE,
            ),
            self._sockaddr,
        )

    def abort(self, exc: BaseException) -> None:
        # Completes the fetch with `exc` and closes the socket (what tornado's own timeout does).
        self._handle_exception(type(exc), exc, None)


class _LiteralResolver(Resolver):
    """IP literals (the embedded service's 127.0.0.1) need no getaddrinfo in a thread per request."""

    def initialize(self) -> None:
        self._default = DefaultLoopResolver()

    def close(self) -> None:
        self._default.close()

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return await self._default.resolve(host, port, family)
        if address.version == 6:
            return [(socket.AF_INET6, (host, port, 0, 0))]
        return [(socket.AF_INET, (host, port))]


class ProxyHTTPClient(SimpleAsyncHTTPClient):
    def _connection_class(self) -> type:
        return _ProxyConnection


@dataclass
class _Outcome:
    kind: str  # "done", "unauthorized", "not_connected"
    error: BaseException | None = None


class _Exchange:
    """One attempt: request out, response back, with a progress watchdog."""

    def __init__(
        self,
        proxy: MlflowProxy,
        request: IncomingRequest,
        body: Body,
        downstream: Downstream,
        secrets: list[str],
    ):
        self.proxy = proxy
        self.settings = proxy.settings
        self.request = request
        self.body = body
        self.downstream = downstream
        self.secrets = secrets
        self._connection: _ProxyConnection | None = None
        self._start_line: httputil.ResponseStartLine | None = None
        self._headers = httputil.HTTPHeaders()
        self.status: int | None = None
        self.unauthorized = False
        self.started = False  # the browser's response was started
        self.flush = True
        self.error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._phase = "upload" if isinstance(body, StreamingBody) else "waiting"
        self._last = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        if isinstance(body, StreamingBody):
            body.on_progress = self.touch
            body.on_sent = lambda: self.set_phase("waiting")

    # progress watchdog ---------------------------------------------------------------------------
    def _limit(self) -> float:
        return self.settings.request_timeout if self._phase == "waiting" else self.settings.idle_timeout

    def _arm(self) -> None:
        self._timer = self._loop.call_at(self._last + self._limit(), self._check)

    def _check(self) -> None:
        self._timer = None
        now = self._loop.time()
        if now - self._last < self._limit():
            self._arm()
            return
        if self._phase == "waiting":
            message = (
                f"The tracking service did not answer within {self.settings.request_timeout:g} s."
            )
        else:
            message = f"The transfer stalled for {self.settings.idle_timeout:g} s."
        self.abort(UpstreamTimeout(message))

    def touch(self) -> None:
        self._last = self._loop.time()

    def set_phase(self, phase: str) -> None:
        self._phase = phase
        self.touch()

    def abort(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if self._connection is not None:
            self._connection.abort(exc)

    # tornado client callbacks --------------------------------------------------------------------
    def on_header_line(self, line: str) -> None:
        if self._start_line is None:
            self._start_line = httputil.parse_response_start_line(line.strip())
            return
        if line == "\r\n":
            self._on_headers()
            return
        self._headers.parse_line(line)

    def _on_headers(self) -> None:
        self.set_phase("download")
        start = self._start_line
        assert start is not None
        self.status = start.code
        if start.code == 401:
            self.unauthorized = True
            return
        headers = browser_response_headers(self._headers.get_all(), self.secrets)
        location = self._headers.get("Location")
        if location is not None:
            rewritten = rewrite_location(location, self.proxy.upstream_uri(), self.proxy.prefix)
            if rewritten is None:
                host = urlsplit(location).netloc or "?"
                self.error = UpstreamBadResponse(
                    f"The tracking service redirected to another site ({host}); "
                    "the proxy only follows redirects within the tracking service."
                )
                return
            headers.append(("Location", rewritten))
        length = self._headers.get("Content-Length")
        self.flush = not (
            length is not None and length.isdigit() and int(length) <= self.settings.small_response
        )
        self.downstream.start(start.code, start.reason, headers)
        self.started = True

    def on_chunk(self, chunk: bytes) -> Awaitable[None] | None:
        self._last = self._loop.time()
        if not self.started:  # a 401 or refused redirect: its body is not for the browser
            return None
        result = self.downstream.write(chunk, self.flush)
        if result is None:
            return None
        return self._after_write(result)

    async def _after_write(self, result: Awaitable[None]) -> None:
        try:
            await result
        except Exception as exc:  # the browser's connection closed
            raise _ClientGone(str(exc)) from exc
        self._last = self._loop.time()

    # the attempt ---------------------------------------------------------------------------------
    async def run(self, credentials: dict[str, str]) -> _Outcome:
        req = self.request
        uri = self.proxy.upstream_uri()
        url = f"{uri}/{req.route.path}"
        query = strip_credentials_from_query(req.query)
        if query:
            url += "?" + query
        if urlsplit(url).netloc != urlsplit(uri).netloc:  # belt and braces: policy guarantees it
            raise UpstreamBadResponse("Refusing to send a proxied request to another host.")
        headers = upstream_request_headers(req.headers, credentials)
        kwargs: dict = {}
        if isinstance(self.body, StreamingBody):
            kwargs["body_producer"] = self.body.produce
            if req.content_length is not None:
                headers["Content-Length"] = str(req.content_length)
        elif self.body is not None:
            kwargs["body"] = self.body
        elif req.method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        request = HTTPRequest(
            url,
            method=req.method,
            headers=headers,
            header_callback=self.on_header_line,
            streaming_callback=self.on_chunk,
            connect_timeout=self.settings.connect_timeout,
            request_timeout=0,  # the watchdog below times each phase instead
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            **kwargs,
        )
        request.infinstor_exchange = self  # type: ignore[attr-defined]
        self._arm()
        try:
            response = await self.proxy.client().fetch(request, raise_error=False)
            transport_error = response.error if response.code == 599 else None
        except _ClientGone as exc:
            transport_error = exc
        except (OSError, HTTPClientError) as exc:
            transport_error = exc
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if transport_error is not None and self.error is None:
            self.error = transport_error

        if self.unauthorized and self.error is None:
            return _Outcome("unauthorized")
        if self.error is not None:
            if self._never_connected():
                return _Outcome("not_connected", self._as_proxy_error(self.error))
            return _Outcome("done", self._as_proxy_error(self.error))
        return _Outcome("done")

    def _never_connected(self) -> bool:
        """True if the request failed before anything was sent (so it can be sent again)."""
        if self.status is not None or not isinstance(self.error, OSError):
            return False
        if isinstance(self.body, StreamingBody) and self.body.started:
            return False
        return self._connection is None or not hasattr(self._connection, "stream")

    def _as_proxy_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, (InfinStorError, _ClientGone)):
            return exc
        uri = self.proxy.upstream_uri()
        if isinstance(exc, HTTPClientError) and exc.code == 599:
            text = str(exc)
            if "in request queue" in text:
                return ProxyBusy(
                    f"Too many requests to the tracking service are in progress "
                    f"({self.settings.max_clients}); try again shortly."
                )
            if "Timeout" in text:
                return UpstreamTimeout(
                    f"The tracking service at {uri} did not answer in time ({text})."
                )
            if self.status is not None:
                return UpstreamBadResponse(
                    f"The connection to the tracking service broke during the response ({text})."
                )
            return UpstreamUnreachable(f"Cannot reach the tracking service at {uri}: {text}.")
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"The tracking service at {uri} did not answer in time.")
        if isinstance(exc, OSError):
            reason = exc.strerror or exc.__class__.__name__
            return UpstreamUnreachable(f"Cannot reach the tracking service at {uri}: {reason}.")
        return UpstreamBadResponse(f"The proxied request failed: {exc.__class__.__name__}: {exc}")


class MlflowProxy:
    """Forwards requests to `tracking` (one per Jupyter server)."""

    def __init__(self, tracking: TrackingBackend, settings: ProxySettings, prefix: str):
        self.tracking = tracking
        self.settings = settings
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._client: ProxyHTTPClient | None = None
        self._healthy_until = 0.0

    def upstream_uri(self) -> str:
        return self.tracking.uri.rstrip("/")

    def client(self) -> ProxyHTTPClient:
        if self._client is None:
            self._client = ProxyHTTPClient(
                force_instance=True,
                max_clients=self.settings.max_clients,
                max_body_size=1 << 50,  # responses are streamed, never held whole
                resolver=_LiteralResolver(),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def replayable(self, body: Body) -> bool:
        return not isinstance(body, StreamingBody)

    async def forward(self, request: IncomingRequest, body: Body, downstream: Downstream) -> None:
        """Forward `request`; raise an InfinStorError if nothing was sent to the browser yet."""
        if time.monotonic() >= self._healthy_until:
            await self.tracking.ensure_running()
        credentials = await self.tracking.request_headers()
        refreshed = reconnected = False
        while True:
            exchange = _Exchange(self, request, body, downstream, credential_secrets(credentials))
            outcome = await exchange.run(credentials)
            if outcome.kind == "unauthorized":
                if isinstance(body, StreamingBody):
                    body.discard()
                if refreshed or not self.replayable(body):
                    raise SignInRequired(SIGN_IN_MESSAGE)
                refreshed = True
                if not await self.tracking.refresh_credentials():
                    raise SignInRequired(SIGN_IN_MESSAGE)
                credentials = await self.tracking.request_headers()
                continue
            if outcome.kind == "not_connected" and not reconnected:
                # Nothing reached the tracking service: maybe it is restarting. Wait for it once.
                reconnected = True
                self._healthy_until = 0.0
                await self.tracking.ensure_running()
                continue
            if outcome.error is None:
                self._healthy_until = time.monotonic() + self.settings.healthy_for
                try:
                    result = downstream.finish()
                    if result is not None:
                        await result
                except StreamClosedError:
                    pass  # the browser went away (navigated elsewhere) while we finished
                return
            if isinstance(body, StreamingBody):
                body.discard()
            if isinstance(outcome.error, (UpstreamUnreachable,)):
                self._healthy_until = 0.0
            if isinstance(outcome.error, _ClientGone):
                downstream.abort()
                return
            if exchange.started and downstream.headers_written:
                log.warning(
                    "InfinStor proxy: %s /%s failed after the response began: %s",
                    request.method,
                    request.route.path[:200],
                    getattr(outcome.error, "message", outcome.error),
                )
                downstream.abort()
                return
            raise outcome.error
