"""Job records (the store's rows); the API's request and response shapes are in schema.py."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from .schema import JobStatus

# Plain strings (the store and the API carry text); the enum in schema.py is the one list.
STATUSES = tuple(s.value for s in JobStatus)
TERMINAL = tuple(s.value for s in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.KILLED))


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
