"""The server extension loads, reports its tracking service, and keeps it alive."""

from __future__ import annotations

import os
import signal
import stat

import psutil
import pytest
from tornado.httpclient import AsyncHTTPClient

import infinstor_jupyterlab
from conftest import get_status, mlflow_api, wait_for_state


def test_extension_is_loaded(jp_serverapp):
    manager = jp_serverapp.extension_manager
    assert "infinstor_jupyterlab" in manager.extensions
    extension = manager.extensions["infinstor_jupyterlab"]
    assert extension.enabled
    assert all(point.app is not None for point in extension.extension_points.values())
    assert jp_serverapp.web_app.settings["infinstor"].version == infinstor_jupyterlab.__version__


def test_labextension_paths_point_at_the_built_extension():
    paths = infinstor_jupyterlab._jupyter_labextension_paths()
    assert paths == [{"src": "labextension", "dest": "infinstor-jupyterlab"}]


async def test_status_reports_embedded_service_running(jp_fetch, infinstor):
    first = await get_status(jp_fetch)
    assert first["tracking"]["mode"] == "embedded"
    assert first["tracking"]["state"] in ("starting", "running")
    assert first["user"]["display_name"] == "local"
    assert first["version"] == infinstor_jupyterlab.__version__

    status = await wait_for_state(jp_fetch, "running")
    uri = status["tracking"]["uri"]
    assert uri.startswith("http://127.0.0.1:")
    assert status["tracking"]["message"] == ""
    # It is a real MLflow server: the secret opens its REST API.
    code, body = await mlflow_api(uri, "experiments/search", body={"max_results": 10}, headers=infinstor.tracking.auth_headers())
    assert code == 200, body
    assert any(e["name"] == "Default" for e in body["experiments"])


async def test_embedded_service_is_private_to_its_owner(jp_fetch, infinstor):
    status = await wait_for_state(jp_fetch, "running")
    uri = status["tracking"]["uri"]
    tracking = infinstor.tracking

    # No secret, a wrong secret, or a wrong scheme: 401 on REST, UI, artifacts and health alike.
    for headers in ({}, {"Authorization": "Bearer not-the-secret"}, {"Authorization": "Basic eDp5"}):
        code, body = await mlflow_api(uri, "experiments/search", body={"max_results": 1}, headers=headers)
        assert code == 401
        assert body["error_code"] == "UNAUTHENTICATED"
        for path in ("/", "/health", "/api/2.0/mlflow-artifacts/artifacts", "/ajax-api/2.0/mlflow/experiments/search"):
            response = await AsyncHTTPClient().fetch(uri + path, headers=headers, raise_error=False)
            assert response.code == 401, (path, response.code)

    # Only loopback, and the secret file is readable by its owner only.
    assert tracking.host == "127.0.0.1"
    for path in (tracking.secret_path,):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tracking.secret_path.parent).st_mode) == 0o700
    # The secret never appears in what the browser gets.
    body = (await jp_fetch("infinstor", "api", "status")).body.decode()
    assert tracking.secret_path.read_text().strip() not in body


@pytest.mark.parametrize("victim", ["leader", "server-worker"])
async def test_killed_service_comes_back(jp_fetch, infinstor, victim):
    await wait_for_state(jp_fetch, "running")
    tracking = infinstor.tracking
    leader = psutil.Process(tracking.pid)
    workers = leader.children(recursive=True)
    assert workers, "mlflow server should run its uvicorn worker as a child"
    target = leader if victim == "leader" else workers[0]
    old_pids = {leader.pid, *(w.pid for w in workers)}
    os.kill(target.pid, signal.SIGKILL)

    status = await wait_for_state(jp_fetch, "running", predicate=lambda s: tracking.pid is not None and tracking.pid not in old_pids)
    # Same URL: kernels that were told about it keep working.
    assert status["tracking"]["uri"] == tracking.uri
    code, _ = await mlflow_api(tracking.uri, "experiments/search", body={"max_results": 1}, headers=tracking.auth_headers())
    assert code == 200
    # Nothing of the old server is left behind.
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in old_pids)


async def test_restart_endpoint(jp_fetch, infinstor):
    await wait_for_state(jp_fetch, "running")
    old_pid = infinstor.tracking.pid
    response = await jp_fetch("infinstor", "api", "tracking", "restart", method="POST", body=b"")
    body = __import__("json").loads(response.body)
    assert body["tracking"]["state"] == "running"
    assert infinstor.tracking.pid != old_pid


async def test_stop_extension_stops_the_service(jp_fetch, infinstor, jp_serverapp):
    await wait_for_state(jp_fetch, "running")
    leader = psutil.Process(infinstor.tracking.pid)
    processes = [leader, *leader.children(recursive=True)]
    assert len(processes) >= 2
    await jp_serverapp.extension_manager.stop_all_extensions()
    for proc in processes:
        try:
            assert proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            pass
