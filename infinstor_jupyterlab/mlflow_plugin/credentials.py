"""Which credentials go with a request to the current tracking URI.

Kernels, terminals and the CLI never hold a token in their environment: they hold the *path* of a
private file, read when a request is made, so `os.environ` and `!env` show nothing secret.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..credentials.secret import SECRET_FILE_ENV, read_secret

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


def signed_in_service_for(target_uri: str) -> str | None:
    """The service origin whose signed-in credentials go with a request to `target_uri`, if any.

    That is the service the lab configured ($INFINSTOR_SERVICE_URI), or the one an
    `infinstor://HOST/` tracking URI names; requests to any other host get nothing.
    """
    from ..credentials.urls import SCHEME, SERVICE_URI_ENV, same_service, service_origin

    candidates = [os.environ.get(SERVICE_URI_ENV, "")]
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    if tracking.lower().startswith(SCHEME + ":"):
        candidates.append(tracking)
    if target_uri.lower().startswith(SCHEME + ":"):
        candidates.append(target_uri)
    try:
        from mlflow.tracking._tracking_service.utils import get_tracking_uri

        current = get_tracking_uri()
        if current.lower().startswith(SCHEME + ":"):
            candidates.append(current)
    except Exception:
        pass
    for service in candidates:
        if service and same_service(target_uri, service):
            return service_origin(service)
    return None


_managers: dict[tuple[str, str], object] = {}


def _manager(service: str):
    from ..credentials.manager import CredentialManager
    from ..credentials.tokens import TokenStore, default_store_path

    key = (service, str(default_store_path()))
    manager = _managers.get(key)
    if manager is None:
        manager = _managers[key] = CredentialManager(service, store=TokenStore(key[1]))
    return manager


def signed_in_authorization(target_uri: str) -> str | None:
    service = signed_in_service_for(target_uri)
    if service is None:
        return None
    from ..errors import InfinStorError

    try:
        return f"Bearer {_manager(service).access_token()}"
    except InfinStorError:
        # Not signed in (or the session ended): the service answers 401 with how to sign in.
        return None


# A job running away from the lab (EC2 VM agent): the path of a 0600 file holding its short-lived,
# run-scoped job token, and the tracking URI the token is for (it goes to no other origin).
JOB_TOKEN_FILE_ENV = "INFINSTOR_JOB_TOKEN_FILE"
JOB_TOKEN_URI_ENV = "INFINSTOR_JOB_TRACKING_URI"


def job_token_applies(target_uri: str) -> bool:
    uri = os.environ.get(JOB_TOKEN_URI_ENV)
    return bool(os.environ.get(JOB_TOKEN_FILE_ENV) and uri and same_origin(target_uri, uri))


def job_token_authorization(target_uri: str) -> str | None:
    if not job_token_applies(target_uri):
        return None
    token = _read_cached(os.environ[JOB_TOKEN_FILE_ENV])
    return f"Bearer {token}" if token else None


def authorization_for(tracking_uri: str) -> str | None:
    """The Authorization header value for `tracking_uri`, or None if we hold no credential for it."""
    if job_token_applies(tracking_uri):
        return job_token_authorization(tracking_uri)
    embedded = os.environ.get(EMBEDDED_URI_ENV)
    secret_file = os.environ.get(SECRET_FILE_ENV)
    if embedded and secret_file and same_origin(tracking_uri, embedded):
        secret = _read_cached(secret_file)
        if secret:
            return f"Bearer {secret}"
        return None
    return signed_in_authorization(tracking_uri)
