"""The embedded service's supervisor on its own (real MLflow processes, no Jupyter server)."""

from __future__ import annotations

import asyncio

import pytest

from infinstor_jupyterlab.errors import TrackingUnavailable
from infinstor_jupyterlab.tracking.embedded import EmbeddedTrackingServer


async def test_a_server_that_cannot_start_reports_why_and_gives_up(tmp_path):
    server = EmbeddedTrackingServer(
        tmp_path / "embedded", extra_args=["--no-such-option"], max_restarts=2, startup_timeout=60
    )
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
