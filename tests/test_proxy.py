"""The MLflow proxy against the real embedded MLflow service (guarded by its bearer secret)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import random
import time

import psutil
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from conftest import wait_for_state
from proxy_helpers import pfetch, proxy_url


@pytest.fixture
def fetch(http_server_client, jp_base_url, jp_auth_header):
    async def _fetch(path, **kw):
        return await pfetch(http_server_client, jp_base_url, jp_auth_header, path, **kw)

    return _fetch


@pytest.fixture
def captured_logs(jp_serverapp):
    """Every log record of this process while the test runs (server, tornado, extension)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
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


def assert_secret_absent(secret: str, responses, logs: str) -> None:
    assert len(secret) >= 32
    for response in responses:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.get_all())
        assert secret not in headers, response.effective_url
        assert secret.encode() not in (response.body or b""), response.effective_url
    assert secret not in logs


async def test_mlflow_rest_calls_through_the_proxy(fetch, jp_fetch, infinstor, captured_logs):
    await wait_for_state(jp_fetch, "running")
    seen = []

    async def call(path, body=None, method=None, query=""):
        response = await fetch(path, method=method or ("POST" if body is not None else "GET"), body=body, query=query)
        seen.append(response)
        assert response.code == 200, (path, response.code, response.body[:500])
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.body)

    created = await call("api/2.0/mlflow/experiments/create", {"name": "through-the-proxy"})
    experiment_id = created["experiment_id"]
    run = (await call("api/2.0/mlflow/runs/create", {"experiment_id": experiment_id, "run_name": "r1"}))["run"]
    run_id = run["info"]["run_id"]
    now = int(time.time() * 1000)
    await call(
        "api/2.0/mlflow/runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": "loss", "value": 0.5 - i / 100, "timestamp": now, "step": i} for i in range(10)],
            "params": [{"key": "lr", "value": "0.01"}],
            "tags": [{"key": "team", "value": "proxy"}],
        },
    )
    got = await call("api/2.0/mlflow/runs/get", query=f"run_id={run_id}")
    assert got["run"]["data"]["params"] == [{"key": "lr", "value": "0.01"}]
    assert {m["key"]: m["step"] for m in got["run"]["data"]["metrics"]} == {"loss": 9}
    found = await call("api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id], "filter": "params.lr = '0.01'"})
    assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]
    # The UI's flavour of the same API.
    ajax = await call("ajax-api/2.0/mlflow/experiments/search", {"max_results": 10})
    assert any(e["name"] == "through-the-proxy" for e in ajax["experiments"])
    info = await call("ajax-api/3.0/mlflow/server-info")
    assert info

    # MLflow's own errors pass through as they are.
    missing = await fetch("api/2.0/mlflow/runs/get", query="run_id=does-not-exist")
    seen.append(missing)
    assert missing.code == 404 and json.loads(missing.body)["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # And it is the same store kernels write to: the direct API with the secret sees the run.
    direct = await AsyncHTTPClient().fetch(
        f"{infinstor.tracking.uri}/api/2.0/mlflow/runs/get?run_id={run_id}",
        headers=infinstor.tracking.auth_headers(),
    )
    assert json.loads(direct.body)["run"]["info"]["run_id"] == run_id

    # The UI and a static file, with a CSP that lets MLflow's scripts run but only the lab frame it.
    index = await fetch("")
    seen.append(index)
    assert index.code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert b"static-files/static/js/main" in index.body
    csp = index.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "default-src 'none'" not in csp
    script = index.body.split(b'src="')[1].split(b'"')[0].decode()
    js = await fetch(script)
    seen.append(js)
    assert js.code == 200 and len(js.body) > 100_000
    assert "javascript" in js.headers["Content-Type"]
    head = await fetch("", method="HEAD")
    assert head.code == 200 and not head.body

    assert_secret_absent(infinstor.tracking.secret_path.read_text().strip(), seen, captured_logs.getvalue())


@pytest.mark.slow  # the embedded MLflow server
async def test_mlflow_ui_posts_with_the_lab_cookie(http_server_client, jp_base_url, jp_auth_header, jp_http_port, jp_fetch):
    """What the MLflow UI does in the browser: Jupyter's cookie, no token, no XSRF header."""
    await wait_for_state(jp_fetch, "running")
    # API clients (kernels, the CLI) send the token in a header and keep no cookies: none is minted.
    api = await pfetch(http_server_client, jp_base_url, jp_auth_header, "api/2.0/mlflow/experiments/search?max_results=1")
    assert api.code == 200, api.body
    assert not [c for c in api.headers.get_list("Set-Cookie") if c.startswith("username-")]
    # A browser opening the UI with the token in its URL gets Jupyter's login cookie, as in the lab.
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    first = await pfetch(http_server_client, jp_base_url, {}, "", query=f"token={token}")
    assert first.code == 200, first.code
    cookie = "; ".join(c.split(";", 1)[0] for c in first.headers.get_list("Set-Cookie"))
    assert cookie.startswith("username-")
    origin = f"http://127.0.0.1:{jp_http_port}"
    path = "ajax-api/2.0/mlflow/experiments/create"

    async def post(name, headers, method="POST"):
        return await pfetch(
            http_server_client, jp_base_url, {}, path, method=method, body={"name": name}, headers={"Cookie": cookie, **headers}
        )

    # The browser's proof of a same-origin request is enough...
    ok = await post("from-lab-origin", {"Origin": origin})
    assert ok.code == 200, ok.body
    ok = await post("from-lab-fetch-metadata", {"Sec-Fetch-Site": "same-origin", "Origin": origin})
    assert ok.code == 200, ok.body
    # ... and Jupyter's own XSRF token still works.
    xsrf = "2|01020304|0123456789abcdef0123456789abcdef|1700000000"
    ok = await post("with-xsrf", {"Cookie": f"{cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf})
    assert ok.code == 200, ok.body
    # Without it, or from another site, the request is refused (before reaching MLflow).
    for headers in (
        {},
        {"Origin": "http://evil.example.com"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example.com"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
    ):
        refused = await post("forged", headers)
        assert refused.code in (403, 404), (headers, refused.code)
    # Cross-site reads (fetch/img from another site) are refused too; navigating to the UI is fine.
    for path, headers, expected in (
        ("ajax-api/2.0/mlflow/experiments/search?max_results=1", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, 403),
        ("", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, 200),
    ):
        response = await pfetch(http_server_client, jp_base_url, {}, path, headers={"Cookie": cookie, **headers})
        assert response.code == expected, (path, response.code)

    names = json.loads(
        (
            await pfetch(
                http_server_client,
                jp_base_url,
                jp_auth_header,
                "api/2.0/mlflow/experiments/search",
                method="POST",
                body={"max_results": 50},
            )
        ).body
    )["experiments"]
    assert {"from-lab-origin", "from-lab-fetch-metadata", "with-xsrf"} <= {e["name"] for e in names}
    assert "forged" not in {e["name"] for e in names}


class _Sampler:
    """Peak RSS of this process (it hosts the Jupyter server) while a transfer runs."""

    def __init__(self):
        self.proc = psutil.Process()
        self.peak = 0
        self._task = None

    def rss(self) -> int:
        return self.proc.memory_info().rss

    async def _run(self):
        while True:
            self.peak = max(self.peak, self.rss())
            await asyncio.sleep(0.02)

    def __enter__(self):
        self.peak = self.rss()
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc):
        self._task.cancel()
        self.peak = max(self.peak, self.rss())


async def _transfer(url: str, headers: dict, size: int, seed: int) -> tuple[str, str, float, float]:
    """PUT `size` pseudo-random bytes to `url` (streamed), GET them back; sha256 of both."""
    client = AsyncHTTPClient(force_instance=True, max_body_size=1 << 40)
    block = 1024 * 1024
    rng = random.Random(seed)
    sent = hashlib.sha256()

    async def producer(write):
        remaining = size
        while remaining:
            chunk = rng.randbytes(min(block, remaining))
            sent.update(chunk)
            remaining -= len(chunk)
            await write(chunk)

    started = time.monotonic()
    put = await client.fetch(
        HTTPRequest(
            url,
            method="PUT",
            body_producer=producer,
            request_timeout=300,
            headers={**headers, "Content-Length": str(size), "Content-Type": "application/octet-stream"},
        ),
        raise_error=False,
    )
    assert put.code == 200, put.body[:500]
    upload_s = time.monotonic() - started

    got = hashlib.sha256()
    received = 0

    def on_chunk(chunk):
        nonlocal received
        received += len(chunk)
        got.update(chunk)

    started = time.monotonic()
    get = await client.fetch(HTTPRequest(url, headers=headers, streaming_callback=on_chunk, request_timeout=300), raise_error=False)
    assert get.code == 200 and received == size, (get.code, received)
    download_s = time.monotonic() - started
    client.close()
    return sent.hexdigest(), got.hexdigest(), upload_s, download_s


@pytest.mark.slow
async def test_large_artifact_streams_through_in_bounded_memory(jp_fetch, jp_base_url, jp_auth_header, jp_http_port, infinstor):
    await wait_for_state(jp_fetch, "running")
    base = f"http://127.0.0.1:{jp_http_port}"

    def url(name):
        return base + proxy_url(jp_base_url, f"api/2.0/mlflow-artifacts/artifacts/0/proxytest/artifacts/{name}")

    # Warm-up: the same path with a smaller file, so one-off allocations are not counted.
    sent, got, *_ = await _transfer(url("warmup.bin"), jp_auth_header, 24 * 1024 * 1024, seed=1)
    assert sent == got

    size = 300 * 1024 * 1024
    with _Sampler() as memory:
        before = memory.rss()
        sent, got, upload_s, download_s = await _transfer(url("big.bin"), jp_auth_header, size, seed=2)
    growth = (memory.peak - before) / 2**20
    print(f"300 MB through the proxy: upload {upload_s:.1f} s, download {download_s:.1f} s, peak RSS growth {growth:.1f} MB")
    assert sent == got
    # On disk, as MLflow stored it.
    stored = infinstor.tracking.data_dir / "artifacts" / "0" / "proxytest" / "artifacts" / "big.bin"
    assert stored.stat().st_size == size
    assert growth < 50, f"RSS grew by {growth:.1f} MB"
