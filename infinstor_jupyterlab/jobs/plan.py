"""What a job request would run, checked whole before anything is created.

`inspect_source` reads the notebook or project folder; `resolve_parameters` checks one parameter
set against it and answers the text each parameter is passed as (to `mlflow run -P`) and every
parameter the run uses, defaults included (logged on the run, as `mlflow run` logs them).

A notebook and a folder converted from one (it holds the runner's spec) follow the notebook's
rules: known names only, values of the default's type (a None default takes any literal; JSON null
is None). A plain MLflow project follows MLflow's: required parameters, numbers for `float`, extra
parameters allowed. Every logged name and value must be one MLflow accepts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..projects import ProjectError
from ..projects.convert import check_notebook
from ..projects.runner import MAX_VALUE_CHARS, SPEC_FILE, coerce, encode


@dataclass(frozen=True)
class Declared:
    """A parameter the project declares: its kind (a notebook literal's type name, or for a plain
    MLflow project "mlflow:<type>") and its default (None: required, for a plain project)."""

    name: str
    kind: str
    default: Any


@dataclass
class SourcePlan:
    kind: str  # "notebook" | "project"
    source: Path
    entry_point: str
    declared: dict[str, Declared] = field(default_factory=dict)
    notebook_rules: bool = True  # False for a plain MLflow project


def inspect_source(source: Path, entry_point: str, include_folder: bool, lab_path) -> SourcePlan:
    """Runs in a thread. The notebook or folder's parameters; BadRequest when it cannot run."""
    if source.is_file():
        if entry_point != "main":
            raise BadRequest(f"A notebook has one entry point, 'main'; there is no entry point {entry_point!r}.")
        params = check_notebook(source, include_folder=include_folder)
        declared = {p.name: Declared(p.name, p.kind, p.default) for p in params}
        return SourcePlan("notebook", source, entry_point, declared)
    if include_folder:
        raise BadRequest("include_folder applies to notebooks; a project folder is run as it is.")
    if not (source / "MLproject").is_file() and not (source / "mlproject").is_file():
        raise BadRequest(f"{lab_path(source)!r} is a folder without an MLproject file.")
    entry = _entry_point(source, entry_point)
    spec = _runner_spec(source)
    if spec is not None and entry_point == "main":
        declared = {}
        for item in spec.get("parameters", []):
            kind, default = item["type"], item["default"]
            if kind in ("list", "dict", "tuple") and isinstance(default, str):
                default = coerce(item["name"], kind, default, default)  # stored as the literal's text
            declared[item["name"]] = Declared(item["name"], kind, default)
        return SourcePlan("project", source, entry_point, declared)
    declared = {name: Declared(name, f"mlflow:{p.type}", p.default) for name, p in entry.parameters.items()}
    return SourcePlan("project", source, entry_point, declared, notebook_rules=False)


def _entry_point(folder: Path, name: str):
    from mlflow.exceptions import ExecutionException
    from mlflow.projects import _project_spec

    try:
        return _project_spec.load_project(str(folder)).get_entry_point(name)
    except ExecutionException as exc:
        raise BadRequest(f"Invalid project or entry point: {exc.message}") from None
    except Exception as exc:  # malformed MLproject files raise assorted errors
        raise BadRequest(f"Invalid MLproject: {exc}") from None


def _runner_spec(folder: Path) -> dict | None:
    """The runner's spec when the folder is a converted notebook, else None."""
    path = folder / SPEC_FILE
    if not path.is_file() or not (folder / "_infinstor_runner.py").is_file():
        return None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(spec.get("parameters"), list) and all("name" in p and "type" in p for p in spec["parameters"]):
            return spec
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    raise BadRequest(f"{SPEC_FILE} in this folder is damaged; convert the notebook again.")


def resolve_parameters(plan: SourcePlan, given: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(the text of each given parameter for `mlflow run -P`, every parameter the run uses)."""
    if plan.notebook_rules:
        unknown = sorted(set(given) - set(plan.declared))
        if unknown:
            raise ProjectError(_unknown_message(plan, unknown))
    else:
        missing = missing_parameters(plan, given)
        if missing:
            raise BadRequest(f"Missing value(s) for parameter(s) {', '.join(missing)}.")
    arguments = {name: parameter_argument(plan, name, raw) for name, raw in given.items()}
    if plan.notebook_rules:
        logged = {name: arguments.get(name, encode(d.kind, d.default)) for name, d in plan.declared.items()}
    else:
        logged = {name: str(d.default) for name, d in plan.declared.items() if d.default is not None}
        logged.update(arguments)
    _check_mlflow_accepts(logged)
    return arguments, logged


def missing_parameters(plan: SourcePlan, given: dict[str, Any]) -> list[str]:
    """Required parameters (a plain MLflow project's, without a default) that `given` lacks."""
    if plan.notebook_rules:
        return []
    return sorted(n for n, d in plan.declared.items() if n not in given and d.default is None)


def parameter_argument(plan: SourcePlan, name: str, raw: Any) -> str:
    """One given parameter checked on its own: the text it is passed as (`mlflow run -P`).
    ProjectError / BadRequest naming the parameter when it is refused."""
    if plan.notebook_rules:
        declared = plan.declared.get(name)
        if declared is None:
            raise ProjectError(_unknown_message(plan, [name]))
        try:
            text = encode(declared.kind, coerce(name, declared.kind, declared.default, raw))
        except ValueError as exc:
            raise ProjectError(str(exc)) from None
    else:
        text = _project_argument(plan, name, raw)
    _check_mlflow_accepts({name: text})
    return text


def _unknown_message(plan: SourcePlan, unknown: list[str]) -> str:
    what = "notebook" if plan.kind == "notebook" else "project"
    return f"unknown parameter(s) {', '.join(unknown)}; the {what} defines: {', '.join(plan.declared) or 'none'}"


def _project_argument(plan: SourcePlan, name: str, value: Any) -> str:
    """MLflow's rules, checked now rather than when `mlflow run` starts (its own check of `path`
    parameters downloads them: not at submit time)."""
    if value is None or isinstance(value, (dict, list)):
        raise BadRequest(
            f"parameter {name!r}: give a number, a boolean or a string (leave a parameter out to use its default)."
        )
    if name.startswith("-"):
        raise BadRequest(f"parameter name {name!r} must not start with '-'.")
    declared = plan.declared.get(name)
    if declared is not None and declared.kind == "mlflow:float":
        if isinstance(value, bool):
            raise BadRequest(f"parameter {name!r} must be a number; got {value!r}")
        try:
            float(value)
        except (ValueError, OverflowError):
            raise BadRequest(f"parameter {name!r} must be a number; got {_short(value)}") from None
    return str(value)


def _check_mlflow_accepts(params: dict[str, str]) -> None:
    """Names and values MLflow would refuse when the run's parameters are logged: refused now."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_param

    for name, value in params.items():
        if len(value) > MAX_VALUE_CHARS:
            raise BadRequest(
                f"parameter {_short(name)} is {len(value):,} characters long; values may be at most "
                f"{MAX_VALUE_CHARS:,} characters (MLflow's limit for a parameter)."
            )
        try:
            _validate_param(name, value)
        except MlflowException as exc:
            raise BadRequest(f"parameter {_short(name)}: MLflow does not accept it: {_first_line(exc.message)}") from None


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, int) and abs(value) >= 10**60:
        return f"<a number of about {int(math.log10(abs(value))) + 1} digits>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


@dataclass
class JobPlan:
    """A checked job request: what `JobManager.submit` would create, found by `JobManager.validate`
    without creating anything (no job, run, experiment or folder)."""

    request: Any  # the JobRequest
    target: Any  # the JobTarget
    options: dict[str, Any]
    source: Path
    path: str  # the source's path in the lab
    source_plan: SourcePlan
    arguments: dict[str, str]  # the given parameters as passed to `mlflow run -P` (a single job)
    logged: dict[str, str]  # every parameter the run uses, defaults included (a single job)
    sets: list[tuple[dict[str, str], dict[str, str]]]  # a sweep: (arguments, logged) of each set
    experiment_id: str | None  # None: the named experiment does not exist yet (created on submit)
    experiment_name: str | None

    @property
    def kind(self) -> str:
        return self.source_plan.kind

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "target": self.target.name,
            "options": self.options,
            "entry_point": self.source_plan.entry_point,
            "arguments": self.arguments,
            "parameters": self.logged,
            "sweep": [logged for _, logged in self.sets] if self.sets else None,
            "experiment": {"id": self.experiment_id, "name": self.experiment_name, "exists": self.experiment_id is not None},
        }
