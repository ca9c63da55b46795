"""The embedded service's supervisor on its own (real MLflow processes, no Jupyter server)."""

from __future__ import annotations

import asyncio

import pytest

from infinstor_jupyterlab.errors import TrackingUnavailable
from infinstor_jupyterlab.lab.tracking.embedded import EmbeddedTrackingServer

pytestmark = pytest.mark.slow  # real MLflow server processes


async def test_a_server_that_cannot_start_reports_why_and_gives_up(tmp_path):
    server = EmbeddedTrackingServer(tmp_path / "embedded", extra_args=["--no-such-option"], max_restarts=2, startup_timeout=60)
    try:
        with pytest.raises(TrackingUnavailable) as excinfo:
            await server.ensure_running()
        assert "No such option" in excinfo.value.message
        assert str(server.log_path) in excinfo.value.message
        # Every poll retries, until the limit: then it stays in error without spawning more.
        for _ in range(4):
            status = await server.status()
            if server._start_task:
                await asyncio.wait_for(asyncio.shield(server._start_task), 60)
        status = await server.status()
        assert status.state == "error"
        assert server._given_up
        assert server.pid is None
        with pytest.raises(TrackingUnavailable):
            await server.ensure_running()
    finally:
        await server.stop()


async def test_port_taken_before_first_start_moves_to_a_free_one(tmp_path):
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    server = EmbeddedTrackingServer(tmp_path / "embedded", port=taken)
    try:
        await server.ensure_running()
        assert server.port != taken
        assert (await server.status()).state == "running"
    finally:
        await server.stop()
        blocker.close()


@pytest.mark.parametrize("pool", [None, ("2", "2")], ids=["embedded-pool", "tiny-pool"])
async def test_parallel_writers_all_land(tmp_path, monkeypatch, pool):
    """A sweep's runs logging at once: 32 concurrent writers all succeed and every metric is there.

    MLflow's log-batch holds two pooled connections at once; before the handler threads were capped
    at half the pool (service.concurrency), 32 writers deadlocked the pool until its 30 s timeout
    and 42 of 96 calls failed. With a pool of 2 + 2 the cap is 2 handlers, and still nothing fails.
    """
    import time

    if pool:
        monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", pool[0])
        monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", pool[1])

    import aiohttp

    server = EmbeddedTrackingServer(tmp_path / "embedded", startup_timeout=120)
    try:
        await server.ensure_running()
        headers = server.auth_headers()
        api = f"{server.uri}/api/2.0/mlflow"
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(f"{api}/experiments/create", json={"name": "sweep"}) as r:
                experiment_id = (await r.json())["experiment_id"]
            run_ids = []
            for _ in range(32):
                async with session.post(f"{api}/runs/create", json={"experiment_id": experiment_id}) as r:
                    run_ids.append((await r.json())["run"]["info"]["run_id"])

            async def writer(run_id: str) -> list[int]:
                statuses = []
                for step in range(10):
                    metric = {"key": "loss", "value": 1.0 / (step + 1), "timestamp": int(time.time() * 1000), "step": step}
                    async with session.post(f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": [metric]}) as r:
                        statuses.append(r.status)
                return statuses

            results = await asyncio.gather(*(writer(run_id) for run_id in run_ids))
            assert all(status == 200 for statuses in results for status in statuses), results
            for run_id in run_ids:
                params = {"run_id": run_id, "metric_key": "loss", "max_results": 100}
                async with session.get(f"{api}/metrics/get-history", params=params) as r:
                    assert sorted(m["step"] for m in (await r.json())["metrics"]) == list(range(10))
    finally:
        await server.stop()
