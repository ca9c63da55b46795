"""The job API's response shapes, defined once.

docs/openapi.yaml's job schemas are generated from these models (scripts/gen_openapi.py) and the
front end's types from that document (labextension/src/jobs/api.gen.ts, openapi-typescript);
tests/test_schema_current.py fails when either generated file is stale.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class JobKind(StrEnum):
    notebook = "notebook"
    project = "project"


class _Shape(BaseModel):
    # Responses may grow fields; the generated schema does not forbid them.
    model_config = ConfigDict(extra="allow")


class Job(_Shape):
    """A job as `GET jobs/{id}` returns it (models.Job.to_json)."""

    id: str
    path: str
    kind: JobKind
    target: str
    status: JobStatus
    parameters: dict[str, Any]
    experiment_id: str
    run_id: str
    run_name: str | None
    project_dir: str
    entry_point: str
    options: dict[str, Any]
    include_folder: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None
    failure_reason: str | None
    user: str | None


class JobLog(_Shape):
    """A page of a job's log (`GET jobs/{id}/log?offset=`)."""

    job_id: str
    offset: int
    next_offset: int
    data: str
    complete: bool
    status: JobStatus


GENERATED = (JobStatus, JobKind, Job, JobLog)
