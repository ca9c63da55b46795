"""A job request is checked whole before anything exists: a refused one leaves no job, run,
experiment or folder behind, for notebooks and for project folders alike."""

from __future__ import annotations

import json

import pytest
import yaml
from tornado.httpclient import HTTPClientError

from conftest import mlflow_api, wait_for_state
from infinstor_jupyterlab.errors import BadRequest
from infinstor_jupyterlab.jobs.schema import JobRequest
from infinstor_jupyterlab.projects import build_project
from notebooks import notebook, sklearn_training_notebook, write


async def refused(jp_fetch, body) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "jobs", method="POST", body=json.dumps(body))
    return excinfo.value.code, json.loads(excinfo.value.response.body)["message"]


async def all_runs(infinstor) -> list[dict]:
    tracking = infinstor.tracking
    code, body = await mlflow_api(tracking.uri, "experiments/search", body={"max_results": 1000}, headers=tracking.auth_headers())
    assert code == 200, body
    ids = [e["experiment_id"] for e in body.get("experiments", [])]
    code, body = await mlflow_api(
        tracking.uri, "runs/search", body={"experiment_ids": ids, "run_view_type": "ALL"}, headers=tracking.auth_headers()
    )
    assert code == 200, body
    return body.get("runs", [])


async def experiment_names(infinstor) -> set[str]:
    tracking = infinstor.tracking
    code, body = await mlflow_api(tracking.uri, "experiments/search", body={"max_results": 1000}, headers=tracking.auth_headers())
    return {e["name"] for e in body.get("experiments", [])}


def plain_project(root, name="plain", params=None, command="python -c 'print(1)'"):
    folder = root / name
    folder.mkdir(parents=True)
    spec = {"name": name, "entry_points": {"main": {"parameters": params or {}, "command": command}}}
    (folder / "MLproject").write_text(yaml.safe_dump(spec))
    return folder


async def test_refused_requests_leave_nothing_behind(jp_fetch, jp_root_dir, infinstor):
    write(sklearn_training_notebook(), jp_root_dir / "ok.ipynb")
    long_name = "p" * 300
    write(notebook("print(1)", parameters=f"{long_name} = 1"), jp_root_dir / "longname.ipynb")
    plain_project(jp_root_dir, params={"alpha": {"type": "float", "default": 0.5}, "data": {"type": "path"}})
    build_project(write(sklearn_training_notebook(), jp_root_dir / "src" / "t.ipynb"), jp_root_dir / "conv")
    await wait_for_state(jp_fetch, "running")
    before = {r["info"]["run_id"] for r in await all_runs(infinstor)}
    cases = [
        # MLflow would refuse these names when the run's parameters are logged.
        ({"path": "plain", "parameters": {"data": "x", "bad name!": 1}}, "bad name!"),
        ({"path": "longname.ipynb"}, long_name[:40]),
        # Values of the wrong type for a project folder, as for a notebook.
        ({"path": "plain", "parameters": {"alpha": "abc", "data": "x"}}, "parameter 'alpha' must be a number"),
        ({"path": "plain", "parameters": {"alpha": None, "data": "x"}}, "parameter 'alpha'"),
        ({"path": "plain", "parameters": {"alpha": 1}}, "Missing value(s) for parameter(s) data"),
        ({"path": "conv", "parameters": {"max_iter": 1.5}}, "parameter 'max_iter' must be an int like its default 200"),
        ({"path": "conv", "parameters": {"nope": 1}}, "unknown parameter(s) nope"),
        ({"path": "conv", "parameters": {"max_iter": "--help"}}, "must be an int"),
        # An integer too large for MLflow's numbers: a 400 with a message, not a 500.
        ({"path": "ok.ipynb", "parameters": {"max_iter": 10**400}}, "too large"),
        ({"path": "ok.ipynb", "parameters": {"C": 10**400}}, "too large"),
        ({"path": "ok.ipynb", "parameters": {"label": "x" * 7000}}, "at most 6,000 characters"),
        ({"path": "ok.ipynb", "entry_point": "other"}, "entry point"),
        ({"path": "ok.ipynb", "experiment_name": "never-created", "parameters": {"seed": "x"}}, "parameter 'seed' must be an int"),
    ]
    for body, message in cases:
        code, text = await refused(jp_fetch, body)
        assert code == 400, (body, code, text)
        assert message in text, (body, text)
    assert json.loads((await jp_fetch("infinstor", "api", "jobs")).body)["jobs"] == []
    assert {r["info"]["run_id"] for r in await all_runs(infinstor)} == before
    assert "never-created" not in await experiment_names(infinstor)
    jobs_dir = infinstor.jobs.jobs_dir
    assert not [p for p in jobs_dir.iterdir() if p.is_dir()], list(jobs_dir.iterdir())


async def test_validate_answers_what_would_run_and_creates_nothing(jp_fetch, jp_root_dir, infinstor):
    """JobManager.validate: the dry run of a submission (what the dialog's checks call)."""
    write(notebook("print(msg)", parameters="msg = None\nn: int = 3\nitems = [1, 2]\nflag = False"), jp_root_dir / "nb.ipynb")
    plain_project(jp_root_dir, params={"alpha": {"type": "float", "default": 0.5}, "name": {"type": "string", "default": "x"}})
    await wait_for_state(jp_fetch, "running")
    jobs = infinstor.jobs
    plan = await jobs.validate(
        JobRequest.from_json({"path": "nb.ipynb", "parameters": {"msg": "Hello", "n": 4}, "experiment_name": "dry-run"})
    )
    assert plan.kind == "notebook" and plan.target.name == "inline"
    assert plan.arguments == {"msg": "Hello", "n": "4"}
    assert plan.logged == {"msg": "Hello", "n": "4", "items": "[1, 2]", "flag": "False"}
    assert plan.experiment_id is None and plan.experiment_name == "dry-run"  # created only on submit
    described = plan.to_json()
    assert described["parameters"] == plan.logged and described["experiment"] == {"id": None, "name": "dry-run", "exists": False}

    # JSON strings are read as the command line reads text: a literal when they are one.
    cases = ((None, "None"), ("1", "1"), ("'1'", "'1'"), ([1, "a"], "[1, 'a']"), ("--output-dir=/x", "--output-dir=/x"))
    for value, text in cases:
        plan = await jobs.validate(JobRequest.from_json({"path": "nb.ipynb", "parameters": {"msg": value}}))
        assert plan.arguments == {"msg": text}, value

    plan = await jobs.validate(JobRequest.from_json({"path": "plain", "parameters": {"alpha": 2, "extra": "y"}}))
    assert plan.kind == "project"
    assert plan.arguments == {"alpha": "2", "extra": "y"}
    assert plan.logged == {"alpha": "2", "name": "x", "extra": "y"}

    with pytest.raises(BadRequest, match="must be an int"):
        await jobs.validate(JobRequest.from_json({"path": "nb.ipynb", "parameters": {"n": "x"}}))
    assert "dry-run" not in await experiment_names(infinstor)
    assert await jobs.list() == []
    assert not [p for p in jobs.jobs_dir.iterdir() if p.is_dir()]


def test_null_is_a_parameter_value():
    request = JobRequest.from_json({"path": "nb.ipynb", "parameters": {"msg": None}})
    assert request.parameters == {"msg": None}
    request = JobRequest.from_json({"path": "nb.ipynb", "sweep": {"grid": {"msg": [None, "x"]}}})
    assert request.sweep_sets() == [{"msg": None}, {"msg": "x"}]
