"""Configuring a tracking URI turns the embedded service off."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from conftest import get_status, wait_for_state


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def plain_mlflow_server(tmp_path_factory):
    """A real, plain MLflow server (no auth), as a company might already run."""
    root = tmp_path_factory.mktemp("remote-mlflow")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{uri}/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("plain mlflow server did not start")
    yield uri
    os.killpg(proc.pid, 15)
    proc.wait(30)


class TestConfiguredRemote:
    @pytest.fixture
    def jp_server_config(self, plain_mlflow_server):
        return {
            "ServerApp": {"jpserver_extensions": {"infinstor_jupyterlab": True}},
            "InfinStor": {"tracking_uri": plain_mlflow_server + "/"},
        }

    async def test_status_is_remote_and_no_embedded_server_runs(self, jp_fetch, infinstor, plain_mlflow_server, jp_data_dir):
        status = await wait_for_state(jp_fetch, "running")
        assert status["tracking"]["mode"] == "remote"
        assert status["tracking"]["uri"] == plain_mlflow_server
        assert not (jp_data_dir / "infinstor" / "embedded").exists()
        assert os.environ["MLFLOW_TRACKING_URI"] == plain_mlflow_server
        assert "INFINSTOR_EMBEDDED_URI" not in os.environ


class TestEnvironmentRemote:
    @pytest.fixture
    def jp_server_config(self):
        return {"ServerApp": {"jpserver_extensions": {"infinstor_jupyterlab": True}}}

    @pytest.fixture
    def jp_environ(self, jp_environ, monkeypatch):
        # Nothing listens here: the status must say so, not hang.
        monkeypatch.setenv("INFINSTOR_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
        return jp_environ

    async def test_unreachable_remote_reports_error(self, jp_fetch):
        status = await get_status(jp_fetch)
        assert status["tracking"]["mode"] == "remote"
        assert status["tracking"]["state"] == "error"
        assert "Cannot reach the tracking service" in status["tracking"]["message"]
