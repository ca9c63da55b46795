"""`POST jobs/validate`: a dry run of `POST jobs` that says what is wrong, field by field, and
creates nothing (the job dialog calls it as the user types)."""

from __future__ import annotations

import json

import pytest
import yaml
from tornado.httpclient import HTTPClientError

from conftest import mlflow_api, wait_for_state
from notebooks import notebook, sklearn_training_notebook, write


async def validate(jp_fetch, **body) -> dict:
    response = await jp_fetch("infinstor", "api", "jobs", "validate", method="POST", body=json.dumps(body))
    assert response.code == 200
    return json.loads(response.body)


def by_field(answer: dict) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer["errors"]}


def mlproject(root, name="proj"):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "MLproject").write_text(
        yaml.safe_dump(
            {
                "name": name,
                "entry_points": {
                    "main": {
                        "parameters": {"alpha": {"type": "float", "default": 0.5}, "data": {"type": "string"}},
                        "command": "python -c pass",
                    }
                },
            }
        )
    )
    return folder


async def experiments(infinstor) -> set[str]:
    tracking = infinstor.tracking
    code, body = await mlflow_api(tracking.uri, "experiments/search", body={"max_results": 1000}, headers=tracking.auth_headers())
    assert code == 200, body
    return {e["name"] for e in body.get("experiments", [])}


async def nothing_created(jp_fetch, infinstor, jp_root_dir, before: set[str]) -> None:
    assert json.loads((await jp_fetch("infinstor", "api", "jobs")).body)["jobs"] == []
    assert not infinstor.jobs.jobs_dir.exists() or [p.name for p in infinstor.jobs.jobs_dir.iterdir() if p.is_dir()] == []
    assert await experiments(infinstor) == before
    tracking = infinstor.tracking
    code, body = await mlflow_api(
        tracking.uri, "runs/search", body={"experiment_ids": ["0"], "max_results": 10}, headers=tracking.auth_headers()
    )
    assert code == 200 and body.get("runs", []) == []


async def test_a_valid_request_resolves_its_parameters_and_creates_nothing(jp_fetch, jp_root_dir, infinstor):
    write(sklearn_training_notebook(), jp_root_dir / "work" / "iris.ipynb")
    await wait_for_state(jp_fetch, "running")
    before = await experiments(infinstor)
    answer = await validate(
        jp_fetch,
        path="work/iris.ipynb",
        parameters={"C": "0.3", "max_iter": 50, "verbose": True},
        experiment_name="a brand new experiment",
        run_name="r1",
        options={"env_manager": "local"},
    )
    assert answer["valid"] is True and answer["errors"] == []
    assert answer["parameters"] == [
        {"name": "C", "type": "float", "default": 1.0, "value": "0.3", "given": True},
        {"name": "max_iter", "type": "int", "default": 200, "value": "50", "given": True},
        {"name": "seed", "type": "int", "default": 7, "value": "7", "given": False},
        {"name": "label", "type": "str", "default": "baseline", "value": "baseline", "given": False},
        {"name": "verbose", "type": "bool", "default": False, "value": "True", "given": True},
    ]
    await nothing_created(jp_fetch, infinstor, jp_root_dir, before)


async def test_every_problem_is_reported_by_field(jp_fetch, jp_root_dir, infinstor):
    write(sklearn_training_notebook(), jp_root_dir / "iris.ipynb")
    await wait_for_state(jp_fetch, "running")
    before = await experiments(infinstor)

    answer = await validate(
        jp_fetch,
        path="iris.ipynb",
        parameters={"C": "high", "max_iter": "2.5", "nope": 1},
        options={"env_manager": "conda"},
        experiment_id="987654",
        run_name="x" * 300,
    )
    assert answer["valid"] is False
    errors = by_field(answer)
    assert set(errors) == {"parameters.C", "parameters.max_iter", "parameters.nope", "options", "experiment_id", "run_name"}
    assert "parameter 'C' must be a float like its default 1.0; got 'high'" in errors["parameters.C"]
    assert "'max_iter'" in errors["parameters.max_iter"]
    assert "unknown parameter" in errors["parameters.nope"] and "C, max_iter, seed, label, verbose" in errors["parameters.nope"]
    assert "env_manager 'conda' is not available" in errors["options"]
    assert "987654" in errors["experiment_id"]
    assert "250 characters" in errors["run_name"]

    assert by_field(await validate(jp_fetch, path="iris.ipynb", target="mars")) == {
        "target": "Unknown target 'mars'; available: inline, ec2."
    }
    assert "outside the Jupyter server's root" in by_field(await validate(jp_fetch, path="../etc/passwd"))["path"]
    assert "does not exist" in by_field(await validate(jp_fetch, path="missing.ipynb"))["path"]
    assert "`path` must name" in by_field(await validate(jp_fetch))["path"]
    assert "colour" in by_field(await validate(jp_fetch, path="iris.ipynb", colour="red"))["colour"]
    assert "not both" in by_field(await validate(jp_fetch, path="iris.ipynb", experiment_id="0", experiment_name="x"))["experiment_id"]
    # A list is a literal (a None default takes it), but not a float like C's default.
    assert by_field(await validate(jp_fetch, path="iris.ipynb", parameters={"C": [1]}))["parameters.C"] == (
        "parameter 'C' must be a float like its default 1.0; got [1]"
    )
    # A sweep's values are checked like single values, per parameter.
    sweep = by_field(await validate(jp_fetch, path="iris.ipynb", target="inline", sweep={"grid": {"max_iter": [1, "many"]}}))
    assert "'max_iter'" in sweep["parameters.max_iter"]
    assert sweep["sweep"] == "The Inline (this Jupyter host) target does not run parameter sweeps."
    # What POST jobs refuses for the whole body (a NUL character) is reported under its field; any
    # object is a draft the dialog may send (schemathesis holds the endpoint to its schema).
    assert "NUL" in by_field(await validate(jp_fetch, path="iris\x00.ipynb", parameters={"C": 1}))["path"]
    nul = by_field(await validate(jp_fetch, path="iris.ipynb", parameters={"C": "1\x00"}))
    assert "NUL" in nul["parameters"], nul
    assert "`path` must name" in by_field(await validate(jp_fetch, max_instances=None))["path"]
    # A body that is not JSON is not a job request at all.
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "jobs", "validate", method="POST", body=b"{not json")
    assert excinfo.value.code == 400
    await nothing_created(jp_fetch, infinstor, jp_root_dir, before)


async def test_mlproject_folders_are_checked_too(jp_fetch, jp_root_dir, infinstor):
    mlproject(jp_root_dir)
    answer = await validate(jp_fetch, path="proj", parameters={"alpha": "lots"})
    assert by_field(answer) == {
        "parameters.alpha": "parameter 'alpha' must be a number; got 'lots'",
        "parameters.data": "Missing value for parameter 'data'.",
    }
    answer = await validate(jp_fetch, path="proj", parameters={"data": "s3://bucket/x"}, include_folder=True)
    assert list(by_field(answer)) == ["include_folder"]
    answer = await validate(jp_fetch, path="proj", parameters={"data": "s3://bucket/x"})
    assert answer["valid"] is True
    assert answer["parameters"] == [
        {"name": "alpha", "type": "float", "default": 0.5, "value": "0.5", "given": False},
        {"name": "data", "type": "str", "default": None, "value": "s3://bucket/x", "given": True},
    ]
    assert "entry_point" in by_field(await validate(jp_fetch, path="proj", entry_point="nope", parameters={"data": "x"}))
    (jp_root_dir / "plain").mkdir()
    assert "without an MLproject" in by_field(await validate(jp_fetch, path="plain"))["path"]
    write(notebook("x = 1"), jp_root_dir / "nb.ipynb")
    assert (await validate(jp_fetch, path="nb.ipynb"))["parameters"] == []
