"""A job request checked field by field without creating anything (`POST jobs/validate`).

The very rules `JobManager.validate` applies before a submission (JobRequest.from_json, the
target's options, `plan.inspect_source` and `plan.parameter_argument` for each parameter), but
every problem is collected under the field it concerns ("parameters.<name>" for a parameter)
instead of stopping at the first, and nothing is written: no project is built, no job, folder,
experiment or run is created.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..limits import check_json_value
from ..projects.runner import encode
from .plan import inspect_source, missing_parameters, parameter_argument
from .schema import JobRequest

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
    for name in list(body):  # what POST jobs refuses for the whole body, here under its field
        try:
            check_json_value({name: body[name]})
        except BadRequest as exc:
            problems.add(name, exc.message)
            if name == "path":
                return None
            body.pop(name)
    unknown = sorted(set(body) - set(JobRequest.model_fields))
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


def _source_field(message: str) -> str:
    if message.startswith("include_folder"):
        return "include_folder"
    if "entry point" in message:
        return "entry_point"
    return "path"


def check_parameters(request: JobRequest, source: Path, lab_path, problems: Problems) -> list[dict]:
    """Runs in a thread: the project's parameters against the request (each sweep set too), each
    parameter on its own; the parameters the run would get, for the dialog."""
    try:
        plan = inspect_source(source, request.entry_point, request.include_folder, lab_path)
    except BadRequest as exc:  # ProjectError included
        problems.add(_source_field(exc.message), exc.message)
        return []
    given_texts: dict[str, str] = {}
    for index, given in enumerate(request.sweep_sets() or [request.parameters]):
        for name in missing_parameters(plan, given):
            problems.add(f"parameters.{name}", f"Missing value for parameter {name!r}.")
        for name, value in given.items():
            try:
                text = parameter_argument(plan, name, value)
            except BadRequest as exc:
                problems.add(f"parameters.{name}", exc.message)
                continue
            if index == 0 and name in request.parameters:
                given_texts[name] = text
    answer = []
    for name, declared in plan.declared.items():
        default = declared.default
        if plan.notebook_rules:
            kind = declared.kind
            default_text: str | None = encode(kind, default)
            shown_default = default if isinstance(default, (bool, int, float, str, type(None))) else repr(default)
        else:
            kind = "float" if declared.kind == "mlflow:float" else "str"
            default_text = None if default is None else str(default)
            shown_default = default
        answer.append(
            {
                "name": name,
                "type": kind,
                "default": shown_default,
                "value": given_texts.get(name, default_text),
                "given": name in request.parameters,
            }
        )
    return answer
