"""Where a tracking service is: its URL forms (https://, loopback http://, infinstor://) and origin.

Kept apart from the credential manager so MLflow's plugins (loaded by every `import mlflow`, in
kernels and in the tracking service's Lambda cold start) need not import the OIDC client.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit, urlunsplit

from ..errors import BadRequest

SERVICE_URI_ENV = "INFINSTOR_SERVICE_URI"  # the service the lab and its kernels sign in to
INSECURE_LOOPBACK_ENV = "INFINSTOR_INSECURE_LOOPBACK"
SCHEME = "infinstor"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_loopback_allowed() -> bool:
    return os.environ.get(INSECURE_LOOPBACK_ENV, "").strip().lower() in ("1", "true", "yes")


def service_http_url(url: str) -> str:
    """The http(s) URL of a service given as https://, http:// (loopback) or infinstor://.

    `infinstor://HOST[:PORT][/PATH]` means HTTPS, or plain HTTP for a loopback host when
    $INFINSTOR_INSECURE_LOOPBACK=1 (tests, local development). Credentials are never sent over
    plain HTTP to anything but loopback.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BadRequest(f"{url!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if not host:
        raise BadRequest(f"{url!r} has no host name")
    if scheme == SCHEME:
        scheme = "http" if is_loopback(host) and insecure_loopback_allowed() else "https"
    elif scheme == "http":
        if not is_loopback(host):
            raise BadRequest(f"Refusing to send credentials over plain http to {host}: use https:// (or infinstor://).")
    elif scheme != "https":
        raise BadRequest(f"{url!r}: the tracking service must be an https://, infinstor:// or loopback http:// URL")
    return urlunsplit((scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def service_origin(url: str) -> str:
    """The key credentials are stored under: scheme://host[:port] of the service."""
    parts = urlsplit(service_http_url(url))
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def same_service(url: str, service: str) -> bool:
    try:
        return service_origin(url) == service_origin(service)
    except BadRequest:
        return False
