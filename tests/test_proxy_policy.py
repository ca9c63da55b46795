"""The MLflow proxy's path policy and header rules (pure functions, no server)."""

from __future__ import annotations

import pytest

from infinstor_jupyterlab.lab.proxy.forwarder import (
    browser_response_headers,
    credential_secrets,
    rewrite_location,
    upstream_request_headers,
)
from infinstor_jupyterlab.lab.proxy.policy import (
    BadProxyPath,
    PathRefused,
    resolve,
    strip_credentials_from_query,
)

ALLOWED = [
    ("", "GET", "ui"),
    ("", "HEAD", "ui"),
    ("static-files/static/js/main.c2f5f8d4.js", "GET", "ui"),
    ("static-files/favicon.ico", "GET", "ui"),
    ("static-files/lib/notebook-trace-renderer/index.html", "GET", "ui"),
    ("api/2.0/mlflow/experiments/search", "POST", "api"),
    ("api/2.0/mlflow/runs/get", "GET", "api"),
    ("api/2.0/mlflow/registered-models/delete", "DELETE", "api"),
    ("api/2.0/mlflow/runs/update", "PATCH", "api"),
    ("api/3.0/mlflow/traces/search", "POST", "api"),
    ("ajax-api/2.0/mlflow/runs/search", "POST", "api"),
    ("ajax-api/3.0/mlflow/server-info", "GET", "api"),
    ("ajax-api/3.0/jobs/search", "POST", "api"),
    ("graphql", "POST", "api"),
    ("graphql", "GET", "api"),
    ("get-artifact", "GET", "artifact"),
    ("model-versions/get-artifact", "GET", "artifact"),
    ("ajax-api/2.0/mlflow/get-trace-artifact", "GET", "artifact"),
    ("ajax-api/2.0/mlflow/logged-models/m-123/artifacts/files", "GET", "artifact"),
    ("api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/model.pkl", "GET", "artifact"),
    ("api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/model.pkl", "PUT", "artifact"),
    ("api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/model.pkl", "DELETE", "artifact"),
    ("ajax-api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/x.txt", "GET", "artifact"),
    ("api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/r%C3%A9sum%C3%A9%20final.txt", "GET", "artifact"),
    ("api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/a..b/c.txt", "GET", "artifact"),
    ("api/2.0/mlflow/experiments/search/", "POST", "api"),
]


@pytest.mark.parametrize("path,method,kind", ALLOWED)
def test_mlflow_paths_are_allowed(path, method, kind):
    route = resolve(path, method)
    assert route.kind == kind
    assert route.path == path  # forwarded byte for byte


TRAVERSAL = [
    "../etc/passwd",
    "api/2.0/mlflow/../../../etc/passwd",
    "api/2.0/mlflow/./runs/get",
    "api/2.0/mlflow/%2e%2e/%2e%2e/admin",
    "api/2.0/mlflow/%2E%2E/secret",
    "api/2.0/mlflow/.%2e/secret",
    "api/2.0/mlflow/%252e%252e/%252e%252e/secret",  # double-encoded
    "api/2.0/mlflow/%25252e%25252e/secret",  # triple-encoded
    "api/2.0/mlflow/..%2fsecret",
    "api/2.0/mlflow/..%2Fsecret",
    "api/2.0/mlflow/%2fetc%2fpasswd",
    "api/2.0/mlflow/..%5csecret",
    "api/2.0/mlflow/..%255csecret",
    "api/2.0/mlflow/..\\secret",
    "static-files\\..\\..\\secret",
    "static-files/%c0%ae%c0%ae/secret",  # overlong UTF-8 dot
    "api/2.0/mlflow//runs/get",
    "/etc/passwd",
    "//evil.example.com/api/2.0/mlflow/runs/get",
    "api/2.0/mlflow/runs%00/get",
    "api/2.0/mlflow/runs%0d%0aX-Injected:%201",
    "api/2.0/mlflow/runs/get%",
    "api/2.0/mlflow/runs/get%zz",
    "api/2.0/mlflow-artifacts/artifacts/0/../../../../root/.ssh/id_rsa",
]


@pytest.mark.parametrize("path", TRAVERSAL)
def test_traversal_and_smuggling_are_malformed(path):
    with pytest.raises(BadProxyPath) as info:
        resolve(path, "GET")
    assert info.value.status == 400
    assert info.value.reason == "proxy_bad_path"


ABSOLUTE = [
    "http://evil.example.com/api/2.0/mlflow/runs/get",
    "https:/evil.example.com/",
    "http%3A%2F%2Fevil.example.com%2F",
    "http%3a//evil.example.com/",
    "%2F%2Fevil.example.com/x",
    "javascript:alert(1)",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("path", ABSOLUTE)
def test_absolute_urls_are_refused(path):
    with pytest.raises(PathRefused) as info:
        resolve(path, "GET")
    assert info.value.status in (400, 403)


NOT_MLFLOW = [
    "etc/passwd",
    "health",
    "version",
    "admin",
    "api/2.0/other/thing",
    "api/2.0/mlflowx/runs/get",
    "api/2.0",
    "api/2.0/mlflow",
    "api/2.0/mlflow/",
    "ajax-api",
    "ajax-api/",
    "static-files",
    "static-files/",
    "gateway/mlflow/v1/chat/completions",
    "v1/traces",
    "ajax-api/3.0/mlflow/assistant/message",
    "ajax-api/3.0/mlflow/assistant/sessions/s1/stream",
    "ajax-api/3.0/mlflow/assistant/config/",
    "ajax-api/3.0/mlflow/assistant/providers/claude_code/health",
    "api/3.0/mlflow/assistant/config",
    "get-artifact/../x",
    "@evil.example.com",
    "API/2.0/mlflow/runs/get",
    "index.html",
]


def test_assistant_config_is_answered_by_the_lab_as_disabled():
    # MLflow's UI asks these two on every page load; the lab answers "no assistant" itself
    # (the assistant is never proxied) instead of a refusal in the browser's console.
    config = resolve("ajax-api/3.0/mlflow/assistant/config", "GET")
    assert config.kind == "local"
    assert config.answer == {"providers": {}, "projects": {}, "remote_access_allowed": False}
    providers = resolve("ajax-api/3.0/mlflow/assistant/providers", "GET")
    assert providers.kind == "local"
    assert providers.answer == {"providers": [], "resolved": None, "gateway_vendor_options": {}}
    # Everything else the assistant does (changing its config included) stays refused.
    for method in ("PUT", "POST", "DELETE"):
        with pytest.raises(PathRefused):
            resolve("ajax-api/3.0/mlflow/assistant/config", method)


@pytest.mark.parametrize("path", NOT_MLFLOW)
def test_other_paths_are_refused(path):
    with pytest.raises(PathRefused) as info:
        resolve(path, "GET")
    assert info.value.status in (400, 403)


@pytest.mark.parametrize(
    "path,method",
    [
        ("", "POST"),
        ("static-files/x.js", "PUT"),
        ("get-artifact", "POST"),
        ("model-versions/get-artifact", "DELETE"),
        ("graphql", "PUT"),
        ("api/2.0/mlflow/runs/get", "OPTIONS"),
        ("api/2.0/mlflow/runs/get", "TRACE"),
        ("api/2.0/mlflow/runs/get", "CONNECT"),
    ],
)
def test_methods_are_limited(path, method):
    with pytest.raises(PathRefused) as info:
        resolve(path, method)
    assert info.value.status == 405


def test_overlong_paths_are_refused():
    with pytest.raises(BadProxyPath):
        resolve("api/2.0/mlflow/" + "a" * 9000, "GET")


def test_query_credentials_are_stripped():
    assert strip_credentials_from_query("") == ""
    assert strip_credentials_from_query("token=abc") == ""
    assert strip_credentials_from_query("run_id=1&token=abc&path=a%2Fb") == "run_id=1&path=a%2Fb"
    assert strip_credentials_from_query("_xsrf=1&x=2&TOKEN=3&%74oken=4") == "x=2"
    assert strip_credentials_from_query("tokens=1&my_token=2") == "tokens=1&my_token=2"


def test_request_headers_drop_jupyter_credentials_and_hop_by_hop():
    browser = [
        ("Host", "lab.example.com"),
        ("Cookie", "username-lab=secret-cookie; _xsrf=x"),
        ("Authorization", "token jupyter-token"),
        ("X-XSRFToken", "xsrf"),
        ("Connection", "keep-alive, X-Custom-Hop"),
        ("X-Custom-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("Te", "trailers"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("Origin", "http://lab.example.com"),
        ("Referer", "http://lab.example.com/lab?token=jupyter-token"),
        ("X-Forwarded-For", "1.2.3.4"),
        ("Forwarded", "for=1.2.3.4"),
        ("Sec-Fetch-Site", "same-origin"),
        ("Content-Length", "12"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("Accept-Encoding", "gzip"),
        ("Range", "bytes=0-99"),
        ("X-MLflow-Client-Version", "3.17.2"),
    ]
    out = upstream_request_headers(browser, {"Authorization": "Bearer upstream-secret"})
    names = {name.lower() for name in out}
    assert out["Authorization"] == "Bearer upstream-secret"
    assert len(out.get_list("Authorization")) == 1
    for gone in (
        "host",
        "cookie",
        "x-xsrftoken",
        "connection",
        "x-custom-hop",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "proxy-authorization",
        "origin",
        "referer",
        "x-forwarded-for",
        "forwarded",
        "sec-fetch-site",
        "content-length",
    ):
        assert gone not in names, gone
    for kept in ("content-type", "accept", "accept-encoding", "range", "x-mlflow-client-version"):
        assert kept in names, kept


def test_response_headers_drop_cookies_challenges_and_secrets():
    upstream = [
        ("Content-Type", "application/json"),
        ("Content-Length", "10"),
        ("Set-Cookie", "session=upstream; Path=/"),
        ("WWW-Authenticate", 'Basic realm="mlflow"'),
        ("Strict-Transport-Security", "max-age=31536000"),
        ("Clear-Site-Data", '"cookies"'),
        ("Access-Control-Allow-Origin", "*"),
        ("Connection", "close, X-Hop"),
        ("X-Hop", "1"),
        ("Transfer-Encoding", "chunked"),
        ("Location", "/x"),
        ("X-Echo", "Bearer upstream-secret-value"),
        ("X-Token", "upstream-secret-value"),
        ("ETag", '"abc"'),
        ("Cache-Control", "max-age=60"),
        ("Content-Disposition", "attachment; filename=model.pkl"),
        ("X-Frame-Options", "SAMEORIGIN"),
    ]
    secrets = credential_secrets({"Authorization": "Bearer upstream-secret-value"})
    out = browser_response_headers(upstream, secrets)
    names = [name.lower() for name, _ in out]
    assert names == ["content-type", "content-length", "etag", "cache-control", "content-disposition", "x-frame-options"]


@pytest.mark.parametrize(
    "location,expected",
    [
        ("/static-files/x", "/base/infinstor/api/mlflow/static-files/x"),
        ("http://127.0.0.1:5000/#/experiments/1", "/base/infinstor/api/mlflow/#/experiments/1"),
        ("http://127.0.0.1:5000/ajax-api/x?a=1", "/base/infinstor/api/mlflow/ajax-api/x?a=1"),
        ("//127.0.0.1:5000/x", "/base/infinstor/api/mlflow/x"),
        ("relative/path", "relative/path"),
        ("?a=1", "?a=1"),
        ("http://evil.example.com/x", None),
        ("https://127.0.0.1:5000/x", None),
        ("//evil.example.com/x", None),
        ("http://127.0.0.1:5001/x", None),
        ("", None),
    ],
)
def test_redirects_stay_inside_the_proxy(location, expected):
    assert rewrite_location(location, "http://127.0.0.1:5000", "/base/infinstor/api/mlflow/") == expected


# Forms a browser's URL parser (WHATWG) resolves to another host, though they do not look absolute:
# backslashes count as slashes in http(s) URLs, tabs and newlines are removed anywhere, leading and
# trailing control characters and spaces are stripped. Encoded forms are refused too (belt and braces).
OFF_SITE_LOCATIONS = [
    "\\\\evil.example/x",
    "\\/evil.example/x",
    "/\\evil.example/x",
    "\\\\\\evil.example/x",
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    "\t//evil.example/x",
    " //evil.example/x",
    "\x01//evil.example/x",
    "/\r\n/evil.example/x",
    "///evil.example/x",
    "http:\\\\evil.example\\x",
    "https:/\\evil.example/x",
    "http:evil.example/x",
    "http:/evil.example/x",
    "h\ttp://evil.example/x",
    "javascript:alert(1)",
    "%2F%2Fevil.example/x",
    "%5C%5Cevil.example/x",
    "/%5Cevil.example/x",
    "%252F%252Fevil.example/x",
    "http://127.0.0.1:5000@evil.example/x",
]


@pytest.mark.parametrize("location", OFF_SITE_LOCATIONS)
def test_redirects_that_browsers_resolve_off_site_are_refused(location):
    assert rewrite_location(location, "http://127.0.0.1:5000", "/base/infinstor/api/mlflow/") is None


@pytest.mark.parametrize(
    "location,expected",
    [
        ("/static-files/a\\b", "/base/infinstor/api/mlflow/static-files/a/b"),
        ("/static-files/\tx", "/base/infinstor/api/mlflow/static-files/x"),
        ("  /static-files/x  ", "/base/infinstor/api/mlflow/static-files/x"),
        ("http:\\\\127.0.0.1:5000\\x", "/base/infinstor/api/mlflow/x"),
        ("a\\b", "a/b"),
        # the backslash ends the host for a browser: this is 127.0.0.1:5000's path /@evil.example/x
        ("//127.0.0.1:5000\\@evil.example/x", "/base/infinstor/api/mlflow/@evil.example/x"),
        ("static-files/%2e%2e/x", "static-files/%2e%2e/x"),
    ],
)
def test_redirects_are_normalised_as_browsers_read_them(location, expected):
    assert rewrite_location(location, "http://127.0.0.1:5000", "/base/infinstor/api/mlflow/") == expected


def test_tabs_in_upstream_header_values_become_spaces_and_control_characters_drop_the_header():
    out = browser_response_headers([("X-A", "a\tb"), ("X-B", "a\x01b"), ("X-C", "ok")])
    assert out == [("X-A", "a b"), ("X-C", "ok")]


def test_redirects_under_a_tracking_uri_with_a_path():
    uri = "https://mlflow.example.com/tracking"
    prefix = "/lab/infinstor/api/mlflow/"
    assert rewrite_location("/tracking/x", uri, prefix) == "/lab/infinstor/api/mlflow/x"
    assert rewrite_location("https://mlflow.example.com/tracking/", uri, prefix) == prefix
    assert rewrite_location("/elsewhere", uri, prefix) is None
    assert rewrite_location("/trackingx", uri, prefix) is None


# -- the company service's own API: exactly the Share dialog's two calls ---------------------------------
@pytest.mark.parametrize(
    "path,method",
    [
        ("api/2.0/infinstor/permissions", "GET"),
        ("api/2.0/infinstor/permissions", "POST"),
        ("api/2.0/infinstor/permissions", "DELETE"),
        ("api/2.0/infinstor/permissions/", "GET"),
        ("api/2.0/infinstor/whoami", "GET"),
    ],
)
def test_sharing_calls_are_allowed(path, method):
    route = resolve(path, method)
    assert route.kind == "api" and route.path == path


INFINSTOR_REFUSED = [
    "api/2.0/infinstor/tokens",
    "api/2.0/infinstor/tokens/",
    "api/2.0/infinstor/tokens/3f2a9c0d1e4b5a6f",
    "api/2.0/infinstor/%74okens",  # decoded once by the service: 'tokens'
    "api/2.0/infinstor/%2574okens",
    "api/2.0/infinstor/audit",
    "api/2.0/infinstor/",
    "api/2.0/infinstor",
    "api/2.0/infinstor/permissions/x",
    "api/2.0/infinstor/permissions;tokens",
    "api/2.0/infinstor/whoami/tokens",
    "api/2.0/infinstor/frobnicate",
    "api/3.0/infinstor/permissions",
    "api/3.0/infinstor/tokens",
    "ajax-api/2.0/infinstor/tokens",
    "ajax-api/2.0/infinstor/permissions",
    "ajax-api/2.0/infinstor/whoami",
    "ajax-api/3.0/infinstor/tokens",
    "ajax-api/2.0/infinstor/audit",
    "API/2.0/infinstor/permissions",
    "api/2.0/INFINSTOR/permissions",
]


@pytest.mark.parametrize("path", INFINSTOR_REFUSED)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_other_infinstor_api_paths_are_refused(path, method):
    """Above all `tokens`: its answers carry API and job tokens, which must never reach a browser."""
    with pytest.raises(PathRefused) as info:
        resolve(path, method)
    assert info.value.status == 403, (path, method, info.value.status)


@pytest.mark.parametrize(
    "path",
    [
        "api/2.0/infinstor/permissions/..%2Ftokens",
        "api/2.0/infinstor/permissions/../tokens",
        "api/2.0/infinstor/permissions%2f..%2ftokens",
        "api/2.0/infinstor//tokens",
    ],
)
def test_smuggling_into_tokens_is_malformed(path):
    with pytest.raises(BadProxyPath):
        resolve(path, "GET")


@pytest.mark.parametrize(
    "path,method",
    [
        ("api/2.0/infinstor/permissions", "PUT"),
        ("api/2.0/infinstor/permissions", "PATCH"),
        ("api/2.0/infinstor/permissions", "HEAD"),
        ("api/2.0/infinstor/whoami", "POST"),
        ("api/2.0/infinstor/whoami", "DELETE"),
        ("api/2.0/infinstor/whoami", "PUT"),
    ],
)
def test_sharing_calls_methods_are_limited(path, method):
    with pytest.raises(PathRefused) as info:
        resolve(path, method)
    assert info.value.status == 405
