"""Job requests and records, validated in one place."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import limits
from ..errors import BadRequest
from ..limits import shown
from .schema import JobStatus

# Plain strings (the store and the API carry text); the enum in schema.py is the one list.
STATUSES = tuple(s.value for s in JobStatus)
TERMINAL = tuple(s.value for s in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.KILLED))
MAX_SWEEP_SIZE = 1000
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
    # Values are JSON: null is None (a notebook parameter whose default is None takes any literal);
    # the project's parameters decide which values fit (JobManager.validate).
    # A parameter sweep: {"grid": {name: [values]}} or {"list": [{name: value}, ...]}; each set is
    # merged over `parameters`. One parent run, one child job per set, at most `max_instances` at once.
    sweep: dict[str, Any] | None = None
    max_instances: int | None = None

    def sweep_sets(self) -> list[dict[str, Any]]:
        """The parameter sets of the sweep, each merged over `parameters` (empty without a sweep)."""
        if not self.sweep:
            return []
        import itertools

        if "grid" in self.sweep:
            names = list(self.sweep["grid"])
            combos = itertools.product(*(self.sweep["grid"][n] for n in names))
            sets = [dict(zip(names, combo)) for combo in combos]
        else:
            sets = [dict(s) for s in self.sweep["list"]]
        return [{**self.parameters, **s} for s in sets]

    @classmethod
    def from_json(cls, body: dict) -> JobRequest:
        if not isinstance(body, dict):
            raise BadRequest("The job request must be a JSON object.")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(body) - known)
        if unknown:
            raise BadRequest(f"Unknown field(s) in the job request: {limits.clip(', '.join(unknown))}.")
        _check_limits(body)
        path = body.get("path")
        if not isinstance(path, str) or not path.strip():
            raise BadRequest("`path` must name a notebook or a folder holding an MLproject.")
        target = body.get("target", "inline")
        if not isinstance(target, str) or not target:
            raise BadRequest("`target` must be a target name such as 'inline'.")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
            raise BadRequest("`parameters` must be an object of name -> value.")
        experiment_id = body.get("experiment_id")
        experiment_name = body.get("experiment_name")
        if experiment_id is not None and experiment_name is not None:
            raise BadRequest("Give `experiment_id` or `experiment_name`, not both.")
        if experiment_id is not None:
            experiment_id = limits.check_experiment_id(experiment_id)
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
        sweep = body.get("sweep")
        if sweep is not None:
            _check_sweep(sweep)
        max_instances = body.get("max_instances")
        if max_instances is not None and (isinstance(max_instances, bool) or not isinstance(max_instances, int) or max_instances < 1):
            raise BadRequest("`max_instances` must be a positive integer.")
        if max_instances is not None and sweep is None:
            raise BadRequest("`max_instances` applies to sweeps; give `sweep` too.")
        return cls(
            sweep=sweep,
            max_instances=max_instances,
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


def _check_limits(body: dict) -> None:
    """Sizes (limits.py): the path, names, and the parameters MLflow will be given."""
    path = body.get("path")
    if isinstance(path, str):
        limits.check_path("path", path)
    for name, most in (
        ("target", limits.MAX_NAME_CHARS),
        ("entry_point", limits.MAX_NAME_CHARS),
        ("run_name", limits.MAX_NAME_CHARS),
        ("experiment_name", limits.MAX_EXPERIMENT_NAME_CHARS),
    ):
        if isinstance(body.get(name), str):
            limits.check_text(name, body[name], most)
    options = body.get("options")
    if isinstance(options, dict):
        for key in options:
            limits.check_text("options", key, limits.MAX_NAME_CHARS)
    groups: list[Any] = [body.get("parameters")]  # name -> value, or name -> values for a grid
    sweep = body.get("sweep")
    if isinstance(sweep, dict):
        groups.append(sweep.get("grid"))
        listed = sweep.get("list")
        groups += listed if isinstance(listed, list) else []
    for group in groups:
        if not isinstance(group, dict):
            continue
        if len(group) > limits.MAX_PARAMETERS:
            raise BadRequest(f"At most {limits.MAX_PARAMETERS} parameters can be given ({len(group)} were).")
        for name, values in group.items():
            if isinstance(name, str) and len(name) > limits.MAX_PARAMETER_NAME_CHARS:
                raise BadRequest(
                    f"parameter {shown(name, 60)}: names are at most {limits.MAX_PARAMETER_NAME_CHARS} characters (MLflow's limit)."
                )
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str) and len(value) > limits.MAX_PARAMETER_VALUE_CHARS:
                    raise BadRequest(
                        f"parameter {shown(name, 60)}: values are at most {limits.MAX_PARAMETER_VALUE_CHARS:,} "
                        f"characters (MLflow's limit); this one has {len(value):,}."
                    )


def _check_sweep(sweep: Any) -> None:
    if not isinstance(sweep, dict) or len(sweep) != 1 or next(iter(sweep)) not in ("grid", "list"):
        raise BadRequest('`sweep` must be {"grid": {name: [values]}} or {"list": [{name: value}, ...]}.')
    if "grid" in sweep:
        grid = sweep["grid"]
        if not isinstance(grid, dict) or not grid:
            raise BadRequest("`sweep.grid` must map parameter names to lists of values.")
        size = 1
        for name, values in grid.items():
            if not isinstance(values, list) or not values:
                raise BadRequest(f"`sweep.grid.{name}` must be a non-empty list of values.")
            size *= len(values)
    else:
        sets = sweep["list"]
        if not isinstance(sets, list) or not sets or not all(isinstance(s, dict) for s in sets):
            raise BadRequest("`sweep.list` must be a non-empty list of objects (parameter sets).")
        size = len(sets)
    if size > MAX_SWEEP_SIZE:
        raise BadRequest(f"The sweep has {size} parameter sets; at most {MAX_SWEEP_SIZE} are allowed.")


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
