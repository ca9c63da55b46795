"""Crafted and sloppy input to the lab's own API (`/infinstor/api/*`, not the MLflow proxy): every
one gets a 4xx with a JSON `{"message", "reason"}` naming the problem, never a 5xx, and nothing a
client sends is written whole into a log line or an error message."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket

import pytest

from conftest import wait_for_state
from infinstor_jupyterlab import limits
from notebooks import sklearn_training_notebook, write

JSON_ROUTES = [  # (method, route): the routes that take a JSON body
    ("POST", "jobs"),
    ("POST", "projects"),
    ("PUT", "auth/config"),
]


@pytest.fixture
def api(http_server_client, jp_base_url, jp_auth_header):
    """A raw request to the lab's API: (status, JSON body or None, headers); never raises."""

    async def call(method, route, body=None, *, query="", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        url = f"{jp_base_url}infinstor/api/{route}" + (f"?{query}" if query else "")
        response = await http_server_client.fetch(
            url,
            method=method,
            body=body,
            headers={**jp_auth_header, **(headers or {})},
            raise_error=False,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )
        try:
            payload = json.loads(response.body) if response.body else None
        except ValueError:
            payload = None
        return response.code, payload, response.headers

    return call


@pytest.fixture
def captured_logs(jp_serverapp):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    loggers = [
        logging.getLogger(),
        jp_serverapp.log,
        logging.getLogger("tornado.access"),
        logging.getLogger("tornado.application"),
        logging.getLogger("tornado.general"),
        logging.getLogger("infinstor_jupyterlab"),
    ]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield stream
    for lg, level in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)


def assert_refused(result, status=400, *, says: str = "", reason: str | None = None):
    code, payload, headers = result
    assert code == status, (code, payload)
    assert headers["Content-Type"].startswith("application/json"), headers
    assert isinstance(payload, dict) and isinstance(payload.get("message"), str), payload
    assert isinstance(payload.get("reason"), str) and payload["reason"], payload
    assert says in payload["message"], payload
    if reason is not None:
        assert payload["reason"] == reason, payload
    return payload


@pytest.fixture
def notebook_in_root(jp_root_dir):
    write(sklearn_training_notebook(), jp_root_dir / "ok.ipynb")
    return "ok.ipynb"


# -- malformed bodies -----------------------------------------------------------------------------
@pytest.mark.parametrize("method,route", JSON_ROUTES)
async def test_deeply_nested_json_is_a_400(api, method, route):
    deep = "[" * 100_000 + "]" * 100_000
    assert_refused(await api(method, route, deep), says="nested")
    assert_refused(await api(method, route, '{"path": ' + "[" * 200 + "]" * 200 + "}"), says="nested")


@pytest.mark.parametrize("method,route", JSON_ROUTES)
@pytest.mark.parametrize(
    "body,says",
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ("null", "JSON object"),
        ('"x"', "JSON object"),
        ('{"path": NaN}', "NaN"),
        ('{"path": 1e999}', "finite"),
        (b'{"path": "\xff"}', "UTF-8"),
        ('{"path": "\\ud800.ipynb"}', "Unicode"),
        ('{"path": "a\\u0000b.ipynb"}', "NUL"),
        ('{"path": "ok.ipynb", "a\\u0000": 1}', "NUL"),
    ],
)
async def test_malformed_bodies_are_a_400(api, method, route, body, says):
    assert_refused(await api(method, route, body), says=says)


@pytest.mark.parametrize("method,route", JSON_ROUTES)
async def test_a_body_over_the_limit_is_a_413_and_the_connection_stays_usable(api, method, route):
    big = json.dumps({"path": "x" * (limits.MAX_BODY_BYTES + 10)})
    payload = assert_refused(await api(method, route, big), 413, reason="payload_too_large")
    assert str(limits.MAX_BODY_BYTES) in payload["message"] or "MiB" in payload["message"]


async def test_a_declared_body_beyond_what_is_read_is_refused_with_connection_close(
    http_server, http_server_port, jp_base_url, jp_auth_header
):
    """A 50 MB job request: 413 without reading it, and the client is told the connection closes."""
    port = http_server_port[-1]

    def run() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                (
                    f"POST {jp_base_url}infinstor/api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Authorization: {jp_auth_header['Authorization']}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {limits.MAX_DRAIN_BYTES + 1}\r\n\r\n"
                ).encode()
            )
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            return received

    answer = await asyncio.to_thread(run)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["reason"] == "payload_too_large"


async def test_a_body_over_the_limit_on_a_keep_alive_connection(http_server, http_server_port, jp_base_url, jp_auth_header):
    """requests.Session: a 413 (body read and dropped), then the same connection serves the next call."""
    import requests

    port = http_server_port[-1]

    def run():
        with requests.Session() as session:
            session.headers.update(jp_auth_header)
            base = f"http://127.0.0.1:{port}{jp_base_url}infinstor/api/"
            big = session.post(base + "jobs", data=b'{"path": "' + b"x" * (3 * limits.MAX_BODY_BYTES) + b'"}', timeout=30)
            ok = session.get(base + "jobs", timeout=30)
            return big.status_code, ok.status_code

    assert await asyncio.to_thread(run) == (413, 200)


# -- paths ----------------------------------------------------------------------------------------
BAD_PATHS = [
    ("a\x00b.ipynb", "NUL"),
    ("x" * 300 + ".ipynb", "255"),
    ("d/" * 2100 + "x.ipynb", str(limits.MAX_PATH_CHARS)),
    ("é" * 200 + ".ipynb", "255"),  # 200 characters, 400 bytes
]


@pytest.mark.parametrize("path,says", BAD_PATHS)
async def test_bad_paths_are_a_400_everywhere(api, jp_root_dir, notebook_in_root, path, says):
    assert_refused(await api("POST", "jobs", {"path": path}), says=says)
    assert_refused(await api("POST", "projects", {"path": path}), says=says)
    assert_refused(await api("POST", "projects", {"path": notebook_in_root, "output_dir": path}), says=says)
    if "\x00" not in path:  # tornado turns control characters in query arguments into spaces
        from urllib.parse import quote

        assert_refused(await api("GET", "projects/parameters", query="path=" + quote(path)), says=says)
    assert not any(p.name.endswith("-mlproject") for p in jp_root_dir.iterdir())


async def test_a_symlink_loop_is_a_400(api, jp_root_dir):
    (jp_root_dir / "loop").symlink_to(jp_root_dir / "loop")
    assert_refused(await api("POST", "jobs", {"path": "loop/x.ipynb"}))
    assert_refused(await api("GET", "projects/parameters", query="path=loop"))


async def test_an_empty_path_is_a_400(api):
    assert_refused(await api("POST", "projects", {"path": ""}), says="path")
    assert_refused(await api("GET", "projects/parameters", query="path="), says="path")
    assert_refused(await api("GET", "projects/parameters"), says="path")


# -- job requests: sizes and MLflow's own rules ---------------------------------------------------
@pytest.mark.parametrize(
    "extra,says",
    [
        ({"parameters": {"label": "x" * (limits.MAX_PARAMETER_VALUE_CHARS + 1)}}, f"{limits.MAX_PARAMETER_VALUE_CHARS:,}"),
        ({"parameters": {f"p{i}": i for i in range(limits.MAX_PARAMETERS + 1)}}, str(limits.MAX_PARAMETERS)),
        ({"parameters": {"n" * (limits.MAX_PARAMETER_NAME_CHARS + 1): 1}}, str(limits.MAX_PARAMETER_NAME_CHARS)),
        ({"sweep": {"grid": {"label": ["x" * (limits.MAX_PARAMETER_VALUE_CHARS + 1)]}}}, f"{limits.MAX_PARAMETER_VALUE_CHARS:,}"),
        ({"sweep": {"list": [{"label": "x" * (limits.MAX_PARAMETER_VALUE_CHARS + 1)}]}}, f"{limits.MAX_PARAMETER_VALUE_CHARS:,}"),
        ({"experiment_name": "e" * 501}, "500"),
        ({"target": "t" * 10_000}, "target"),
        ({"entry_point": "e" * 10_000}, "entry_point"),
        ({"experiment_id": True}, "experiment id"),
        ({"experiment_id": 1.5}, "experiment id"),
        ({"experiment_id": "1\n"}, "experiment id"),
        ({"experiment_id": "../1"}, "experiment id"),
        ({"experiment_id": "x" * 65}, "experiment id"),
        ({"experiment_id": 10**40}, "experiment id"),
        ({"experiment_id": str(2**63)}, "experiment id"),
        ({"experiment_id": -1}, "experiment id"),
    ],
)
async def test_job_requests_beyond_the_limits_are_a_400(api, notebook_in_root, jp_root_dir, extra, says):
    payload = assert_refused(await api("POST", "jobs", {"path": notebook_in_root, **extra}), says=says)
    assert len(payload["message"]) <= limits.MAX_MESSAGE_CHARS
    code, listed, _ = await api("GET", "jobs")
    assert code == 200 and listed["jobs"] == []


@pytest.mark.slow
async def test_experiment_ids_mlflow_cannot_store_never_reach_it(api, jp_fetch, notebook_in_root, infinstor):
    """10**40 fits MLflow's id pattern but not its database: it was a 502 from MLflow."""
    await wait_for_state(jp_fetch, "running")
    for experiment_id in (10**40, str(10**40), "99999999999999999999"):
        assert_refused(await api("POST", "jobs", {"path": notebook_in_root, "experiment_id": experiment_id}), says="experiment id")
    # An id of the right shape that does not exist is still MLflow's to answer: 400, nothing created.
    assert_refused(await api("POST", "jobs", {"path": notebook_in_root, "experiment_id": "424242"}), says="Experiment not found")
    code, listed, _ = await api("GET", "jobs")
    assert listed["jobs"] == []


# -- query arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", ["x", "1.5", "9" * 5000, "-1", "1e3", ""])
async def test_bad_log_offsets_are_a_400(api, offset):
    assert_refused(await api("GET", "jobs/0123456789abcdef/log", query=f"offset={offset}"), says="offset")


async def test_invalid_utf8_in_a_query_argument_is_a_400(api):
    assert_refused(await api("GET", "projects/parameters", query="path=%ff"), says="unicode")


# -- every error is JSON with a string reason -------------------------------------------------------
async def test_unknown_routes_under_the_api_answer_json_404(api):
    for route in ("nope", "jobs/xyz", "jobs/0123456789abcdef/nope", "compute/instances/i-1/reboot"):
        assert_refused(await api("GET", route), 404, reason="not_found")
        assert_refused(await api("POST", route, {}), 404, reason="not_found")


async def test_a_method_a_route_does_not_have_is_a_json_405_with_allow(api):
    """RFC 9110: a 405 says which methods the resource has (`Allow`)."""
    for method, route, allowed in [
        ("PATCH", "jobs", "GET, POST, OPTIONS"),
        ("DELETE", "status", "GET, OPTIONS"),
        ("TRACE", "jobs/0123456789abcdef", "GET, DELETE, OPTIONS"),
        ("PUT", "jobs/0123456789abcdef/cancel", "POST, OPTIONS"),
        ("PROPFIND", "auth/config", "PUT, OPTIONS"),
    ]:
        _, _, headers = result = await api(method, route, {} if method in ("PATCH", "PUT") else None)
        assert_refused(result, 405, reason="method_not_allowed")
        assert headers.get("Allow") == allowed, (method, route, headers.get("Allow"))


async def test_the_proxys_405_says_which_methods_the_path_has(api):
    _, _, headers = result = await api("POST", "mlflow/static-files/x.js", b"")
    assert_refused(result, 405)
    assert headers.get("Allow") == "GET, HEAD, OPTIONS"
    _, _, headers = result = await api("PUT", "mlflow/api/2.0/infinstor/whoami", b"")
    assert_refused(result, 405)
    assert headers.get("Allow") == "GET, OPTIONS"


async def test_the_sign_in_callback_always_answers_a_page(http_server_client, jp_base_url, jp_auth_header):
    """It is opened in the sign-in window: an error there is a page, even on a lab without sign-in."""
    for query in ("state=s&error=access_denied", "state=s&code=c", "error=x", ""):
        response = await http_server_client.fetch(
            f"{jp_base_url}infinstor/api/auth/callback?{query}", headers=jp_auth_header, raise_error=False
        )
        assert response.code == 400, (query, response.code)
        assert response.headers["Content-Type"].startswith("text/html"), (query, response.body[:200])


async def test_unauthenticated_errors_have_a_string_reason(http_server_client, jp_base_url):
    for method, route, body in (("GET", "status", None), ("POST", "jobs", b"{}"), ("GET", "nope", None)):
        response = await http_server_client.fetch(f"{jp_base_url}infinstor/api/{route}", method=method, body=body, raise_error=False)
        assert response.code == 403, route
        payload = json.loads(response.body)
        assert isinstance(payload["message"], str) and payload["reason"] == "forbidden", payload


# -- nothing unbounded reaches a log line or a message ---------------------------------------------
def longest_quote(text: str, char: str = "Q") -> int:
    """The longest run of `char` in `text` (how much of the client's input it quotes)."""
    return max((len(run) for run in text.replace(char, "\0" + char).split("\0") if run.startswith(char)), default=0)


async def test_user_input_is_bounded_in_messages_and_logs(api, notebook_in_root, captured_logs):
    marker = "Q" * 900_000  # under the body limit: reaches the validators
    cases = [
        ("POST", "jobs", {"path": marker}),
        ("POST", "jobs", {"path": notebook_in_root, "target": marker}),
        ("POST", "jobs", {"path": notebook_in_root, "entry_point": marker}),
        ("POST", "jobs", {"path": notebook_in_root, marker: 1}),
        ("POST", "jobs", {"path": notebook_in_root, "options": {marker: 1}}),
        ("POST", "jobs", {"path": notebook_in_root, "options": {"env_manager": marker}}),
        ("POST", "jobs", {"path": notebook_in_root, "options": {"env_manager": "Q" * 200}}),
        ("POST", "jobs", {"path": notebook_in_root, "experiment_id": marker}),
        ("POST", "jobs", {"path": notebook_in_root, "parameters": {"label": marker}}),
        ("POST", "jobs", {"path": notebook_in_root, "parameters": {marker: 1}}),
        ("POST", "projects", {"path": marker}),
        ("POST", "projects", {"path": notebook_in_root, "output_dir": marker}),
        ("PUT", "auth/config", {"issuer": marker, "client_id": marker}),
        ("PUT", "auth/config", {"issuer": "Q" * 2000, "client_id": "x"}),
    ]
    for method, route, body in cases:
        code, payload, _ = await api(method, route, body)
        assert 400 <= code < 500, (route, code)
        assert longest_quote(payload["message"]) <= limits.MAX_SHOWN_CHARS + 2, (route, payload["message"][:300])
        assert len(payload["message"]) <= limits.MAX_MESSAGE_CHARS
    for route in ("projects/parameters", "jobs/0123456789abcdef/log", "compute/instances/" + "Q" * 15_000 + "/stop"):
        code, payload, _ = await api("GET", route, query=f"path={'Q' * 15_000}&offset={'Q' * 15_000}")
        assert 400 <= code < 500 and longest_quote(payload["message"]) <= limits.MAX_SHOWN_CHARS + 2, payload
    logged = captured_logs.getvalue()
    worst = [line[:300] for line in logged.splitlines() if longest_quote(line) > limits.MAX_LOGGED_URI_CHARS]
    assert not worst, f"log lines quote more than {limits.MAX_LOGGED_URI_CHARS} characters of the client's input: {worst}"
    # Only a request's URI (Jupyter's access log) quotes more than a message does.
    quoted = [
        line[:300] for line in logged.splitlines() if longest_quote(line) > limits.MAX_SHOWN_CHARS + 2 and "/infinstor/api/" not in line
    ]
    assert not quoted, quoted


# -- `infinstor project` (the CLI) ------------------------------------------------------------------
@pytest.mark.parametrize(
    "notebook_arg,output_arg,says",
    [
        ("x" * 300 + ".ipynb", None, "255 bytes"),
        ("d/" * 2100 + "x.ipynb", None, str(limits.MAX_PATH_CHARS)),
        ("ok.ipynb", "o" * 300, "255 bytes"),
        ("loop/x.ipynb", None, "cannot be used"),
    ],
)
def test_the_cli_refuses_bad_paths_with_a_message(tmp_path, notebook_arg, output_arg, says):
    import subprocess
    import sys

    write(sklearn_training_notebook(), tmp_path / "ok.ipynb")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    argv = [sys.executable, "-m", "infinstor_jupyterlab.cli", "project", notebook_arg]
    if output_arg:
        argv += ["-o", output_arg]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("infinstor: ") and says in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(result.stderr) < limits.MAX_MESSAGE_CHARS


# -- hostile headers ----------------------------------------------------------------------------------
HOSTILE_HEADERS = [
    {"Origin": "http://["},
    {"Origin": "http://[::1"},
    {"Origin": "http://[", "Referer": "http://["},
    {"Origin": "http://[", "Cookie": "_xsrf=a; username-127-0-0-1=b"},
    {"Origin": "null"},
    {"Origin": "\u00ff://x"},
    {"Referer": "http://["},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
    {"Sec-Fetch-Site": "\u00e9"},
    {"Cookie": "_xsrf=\u00ff; a"},
    {"X-XSRFToken": "x" * 5000},
    {"Content-Type": "application/json; charset=latin-1"},
    {"Content-Type": "multipart/form-data; boundary="},
    {"Accept-Encoding": "gzip;q=nan"},
    {"Range": "bytes=99999999999999999999999-"},
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS, ids=lambda h: ",".join(h)[:40])
async def test_hostile_headers_never_cause_a_5xx(http_server_client, jp_base_url, jp_auth_header, headers):
    routes = [
        ("GET", "status", None),
        ("POST", "jobs", b'{"path": "x.ipynb"}'),
        ("POST", "mlflow/gateway/x", b"{}"),
        ("GET", "mlflow/health", None),
        ("PUT", "auth/config", b"{}"),
    ]
    # Not authenticated, a proxied MLflow call is refused before anything is forwarded.
    for auth, extra in ((jp_auth_header, []), ({}, [("POST", "mlflow/api/2.0/mlflow/x", b"{}")])):
        for method, route, body in routes + extra:
            response = await http_server_client.fetch(
                f"{jp_base_url}infinstor/api/{route}",
                method=method,
                body=body,
                headers={**auth, **headers},
                raise_error=False,
                follow_redirects=False,
            )
            assert response.code < 500, (method, route, headers, bool(auth), response.code, response.body[:300])


async def test_a_malformed_origin_on_a_cookie_authenticated_proxy_call_is_refused(http_server_client, jp_base_url, jp_auth_header):
    """The proxy accepts the browser's same-origin proof instead of Jupyter's XSRF token; an Origin
    that cannot be parsed proves nothing (it was a 500, as was any route's Origin check)."""
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    login = await http_server_client.fetch(f"{jp_base_url}infinstor/api/status?token={token}", raise_error=False)
    cookies = "; ".join(c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie"))
    assert cookies, login.headers
    for origin in ("http://[", "http://[::1"):
        response = await http_server_client.fetch(
            f"{jp_base_url}infinstor/api/mlflow/api/2.0/mlflow/experiments/search",
            method="POST",
            body=b"{}",
            headers={"Cookie": cookies, "Origin": origin},
            raise_error=False,
        )
        # Jupyter's answer to an origin it does not accept is a 404; the XSRF refusal a 403.
        assert response.code in (403, 404), (origin, response.code, response.body[:200])
        assert json.loads(response.body)["reason"] in ("forbidden", "not_found")
