"""The MLflow proxy against a recording stand-in tracking server: what reaches it, and what does not.

The real MLflow upstream (the embedded service) is covered in test_proxy.py; here the upstream
records every request, so the tests can prove that refused paths never reach it, and it can
misbehave (slow, stalled, redirecting, leaking headers, demanding fresh credentials).
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote

import pytest

from infinstor_jupyterlab.lab.tracking.remote import RemoteTrackingServer
from proxy_helpers import RecordingUpstream, free_port, pfetch

UPSTREAM_SECRET = "Bearer upstream-credential-7f3a9c"


@pytest.fixture
def upstream():
    server = RecordingUpstream(slow_seconds=5.0)
    yield server
    server.stop()


@pytest.fixture
def jp_server_config(upstream):
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jupyterlab": True}},
        "InfinStor": {
            "tracking_uri": upstream.uri,
            "proxy_connect_timeout": 2.0,
            "proxy_request_timeout": 1.0,
            "proxy_idle_timeout": 1.0,
            "proxy_replay_limit": 4096,
        },
    }


@pytest.fixture
def proxy(jp_serverapp):
    return jp_serverapp.web_app.settings["infinstor_proxy"]


@pytest.fixture
def credentials(proxy, monkeypatch):
    """The backend hands out UPSTREAM_SECRET (as a signed-in user's token would be)."""
    tracking = proxy.tracking

    async def request_headers():
        return {"Authorization": UPSTREAM_SECRET}

    monkeypatch.setattr(tracking, "request_headers", request_headers)
    return tracking


@pytest.fixture
def fetch(http_server_client, jp_base_url, jp_auth_header):
    async def _fetch(path, **kw):
        return await pfetch(http_server_client, jp_base_url, jp_auth_header, path, **kw)

    return _fetch


def error_of(response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = json.loads(response.body)
    assert set(body) >= {"message", "reason"}, body
    return body


REFUSED = [
    # (raw path, expected statuses)
    ("etc/passwd", (403,)),
    ("health", (403,)),
    ("api/2.0/mlflow/../../etc/passwd", (400, 404)),  # tornado may normalise nothing: 400 from policy
    ("api/2.0/mlflow/%2e%2e/%2e%2e/etc/passwd", (400,)),
    ("api/2.0/mlflow/%252e%252e/%252e%252e/etc/passwd", (400,)),
    ("api/2.0/mlflow/..%2fadmin", (400,)),
    ("api/2.0/mlflow/..%5cadmin", (400,)),
    ("api/2.0/mlflow/..%255cadmin", (400,)),
    ("static-files/..%5c..%5csecret", (400,)),
    ("/evil.example.com/api/2.0/mlflow/echo", (400,)),
    ("http://evil.example.com/api/2.0/mlflow/echo", (400,)),
    ("http:%2F%2Fevil.example.com%2Fapi", (400,)),
    ("%2F%2Fevil.example.com/api/2.0/mlflow/echo", (400,)),
    ("@evil.example.com/api/2.0/mlflow/echo", (403,)),
    ("gateway/mlflow/v1/chat/completions", (403,)),
    ("ajax-api/3.0/mlflow/assistant/message", (403,)),
    ("ajax-api/3.0/mlflow/assistant/providers/claude_code/health", (403,)),
]


async def test_refused_paths_never_reach_the_tracking_server(fetch, upstream, credentials):
    for path, statuses in REFUSED:
        for method, body in (("GET", None), ("POST", {"x": 1})):
            response = await fetch(path, method=method, body=body)
            assert response.code in statuses + (405,), (path, method, response.code, response.body)
            if response.code in (400, 403, 405):
                reason = error_of(response)["reason"]
                assert reason.startswith("proxy_"), (path, reason)
    assert upstream.requests == [], upstream.paths()


async def test_assistant_config_is_answered_by_the_lab_not_forwarded(fetch, upstream, credentials):
    config = await fetch("ajax-api/3.0/mlflow/assistant/config")
    assert config.code == 200
    assert config.headers["Content-Type"].startswith("application/json")
    assert json.loads(config.body) == {"providers": {}, "projects": {}, "remote_access_allowed": False}
    providers = await fetch("ajax-api/3.0/mlflow/assistant/providers")
    assert providers.code == 200
    assert json.loads(providers.body)["providers"] == []
    changed = await fetch("ajax-api/3.0/mlflow/assistant/config", method="PUT", body={"providers": {"x": {}}})
    assert changed.code in (403, 405)
    assert upstream.requests == [], upstream.paths()


async def test_absolute_form_request_and_other_host_are_not_forwarded(
    http_server_client, jp_base_url, jp_auth_header, upstream, credentials, lab_port
):
    # An absolute-form request target naming another host, and a Host header naming another host.
    for target, host in (
        (f"http://evil.example.com{jp_base_url}infinstor/api/mlflow/api/2.0/mlflow/echo", "127.0.0.1"),
        (f"{jp_base_url}infinstor/api/mlflow/api/2.0/mlflow/echo", "evil.example.com"),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", lab_port)
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {jp_auth_header['Authorization']}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        status = int(data.split(b" ", 2)[1])
        assert status in (400, 403, 404), data[:300]
    assert upstream.requests == [], upstream.paths()


async def test_forwarded_request_has_our_credentials_not_the_browsers(fetch, upstream, credentials, lab_port, jp_auth_header):
    jupyter_token = jp_auth_header["Authorization"].split()[1]
    response = await fetch(
        "api/2.0/mlflow/runs/echo",
        method="POST",
        body={"run_id": "r1"},
        query=f"a=1&token={jupyter_token}&b=%2Fx",
        headers={
            "Cookie": "username-127-0-0-1=jupyter-cookie; _xsrf=xsrf-cookie",
            "X-XSRFToken": "xsrf-header",
            "Origin": f"http://127.0.0.1:{lab_port}",
            "Referer": f"http://127.0.0.1:{lab_port}/lab?token=jupyter-token-in-referer",
            "X-Forwarded-For": "10.0.0.1",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "hop",
            "Accept": "application/json",
        },
    )
    assert response.code == 200, response.body
    [seen] = upstream.requests
    headers = {k.lower(): v for k, v in seen["header_list"]}
    assert seen["uri"] == "/api/2.0/mlflow/runs/echo?a=1&b=%2Fx"
    assert headers["authorization"] == UPSTREAM_SECRET
    assert [k for k, _ in seen["header_list"]].count("Authorization") == 1
    assert headers["host"] == f"127.0.0.1:{upstream.port}"
    for gone in ("cookie", "x-xsrftoken", "origin", "referer", "x-forwarded-for", "x-hop"):
        assert gone not in headers, gone
    assert "jupyter" not in json.dumps(seen["header_list"]).lower()
    assert jupyter_token not in json.dumps(seen["header_list"]) + seen["uri"]
    assert headers["accept"] == "application/json"
    assert json.loads(seen["body"]) == {"run_id": "r1"}


async def test_upstream_cookies_challenges_and_credentials_never_reach_the_browser(fetch, upstream, credentials):
    response = await fetch("api/2.0/mlflow/leak")
    assert response.code == 200
    assert json.loads(response.body) == {"ok": True}
    cookies = response.headers.get_list("Set-Cookie")
    assert not any("upstream_session" in c or c.startswith("other=") for c in cookies), cookies
    for name in ("WWW-Authenticate", "Strict-Transport-Security", "Clear-Site-Data", "X-Echo-Authorization"):
        assert name not in response.headers, name
    assert response.headers.get("Access-Control-Allow-Origin") != "*"
    raw_headers = "\n".join(f"{k}: {v}" for k, v in response.headers.get_all())
    assert UPSTREAM_SECRET.split()[1] not in raw_headers


@pytest.mark.timeout(60)
async def test_answers_without_a_body_never_stall_the_server(fetch, upstream, credentials):
    # aiohttp hands every body-less response (304, 204, HEAD) the same shared empty stream, which
    # says "end of an HTTP chunk" forever once it has been read: the forwarder spun on it without
    # yielding, and the whole Jupyter server stopped answering (a browser revalidating MLflow UI's
    # cached files twice was enough; bench/sidebar.py's page-load step hit it).
    for _ in range(3):
        revalidated = await fetch("api/2.0/mlflow/not-modified", headers={"If-None-Match": '"v1"'})
        assert revalidated.code == 304
        head = await fetch("api/2.0/mlflow/big-file", method="HEAD")
        assert head.code == 200
        assert head.headers["Content-Length"] == str(1024 * 1024)
    echo = await fetch("api/2.0/mlflow/echo")
    assert echo.code == 200


async def test_redirects_are_rewritten_into_the_proxy_or_refused(fetch, upstream, credentials, jp_base_url):
    inside = await fetch("api/2.0/mlflow/redirect-inside")
    assert inside.code == 302
    assert inside.headers["Location"] == f"{jp_base_url}infinstor/api/mlflow/static-files/x.js?v=1"
    outside = await fetch("api/2.0/mlflow/redirect-outside")
    assert outside.code == 502
    assert error_of(outside)["reason"] == "tracking_bad_response"
    assert "Location" not in outside.headers


@pytest.mark.parametrize("location", ["\\\\evil.example/x", "\\/evil.example/x", "/\t/evil.example/x", "%2F%2Fevil.example/x"])
async def test_redirects_browsers_resolve_off_site_are_refused(fetch, upstream, credentials, location):
    from urllib.parse import quote

    response = await fetch("api/2.0/mlflow/redirect-to-x", query="to=" + quote(location, safe=""))
    assert response.code == 502, (location, response.code, response.headers.get("Location"))
    assert error_of(response)["reason"] == "tracking_bad_response"
    assert "Location" not in response.headers


async def test_a_tab_in_an_upstream_header_is_passed_on_as_a_space(fetch, upstream, credentials):
    response = await fetch("api/2.0/mlflow/tab-header")
    assert response.code == 200, response.body
    assert response.headers["X-Tab"] == "a b"


async def test_ui_without_trailing_slash_redirects(http_server_client, jp_base_url, jp_auth_header):
    response = await http_server_client.fetch(
        f"{jp_base_url}infinstor/api/mlflow", headers=jp_auth_header, follow_redirects=False, raise_error=False
    )
    assert response.code in (301, 302)
    assert response.headers["Location"] == f"{jp_base_url}infinstor/api/mlflow/"


async def test_slow_tracking_server_times_out_with_json(fetch, upstream, credentials):
    started = time.monotonic()
    response = await fetch("api/2.0/mlflow/slow")
    elapsed = time.monotonic() - started
    assert response.code == 504, response.body
    body = error_of(response)
    assert body["reason"] == "tracking_timeout"
    assert "did not answer within 1 s" in body["message"]
    assert elapsed < 3.5, elapsed


async def test_stalled_response_times_out(fetch, upstream, credentials):
    # Small response: nothing was sent to the browser yet, so it still gets a JSON 504.
    started = time.monotonic()
    response = await fetch("api/2.0/mlflow/stall")
    assert response.code == 504, response.body
    assert error_of(response)["reason"] == "tracking_timeout"
    assert time.monotonic() - started < 3.5
    # Large response already streaming: the connection is closed, never left hanging.
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - a truncated response, however the client reports it
        response = await fetch("api/2.0/mlflow/stall-big", request_timeout=10)
        raise AssertionError(f"got a complete response {response.code} {len(response.body)}")
    assert time.monotonic() - started < 5


async def test_tracking_server_down_answers_quickly(fetch, proxy, upstream, credentials):
    # Up first (the proxy then trusts it for a few seconds), then gone.
    assert (await fetch("api/2.0/mlflow/echo")).code == 200
    upstream.stop()
    started = time.monotonic()
    response = await fetch("api/2.0/mlflow/echo")
    assert response.code in (502, 503), response.body
    assert error_of(response)["reason"] in ("tracking_unreachable", "tracking_unavailable")
    assert time.monotonic() - started < 3

    # A tracking URI where nothing listens at all.
    proxy.tracking = RemoteTrackingServer(f"http://127.0.0.1:{free_port()}", health_timeout=2)
    started = time.monotonic()
    response = await fetch("api/2.0/mlflow/experiments/search", method="POST", body={})
    assert response.code in (502, 503), response.body
    body = error_of(response)
    assert body["reason"] in ("tracking_unreachable", "tracking_unavailable")
    assert "127.0.0.1" in body["message"]
    assert time.monotonic() - started < 3


async def test_401_refreshes_credentials_once_and_replays(fetch, upstream, proxy, monkeypatch):
    tracking = proxy.tracking
    state = {"token": "stale-credential-0000", "refreshes": 0}

    async def request_headers():
        return {"Authorization": f"Bearer {state['token']}"}

    async def refresh_credentials():
        state["refreshes"] += 1
        state["token"] = "fresh-credential-0001"
        return True

    monkeypatch.setattr(tracking, "request_headers", request_headers)
    monkeypatch.setattr(tracking, "refresh_credentials", refresh_credentials)
    body = {"payload": "x" * 1000}
    response = await fetch("api/2.0/mlflow/needs-fresh", method="POST", body=body)
    assert response.code == 200, response.body
    assert state["refreshes"] == 1
    first, second = upstream.requests
    assert first["body"] == second["body"] == json.dumps(body).encode()
    assert second["headers"]["Authorization"] == "Bearer fresh-credential-0001"


async def test_401_without_fresh_credentials_asks_to_sign_in(fetch, upstream, proxy, monkeypatch):
    tracking = proxy.tracking
    calls = {"refresh": 0}

    async def request_headers():
        return {"Authorization": "Bearer stale-credential-0000"}

    async def refresh_false():
        calls["refresh"] += 1
        return False

    monkeypatch.setattr(tracking, "request_headers", request_headers)
    monkeypatch.setattr(tracking, "refresh_credentials", refresh_false)
    response = await fetch("api/2.0/mlflow/needs-fresh", method="POST", body={"a": 1})
    assert response.code == 401
    body = error_of(response)
    assert body["reason"] == "sign_in_required"
    assert "sign in again" in body["message"]
    assert "WWW-Authenticate" not in response.headers  # no browser password prompt
    assert calls["refresh"] == 1 and len(upstream.requests) == 1

    # Refresh "succeeds" but the tracking server still refuses: one retry, then sign in.
    async def refresh_true():
        calls["refresh"] += 1
        return True

    monkeypatch.setattr(tracking, "refresh_credentials", refresh_true)
    response = await fetch("api/2.0/mlflow/needs-fresh", method="POST", body={"a": 1})
    assert response.code == 401 and error_of(response)["reason"] == "sign_in_required"
    assert calls["refresh"] == 2 and len(upstream.requests) == 3

    # A streamed body (larger than proxy_replay_limit) cannot be replayed: sign in, no retry.
    big = b"y" * 100_000
    response = await fetch("api/2.0/mlflow-artifacts/artifacts/needs-fresh", method="PUT", body=big)
    assert response.code == 401 and error_of(response)["reason"] == "sign_in_required"
    assert calls["refresh"] == 2 and len(upstream.requests) == 4
    assert len(upstream.requests[-1]["body"]) == len(big)


async def test_sign_in_required_from_the_backend(fetch, upstream, proxy, monkeypatch):
    from infinstor_jupyterlab.errors import SignInRequired

    async def request_headers():
        raise SignInRequired("Sign in to use the tracking service.")

    monkeypatch.setattr(proxy.tracking, "request_headers", request_headers)
    response = await fetch("api/2.0/mlflow/echo")
    assert response.code == 401 and error_of(response)["reason"] == "sign_in_required"
    assert upstream.requests == []


async def test_unauthenticated_requests_are_not_forwarded(http_server_client, jp_base_url, upstream):
    for method, body in (("GET", None), ("POST", b"{}"), ("PUT", b"x" * 20000)):
        response = await http_server_client.fetch(
            f"{jp_base_url}infinstor/api/mlflow/api/2.0/mlflow/echo", method=method, body=body, raise_error=False, follow_redirects=False
        )
        assert response.code == 403
    assert upstream.requests == []


# -- keep-alive: a refusal must not break the client's connection ---------------------------------
@pytest.fixture
def lab_port(http_server, http_server_port):
    """The test lab's TCP port, for real (blocking, thread-run) HTTP clients."""
    return http_server_port[-1]


def _exchanges(port: int, base_url: str, requests: list[tuple]) -> list[tuple[int, str | None, bytes]]:
    """Send `requests` one after the other on ONE keep-alive connection (http.client, blocking).

    Each is (method, path, body, headers). A server that closes the connection without saying so
    (`Connection: close`) makes the next request fail with a reset / RemoteDisconnected.
    """
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.auto_open = 0  # never reconnect silently: a second request must use the same socket
    conn.connect()
    answers = []
    try:
        for method, path, body, headers in requests:
            if conn.sock is None:
                raise AssertionError(f"the server closed the connection before {method} {path}")
            conn.request(method, f"{base_url}infinstor/api/mlflow/{path}", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            answers.append((response.status, response.getheader("Connection"), data))
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.auto_open = 0
                conn.connect()
    finally:
        conn.close()
    return answers


@pytest.mark.parametrize(
    "refused,status",
    [
        (("GET", "health", None), 403),
        (("GET", "api/2.0/mlflow/%2e%2e/x", None), 400),
        (("POST", "gateway/x", b'{"a": 1}'), 403),
        (("PUT", "static-files/x.js", b"z" * 1000), 405),
        (("DELETE", "api/2.0/infinstor/tokens", None), 403),
    ],
)
async def test_a_refused_request_keeps_the_connection_usable(lab_port, jp_base_url, jp_auth_header, upstream, credentials, refused, status):
    method, path, body = refused
    good = ("GET", "api/2.0/mlflow/echo", None, dict(jp_auth_header))
    answers = await asyncio.to_thread(_exchanges, lab_port, jp_base_url, [(method, path, body, dict(jp_auth_header)), good, good])
    assert [a[0] for a in answers] == [status, 200, 200], answers
    assert json.loads(answers[0][2])["reason"]
    assert upstream.paths() == ["/api/2.0/mlflow/echo"] * 2


async def test_an_unauthenticated_request_keeps_the_connection_usable(lab_port, jp_base_url, jp_auth_header, upstream, credentials):
    good = ("GET", "api/2.0/mlflow/echo", None, dict(jp_auth_header))
    answers = await asyncio.to_thread(
        _exchanges,
        lab_port,
        jp_base_url,
        [("POST", "api/2.0/mlflow/echo", b"{}", {"Authorization": "token wrong"}), good, ("GET", "api/2.0/mlflow/echo", None, {}), good],
    )
    assert [a[0] for a in answers] == [403, 200, 403, 200], answers
    assert upstream.paths() == ["/api/2.0/mlflow/echo"] * 2


async def test_a_refused_large_upload_says_it_closes_the_connection(lab_port, jp_base_url, jp_auth_header, upstream, credentials):
    """A refused body too large to read and discard (beyond proxy_replay_limit) is not read: the
    answer says `Connection: close` (as a client that waits before sending its body sees it)."""
    import socket

    def run() -> bytes:
        with socket.create_connection(("127.0.0.1", lab_port), timeout=10) as sock:
            head = (
                f"PUT {jp_base_url}infinstor/api/mlflow/gateway/upload HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{lab_port}\r\nAuthorization: {jp_auth_header['Authorization']}\r\n"
                f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
            )
            sock.sendall(head.encode())
            received = b""
            while chunk := sock.recv(65536):  # until the server closes
                received += chunk
            return received

    answer = await asyncio.to_thread(run)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403"), answer[:300]
    assert b"\r\nConnection: close" in head, head
    assert json.loads(body)["reason"] == "proxy_path_refused"
    assert upstream.requests == []


async def test_refusals_on_a_requests_session(lab_port, jp_base_url, jp_auth_header, upstream, credentials):
    """The client of the issue: requests.Session (a pooled keep-alive connection)."""
    import requests

    def run():
        with requests.Session() as session:
            session.headers.update(jp_auth_header)
            base = f"http://127.0.0.1:{lab_port}{jp_base_url}infinstor/api/mlflow/"
            codes = []
            for path in ("health", "api/2.0/mlflow/echo", "api/2.0/mlflow/..%2fx", "api/2.0/mlflow/echo"):
                codes.append(session.get(base + path, timeout=10).status_code)
            codes.append(session.post(base + "gateway/x", json={"a": 1}, timeout=10).status_code)
            codes.append(session.get(base + "api/2.0/mlflow/echo", timeout=10).status_code)
            return codes

    assert await asyncio.to_thread(run) == [403, 200, 400, 200, 403, 200]


async def test_hostile_query_strings_and_headers_never_cause_a_5xx(lab_port, jp_base_url, jp_auth_header, upstream, credentials):
    """Raw bytes a client may put on the wire (not what a polite client would encode)."""
    import socket

    def raw(request_line: str, extra: bytes = b"") -> bytes:
        with socket.create_connection(("127.0.0.1", lab_port), timeout=10) as sock:
            sock.sendall(
                request_line.encode("latin-1")
                + f"\r\nHost: 127.0.0.1:{lab_port}\r\nAuthorization: {jp_auth_header['Authorization']}\r\n".encode()
                + extra
                + b"Connection: close\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    path = f"{jp_base_url}infinstor/api/mlflow/api/2.0/mlflow/echo"
    cases = [
        (f"GET {path}?x=\xff\xfe HTTP/1.1", b""),
        (f"GET {path}?x=%zz&%%=1 HTTP/1.1", b""),
        (f"GET {path}?token=a&_xsrf=b&x=%00 HTTP/1.1", b""),
        (f"GET {path}?{'q' * 20000} HTTP/1.1", b""),
        (f"GET {path} HTTP/1.1", b"X-Odd: \xff\xfe\r\n"),
        (f"GET {path} HTTP/1.1", b"Accept: \t\r\n"),
        (f"GET {path} HTTP/1.1", b"Content-Type: \x7f\r\n"),
        (f"POST {path} HTTP/1.1", b"Content-Length: 2\r\nContent-Length: 2\r\n"),
        (f"GET {jp_base_url}infinstor/api/jobs?x=\xff HTTP/1.1", b""),
        (f"GET {jp_base_url}infinstor/api/projects/parameters?path=\xff\xfe HTTP/1.1", b""),
    ]
    for line, extra in cases:
        answer = await asyncio.to_thread(raw, line, extra)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
        assert 0 < status < 500, (line[:80], extra, answer[:300])


async def test_an_artifact_redirected_to_a_presigned_url_is_fetched_without_credentials(fetch, upstream, credentials, tmp_path):
    """The serverless service answers artifact downloads with a 307 to a presigned S3 URL (issue
    16): the proxy follows it itself, sending S3 none of the request's credentials, and the browser
    gets the bytes on the lab's origin. Other off-site redirects stay refused."""
    import boto3

    from test_serverless import RecordedAws

    aws = RecordedAws(tmp_path)
    try:
        s3 = boto3.client(
            "s3", endpoint_url=aws.s3_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3.create_bucket(Bucket="artifacts")
        data = bytes(range(256)) * 12 * 1024  # 3 MiB: streamed, not one small read
        s3.put_object(Bucket="artifacts", Key="1/run/artifacts/plot.png", Body=data)
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "artifacts", "Key": "1/run/artifacts/plot.png"}, ExpiresIn=300)
        aws.record()
        to = "to=" + quote(url, safe="")
        whole = await fetch("get-artifact", query="path=plot.png&run_uuid=r1&" + to, headers={"Cookie": "c=jupyter-cookie"})
        assert whole.code == 200, whole.body[:300]
        assert whole.body == data and "Location" not in whole.headers
        part = await fetch("get-artifact", query="path=plot.png&run_uuid=r1&" + to, headers={"Range": "bytes=0-9"})
        assert (part.code, part.body) == (206, data[:10])
        seen, text = aws.recorded()
        gets = [e for e in seen if e["method"] == "GET" and "/artifacts/1/run" in e["url"]]
        assert len(gets) == 2, seen
        for entry in gets:
            names = {name.lower() for name in entry["headers"]}
            assert not names & {"authorization", "cookie", "x-xsrftoken"}, entry["headers"]
        assert UPSTREAM_SECRET.split()[1] not in text and "jupyter-cookie" not in text
        # The tracking service itself got the credentials, as for any proxied request.
        assert upstream.requests[-1]["headers"]["Authorization"] == UPSTREAM_SECRET

        # Off-site redirects that are not presigned downloads stay refused (502).
        unsigned = await fetch("get-artifact", query="to=" + quote("https://evil.example.com/x.png", safe=""))
        assert unsigned.code == 502
        elsewhere = await fetch("api/2.0/mlflow/redirect-to-x", query=to)
        assert elsewhere.code == 502
    finally:
        aws.stop()
