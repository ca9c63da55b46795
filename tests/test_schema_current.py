"""The generated API schemas are current: docs/openapi.yaml's job components (the request and the
responses) match the pydantic models (jobs/schema.py), and labextension/src/jobs/api.gen.ts matches
docs/openapi.yaml.

Regenerate both with `jlpm gen:api`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import gen_openapi  # noqa: E402


def test_openapi_job_schemas_are_generated_from_the_models():
    committed = gen_openapi.DOC.read_text()
    assert gen_openapi.render(committed) == committed, "docs/openapi.yaml is stale: run `jlpm gen:api`"


def test_openapi_job_status_is_the_python_enum():
    import yaml

    from infinstor_jupyterlab.jobs.models import STATUSES, TERMINAL
    from infinstor_jupyterlab.jobs.schema import JobStatus

    schemas = yaml.safe_load(gen_openapi.DOC.read_text())["components"]["schemas"]
    assert schemas["JobStatus"]["enum"] == [s.value for s in JobStatus] == list(STATUSES)
    assert set(TERMINAL) < set(STATUSES)
    assert schemas["Job"]["properties"]["status"] == {"$ref": "#/components/schemas/JobStatus"}


def test_job_records_fit_the_job_model():
    """What the API returns for a job (models.Job.to_json) validates against the generated shape."""
    from infinstor_jupyterlab.jobs.models import Job
    from infinstor_jupyterlab.jobs.schema import Job as JobShape

    job = Job(
        id=Job.new_id(),
        path="a.ipynb",
        kind="notebook",
        target="inline",
        status="QUEUED",
        parameters={"x": 1},
        experiment_id="0",
        run_id="r",
        run_name=None,
        project_dir="/tmp/p",
    )
    data = job.to_json()
    assert set(data) == set(JobShape.model_fields)
    JobShape.model_validate(data)


def test_the_job_request_schema_is_the_model():
    """POST jobs' body is described by JobRequest itself: every field, only `path` required (the others
    have the server's defaults), nothing else allowed."""
    import yaml

    from infinstor_jupyterlab.jobs.schema import JobRequest

    document = yaml.safe_load(gen_openapi.DOC.read_text())
    request = document["components"]["schemas"]["JobRequest"]
    assert list(request["properties"]) == list(JobRequest.model_fields)
    assert request["required"] == ["path"] and request["additionalProperties"] is False
    defaults = {name: field.get_default(call_default_factory=True) for name, field in JobRequest.model_fields.items() if name != "path"}
    assert {name: request["properties"][name]["default"] for name in defaults} == defaults
    body = document["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/JobRequest"}


def test_typescript_job_request_fields_with_defaults_are_optional():
    """openapi-typescript makes a property with a default required unless told otherwise
    (`--default-non-nullable false` in `jlpm gen:api`): the dialog sends only what it sets."""
    from infinstor_jupyterlab.jobs.schema import JobRequest

    text = (REPO / "labextension" / "src" / "jobs" / "api.gen.ts").read_text()
    block = re.search(r"\n( +)JobRequest: \{\n(.*?)\n\1\};", text, re.S)
    assert block, "no JobRequest in api.gen.ts"
    properties = dict(re.findall(r"^ +(\w+)(\??): ", block.group(2), re.M))
    assert properties == {name: "" if field.is_required() else "?" for name, field in JobRequest.model_fields.items()}


def _gen_api_typescript(out: Path) -> list[str] | None:
    """`jlpm gen:api`'s openapi-typescript command (package.json), writing to `out`."""
    jlpm = shutil.which("jlpm")
    if not jlpm or not (REPO / "node_modules" / ".bin" / "openapi-typescript").exists():
        return None
    script = json.loads((REPO / "package.json").read_text())["scripts"]["gen:api"]
    command = next(shlex.split(part) for part in script.split("&&") if part.split()[0] == "openapi-typescript")
    command[command.index("-o") + 1] = str(out)
    return [jlpm, *command]


def test_typescript_types_are_generated_from_the_openapi_document(tmp_path):
    out = tmp_path / "api.gen.ts"
    command = _gen_api_typescript(out)
    if command is None:
        pytest.skip("needs node with the repository's node_modules (`jlpm install`) to run openapi-typescript")
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=180)
    committed = REPO / "labextension" / "src" / "jobs" / "api.gen.ts"
    assert out.read_text() == committed.read_text(), "labextension/src/jobs/api.gen.ts is stale: run `jlpm gen:api`"
