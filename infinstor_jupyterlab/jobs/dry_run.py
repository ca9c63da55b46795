"""A job request checked field by field without creating anything (`POST jobs/validate`).

The same rules as `JobManager.submit` (JobRequest.from_json, the target's options, the notebook's
literal types through `coerce_value`, the MLproject's entry point), but every problem is collected
under the field it concerns ("parameters.<name>" for a parameter) instead of stopping at the first,
and nothing is written: no project is built, no job, folder, experiment or run is created.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..projects import ProjectError
from ..projects.convert import load_notebook
from ..projects.parameters import coerce_value, extract_parameters
from .models import JobRequest

_PARAMETER = re.compile(r"^(?:sweep )?parameter '([^']*)'")
_FIELD = re.compile(r"`([a-z_]+)")


class Problems:
    """Errors by field, in the order found (one message per field)."""

    def __init__(self):
        self.errors: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def answer(self, parameters: list[dict] | None = None) -> dict[str, Any]:
        errors = [{"field": f, "message": m} for f, m in self.errors.items()]
        return {"valid": not errors, "errors": errors, "parameters": parameters or []}


def _field_of(message: str) -> str:
    match = _PARAMETER.match(message)
    if match:
        return f"parameters.{match.group(1)}"
    match = _FIELD.search(message)
    return match.group(1) if match else "request"


def parse_request(body: dict, problems: Problems) -> JobRequest | None:
    """`JobRequest.from_json`, going on without each field it refuses (None when `path` is bad)."""
    body = dict(body)
    unknown = sorted(set(body) - set(JobRequest.__dataclass_fields__))
    for name in unknown:
        problems.add(name, f"Unknown field in the job request: {name}.")
        body.pop(name)
    for _ in range(len(body) + 1):
        try:
            return JobRequest.from_json(body)
        except BadRequest as exc:
            field = _field_of(exc.message)
            problems.add(field, exc.message)
            if field.startswith("parameters.") and isinstance(body.get("parameters"), dict):
                body["parameters"] = {k: v for k, v in body["parameters"].items() if f"parameters.{k}" != field}
            elif field in body and field != "path":
                body.pop(field)
            else:
                return None
    return None


def _text(value: Any) -> str:
    return str(value)  # what the run gets, as `JobManager` passes it (`-P name=value`)


def check_parameters(request: JobRequest, source: Path, shown: str, problems: Problems) -> list[dict]:
    """Runs in a thread: the project's parameters against the request (each sweep set too);
    `shown` is the source's lab path, for messages."""
    sets = request.sweep_sets() or [request.parameters]
    if source.is_file():
        try:
            declared = {p.name: p for p in extract_parameters(load_notebook(source))}
        except ProjectError as exc:
            problems.add("path", str(exc))
            return []
        names = ", ".join(declared) or "none"
        for given in sets:
            for name, value in given.items():
                if name not in declared:
                    problems.add(f"parameters.{name}", f"unknown parameter {name!r}; the notebook defines: {names}")
                    continue
                try:
                    coerce_value(declared[name], value)
                except ProjectError as exc:
                    problems.add(f"parameters.{name}", str(exc))
        return [
            {
                "name": p.name, "type": p.kind, "default": p.to_json()["default"],
                "value": _text(request.parameters[p.name]) if p.name in request.parameters else _text(p.mlflow_default),
                "given": p.name in request.parameters,
            }
            for p in declared.values()
        ]  # fmt: skip
    return _check_mlproject(request, source, shown, sets, problems)


def _check_mlproject(request: JobRequest, source: Path, shown: str, sets: list[dict], problems: Problems) -> list[dict]:
    from mlflow.exceptions import ExecutionException
    from mlflow.projects import _project_spec

    if request.include_folder:
        problems.add("include_folder", "include_folder applies to notebooks; a project folder is run as it is.")
    if not (source / "MLproject").is_file() and not (source / "mlproject").is_file():
        problems.add("path", f"{shown!r} is a folder without an MLproject file.")
        return []
    try:
        project = _project_spec.load_project(str(source))
    except Exception as exc:  # malformed MLproject files raise assorted errors
        problems.add("path", f"Invalid MLproject: {getattr(exc, 'message', exc)}")
        return []
    try:
        entry = project.get_entry_point(request.entry_point)
    except ExecutionException as exc:
        problems.add("entry_point", exc.message)
        return []
    for given in sets:
        for name, param in entry.parameters.items():
            if name not in given and param.default is None:
                problems.add(f"parameters.{name}", f"Missing value for parameter {name!r}.")
        for name, value in given.items():
            param = entry.parameters.get(name)
            if param is not None and param.type == "float":
                try:
                    float(_text(value))
                except ValueError:
                    problems.add(f"parameters.{name}", f"parameter {name!r} must be a number; got {_text(value)!r}")
    kinds = {"float": "float", "path": "str", "uri": "str"}
    return [
        {
            "name": name, "type": kinds.get(param.type, "str"), "default": param.default,
            "value": _text(request.parameters[name]) if name in request.parameters
            else (None if param.default is None else _text(param.default)),
            "given": name in request.parameters,
        }
        for name, param in entry.parameters.items()
    ]  # fmt: skip
