"""The generated API schemas are current: docs/openapi.yaml's job components match the pydantic
models (jobs/schema.py), and labextension/src/jobs/api.gen.ts matches docs/openapi.yaml.

Regenerate both with `jlpm gen:api`.
"""

from __future__ import annotations

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


def _node_tool() -> list[str] | None:
    jlpm = shutil.which("jlpm")
    if not jlpm or not (REPO / "node_modules" / ".bin" / "openapi-typescript").exists():
        return None
    return [jlpm, "openapi-typescript"]


def test_typescript_types_are_generated_from_the_openapi_document(tmp_path):
    tool = _node_tool()
    if tool is None:
        pytest.skip("needs node with the repository's node_modules (`jlpm install`) to run openapi-typescript")
    out = tmp_path / "api.gen.ts"
    subprocess.run([*tool, str(gen_openapi.DOC), "-o", str(out)], cwd=REPO, check=True, capture_output=True, timeout=180)
    committed = REPO / "labextension" / "src" / "jobs" / "api.gen.ts"
    assert out.read_text() == committed.read_text(), "labextension/src/jobs/api.gen.ts is stale: run `jlpm gen:api`"
