"""The job API's request and response shapes, defined once.

docs/openapi.yaml's job schemas are generated from these models (scripts/gen_openapi.py) and the
front end's types from that document (labextension/src/jobs/api.gen.ts, openapi-typescript);
tests/test_schema_current.py fails when either generated file is stale.

`JobRequest.from_json` reads a job request: pydantic checks it, and the first problem is told in
the API's words, in the order the API has always checked: unknown fields, then sizes (limits.py,
each checked on the value as sent, before its type), then each field in turn, then the rules that
tie two fields together.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from typing_extensions import TypeAliasType

from .. import limits
from ..errors import BadRequest
from ..limits import shown


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


# -- the request ---------------------------------------------------------------------------------
# pydantic error types of our own: each carries its message in the API's words.
_LIMIT = "job_request_limit"  # a size beyond limits.py's (told before any other field's problem)
_PROBLEM = "job_request"  # a field's problem
_SIZE = "job_request_sweep_size"  # too many parameter sets (told after the sweep's other problems)


def _told(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, "{message}", {"message": message})


def _limit(check: Callable[[Any], object]) -> BeforeValidator:
    """A limits.py check of the value as sent (a string too long is refused as too long, not as
    whatever else is wrong with it)."""

    def run(value: Any) -> Any:
        try:
            check(value)
        except BadRequest as exc:
            raise _told(_LIMIT, exc.message) from None
        return value

    return BeforeValidator(run)


def _text_limit(field: str, most: int) -> BeforeValidator:
    return _limit(lambda value: isinstance(value, str) and limits.check_text(field, value, most))


def _path_limits(value: Any) -> None:
    if isinstance(value, str):
        limits.check_path("path", value)


def _option_limits(value: Any) -> None:
    for key in value if isinstance(value, dict) else ():
        limits.check_text("options", key, limits.MAX_NAME_CHARS)


def _parameter_limits(group: Any) -> None:
    """MLflow's limits on one set of parameters (name -> value, or name -> values for a grid)."""
    if not isinstance(group, dict):
        return
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


def _sweep_limits(sweep: Any) -> None:
    if isinstance(sweep, dict):
        listed = sweep.get("list")
        for group in [sweep.get("grid"), *(listed if isinstance(listed, list) else [])]:
            _parameter_limits(group)


def _experiment_id(value: Any) -> str | None:
    try:
        return None if value is None else limits.check_experiment_id(value)
    except BadRequest as exc:
        raise _told(_PROBLEM, exc.message) from None


def _empty_if_none(value: Any) -> Any:
    return {} if value is None else value  # null is "not given", as for the other optional fields


ParameterValue = TypeAliasType(
    "ParameterValue",
    Annotated[
        Any,
        WithJsonSchema(
            {
                "description": (
                    f"A string of at most {limits.MAX_PARAMETER_VALUE_CHARS} characters (MLflow's limit), read as the "
                    "command line reads text (a Python literal when it is one); a number or a boolean; null is None (a "
                    "notebook parameter whose default is None takes any literal); arrays and objects are lists and "
                    "dicts. The notebook's or project's parameters decide what fits."
                ),
                "anyOf": [
                    {"type": "string", "maxLength": limits.MAX_PARAMETER_VALUE_CHARS},
                    {"type": "number"},
                    {"type": "boolean"},
                    {"type": "array", "items": {}},
                    {"type": "object", "additionalProperties": True},
                    {"type": "null"},
                ],
            }
        ),
    ],
)
ParameterName = Annotated[str, Field(max_length=limits.MAX_PARAMETER_NAME_CHARS)]
Parameters = TypeAliasType(
    "Parameters",
    Annotated[
        dict[ParameterName, ParameterValue],
        Field(
            max_length=limits.MAX_PARAMETERS,
            description=(
                f"name -> value; at most {limits.MAX_PARAMETERS}, names of at most "
                f"{limits.MAX_PARAMETER_NAME_CHARS} characters (MLflow's limits)"
            ),
        ),
    ],
)


class _Request(BaseModel):
    # What a client sends: nothing unknown, nothing converted ("1" is not 1, 1 is not true).
    model_config = ConfigDict(extra="forbid", strict=True)


def _sweep_size(size: int) -> None:
    if size > limits.MAX_SWEEP_SIZE:
        raise _told(_SIZE, f"The sweep has {size} parameter sets; at most {limits.MAX_SWEEP_SIZE} are allowed.")


class SweepGrid(_Request):
    """Every combination of the values: one parameter set per combination."""

    grid: Annotated[
        dict[ParameterName, Annotated[list[ParameterValue], Field(min_length=1)]],
        Field(
            min_length=1,
            max_length=limits.MAX_PARAMETERS,
            description=f"name (at most {limits.MAX_PARAMETER_NAME_CHARS} characters) -> the values it takes",
        ),
    ]

    @model_validator(mode="after")
    def _size(self) -> SweepGrid:
        _sweep_size(math.prod(len(values) for values in self.grid.values()))
        return self


class SweepList(_Request):
    """The parameter sets, as given."""

    # maxItems for the schema only: pydantic would stop at the 1001st set and tell the size first.
    list: Annotated[list[Parameters], Field(min_length=1, json_schema_extra={"maxItems": limits.MAX_SWEEP_SIZE})]

    @model_validator(mode="after")
    def _size(self) -> SweepList:
        _sweep_size(len(self.list))
        return self


def _sweep_kind(value: Any) -> str | None:
    """Which kind of sweep `value` is: an object of the one key `grid` or `list` (None: neither)."""
    if isinstance(value, SweepGrid | SweepList):
        return "grid" if isinstance(value, SweepGrid) else "list"
    keys = list(value) if isinstance(value, dict) else []
    return keys[0] if keys in (["grid"], ["list"]) else None


Sweep = Annotated[Annotated[SweepGrid, Tag("grid")] | Annotated[SweepList, Tag("list")], Discriminator(_sweep_kind)]


def _broken_rules(given: Callable[[str], Any]) -> list[tuple[str, str]]:
    """The rules that tie two fields together, as (the field they are told before or after, message)."""
    broken = []
    if given("experiment_id") is not None and given("experiment_name") is not None:
        broken.append(("experiment_id", "Give `experiment_id` or `experiment_name`, not both."))
    if given("max_instances") is not None and given("sweep") is None:
        broken.append(("max_instances", "`max_instances` applies to sweeps; give `sweep` too."))
    return broken


class JobRequest(_Request):
    """A job to run (`POST jobs`; `POST jobs/validate` checks a draft). At most one of `experiment_id`
    and `experiment_name`; `max_instances` only with `sweep`."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "anyOf": [
                    {"required": ["experiment_id", "experiment_name"]},
                    {"required": ["max_instances"], "not": {"required": ["sweep"]}},
                ]
            }
        }
    )

    path: Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.MAX_PATH_CHARS,
            pattern=r"\S",
            description=(
                "A notebook, or a folder holding an MLproject: a path in the Jupyter root (lab-relative, or "
                f"absolute inside it), at most {limits.MAX_PATH_CHARS} characters with names of at most "
                f"{limits.MAX_NAME_BYTES} bytes, no NUL"
            ),
        ),
        _limit(_path_limits),
        AfterValidator(str.strip),
    ]
    target: Annotated[
        str,
        Field(min_length=1, max_length=limits.MAX_NAME_CHARS, description="A target's name (`GET targets`)"),
        _text_limit("target", limits.MAX_NAME_CHARS),
    ] = "inline"
    parameters: Annotated[
        Parameters,
        _limit(_parameter_limits),
        BeforeValidator(_empty_if_none, json_schema_input_type=Parameters | None),
    ] = {}
    experiment_id: Annotated[
        str | None,
        BeforeValidator(
            _experiment_id,
            json_schema_input_type=Annotated[str, Field(pattern=f"^{limits.EXPERIMENT_ID_PATTERN}$")]
            | Annotated[int, Field(ge=0, le=limits.MAX_SQL_INTEGER)]
            | None,
        ),
        Field(description="MLflow's experiment id pattern; a number must fit a 64-bit integer (MLflow's SQL stores)"),
    ] = None
    experiment_name: Annotated[
        Annotated[
            str,
            Field(min_length=1, max_length=limits.MAX_EXPERIMENT_NAME_CHARS, pattern=r"\S"),
            _text_limit("experiment_name", limits.MAX_EXPERIMENT_NAME_CHARS),
            AfterValidator(str.strip),
        ]
        | None,
        Field(description="Created when missing"),
    ] = None
    run_name: Annotated[
        Annotated[str, Field(max_length=limits.MAX_NAME_CHARS), _text_limit("run_name", limits.MAX_NAME_CHARS)] | None,
        AfterValidator(lambda name: name or None),
        Field(description="MLflow's run name (MLflow picks one when none is given)"),
    ] = None
    include_folder: Annotated[
        bool, Field(description="Notebooks: run with the notebook's folder beside it (its files readable by the run)")
    ] = False
    entry_point: Annotated[
        str,
        Field(min_length=1, max_length=limits.MAX_NAME_CHARS, description="MLprojects: the entry point to run"),
        _text_limit("entry_point", limits.MAX_NAME_CHARS),
    ] = "main"
    options: Annotated[
        dict[Annotated[str, Field(max_length=limits.MAX_NAME_CHARS)], Any],
        _limit(_option_limits),
        BeforeValidator(_empty_if_none, json_schema_input_type=dict[str, Any] | None),
        Field(
            description=(
                "Target options, e.g. env_manager for inline; instance_type and env_manager for ec2 (names of at "
                f"most {limits.MAX_NAME_CHARS} characters)"
            )
        ),
    ] = {}
    sweep: Annotated[
        Sweep | None,
        _limit(_sweep_limits),
        Field(
            description=(
                "A parameter sweep: one parent job and run, one child job (run tagged mlflow.parentRunId) per "
                f"parameter set (at most {limits.MAX_SWEEP_SIZE}), each set merged over `parameters` (targets whose "
                "capabilities say `sweeps`)"
            )
        ),
    ] = None
    max_instances: Annotated[
        Annotated[int, Field(ge=1)] | None,
        Field(description="Sweeps: child jobs running at once (capped by the target's max_instances)"),
    ] = None

    @model_validator(mode="after")
    def _rules(self) -> JobRequest:
        for _, message in _broken_rules(lambda name: getattr(self, name)):
            raise _told(_PROBLEM, message)
        return self

    @classmethod
    def from_json(cls, body: Any) -> JobRequest:
        if not isinstance(body, dict):
            raise BadRequest("The job request must be a JSON object.")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise BadRequest(_first_problem(exc.errors(), body)) from None

    def sweep_sets(self) -> list[dict[str, Any]]:
        """The parameter sets of the sweep, each merged over `parameters` (empty without a sweep)."""
        if isinstance(self.sweep, SweepGrid):
            names = list(self.sweep.grid)
            sets = [dict(zip(names, combo)) for combo in itertools.product(*self.sweep.grid.values())]
        elif isinstance(self.sweep, SweepList):
            sets = [dict(s) for s in self.sweep.list]
        else:
            return []
        return [{**self.parameters, **s} for s in sets]

    def sweep_json(self) -> dict[str, Any] | None:
        """The sweep as the client sent it (for the parent job's options and its run's tag)."""
        return None if self.sweep is None else self.sweep.model_dump()


# What a field's problem is called when no check above named it (its type or shape is wrong).
_MESSAGES = {
    "path": "`path` must name a notebook or a folder holding an MLproject.",
    "target": "`target` must be a target name such as 'inline'.",
    "parameters": "`parameters` must be an object of name -> value.",
    "experiment_name": "`experiment_name` must be a non-empty string.",
    "run_name": f"`run_name` must be a string of at most {limits.MAX_NAME_CHARS} characters.",
    "include_folder": "`include_folder` must be true or false.",
    "entry_point": "`entry_point` must be a string.",
    "options": "`options` must be an object.",
    "sweep": '`sweep` must be {"grid": {name: [values]}} or {"list": [{name: value}, ...]}.',
    "max_instances": "`max_instances` must be a positive integer.",
}
_FIELDS = list(JobRequest.model_fields)
_LIMITS_ORDER = ["path", "target", "entry_point", "run_name", "experiment_name", "options", "parameters", "sweep"]


def _sweep_problem(loc: tuple[int | str, ...], kind: str) -> tuple[int, str]:
    """(its rank among the sweep's problems, its message) for a problem at `loc`: ("sweep", the kind
    the discriminator chose, the kind's field or an extra key, a grid's parameter name, ...)."""
    if kind == _SIZE:
        return 2, ""
    if len(loc) < 3 or loc[2] != loc[1]:  # not an object of one known key
        return 0, _MESSAGES["sweep"]
    if loc[2] == "list":
        return 1, "`sweep.list` must be a non-empty list of objects (parameter sets)."
    if len(loc) > 3:
        return 1, f"`sweep.grid.{loc[3]}` must be a non-empty list of values."
    return 1, "`sweep.grid` must map parameter names to lists of values."


def _first_problem(errors: list[ErrorDetails], body: dict[str, Any]) -> str:
    """The message for the problem the API tells first (the order in the module's docstring)."""
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if unknown:
        return f"Unknown field(s) in the job request: {limits.clip(', '.join(unknown))}."
    found: list[tuple[tuple[int, int, int], str]] = []  # ((1 sizes | 2 fields, which field, rank within it), message)
    for error in errors:
        if not error["loc"]:
            continue  # a broken rule: told from the body below, in its place among the fields
        field, told = str(error["loc"][0]), (error.get("ctx") or {}).get("message")
        if error["type"] == _LIMIT:
            found.append(((1, _LIMITS_ORDER.index(field), 0), str(told)))
        elif field == "sweep":
            rank, message = _sweep_problem(error["loc"], error["type"])
            found.append(((2, _FIELDS.index(field), rank), told or message))
        else:
            found.append(((2, _FIELDS.index(field), 0), told or _MESSAGES.get(field, f"`{field}`: {error['msg']}")))
    for field, message in _broken_rules(body.get):  # "not both" before experiment_id's own problems
        found.append(((2, _FIELDS.index(field), -1 if field == "experiment_id" else 3), message))
    return min(found, key=lambda problem: problem[0])[1]


GENERATED = (JobStatus, JobKind, Job, JobLog, JobRequest)  # and the types they refer to
REQUESTS = (JobRequest,)  # what clients send (the others are what the server answers)
