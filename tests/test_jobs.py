"""Notebooks run as jobs on the inline target, end to end on the embedded tracking service."""

from __future__ import annotations

import asyncio
import json
import time

import psutil
import pytest
from tornado.httpclient import HTTPClientError

from conftest import mlflow_api, wait_for_state
from notebooks import failing_notebook, long_notebook, sklearn_training_notebook, write
from servers import process_tree


async def submit(jp_fetch, **body) -> dict:
    response = await jp_fetch("infinstor", "api", "jobs", method="POST", body=json.dumps(body))
    assert response.code == 201
    return json.loads(response.body)


async def get_job(jp_fetch, job_id) -> dict:
    return json.loads((await jp_fetch("infinstor", "api", "jobs", job_id)).body)


async def wait_for_job(jp_fetch, job_id, statuses=("FINISHED", "FAILED", "KILLED"), timeout=240) -> dict:
    deadline = time.monotonic() + timeout
    job = {}
    while time.monotonic() < deadline:
        job = await get_job(jp_fetch, job_id)
        if job["status"] in statuses:
            return job
        await asyncio.sleep(0.5)
    raise AssertionError(f"job never reached {statuses}: {job}")


async def read_whole_log(jp_fetch, job_id) -> str:
    text, offset = "", 0
    for _ in range(1000):
        chunk = json.loads(
            (await jp_fetch("infinstor", "api", "jobs", job_id, "log", params={"offset": offset})).body
        )
        text += chunk["data"]
        if chunk["next_offset"] == offset:
            break
        offset = chunk["next_offset"]
    return text


async def run_of(infinstor, run_id) -> dict:
    tracking = infinstor.tracking
    code, body = await mlflow_api(tracking.uri, f"runs/get?run_id={run_id}", headers=tracking.auth_headers())
    assert code == 200, body
    return body["run"]


async def artifacts_of(infinstor, run_id, path="") -> set[str]:
    tracking = infinstor.tracking
    code, body = await mlflow_api(
        tracking.uri, f"artifacts/list?run_id={run_id}&path={path}", headers=tracking.auth_headers()
    )
    assert code == 200, body
    return {f["path"] for f in body.get("files", [])}


def processes_of(job) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if job["run_id"] in cmdline or job["project_dir"] in cmdline:
            found.append(proc)
    return found


@pytest.mark.slow
async def test_sklearn_notebook_job_end_to_end(jp_fetch, jp_root_dir, infinstor):
    write(sklearn_training_notebook(), jp_root_dir / "models" / "iris.ipynb")
    await wait_for_state(jp_fetch, "running")
    job = await submit(
        jp_fetch, path="models/iris.ipynb", parameters={"C": 0.3, "max_iter": 120, "label": "from the lab"},
        experiment_name="iris", run_name="iris-job",
    )
    assert job["status"] in ("QUEUED", "RUNNING")
    assert job["kind"] == "notebook" and job["target"] == "inline"
    run = await run_of(infinstor, job["run_id"])
    assert run["info"]["status"] in ("SCHEDULED", "RUNNING")

    job = await wait_for_job(jp_fetch, job["id"])
    log = await read_whole_log(jp_fetch, job["id"])
    assert job["status"] == "FINISHED", (job, log[-3000:])
    assert job["failure_reason"] is None and job["duration"] > 0

    run = await run_of(infinstor, job["run_id"])
    assert run["info"]["status"] == "FINISHED"
    assert run["info"]["run_name"] == "iris-job"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    # Every parameter the run used, defaults included (as `mlflow run` logs them).
    assert params == {"C": "0.3", "max_iter": "120", "label": "from the lab", "seed": "7", "verbose": "False"}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert 0.5 < metrics["accuracy"] <= 1.0
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.name"] == "models/iris.ipynb"
    assert tags["infinstor.job.id"] == job["id"]
    assert "accuracy" in log
    assert await artifacts_of(infinstor, job["run_id"], "notebook") == {"notebook/iris.ipynb", "notebook/iris.html"}
    assert await artifacts_of(infinstor, job["run_id"], "job") == {"job/output.log"}
    tracking = infinstor.tracking
    code, body = await mlflow_api(
        tracking.uri, "logged-models/search", body={"experiment_ids": [job["experiment_id"]]},
        headers=tracking.auth_headers(),
    )
    assert code == 200, body
    assert [m["info"]["source_run_id"] for m in body["models"]] == [job["run_id"]]

    listed = json.loads((await jp_fetch("infinstor", "api", "jobs")).body)["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


@pytest.mark.slow
async def test_failing_notebook_job_fails_with_the_traceback(jp_fetch, jp_root_dir, infinstor):
    write(failing_notebook(), jp_root_dir / "fail.ipynb")
    await wait_for_state(jp_fetch, "running")
    job = await wait_for_job(jp_fetch, (await submit(jp_fetch, path="fail.ipynb"))["id"])
    assert job["status"] == "FAILED"
    assert job["failure_reason"] == "RuntimeError: boom in the third cell"
    log = await read_whole_log(jp_fetch, job["id"])
    assert "Traceback" in log or "---------" in log
    assert "boom in the third cell" in log
    run = await run_of(infinstor, job["run_id"])
    assert run["info"]["status"] == "FAILED"
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["infinstor.job.failure_reason"] == job["failure_reason"]


@pytest.mark.slow
async def test_cancel_kills_the_whole_process_tree(jp_fetch, jp_root_dir, infinstor):
    write(long_notebook(600), jp_root_dir / "long.ipynb")
    await wait_for_state(jp_fetch, "running")
    job = await submit(jp_fetch, path="long.ipynb")
    # Wait until the notebook's kernel is up (the whole tree exists), then cancel.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "time.sleep" in await read_whole_log(jp_fetch, job["id"]) or any(
            "ipykernel" in " ".join(p.cmdline()) for p in _descendants(job)
        ):
            break
        await asyncio.sleep(0.5)
    tree = [job_proc for job_proc in _descendants(job)]
    assert any("ipykernel" in " ".join(p.cmdline()) for p in tree), "the kernel should be running"
    response = await jp_fetch("infinstor", "api", "jobs", job["id"], "cancel", method="POST", body=b"")
    job = json.loads(response.body)
    assert job["status"] == "KILLED"
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    run = await run_of(infinstor, job["run_id"])
    assert run["info"]["status"] == "KILLED"
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "jobs", job["id"], "cancel", method="POST", body=b"")
    assert excinfo.value.code == 409


def _descendants(job) -> list[psutil.Process]:
    pid = None
    for proc in psutil.process_iter(["cmdline"]):
        if job["run_id"] in " ".join(proc.info["cmdline"] or []):
            pid = proc.pid
            break
    return process_tree(pid)


async def test_bad_job_requests_are_refused_with_reasons(jp_fetch, jp_root_dir):
    write(sklearn_training_notebook(), jp_root_dir / "ok.ipynb")
    (jp_root_dir / "notes.txt").write_text("x")
    (jp_root_dir / "empty").mkdir()
    cases = [
        ({}, "`path` must name"),
        ({"path": "missing.ipynb"}, "does not exist"),
        ({"path": "../../etc/passwd"}, "outside the Jupyter server's root"),
        ({"path": "notes.txt"}, "not a notebook"),
        ({"path": "empty"}, "without an MLproject"),
        ({"path": "ok.ipynb", "target": "mars"}, "Unknown target 'mars'"),
        ({"path": "ok.ipynb", "parameters": {"nope": 1}}, "unknown parameter(s) nope"),
        ({"path": "ok.ipynb", "parameters": {"max_iter": "lots"}}, "parameter 'max_iter' must be an int like its default 200"),
        ({"path": "ok.ipynb", "parameters": {"C": [1]}}, "parameter 'C' must be a float like its default 1.0"),
        ({"path": "ok.ipynb", "experiment_id": "1", "experiment_name": "x"}, "not both"),
        ({"path": "ok.ipynb", "colour": "red"}, "Unknown field(s) in the job request: colour"),
        ({"path": "ok.ipynb", "options": {"env_manager": "conda"}}, "env_manager 'conda' is not available"),
    ]
    for body, message in cases:
        with pytest.raises(HTTPClientError) as excinfo:
            await jp_fetch("infinstor", "api", "jobs", method="POST", body=json.dumps(body))
        assert excinfo.value.code == 400, (body, excinfo.value.code)
        payload = json.loads(excinfo.value.response.body)
        assert message in payload["message"], (body, payload)
    # Nothing was left behind by the refused requests.
    assert json.loads((await jp_fetch("infinstor", "api", "jobs")).body)["jobs"] == []
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "jobs", "0123456789abcdef")
    assert excinfo.value.code == 404


async def test_targets_and_parameters_for_the_dialog(jp_fetch, jp_root_dir):
    write(sklearn_training_notebook(), jp_root_dir / "ok.ipynb")
    targets = json.loads((await jp_fetch("infinstor", "api", "targets")).body)["targets"]
    inline = next(t for t in targets if t["name"] == "inline")
    assert inline["available"] and "local" in inline["capabilities"]["env_managers"]
    described = json.loads((await jp_fetch("infinstor", "api", "projects", "parameters", params={"path": "ok.ipynb"})).body)
    assert [(p["name"], p["type"], p["default"]) for p in described["parameters"]] == [
        ("C", "float", 1.0), ("max_iter", "int", 200), ("seed", "int", 7), ("label", "str", "baseline"), ("verbose", "bool", False),
    ]


async def test_convert_through_rest(jp_fetch, jp_root_dir):
    write(sklearn_training_notebook(), jp_root_dir / "work" / "train.ipynb")
    response = await jp_fetch(
        "infinstor", "api", "projects", method="POST", body=json.dumps({"path": "work/train.ipynb", "output_dir": "work/proj"})
    )
    info = json.loads(response.body)
    assert info["path"] == "work/proj"
    assert (jp_root_dir / "work" / "proj" / "MLproject").exists()
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "projects", method="POST", body=json.dumps({"path": "work/train.ipynb", "output_dir": "/tmp/elsewhere"}))
    assert excinfo.value.code == 400


@pytest.mark.slow
async def test_inline_job_in_a_fresh_virtualenv(jp_fetch, jp_root_dir, infinstor, monkeypatch):
    """env_manager "uv": MLflow builds a fresh virtualenv from python_env.yaml and runs there."""
    from notebooks import notebook

    # pytest-jupyter puts this test process's sys.path (the development venv) in PYTHONPATH, which
    # the job would inherit: a lab has none of that, and the fresh environment must do without.
    monkeypatch.delenv("PYTHONPATH", raising=False)

    targets = json.loads((await jp_fetch("infinstor", "api", "targets")).body)["targets"]
    assert "uv" in next(t for t in targets if t["name"] == "inline")["capabilities"]["env_managers"]
    write(
        notebook(
            "import sys, mlflow\nprint('PREFIX', sys.prefix)\nprint('MLFLOW', mlflow.__file__)\n"
            "mlflow.log_metric('alpha', float(alpha))",
            parameters="alpha = 1",
        ),
        jp_root_dir / "venv.ipynb",
    )
    await wait_for_state(jp_fetch, "running")
    job = await submit(jp_fetch, path="venv.ipynb", parameters={"alpha": 4}, options={"env_manager": "uv"})
    job = await wait_for_job(jp_fetch, job["id"], timeout=600)
    log = await read_whole_log(jp_fetch, job["id"])
    assert job["status"] == "FINISHED", log[-3000:]
    prefix = next(line.split(" ", 1)[1] for line in log.splitlines() if line.startswith("PREFIX "))
    assert "/.mlflow/envs/" in prefix  # not the kernel's environment
    assert next(line.split(" ", 1)[1] for line in log.splitlines() if line.startswith("MLFLOW ")).startswith(prefix)
    run = await run_of(infinstor, job["run_id"])
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"alpha": 4.0}
