"""`mlflow run -b infinstor-backend`: the same job code as the lab, seen in its Jobs view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from servers import JupyterServer, kill_processes_mentioning


def _project(root, name="sweep", seconds=0):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "MLproject").write_text(
        yaml.safe_dump(
            {
                "name": name,
                "python_env": "python_env.yaml",
                "entry_points": {
                    "main": {
                        "parameters": {"alpha": {"type": "float", "default": 0.5}, "tag": {"type": "string", "default": "x"}},
                        "command": "python train.py --alpha {alpha} --tag {tag}",
                    }
                },
            }
        )
    )
    (folder / "python_env.yaml").write_text(yaml.safe_dump({"python": "3.11", "dependencies": ["mlflow"]}))
    (folder / "train.py").write_text(
        textwrap.dedent(
            f"""
            import argparse, time, mlflow
            parser = argparse.ArgumentParser()
            parser.add_argument("--alpha", type=float)
            parser.add_argument("--tag")
            args = parser.parse_args()
            print("training with", args.alpha, args.tag, flush=True)
            time.sleep({seconds})
            mlflow.log_metric("score", args.alpha * 2)
            print("done", flush=True)
            """
        )
    )
    return folder


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    server = JupyterServer(tmp_path, root)
    server.wait_tracking()
    status = server.get("infinstor/api/status").json()
    # What a terminal in that lab gets in its environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "JPY_"))}
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        MLFLOW_TRACKING_URI=status["tracking"]["uri"],
        INFINSTOR_EMBEDDED_URI=status["tracking"]["uri"],
        INFINSTOR_SECRET_FILE=str(tmp_path / "data" / "infinstor" / "embedded" / "secret"),
    )
    yield server, root, env
    server.stop()
    kill_processes_mentioning(str(tmp_path))


@pytest.mark.slow
def test_mlflow_run_cli_goes_through_the_lab(lab):
    server, root, env = lab
    project = _project(root)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(project),
            "-b",
            "infinstor-backend",
            "--backend-config",
            json.dumps({"target": "inline", "run_name": "from-cli", "wait": True}),
            "-P",
            "alpha=0.25",
            "-P",
            "tag=cli",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training with 0.25 cli" in result.stdout  # the job's log streamed to the terminal
    [job] = server.get("infinstor/api/jobs").json()["jobs"]
    assert job["status"] == "FINISHED" and job["path"] == "sweep" and job["kind"] == "project"
    assert job["parameters"] == {"alpha": "0.25", "tag": "cli"}
    assert job["run_name"] == "from-cli"

    # Without "wait", the command returns once the job is submitted; the lab runs it to the end.
    result = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", str(project), "-b", "infinstor-backend", "-P", "alpha=2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "follow it in the lab's Jobs view" in result.stderr
    newest = server.get("infinstor/api/jobs").json()["jobs"][0]
    deadline = time.monotonic() + 120
    while newest["status"] not in ("FINISHED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.5)
        newest = server.job(newest["id"])
    assert newest["status"] == "FINISHED"

    # A failing job fails the waiting command.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(project),
            "-b",
            "infinstor-backend",
            "--backend-config",
            '{"wait": true}',
            "-P",
            "alpha=not-a-number",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "alpha" in result.stderr


@pytest.mark.slow
def test_submitted_run_status_and_cancel(lab, monkeypatch):
    server, root, env = lab
    project = _project(root, "slow", seconds=300)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import mlflow.projects

    submitted = mlflow.projects.run(
        str(project),
        backend="infinstor-backend",
        backend_config={"target": "inline", "stream_logs": False},
        parameters={"alpha": 1},
        synchronous=False,
    )
    deadline = time.monotonic() + 120
    while submitted.get_status() != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert submitted.get_status() == "RUNNING"
    submitted.cancel()
    assert submitted.get_status() == "KILLED"
    assert submitted.wait() is False
    run = mlflow.MlflowClient().get_run(submitted.run_id)
    assert run.info.status == "KILLED"


def test_bad_backend_use_is_explained(tmp_path, monkeypatch):
    from mlflow.exceptions import ExecutionException

    from infinstor_jupyterlab.mlflow_plugin.project_backend import InfinStorProjectBackend

    backend = InfinStorProjectBackend()
    with pytest.raises(ExecutionException, match="not one"):
        backend.run("https://github.com/mlflow/mlflow-example", "main", {}, None, {}, "", "0")
    with pytest.raises(ExecutionException, match="unknown backend-config key"):
        backend.run(str(tmp_path), "main", {}, None, {"colour": "red"}, "", "0")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))
    with pytest.raises(ExecutionException, match="No running Jupyter server with InfinStor"):
        backend.run(str(tmp_path), "main", {}, None, {}, "", "0")
