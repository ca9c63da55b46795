"""Forward one browser request to the tracking server and stream the answer back.

Design:
- One aiohttp `ClientSession` per Jupyter server, with a keep-alive connection pool to the
  tracking server (at most `max_clients` requests in flight; more wait for at most
  `connect_timeout`, then get a 503). IP literals (the embedded service) are never resolved; host
  names are resolved once per `ttl_dns_cache`. No cookie jar, no decompression: bytes pass through.
- Request bodies up to `replay_limit` are buffered, so a request can be replayed once after the
  tracking server answered 401 and the backend refreshed its credentials. Larger bodies are
  streamed to the tracking server as they arrive (`StreamingBody`, bounded by `high_water` bytes).
- Responses are streamed with back-pressure: reading from the tracking server overlaps writing to
  the browser (one flush in flight, at most `WRITE_WINDOW` = 2 MiB queued behind it, plus the
  client's bounded read buffer of 1 MiB), so a slow browser slows the tracking server down
  instead of filling our memory. Small responses (by Content-Length) are read whole and sent in one write.
- Timeouts: `connect_timeout` for the TCP connection, `request_timeout` for the tracking server
  to start answering once the request is sent, `idle_timeout` for any stall while a body streams
  in either direction (a watchdog per exchange that cancels it). Failures become JSON errors
  (502/503/504) unless the response had already begun, in which case the browser's connection is
  closed (a truncated response, never a hang). A connection is returned to the pool only after a
  complete exchange; anything else (errors, timeouts, a browser that went away, a 401 answered
  before a streamed body was consumed) closes it.
- Headers: hop-by-hop headers and the browser's Jupyter credentials never go upstream; the
  credentials the backend provides are added instead. Upstream cookies, authentication challenges
  and site-wide directives (HSTS, Clear-Site-Data) never reach the browser; redirects are
  rewritten into the proxy or refused.

This module knows nothing of tornado.web: the handler adapts itself to `Downstream`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiohttp
from tornado import httputil
from tornado.iostream import StreamClosedError
from yarl import URL

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


CHUNK_SIZE = 512 * 1024  # the upstream client's read buffer (it pauses reading at twice this)
WRITE_WINDOW = 2 * 1024 * 1024  # response bytes queued while a flush to the browser is in flight

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
        # A tab is whitespace in a field value, but tornado refuses to send any control character.
        value = value.replace("\t", " ")
        if _CONTROL.search(value):
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


_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _as_browsers_read(location: str) -> str:
    """`location` as a browser's URL parser (WHATWG) reads it, for an http(s) page.

    Leading/trailing control characters and spaces are stripped, tabs and newlines removed
    anywhere, and a backslash before the query counts as a slash.
    """
    text = _TAB_OR_NEWLINE.sub("", location.strip(_C0_AND_SPACE))
    end = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=len(text))
    return text[:end].replace("\\", "/") + text[end:]


def _split(url: str) -> tuple[str | None, str | None, str]:
    """(scheme, authority, rest) of a browser-normalised URL; authority None for a path."""
    scheme = None
    match = _SCHEME.match(url)
    if match:
        scheme, url = match.group(1).lower(), url[match.end():]
        if not url.startswith("/"):  # `http:evil.example`: taken as a host by some browsers
            return scheme, "", url
    elif not url.startswith("//"):
        return None, None, url
    rest = url.lstrip("/")  # http(s) URLs ignore any number of slashes before the host
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return scheme, rest[:cut], rest[cut:]


def _leaves(url: str, up) -> bool:
    """True if a browser would resolve `url` (browser-normalised) to another origin than `up`."""
    scheme, authority, _rest = _split(url)
    if scheme is not None and scheme != up.scheme.lower():
        return True
    if authority is None:
        return False
    return "@" in authority or authority.lower() != up.netloc.lower()


def rewrite_location(location: str, upstream_uri: str, proxy_prefix: str) -> str | None:
    """Map a redirect from the tracking server into the proxy; None if it leaves the server.

    `proxy_prefix` is the proxy's absolute path ending in `/` (e.g. `/lab/infinstor/api/mlflow/`).
    The location is read as a browser would (two backslashes, slash-backslash, or slash-tab-slash
    before a name all mean another host), and refused if any level of its percent-decoding would
    leave the tracking server.
    """
    up = urlsplit(upstream_uri)
    normalised = _as_browsers_read(location)
    if not normalised or _CONTROL.search(normalised):
        return None
    layer = normalised
    for _ in range(4):
        if _leaves(_as_browsers_read(layer), up):
            return None
        decoded = unquote(layer)
        if decoded == layer:
            break
        layer = decoded
    else:
        return None  # still changing after four rounds of decoding
    scheme, authority, rest = _split(normalised)
    if authority is None and not rest.startswith("/"):
        return rest  # relative: the browser resolves it against the proxied URL
    parts = urlsplit(rest if authority is None else "//x" + (rest if rest[:1] in "/?#" else "/" + rest))
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

    def flush(self) -> Awaitable[None]:
        """Send what was queued; done once it is sent (one flush at a time)."""

    def finish(self) -> Awaitable[None] | None: ...

    def abort(self) -> None:
        """Close the browser's connection (a response that began cannot be completed)."""

    def on_close(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` if the browser's connection closes before the response is finished."""


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
    # Idle pooled connections to the tracking server are closed after this many seconds: below
    # uvicorn's default keep-alive (5 s, MLflow's server), so we close an idle connection before
    # the server does and never send a request on a connection it is closing.
    keepalive_timeout: float = 4.0




class StreamingBody:
    """A request body streamed from the browser to the tracking server, with flow control.

    The handler `feed`s chunks as tornado receives them; `feed` returns an awaitable while more
    than `high_water` bytes wait, which tornado awaits before reading more from the browser.
    `chunks()` is what the HTTP client sends (it awaits each socket write before taking more).
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
        self.complete = False  # every byte was handed to the HTTP client
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

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            if self._error is not None:
                raise self._error
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered < self._high_water:
                    self._release_feeder()
                yield chunk  # resumed once the client wrote it (and drained its buffer)
                self.sent += len(chunk)
                self.on_progress()
                continue
            if self._ended:
                self.complete = True
                self.on_sent()
                return
            self._data_ready = asyncio.get_running_loop().create_future()
            await self._data_ready


Body = bytes | StreamingBody | None

# -- the tracking server side ---------------------------------------------------------------------


@dataclass
class _Outcome:
    kind: str  # "done", "unauthorized", "not_connected"
    error: BaseException | None = None


def _done(awaitable: Awaitable[None]) -> bool:
    return isinstance(awaitable, asyncio.Future) and awaitable.done()


def _retrieve(future: asyncio.Future) -> None:
    """Mark a write's failure as seen (the exchange already failed for another reason)."""
    if not future.cancelled():
        future.exception()


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
        self.status: int | None = None
        self.unauthorized = False
        self.started = False  # the browser's response was started
        self.flush = True
        self.error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None
        self._cancelled = False
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
        """Stop the attempt (cancels the request; its connection is closed, not pooled)."""
        if self.error is None:
            self.error = exc
        task = self._task
        if task is not None and not self._cancelled and not task.done():
            self._cancelled = True
            task.cancel()

    def browser_gone(self) -> None:
        self.abort(_ClientGone("the browser closed the connection"))

    # the response --------------------------------------------------------------------------------
    def _on_headers(self, response: aiohttp.ClientResponse) -> None:
        self.set_phase("download")
        self.status = response.status
        if response.status == 401:
            self.unauthorized = True
            return
        upstream = response.headers
        headers = browser_response_headers(upstream.items(), self.secrets)
        location = upstream.get("Location")
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
        length = upstream.get("Content-Length")
        self.flush = not (
            length is not None and length.isdigit() and int(length) <= self.settings.small_response
        )
        self.downstream.start(response.status, response.reason or "", headers)
        self.started = True

    async def _written(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception as exc:  # the browser's connection closed
            raise _ClientGone(str(exc)) from exc
        self._last = self._loop.time()

    async def _stream(self, response: aiohttp.ClientResponse) -> None:
        content = response.content
        if not self.flush:  # small, of known length: one read, one write (sent by finish)
            data = await content.read()
            self._last = self._loop.time()
            if data:
                self.downstream.write(data, False)
            return
        # Keep reading from the tracking server while the previous flush to the browser is in
        # flight (tornado allows one at a time): what arrives meanwhile is queued in the handler
        # and goes out in the next flush. Once `WRITE_WINDOW` bytes are queued we wait for the
        # flush: a slow browser stops our reads (and so, through TCP, the tracking server).
        downstream = self.downstream
        in_flight: Awaitable[None] | None = None
        queued = 0
        try:
            while True:
                chunk, http_chunk_end = await content.readchunk()  # as received: no join, no copy
                if not chunk:
                    # An empty chunk ends one HTTP chunk of a chunked body; at the end of the
                    # stream it is the end. aiohttp's shared empty stream (every body-less answer:
                    # 304, 204, HEAD) reports a chunk end forever without awaiting anything, so
                    # "continue" there would spin the event loop and stall the whole server.
                    if http_chunk_end and not content.at_eof():
                        continue
                    break
                self._last = self._loop.time()
                downstream.write(chunk, False)
                queued += len(chunk)
                if in_flight is not None:
                    if queued < WRITE_WINDOW and not _done(in_flight):
                        continue
                    current, in_flight = in_flight, None
                    await self._written(current)
                in_flight = downstream.flush()
                queued = 0
            if in_flight is not None:
                current, in_flight = in_flight, None
                await self._written(current)
            if queued:
                await self._written(downstream.flush())
        finally:
            if isinstance(in_flight, asyncio.Future):
                if in_flight.done():
                    _retrieve(in_flight)
                else:
                    in_flight.add_done_callback(_retrieve)

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
        data: bytes | AsyncIterator[bytes] | None = None
        if isinstance(self.body, StreamingBody):
            data = self.body.chunks()
            if req.content_length is not None:
                headers["Content-Length"] = str(req.content_length)
        elif self.body is not None:
            data = self.body
        elif req.method in ("POST", "PUT", "PATCH"):
            data = b""
        self._task = asyncio.current_task()
        self._arm()
        try:
            await self._talk(URL(url, encoded=True), list(headers.get_all()), data)
        except asyncio.CancelledError:
            if not self._cancelled:
                raise
            assert self._task is not None
            self._task.uncancel()  # our own abort (timeout, browser gone): self.error says why
        except _ClientGone as exc:
            if self.error is None:
                self.error = exc
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            if self.error is None:
                self.error = exc
        finally:
            self._task = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        if self.unauthorized and self.error is None:
            return _Outcome("unauthorized")
        if self.error is not None:
            if self._never_connected():
                return _Outcome("not_connected", self._as_proxy_error(self.error))
            return _Outcome("done", self._as_proxy_error(self.error))
        return _Outcome("done")

    async def _talk(self, url: URL, headers: list[tuple[str, str]], data) -> None:
        proxy = self.proxy
        await proxy.acquire()
        response: aiohttp.ClientResponse | None = None
        reusable = False
        try:
            response = await proxy.session().request(
                self.request.method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
            )
            self._on_headers(response)
            if self.started:
                await self._stream(response)
                reusable = not isinstance(self.body, StreamingBody) or self.body.complete
        finally:
            if response is not None:
                if reusable:
                    response.release()  # back to the pool (the body was read to its end)
                else:
                    response.close()  # unread body, or the request body was cut short
            proxy.release()

    def _never_connected(self) -> bool:
        """True if the request failed before anything was sent (so it can be sent again)."""
        if self.status is not None or not isinstance(self.error, aiohttp.ClientConnectorError):
            return False
        return not (isinstance(self.body, StreamingBody) and self.body.started)

    def _as_proxy_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, (InfinStorError, _ClientGone)):
            return exc
        uri = self.proxy.upstream_uri()
        detail = str(exc) or exc.__class__.__name__
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):  # incl. aiohttp's connect timeout
            return UpstreamTimeout(f"The tracking service at {uri} did not answer in time ({detail}).")
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.strerror or exc.os_error.__class__.__name__
            return UpstreamUnreachable(f"Cannot reach the tracking service at {uri}: {reason}.")
        if self.status is not None:
            return UpstreamBadResponse(
                f"The connection to the tracking service broke during the response ({detail})."
            )
        if isinstance(exc, aiohttp.ClientResponseError):  # not HTTP, or malformed
            return UpstreamBadResponse(f"The tracking service at {uri} sent an invalid response ({detail}).")
        if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, OSError)):
            return UpstreamUnreachable(f"Cannot reach the tracking service at {uri}: {detail}.")
        return UpstreamBadResponse(f"The proxied request failed: {exc.__class__.__name__}: {exc}")


class MlflowProxy:
    """Forwards requests to `tracking` (one per Jupyter server)."""

    def __init__(self, tracking: TrackingBackend, settings: ProxySettings, prefix: str):
        self.tracking = tracking
        self.settings = settings
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._healthy_until = 0.0

    def upstream_uri(self) -> str:
        return self.tracking.uri.rstrip("/")

    def session(self) -> aiohttp.ClientSession:
        """The shared client (created on first use, on the server's event loop)."""
        if self._session is None or self._session.closed:
            s = self.settings
            connector = aiohttp.TCPConnector(
                limit=s.max_clients,
                limit_per_host=0,
                keepalive_timeout=s.keepalive_timeout,
                ttl_dns_cache=60,  # IP literals are never resolved; host names once a minute
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Only the TCP connect is timed by the client; `_Exchange`'s watchdog times the
                # answer (request_timeout) and stalls in either direction (idle_timeout).
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=None, sock_connect=s.connect_timeout, sock_read=None
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                # Send only what the browser sent (plus Host, credentials and the body's length).
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                read_bufsize=CHUNK_SIZE,
                max_line_size=65536,
                max_field_size=65536,
                trust_env=False,
            )
        return self._session

    async def acquire(self) -> None:
        """A slot for one upstream request; ProxyBusy if none frees up within connect_timeout."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.max_clients)
        if not self._slots.locked():
            await self._slots.acquire()  # immediate
            return
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise ProxyBusy(
                f"Too many requests to the tracking service are in progress "
                f"({self.settings.max_clients}); try again shortly."
            ) from None

    def release(self) -> None:
        assert self._slots is not None
        self._slots.release()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def replayable(self, body: Body) -> bool:
        return not isinstance(body, StreamingBody)

    async def forward(self, request: IncomingRequest, body: Body, downstream: Downstream) -> None:
        """Forward `request`; raise an InfinStorError if nothing was sent to the browser yet."""
        if time.monotonic() >= self._healthy_until:
            await self.tracking.ensure_running()
        credentials = await self.tracking.request_headers()
        refreshed = reconnected = False
        on_close = getattr(downstream, "on_close", None)
        while True:
            exchange = _Exchange(self, request, body, downstream, credential_secrets(credentials))
            if on_close is not None:
                on_close(exchange.browser_gone)
            try:
                outcome = await exchange.run(credentials)
            finally:
                if on_close is not None:
                    on_close(None)
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
