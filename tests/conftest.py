from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime

import pytest
from tornado.httpclient import AsyncHTTPClient

# Fixture modules as plugins: the test identity provider and the token-checking MLflow service
# (idp_fixture), a throwaway PostgreSQL cluster for the company service's tests (service_fixture);
# session-scoped, started on first use.
pytest_plugins = ["pytest_jupyter.jupyter_server", "idp_fixture", "service_fixture"]


# The fast lane (`pytest -m "not slow"`) leaves out every test that needs a real server process:
# these fixtures start one (the embedded MLflow server, a kernel, the IdP, PostgreSQL, moto, a
# company service). A test module may also mark itself (`pytestmark = pytest.mark.slow`).
SLOW_FIXTURES = frozenset(
    {
        "infinstor",  # the extension's embedded MLflow server, running
        "jp_ws_fetch",  # a kernel
        "idp",
        "idp_issuer",
        "oidc_service",
        "other_issuer",
        "postgres_cluster",
        "restartable_postgres",
        "company_server",
        "plain_mlflow_server",
        "moto_endpoint",
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _restore_environ():
    """The extension exports kernel settings into os.environ; keep tests independent."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def jp_server_config(jp_server_config):
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jupyterlab": True}},
        "InfinStor": {"embedded_startup_timeout": 120},
    }


@pytest.fixture
def infinstor(jp_serverapp):
    """The running extension's context (tracking backend etc.)."""
    return jp_serverapp.web_app.settings["infinstor"]


async def get_status(jp_fetch) -> dict:
    response = await jp_fetch("infinstor", "api", "status")
    return json.loads(response.body)


async def wait_for_state(jp_fetch, state="running", timeout=120.0, predicate=None) -> dict:
    deadline = time.monotonic() + timeout
    status = {}
    while time.monotonic() < deadline:
        status = await get_status(jp_fetch)
        if status["tracking"]["state"] == state and (predicate is None or predicate(status)):
            return status
        await asyncio.sleep(0.5)
    raise AssertionError(f"tracking never reached {state!r}: {status}")


async def mlflow_api(uri: str, path: str, *, headers=None, body=None, method=None):
    """Call the MLflow REST API directly (not through Jupyter)."""
    client = AsyncHTTPClient()
    response = await client.fetch(
        f"{uri}/api/2.0/mlflow/{path}",
        method=method or ("POST" if body is not None else "GET"),
        body=json.dumps(body) if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
        raise_error=False,
    )
    return response.code, (json.loads(response.body) if response.body else None)


class KernelSession:
    """Drives a kernel over Jupyter's websocket channels, as the lab does."""

    def __init__(self, ws):
        self.ws = ws
        self.session = uuid.uuid4().hex

    async def execute(self, code: str, timeout: float = 120.0) -> dict:
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "username": "test",
                "session": self.session,
                "msg_type": "execute_request",
                "version": "5.3",
                "date": datetime.now(UTC).isoformat(),
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
            "buffers": [],
        }
        await self.ws.write_message(json.dumps(message))
        result = {"stdout": "", "stderr": "", "error": None, "reply": None}
        idle = False
        deadline = time.monotonic() + timeout
        while not (idle and result["reply"] is not None):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"kernel did not finish executing: {result}")
            raw = await asyncio.wait_for(self.ws.read_message(), remaining)
            if raw is None:
                raise AssertionError("kernel websocket closed")
            if isinstance(raw, bytes):
                continue
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                result[msg["content"]["name"]] += msg["content"]["text"]
            elif kind == "error":
                result["error"] = "\n".join(msg["content"]["traceback"])
            elif kind == "execute_reply":
                result["reply"] = msg["content"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        return result
