"""Which credentials go with a request to the current tracking URI.

Kernels, terminals and the CLI never hold a token in their environment: they hold the *path* of a
private file, read when a request is made, so `os.environ` and `!env` show nothing secret.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..auth.secret import SECRET_FILE_ENV, read_secret

EMBEDDED_URI_ENV = "INFINSTOR_EMBEDDED_URI"


def _origin(uri: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(uri)
        return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
    except ValueError:
        return None


def same_origin(a: str, b: str) -> bool:
    oa, ob = _origin(a), _origin(b)
    return oa is not None and oa == ob and bool(oa[1])


_cache: dict[str, tuple[float, str]] = {}


def _read_cached(path: str) -> str | None:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    hit = _cache.get(path)
    if hit and hit[0] == mtime:
        return hit[1]
    try:
        value = read_secret(path)
    except OSError:
        return None
    _cache[path] = (mtime, value)
    return value


def authorization_for(tracking_uri: str) -> str | None:
    """The Authorization header value for `tracking_uri`, or None if we hold no credential for it."""
    embedded = os.environ.get(EMBEDDED_URI_ENV)
    secret_file = os.environ.get(SECRET_FILE_ENV)
    if embedded and secret_file and same_origin(tracking_uri, embedded):
        secret = _read_cached(secret_file)
        if secret:
            return f"Bearer {secret}"
    return None
