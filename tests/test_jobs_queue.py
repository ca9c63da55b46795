"""The inline target runs at most `max_parallel` jobs; the rest wait in the queue."""

from __future__ import annotations

import json

import pytest

from conftest import wait_for_state
from notebooks import long_notebook, notebook, write
from test_jobs import get_job, submit, wait_for_job


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jupyterlab": True}},
        "InlineTarget": {"max_parallel": 1},
    }


@pytest.mark.slow
async def test_jobs_beyond_the_limit_queue_and_start_in_order(jp_fetch, jp_root_dir):
    write(long_notebook(600), jp_root_dir / "long.ipynb")
    write(notebook("print('quick')"), jp_root_dir / "quick.ipynb")
    await wait_for_state(jp_fetch, "running")
    first = await submit(jp_fetch, path="long.ipynb")
    second = await submit(jp_fetch, path="quick.ipynb")
    third = await submit(jp_fetch, path="quick.ipynb")
    assert (await wait_for_job(jp_fetch, first["id"], ("RUNNING",)))["status"] == "RUNNING"
    assert (await get_job(jp_fetch, second["id"]))["status"] == "QUEUED"
    assert (await get_job(jp_fetch, third["id"]))["status"] == "QUEUED"

    # A queued job can be cancelled without ever starting.
    response = await jp_fetch("infinstor", "api", "jobs", third["id"], "cancel", method="POST", body=b"")
    assert json.loads(response.body)["status"] == "KILLED"
    assert json.loads(response.body)["started_at"] is None

    await jp_fetch("infinstor", "api", "jobs", first["id"], "cancel", method="POST", body=b"")
    done = await wait_for_job(jp_fetch, second["id"])
    assert done["status"] == "FINISHED"
    assert (await get_job(jp_fetch, third["id"]))["status"] == "KILLED"

    # Deleting removes the job, never its MLflow run; a running job cannot be deleted.
    response = await jp_fetch("infinstor", "api", "jobs", second["id"], method="DELETE")
    assert response.code == 204
    remaining = [j["id"] for j in json.loads((await jp_fetch("infinstor", "api", "jobs")).body)["jobs"]]
    assert second["id"] not in remaining and first["id"] in remaining
