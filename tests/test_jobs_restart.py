"""Jobs survive a restart of the Jupyter server (real server processes on one data directory)."""

from __future__ import annotations

import time

import psutil
import pytest

from notebooks import notebook, write
from servers import JupyterServer, kill_processes_mentioning


def _job_root(run_id):
    for proc in psutil.process_iter(["cmdline"]):
        if run_id in " ".join(proc.info["cmdline"] or []):
            return proc
    return None


def _wait_for_marker(server, job_id, marker, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in server.get(f"infinstor/api/jobs/{job_id}/log").json()["data"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{marker!r} never appeared in the job log")


@pytest.mark.slow
@pytest.mark.parametrize("outcome", ["still-running", "died-while-down"])
def test_job_across_a_jupyter_restart(tmp_path, outcome):
    root = tmp_path / "root"
    write(
        notebook(
            "import mlflow, time\nprint('STARTED', flush=True)",
            "for _ in range(150):\n    time.sleep(0.1)",
            "mlflow.log_metric('after_restart', 1.0)\nprint('DONE', flush=True)",
        ),
        root / "slow.ipynb",
    )
    first = JupyterServer(tmp_path, root)
    try:
        first.wait_tracking()
        job = first.post("infinstor/api/jobs", {"path": "slow.ipynb"}).json()
        _wait_for_marker(first, job["id"], "STARTED")
        job_process = _job_root(job["run_id"])
        assert job_process is not None
    finally:
        first.stop()

    assert job_process.is_running(), "the job must outlive the Jupyter server"
    if outcome == "died-while-down":
        tree = [job_process, *job_process.children(recursive=True)]
        for proc in tree:
            proc.kill()
        psutil.wait_procs(tree, 10)

    second = JupyterServer(tmp_path, root)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            current = second.job(job["id"])
            if current["status"] in ("FINISHED", "FAILED", "KILLED"):
                break
            assert current["status"] == "RUNNING"
            time.sleep(0.5)
        if outcome == "still-running":
            assert current["status"] == "FINISHED", current
            log = second.get(f"infinstor/api/jobs/{job['id']}/log").json()["data"]
            assert "DONE" in log
        else:
            assert current["status"] == "FAILED"
            assert "restarting" in current["failure_reason"]
        listed = second.get("infinstor/api/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]]
    finally:
        second.stop()
        kill_processes_mentioning(str(tmp_path))  # a failed test leaves nothing behind
