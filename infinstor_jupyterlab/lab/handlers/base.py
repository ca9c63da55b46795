"""One base handler: authentication, bounded JSON bodies, and every error as a JSON response.

Request bodies stream in (`stream_request_body`), so a body over `limits.MAX_BODY_BYTES` is never
held in memory: it is read and dropped (up to `limits.MAX_DRAIN_BYTES`, so the client sees the 413
and its keep-alive connection stays usable), or, larger still, refused before it is read.
"""

from __future__ import annotations

import json
import math
from asyncio import Future
from collections.abc import Awaitable
from http import HTTPStatus
from types import TracebackType
from typing import Any, NoReturn, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPServerRequest

from ... import limits
from ...errors import BadRequest, InfinStorError, NotFound, PayloadTooLarge
from ..context import InfinStorContext

AUTH_RESOURCE = "infinstor"
# Every route of the lab's API is under this (routes.py lists them).
API_PREFIX = "/infinstor/api"


@web.stream_request_body
class InfinStorHandler(APIHandler):
    """Every InfinStor handler derives from this; each verb is also `@authenticated`."""

    auth_resource = AUTH_RESOURCE

    # True once prepare() has returned: tornado reads the whole body before calling the verb.
    _prepared = False
    _body_chunks: list[bytes] | None = None
    _body_size = 0
    _body_refused: InfinStorError | None = None

    def __init__(self, application: web.Application, request: HTTPServerRequest, **kwargs: Any) -> None:
        # Jupyter logs every request's URI, and tornado's errors quote it: bound what a client
        # can put there (routing and query arguments were parsed from it already).
        if len(request.uri) > limits.MAX_LOGGED_URI_CHARS:
            request.uri = limits.clip(request.uri, limits.MAX_LOGGED_URI_CHARS)
        super().__init__(application, request, **kwargs)

    # jupyter_server parses Origin and Referer with urlparse, which raises on some malformed
    # values (`http://[`): a 500 for any client. A header that cannot be parsed proves nothing.
    def check_origin(self, origin_to_satisfy_tornado: str = "") -> bool:
        try:
            return super().check_origin(origin_to_satisfy_tornado)
        except ValueError:
            return False

    def check_referer(self) -> bool:
        try:
            return super().check_referer()
        except ValueError:
            return False

    @property
    def infinstor(self) -> InfinStorContext:
        return cast("InfinStorContext", self.settings["infinstor"])

    # -- the request body -------------------------------------------------------------------------
    # The keyword keeps JupyterHandler.prepare's signature; APIHandler (our base) takes none.
    async def prepare(self, *, _redirect_to_login: bool = True) -> None:
        await super().prepare()  # Jupyter's own checks: host, user, XSRF
        if not self._finished:
            await self.admit()
        self._prepared = True

    async def admit(self) -> None:
        """Checks before the body is read (the MLflow proxy's differ): a JSON body's size."""
        length = self.request.headers.get("Content-Length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > limits.MAX_BODY_BYTES:
            too_large = _too_large()
            if declared > limits.MAX_DRAIN_BYTES:
                raise too_large  # not read: answered with `Connection: close` (see finish)
            self._body_refused = too_large  # read and dropped; refused by get_json_body_or_400
            return
        # A chunked body announces no size: tornado stops reading it past the drain limit.
        cast(HTTP1Connection, self.request.connection).set_max_body_size(limits.MAX_DRAIN_BYTES)
        self._body_chunks = []

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:  # tornado's signature
        if self._body_chunks is None:
            return None  # being dropped
        self._body_size += len(chunk)
        if self._body_size > limits.MAX_BODY_BYTES:
            self._body_chunks, self._body_refused = None, _too_large()
            return None
        self._body_chunks.append(chunk)
        return None

    def get_json_body_or_400(self, check_values: bool = True) -> dict[str, Any]:
        """The request body as a JSON object; 400 for anything else. `check_values=False` leaves
        `limits.check_json_value` (NUL, lone surrogates) to the caller, for a dry run that reports
        such a value under its field instead of refusing the whole body."""
        if self._body_refused is not None:
            raise self._body_refused
        raw = b"".join(self._body_chunks or ()) or b"{}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("The request body is not valid UTF-8.") from None
        try:
            body = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
        except RecursionError:
            raise BadRequest(f"The request body is nested more than {limits.MAX_JSON_DEPTH} levels deep.") from None
        except ValueError as exc:
            raise BadRequest(f"The request body is not valid JSON: {limits.bounded(str(exc))}") from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        if check_values:
            limits.check_json_value(body)
        return body

    # -- responses --------------------------------------------------------------------------------
    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None, **kwargs: Any) -> Future[None]:
        if not self._prepared and not self._headers_written:
            # Answered before the body was read: tornado closes the connection after this response
            # (not reading the body). Say so, or the client's next request on it is reset.
            self.set_header("Connection", "close")
        return super().finish(chunk, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error is `{"message": str, "reason": str}` (Jupyter's own have `reason: null`)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, InfinStorError):
            status, message, reason = exc.status, exc.message, exc.reason
        else:
            status = status_code
            try:
                phrase = HTTPStatus(status)
                reason, default = phrase.name.lower(), phrase.phrase
            except ValueError:
                reason, default = "http_error", "HTTP error"
            if isinstance(exc, web.HTTPError):
                logged = exc.log_message % exc.args if exc.log_message and exc.args else exc.log_message
                message = logged or exc.reason or default
                reason = {500: "internal_error"}.get(status, reason)
            else:  # an unexpected exception: logged with its traceback by log_exception
                message, reason = "Internal server error; the Jupyter server's log has the details.", "internal_error"
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if status == 405:  # RFC 9110: say which methods the resource has
            self.set_header("Allow", ", ".join(getattr(exc, "allow", None) or self._methods()) + ", OPTIONS")
        self.finish(json.dumps({"message": limits.bounded(str(message)), "reason": reason}))

    def _methods(self) -> list[str]:
        """The verbs this handler implements (OPTIONS, Jupyter's CORS answer, aside)."""
        return [
            m
            for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            if getattr(type(self), m.lower()) is not getattr(web.RequestHandler, m.lower())
        ]

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(value, InfinStorError):
            # Expected outcomes (bad input, service down) are not server bugs: no traceback.
            self.log.warning("%s %s: %s", self.request.method, limits.clip(self.request.path, 300), limits.bounded(value.message))
            return
        super().log_exception(typ, value, tb)


class NotFoundHandler(InfinStorHandler):
    """Anything under the API prefix that no route matches: a JSON 404 (Jupyter's is a page)."""

    @web.authenticated
    @authorized
    async def get(self, rest: str) -> None:
        raise NotFound("No such InfinStor API route.")

    post = put = patch = delete = get


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limits.MAX_BODY_BYTES // (1024 * 1024)} MiB.")


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number (NaN and Infinity are refused)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is not finite")
    return value
