"""Inline jobs run in the notebook's kernel's environment, whatever PATH the lab was started with.

JupyterHub spawners and service managers start `/path/to/venv/bin/jupyter` with the venv off PATH;
MLflow runs the entry point as `bash -c "python ..."`. The job must still get the kernel's Python
(from the notebook's kernelspec, else the lab's own), never whatever `python` PATH finds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from notebooks import notebook, write
from servers import JupyterServer, kill_processes_mentioning
from vm_env import UNIT_PATH, vm_env  # noqa: F401

pytestmark = pytest.mark.slow

PROBE = (
    "import os, shutil, sys, mlflow\n"
    "print('EXECUTABLE', sys.executable)\n"
    "print('PYTHON_ON_PATH', shutil.which('python'))\n"
    "mlflow.log_metric('n', n)"
)


def wait_for(server: JupyterServer, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    job = {}
    while time.monotonic() < deadline:
        job = server.job(job_id)
        if job["status"] in ("FINISHED", "FAILED", "KILLED"):
            return job
        time.sleep(1)
    raise AssertionError(f"job did not end: {job}")


def whole_log(server: JupyterServer, job_id: str) -> str:
    return server.get(f"infinstor/api/jobs/{job_id}/log", params={"offset": 0}).json()["data"]


def printed(log: str, key: str) -> str:
    return next(line.split(" ", 1)[1] for line in log.splitlines() if line.startswith(key + " "))


def test_inline_jobs_with_the_lab_started_by_absolute_path(tmp_path, vm_env):  # noqa: F811
    root = tmp_path / "root"
    root.mkdir()
    write(notebook(PROBE, parameters="n = 1"), root / "here.ipynb")
    # A second kernel: another environment (the VM's venv), registered as Jupyter does it.
    spec_dir = tmp_path / "data" / "kernels" / "vm-env"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(vm_env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "VM env",
                "language": "python",
            }
        )
    )
    other = notebook(PROBE, parameters="n = 1")
    other.metadata["kernelspec"] = {"name": "vm-env", "display_name": "VM env", "language": "python"}
    write(other, root / "there.ipynb")

    jupyter = Path(sys.executable).parent / "jupyter"
    server = JupyterServer(tmp_path, root, command=[str(jupyter)], env={"PATH": UNIT_PATH})
    try:
        server.wait_tracking()
        targets = server.get("infinstor/api/targets").json()["targets"]
        inline = next(t for t in targets if t["name"] == "inline")
        assert "uv" in inline["capabilities"]["env_managers"]  # beside the lab's interpreter, off PATH

        here = server.post("infinstor/api/jobs", json={"path": "here.ipynb", "parameters": {"n": 2}})
        assert here.status_code == 201, here.text
        there = server.post("infinstor/api/jobs", json={"path": "there.ipynb", "parameters": {"n": 3}})
        assert there.status_code == 201, there.text

        job = wait_for(server, here.json()["id"])
        log = whole_log(server, job["id"])
        assert job["status"] == "FINISHED", (job, log[-3000:])
        # The lab's own interpreter (the notebook's kernel, "python3"), not the system's.
        assert Path(printed(log, "EXECUTABLE")).samefile(sys.executable)
        assert Path(printed(log, "PYTHON_ON_PATH")).parent.parent == Path(job["project_dir"]).parent  # the job's shim

        job = wait_for(server, there.json()["id"])
        log = whole_log(server, job["id"])
        assert job["status"] == "FINISHED", (job, log[-3000:])
        assert Path(printed(log, "EXECUTABLE")).samefile(vm_env.python)  # the kernelspec's interpreter
        assert Path(printed(log, "EXECUTABLE")).parent == vm_env.python.parent
    finally:
        server.stop()
        kill_processes_mentioning(str(tmp_path))
