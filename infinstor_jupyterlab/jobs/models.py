"""Job requests and records, validated in one place."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import BadRequest

TERMINAL = ("FINISHED", "FAILED", "KILLED")
STATUSES = ("QUEUED", "RUNNING", *TERMINAL)
_MAX_NAME = 250


@dataclass
class JobRequest:
    path: str
    target: str = "inline"
    parameters: dict[str, Any] = field(default_factory=dict)
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_name: str | None = None
    include_folder: bool = False
    entry_point: str = "main"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: dict) -> JobRequest:
        if not isinstance(body, dict):
            raise BadRequest("The job request must be a JSON object.")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(body) - known)
        if unknown:
            raise BadRequest(f"Unknown field(s) in the job request: {', '.join(unknown)}.")
        path = body.get("path")
        if not isinstance(path, str) or not path.strip():
            raise BadRequest("`path` must name a notebook or a folder holding an MLproject.")
        target = body.get("target", "inline")
        if not isinstance(target, str) or not target:
            raise BadRequest("`target` must be a target name such as 'inline'.")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
            raise BadRequest("`parameters` must be an object of name -> value.")
        for key, value in parameters.items():
            if isinstance(value, (dict, list)) or value is None:
                raise BadRequest(f"parameter {key!r}: give a number, a boolean or a string.")
        experiment_id = body.get("experiment_id")
        experiment_name = body.get("experiment_name")
        if experiment_id is not None and experiment_name is not None:
            raise BadRequest("Give `experiment_id` or `experiment_name`, not both.")
        if experiment_id is not None and not (isinstance(experiment_id, (str, int)) and str(experiment_id).strip()):
            raise BadRequest("`experiment_id` must be an MLflow experiment id.")
        if experiment_name is not None and (not isinstance(experiment_name, str) or not experiment_name.strip()):
            raise BadRequest("`experiment_name` must be a non-empty string.")
        run_name = body.get("run_name")
        if run_name is not None and (not isinstance(run_name, str) or len(run_name) > _MAX_NAME):
            raise BadRequest(f"`run_name` must be a string of at most {_MAX_NAME} characters.")
        include_folder = body.get("include_folder", False)
        if not isinstance(include_folder, bool):
            raise BadRequest("`include_folder` must be true or false.")
        entry_point = body.get("entry_point", "main")
        if not isinstance(entry_point, str) or not entry_point:
            raise BadRequest("`entry_point` must be a string.")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("`options` must be an object.")
        return cls(
            path=path.strip(),
            target=target,
            parameters=dict(parameters),
            experiment_id=str(experiment_id) if experiment_id is not None else None,
            experiment_name=experiment_name.strip() if experiment_name else None,
            run_name=run_name or None,
            include_folder=include_folder,
            entry_point=entry_point,
            options=dict(options),
        )


@dataclass
class Job:
    id: str
    path: str
    kind: str  # "notebook" | "project"
    target: str
    status: str
    parameters: dict[str, Any]
    experiment_id: str
    run_id: str
    run_name: str | None
    project_dir: str
    entry_point: str = "main"
    options: dict[str, Any] = field(default_factory=dict)
    include_folder: bool = False
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    failure_reason: str | None = None
    user: str | None = None
    target_state: dict[str, Any] = field(default_factory=dict)  # what the target needs to reattach

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:16]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("target_state")
        now = time.time()
        end = self.finished_at or (now if self.started_at else None)
        data["duration"] = (end - self.started_at) if (self.started_at and end) else None
        return data
