"""The MLflow web UI, through the proxy, in a real browser (Debian's chromium, driven by playwright).

The browser carries only Jupyter's login cookie (as in a JupyterLab tab): the UI's GETs and its
POSTs (runs/search, experiment creation) must work without Jupyter's XSRF token.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from conftest import wait_for_state

CHROMIUM = os.environ.get("INFINSTOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no browser at {CHROMIUM}"),
]


async def _seed(infinstor) -> tuple[str, str]:
    client = AsyncHTTPClient()
    headers = {**infinstor.tracking.auth_headers(), "Content-Type": "application/json"}
    uri = infinstor.tracking.uri

    async def post(path, body):
        response = await client.fetch(f"{uri}/api/2.0/mlflow/{path}", method="POST", body=json.dumps(body), headers=headers)
        return json.loads(response.body)

    experiment_id = (await post("experiments/create", {"name": "browser-visible-experiment"}))["experiment_id"]
    await post("runs/create", {"experiment_id": experiment_id, "run_name": "browser-visible-run"})
    return experiment_id, uri


async def test_mlflow_ui_works_in_a_browser_through_the_proxy(jp_fetch, infinstor, jp_http_port, jp_base_url, jp_auth_header):
    await wait_for_state(jp_fetch, "running")
    experiment_id, upstream = await _seed(infinstor)
    secret = infinstor.tracking.secret_path.read_text().strip()
    token = jp_auth_header["Authorization"].split()[1]
    origin = f"http://127.0.0.1:{jp_http_port}"
    ui = f"{origin}{jp_base_url}infinstor/api/mlflow/"

    requests: list[str] = []
    failures: list[str] = []
    console_errors: list[str] = []
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on(
                "response",
                lambda r: failures.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None,
            )
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            # Sign in to Jupyter once (the token in the URL sets Jupyter's login cookie), as the lab does.
            await page.goto(f"{origin}{jp_base_url}infinstor/api/status?token={token}")
            cookies = await page.context.cookies()
            assert any(c["name"].startswith("username-") for c in cookies)

            # The experiments list.
            started = time.monotonic()
            await page.goto(ui)
            await page.get_by_text("browser-visible-experiment").first.wait_for(timeout=60_000)
            first_render = time.monotonic() - started

            # An experiment's runs table: the UI POSTs ajax-api/2.0/mlflow/runs/search.
            await page.goto(f"{ui}#/experiments/{experiment_id}/runs")
            await page.get_by_text("browser-visible-run").first.wait_for(timeout=60_000)

            # A POST the way the UI makes them (same origin, cookie only, no XSRF token).
            created = await page.evaluate(
                """async () => {
                    const r = await fetch('ajax-api/2.0/mlflow/experiments/create', {
                        method: 'POST', headers: {'Content-Type': 'application/json'},
                        body: JSON.stringify({name: 'created-from-the-ui'})});
                    return {status: r.status, body: await r.text()};
                }"""
            )
            assert created["status"] == 200, created

            # Framed by a page of the lab's origin, as in a JupyterLab tab.
            framed = await page.evaluate(
                """async (url) => {
                    const frame = document.createElement('iframe');
                    frame.src = url; document.body.appendChild(frame);
                    await new Promise((resolve) => frame.onload = resolve);
                    for (let i = 0; i < 200; i++) {
                        const root = frame.contentDocument && frame.contentDocument.getElementById('root');
                        if (root && root.children.length) return true;
                        await new Promise((r) => setTimeout(r, 100));
                    }
                    return false;
                }""",
                ui,
            )
            assert framed
            html = await page.content()
        finally:
            await browser.close()

    print(f"MLflow UI through the proxy: experiments list rendered in {first_render:.1f} s")
    prefix = f"{origin}{jp_base_url}infinstor/api/mlflow/"
    ours = [u for u in requests if u.startswith(origin)]
    assert any("ajax-api/2.0/mlflow/experiments/search" in u for u in ours), ours
    assert any("ajax-api/2.0/mlflow/runs/search" in u for u in ours), ours
    # Everything the UI asked this origin for went through the proxy (no root-relative escapes)...
    strays = [u for u in ours if not u.startswith(prefix) and "infinstor/api/status" not in u]
    assert not strays, strays
    # ... nothing went straight to the tracking server, and nothing failed.
    assert not [u for u in requests if u.startswith(upstream)]
    # MLflow's assistant is never proxied: the lab answers the UI's two "is it set up?" calls
    # itself (see proxy/policy.py), so nothing about it fails. The one expected failure:
    # users/current exists only on MLflow servers with authentication; the UI copes.
    assert any("ajax-api/3.0/mlflow/assistant/config" in u for u in ours), ours
    expected = ("ajax-api/2.0/mlflow/users/current",)
    assert not [f for f in failures if not any(e in f for e in expected)], failures
    assert secret not in html
    created_names = json.loads(
        (
            await jp_fetch(
                "infinstor",
                "api",
                "mlflow",
                "api/2.0/mlflow/experiments/search",
                method="POST",
                body=json.dumps({"max_results": 50}),
                headers={"Content-Type": "application/json"},
            )
        ).body
    )
    assert "created-from-the-ui" in {e["name"] for e in created_names["experiments"]}
