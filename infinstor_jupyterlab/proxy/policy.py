"""Which paths the MLflow proxy forwards: a pure function of the raw request path and method.

The proxy forwards `<base_url>infinstor/api/mlflow/<path>` to the tracking server. `<path>` is
checked here *as received* (still percent-encoded) and, when allowed, sent upstream byte for
byte, so what the tracking server sees is exactly what was checked. The rules:

- Only MLflow's own surface: its REST API (`api/2.0|3.0/mlflow/…`, `api/2.0/mlflow-artifacts/…`),
  the UI's API (`ajax-api/…`, `graphql`), artifact downloads (`get-artifact`,
  `model-versions/get-artifact`) and the UI itself (`` (index.html) and `static-files/…`).
- Of the company service's own API (`api/2.0/infinstor/…`), exactly the two calls the sidebar's
  Share dialog needs: `api/2.0/infinstor/permissions` (GET, POST, DELETE) and
  `api/2.0/infinstor/whoami` (GET). Nothing else in an `infinstor` namespace is forwarded, under
  `api/` or `ajax-api/`, in any version: in particular never `tokens`, whose answers carry API and
  job tokens that must not reach a browser, nor `audit`.
- MLflow's assistant is never forwarded (see `_DENY_PREFIXES`). The two calls MLflow's UI makes
  on every page load to learn whether an assistant is set up (`GET ajax-api/3.0/mlflow/assistant/
  config` and `…/providers`) are answered by the lab itself with "none" (`kind="local"`), so the UI
  shows no assistant instead of logging refusals.
- Never a traversal or a smuggled URL: no `.`/`..` segments, no empty segments (`//`), no
  backslashes, no encoded separators (`%2F`, `%5C`), no control characters or invalid UTF-8, at
  any level of percent-decoding (double-encoded `%252e%252e` is caught too). The upstream URL is always
  `<tracking uri>/<path>`, so the path can never change the host.

Anything else raises `PathRefused` (400 for malformed paths, 403 for paths outside the allowlist).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from ..errors import InfinStorError

Kind = Literal["ui", "api", "artifact", "local"]

MAX_PATH_LENGTH = 8192
# A path still changing after this many rounds of percent-decoding is refused outright.
MAX_DECODE_ROUNDS = 4

SAFE_METHODS = frozenset({"GET", "HEAD"})
ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

_ALLOWED_RAW = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$")  # RFC 3986 pchar and "/"
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class PathRefused(InfinStorError):
    """The proxy does not forward this path (nothing was sent to the tracking server)."""

    status = 403
    reason = "proxy_path_refused"
    allow: tuple[str, ...] = ()  # a 405: the methods the path does have

    @classmethod
    def method_not_allowed(cls, message: str, methods: frozenset[str]) -> PathRefused:
        refusal = cls(message, status=405)
        refusal.allow = tuple(m for m in METHOD_ORDER if m in methods)
        return refusal


class BadProxyPath(PathRefused):
    status = 400
    reason = "proxy_bad_path"


@dataclass(frozen=True)
class ProxyRoute:
    """An allowed request: `path` is sent upstream unchanged (still percent-encoded)."""

    path: str
    kind: Kind
    # kind "local": the JSON the lab answers itself (nothing is sent to the tracking server)
    answer: Any = None


@dataclass(frozen=True)
class _Rule:
    prefix: tuple[str, ...]  # leading segments
    exact: bool  # the path is exactly `prefix` (else: prefix plus at least one more segment)
    methods: frozenset[str]
    kind: Kind


# Order matters: the first rule whose prefix matches decides (denials come first).
_DENY_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    # MLflow's assistant runs coding agents and their tools on the server host; it is meant for a
    # user at the server's own console, not for requests relayed from a browser elsewhere.
    (("ajax-api", "3.0", "mlflow", "assistant"), "MLflow's assistant is not available through the proxy."),
    (("api", "3.0", "mlflow", "assistant"), "MLflow's assistant is not available through the proxy."),
)

# Answered by the lab, never forwarded: MLflow 3.17's UI asks both on every page load (and again
# when its Assistant panel opens), in the shapes of mlflow/server/assistant/api.py's
# ConfigResponse and ProvidersResponse. "No provider, no remote access" is the truth through the proxy.
_ASSISTANT = ("ajax-api", "3.0", "mlflow", "assistant")
_LOCAL_ANSWERS: dict[tuple[str, ...], dict[str, Any]] = {
    (*_ASSISTANT, "config"): {"providers": {}, "projects": {}, "remote_access_allowed": False},
    (*_ASSISTANT, "providers"): {"providers": [], "resolved": None, "gateway_vendor_options": {}},
}

# The company service's own API: only these exact paths, with these methods (see the module doc).
_INFINSTOR_API: dict[tuple[str, ...], frozenset[str]] = {
    ("api", "2.0", "infinstor", "permissions"): frozenset({"GET", "POST", "DELETE"}),
    ("api", "2.0", "infinstor", "whoami"): frozenset({"GET"}),
}
_INFINSTOR_REFUSED = (
    "Of the tracking service's own API only api/2.0/infinstor/permissions and "
    "api/2.0/infinstor/whoami are available through the proxy (never tokens)."
)

_RULES: tuple[_Rule, ...] = (
    _Rule(("",), True, SAFE_METHODS, "ui"),  # the UI's index.html
    _Rule(("static-files",), False, SAFE_METHODS, "ui"),
    _Rule(("get-artifact",), True, SAFE_METHODS, "artifact"),
    _Rule(("model-versions", "get-artifact"), True, SAFE_METHODS, "artifact"),
    _Rule(("api", "2.0", "mlflow-artifacts"), False, ALL_METHODS, "artifact"),
    _Rule(("ajax-api", "2.0", "mlflow-artifacts"), False, ALL_METHODS, "artifact"),
    _Rule(("api", "2.0", "mlflow"), False, ALL_METHODS, "api"),
    _Rule(("api", "3.0", "mlflow"), False, ALL_METHODS, "api"),
    _Rule(("ajax-api",), False, ALL_METHODS, "api"),
    _Rule(("graphql",), True, frozenset({"GET", "POST"}), "api"),
)

# Artifact downloads served by routes that are not under an artifact prefix.
_ARTIFACT_API_SUFFIXES = (
    ("get-trace-artifact",),
    ("artifacts", "files"),  # ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files
)


def _check_layer(layer: str, raw: str) -> None:
    if "\\" in layer:
        raise BadProxyPath(f"Backslashes are not allowed in proxied paths: {raw!r}")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in layer):
        raise BadProxyPath("Control characters are not allowed in proxied paths.")
    if layer.startswith("/"):
        raise BadProxyPath(f"Proxied paths must be relative to the tracking server: {raw!r}")
    segments = layer.split("/")
    for index, segment in enumerate(segments):
        if segment in (".", ".."):
            raise BadProxyPath(f"Relative segments ('.' or '..') are not allowed: {raw!r}")
        if segment == "" and 0 < index < len(segments) - 1:
            raise BadProxyPath(f"Empty path segments ('//') are not allowed: {raw!r}")
    if "://" in layer or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", layer):
        raise BadProxyPath(f"Absolute URLs are not allowed in proxied paths: {raw!r}")


def _decode_layers(raw: str) -> list[str]:
    layers = [raw]
    for _ in range(MAX_DECODE_ROUNDS):
        try:
            decoded = unquote(layers[-1], encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise BadProxyPath("The proxied path is not valid UTF-8 once decoded.") from None
        if decoded == layers[-1]:
            return layers
        layers.append(decoded)
    raise BadProxyPath("The proxied path is percent-encoded too many times.")


def _matches(segments: list[str], rule: _Rule) -> bool:
    n = len(rule.prefix)
    if rule.exact:
        return segments == list(rule.prefix) or (
            # tolerate a trailing slash on exact routes other than the root
            rule.prefix != ("",) and segments == [*rule.prefix, ""]
        )
    return len(segments) > n and segments[:n] == list(rule.prefix) and segments[n] != ""


def resolve(raw_path: str, method: str) -> ProxyRoute:
    """Check `raw_path` (the part after `…/mlflow/`, as received, percent-encoded) for `method`.

    Returns the route to forward, or raises `BadProxyPath` (400) or `PathRefused` (403).
    """
    method = method.upper()
    if method not in ALL_METHODS:
        raise PathRefused.method_not_allowed(f"The MLflow proxy does not forward {method} requests.", ALL_METHODS)
    if len(raw_path) > MAX_PATH_LENGTH:
        raise BadProxyPath("The proxied path is too long.")
    if not _ALLOWED_RAW.match(raw_path):
        raise BadProxyPath(f"The proxied path contains characters that must be encoded: {raw_path!r}")
    if _BAD_PERCENT.search(raw_path):
        raise BadProxyPath(f"The proxied path has a malformed percent-escape: {raw_path!r}")
    if _ENCODED_SEPARATOR.search(raw_path):
        raise BadProxyPath(f"Encoded '/' or '\\' are not allowed in proxied paths: {raw_path!r}")
    layers = _decode_layers(raw_path)
    for layer in layers:
        _check_layer(layer, raw_path)

    # The tracking server decodes once: match the allowlist on what it will route on.
    segments = layers[1].split("/") if len(layers) > 1 else raw_path.split("/")
    answer = _LOCAL_ANSWERS.get(tuple(segments))
    if answer is not None and method in SAFE_METHODS:
        return ProxyRoute(path=raw_path, kind="local", answer=answer)
    for prefix, message in _DENY_PREFIXES:
        if segments[: len(prefix)] == list(prefix):
            raise PathRefused(message)
    if len(segments) >= 3 and segments[0] in ("api", "ajax-api") and segments[2] == "infinstor":
        # An exact match (a trailing slash tolerated) or nothing: `ajax-api/…` would otherwise match.
        key = tuple(segments[:-1] if len(segments) == 5 and segments[-1] == "" else segments)
        methods = _INFINSTOR_API.get(key)
        if methods is None:
            raise PathRefused(_INFINSTOR_REFUSED)
        if method not in methods:
            raise PathRefused.method_not_allowed(
                f"{method} is not allowed on /{'/'.join(key)} through the MLflow proxy.", methods
            )
        return ProxyRoute(path=raw_path, kind="api")
    for rule in _RULES:
        if _matches(segments, rule):
            if method not in rule.methods:
                raise PathRefused.method_not_allowed(
                    f"{method} is not allowed on /{'/'.join(rule.prefix)} through the MLflow proxy.", rule.methods
                )
            kind = rule.kind
            if kind == "api" and any(
                tuple(segments[-len(s):]) == s for s in _ARTIFACT_API_SUFFIXES
            ):
                kind = "artifact"
            return ProxyRoute(path=raw_path, kind=kind)
    raise PathRefused(
        f"Only MLflow's REST API, artifacts and web UI are available through the proxy, "
        f"not /{raw_path[:200]}."
    )


def strip_credentials_from_query(query: str) -> str:
    """Drop Jupyter's own credentials (`token`, `_xsrf`) from a raw query string, keep the rest as is."""
    if not query:
        return query
    kept = [
        part
        for part in query.split("&")
        if unquote(part.split("=", 1)[0]).lower() not in ("token", "_xsrf")
    ]
    return "&".join(kept)
