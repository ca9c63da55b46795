"""Files the lab writes are private (0600 files, 0700 folders) whatever their parent's mode, with a
custom `jobs_dir` and embedded data directory under an open (0755) parent and the usual umask."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from conftest import wait_for_state
from infinstor_jupyterlab.jobs.models import Job
from infinstor_jupyterlab.jobs.store import JobStore
from infinstor_jupyterlab.paths import ensure_private_dir, open_private_append
from notebooks import notebook, write
from test_jobs import submit, wait_for_job


@pytest.fixture
def usual_umask():
    """The umask most users have (022): files are 0644 and folders 0755 unless created private."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def open_parent(tmp_path, usual_umask):
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o755)
    return parent


def loose(root: Path) -> list[str]:
    """Everything under `root` (and `root`) that group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{oct(mode)} {path.relative_to(root.parent)}")
    return found


def test_job_store_database_and_its_wal_are_private(open_parent):
    store = JobStore(open_parent / "a" / "b" / "jobs" / "jobs.db")
    # a write, so the WAL and shared memory exist
    store.save(
        Job(
            id="j1",
            path="n.ipynb",
            kind="notebook",
            target="inline",
            status="QUEUED",
            parameters={},
            experiment_id="0",
            run_id="r1",
            run_name=None,
            project_dir="p",
        )
    )
    names = {p.name for p in (open_parent / "a" / "b" / "jobs").iterdir()}
    assert {"jobs.db", "jobs.db-wal", "jobs.db-shm"} <= names, names
    assert loose(open_parent / "a") == []
    store.close()


def test_an_existing_world_readable_store_is_made_private(open_parent):
    path = open_parent / "jobs" / "jobs.db"
    path.parent.mkdir()
    sqlite3.connect(path).close()
    path.chmod(0o644)
    JobStore(path).close()
    assert loose(open_parent / "jobs") == []


def test_private_helpers(open_parent):
    folder = ensure_private_dir(open_parent / "x" / "y")
    with open_private_append(folder / "log") as handle:
        handle.write(b"one\n")
    (folder / "log").chmod(0o644)
    with open_private_append(folder / "log") as handle:  # repaired when reopened
        handle.write(b"two\n")
    assert (folder / "log").read_bytes() == b"one\ntwo\n"
    assert loose(open_parent / "x") == []


@pytest.fixture
def jp_server_config(open_parent):
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jupyterlab": True}},
        "InfinStor": {
            "embedded_startup_timeout": 120,
            "jobs_dir": str(open_parent / "lab" / "jobs"),
            "embedded_data_dir": str(open_parent / "lab" / "embedded"),
        },
    }


@pytest.mark.slow
async def test_everything_a_job_leaves_is_private(jp_fetch, jp_root_dir, open_parent, jp_data_dir):
    write(
        notebook(
            "import mlflow\nmlflow.log_metric('m', 1.0)\nprint('hello', flush=True)",
            parameters="alpha = 1",
        ),
        jp_root_dir / "small.ipynb",
    )
    await wait_for_state(jp_fetch, "running")
    job = await wait_for_job(jp_fetch, (await submit(jp_fetch, path="small.ipynb", parameters={"alpha": 2}))["id"])
    assert job["status"] == "FINISHED", job
    jobs_dir = open_parent / "lab" / "jobs"
    embedded = open_parent / "lab" / "embedded"
    for expected in (
        jobs_dir / "jobs.db",
        jobs_dir / "jobs.db-wal",
        jobs_dir / "jobs.db-shm",
        jobs_dir / job["id"] / "output.log",
        jobs_dir / job["id"] / "project" / "MLproject",
        embedded / "mlflow.db",
        embedded / "server.log",
        embedded / "secret",
    ):
        assert expected.exists(), expected
    assert list((embedded / "artifacts").rglob("output.log")), "the job log was uploaded to the run"
    assert loose(open_parent / "lab") == []
    # The lab's own data directory (caches, credentials) too.
    data = Path(jp_data_dir) / "infinstor"
    if data.exists():
        assert loose(data) == []


async def test_exported_projects_keep_the_users_umask(jp_fetch, jp_root_dir, usual_umask):
    """A project exported into the Jupyter root is the user's content, like a saved notebook."""
    import json

    write(notebook("x = 1"), jp_root_dir / "n.ipynb")
    await jp_fetch("infinstor", "api", "projects", method="POST", body=json.dumps({"path": "n.ipynb", "output_dir": "out"}))
    assert stat.S_IMODE((jp_root_dir / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((jp_root_dir / "out" / "MLproject").stat().st_mode) == 0o644
