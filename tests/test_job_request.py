"""The job request as the API reads it (`JobRequest.from_json`, the pydantic model in jobs/schema.py):
every message a client can get, word for word, which one comes first when several things are
wrong, what is not converted, and what the generated OpenAPI schema says about the same bodies.

No server: these run in milliseconds. test_jobs*.py and test_api_safety.py send the same kinds of
bodies through `POST jobs`.
"""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from infinstor_jupyterlab import limits
from infinstor_jupyterlab.errors import BadRequest
from infinstor_jupyterlab.jobs.dry_run import Problems, parse_request
from infinstor_jupyterlab.jobs.schema import JobRequest, SweepGrid

OK = {"path": "nb.ipynb"}
SWEEP_SHAPE = '`sweep` must be {"grid": {name: [values]}} or {"list": [{name: value}, ...]}.'
LONG_VALUE = "v" * (limits.MAX_PARAMETER_VALUE_CHARS + 1)


def refused(body) -> str:
    with pytest.raises(BadRequest) as excinfo:
        JobRequest.from_json(body)
    return excinfo.value.message


@pytest.mark.parametrize(
    "body,message",
    [
        ([], "The job request must be a JSON object."),
        ({**OK, "colour": "red", "b": 1}, "Unknown field(s) in the job request: b, colour."),
        ({}, "`path` must name a notebook or a folder holding an MLproject."),
        ({"path": " \n"}, "`path` must name a notebook or a folder holding an MLproject."),
        ({"path": 1}, "`path` must name a notebook or a folder holding an MLproject."),
        ({"path": "a\x00b"}, "`path` contains a NUL character."),
        ({"path": "p" * 4097}, "`path` is longer than 4096 characters (4097)."),
        ({"path": "n" * 256 + "/x"}, f"`path` has a file or folder name longer than 255 bytes: {limits.shown('n' * 256, 60)}."),
        ({**OK, "target": ""}, "`target` must be a target name such as 'inline'."),
        ({**OK, "target": None}, "`target` must be a target name such as 'inline'."),
        ({**OK, "target": "t" * 251}, "`target` is longer than 250 characters (251)."),
        ({**OK, "parameters": "a=1"}, "`parameters` must be an object of name -> value."),
        ({**OK, "parameters": {f"p{i}": i for i in range(101)}}, "At most 100 parameters can be given (101 were)."),
        (
            {**OK, "parameters": {"n" * 251: 1}},
            f"parameter {limits.shown('n' * 251, 60)}: names are at most 250 characters (MLflow's limit).",
        ),
        (
            {**OK, "parameters": {"x": LONG_VALUE}},
            "parameter 'x': values are at most 6,000 characters (MLflow's limit); this one has 6,001.",
        ),
        (
            {**OK, "parameters": {"x": ["ok", LONG_VALUE]}},
            "parameter 'x': values are at most 6,000 characters (MLflow's limit); this one has 6,001.",
        ),
        ({**OK, "experiment_id": "1", "experiment_name": "x"}, "Give `experiment_id` or `experiment_name`, not both."),
        ({**OK, "experiment_id": True}, "`experiment_id` must be an MLflow experiment id (a string), not True."),
        ({**OK, "experiment_id": 1.5}, "`experiment_id` must be an MLflow experiment id (a string), not 1.5."),
        ({**OK, "experiment_id": "../1"}, "`experiment_id`: '../1' is not a valid MLflow experiment id."),
        ({**OK, "experiment_id": "1\n"}, "`experiment_id`: '1\\n' is not a valid MLflow experiment id."),
        ({**OK, "experiment_id": -1}, "`experiment_id`: '-1' is not a valid MLflow experiment id."),
        ({**OK, "experiment_id": 2**63}, f"`experiment_id`: '{2**63}' is not a valid MLflow experiment id."),
        ({**OK, "experiment_name": " "}, "`experiment_name` must be a non-empty string."),
        ({**OK, "experiment_name": 5}, "`experiment_name` must be a non-empty string."),
        ({**OK, "experiment_name": "e" * 501}, "`experiment_name` is longer than 500 characters (501)."),
        ({**OK, "run_name": 5}, "`run_name` must be a string of at most 250 characters."),
        ({**OK, "run_name": "r" * 251}, "`run_name` is longer than 250 characters (251)."),
        ({**OK, "include_folder": 1}, "`include_folder` must be true or false."),
        ({**OK, "include_folder": None}, "`include_folder` must be true or false."),
        ({**OK, "entry_point": ""}, "`entry_point` must be a string."),
        ({**OK, "entry_point": "e" * 251}, "`entry_point` is longer than 250 characters (251)."),
        ({**OK, "options": "x"}, "`options` must be an object."),
        ({**OK, "options": {"o" * 251: 1}}, "`options` is longer than 250 characters (251)."),
        ({**OK, "sweep": [1]}, SWEEP_SHAPE),
        ({**OK, "sweep": {}}, SWEEP_SHAPE),
        ({**OK, "sweep": {"grid": {"a": [1]}, "list": [{}]}}, SWEEP_SHAPE),
        ({**OK, "sweep": {"grid": {"a": [1]}, "x": 1}}, SWEEP_SHAPE),
        ({**OK, "sweep": {"grid": []}}, "`sweep.grid` must map parameter names to lists of values."),
        ({**OK, "sweep": {"grid": {}}}, "`sweep.grid` must map parameter names to lists of values."),
        ({**OK, "sweep": {"grid": {"a": [1], "b": []}}}, "`sweep.grid.b` must be a non-empty list of values."),
        ({**OK, "sweep": {"grid": {"a": 1}}}, "`sweep.grid.a` must be a non-empty list of values."),
        ({**OK, "sweep": {"list": []}}, "`sweep.list` must be a non-empty list of objects (parameter sets)."),
        ({**OK, "sweep": {"list": [{}, 1]}}, "`sweep.list` must be a non-empty list of objects (parameter sets)."),
        (
            {**OK, "sweep": {"grid": {"a": list(range(40)), "b": list(range(30))}}},
            "The sweep has 1200 parameter sets; at most 1000 are allowed.",
        ),
        ({**OK, "sweep": {"list": [{}] * 1001}}, "The sweep has 1001 parameter sets; at most 1000 are allowed."),
        ({**OK, "sweep": {"grid": {f"p{i}": [1] for i in range(101)}}}, "At most 100 parameters can be given (101 were)."),
        (
            {**OK, "sweep": {"grid": {"x": [1, LONG_VALUE]}}},
            "parameter 'x': values are at most 6,000 characters (MLflow's limit); this one has 6,001.",
        ),
        (
            {**OK, "sweep": {"list": [{}, {"x": LONG_VALUE}]}},
            "parameter 'x': values are at most 6,000 characters (MLflow's limit); this one has 6,001.",
        ),
        ({**OK, "max_instances": 0}, "`max_instances` must be a positive integer."),
        ({**OK, "max_instances": 2}, "`max_instances` applies to sweeps; give `sweep` too."),
    ],
)
def test_every_message_word_for_word(body, message):
    assert refused(body) == message


@pytest.mark.parametrize(
    "body,message",
    [
        # Unknown fields first, then sizes (in the order path, target, entry_point, run_name,
        # experiment_name, options, parameters, sweep), then each field in turn.
        ({"path": 1, "x": 1, "target": "t" * 251}, "Unknown field(s) in the job request: x."),
        (
            {"path": 1, "sweep": {"list": [{"x": LONG_VALUE}]}},
            "parameter 'x': values are at most 6,000 characters (MLflow's limit); this one has 6,001.",
        ),
        ({"path": "", "options": {"o" * 251: 1}, "run_name": "r" * 300}, "`run_name` is longer than 250 characters (300)."),
        ({"path": "p\x00", "target": "t" * 251}, "`path` contains a NUL character."),
        ({"path": "p" * 5000 + "\x00"}, "`path` contains a NUL character."),
        ({"path": "", "target": ""}, "`path` must name a notebook or a folder holding an MLproject."),
        ({**OK, "max_instances": 0, "target": 5, "include_folder": "yes"}, "`target` must be a target name such as 'inline'."),
        # The rules that tie two fields come in their place among the fields.
        ({**OK, "parameters": 1, "experiment_id": "1", "experiment_name": "x"}, "`parameters` must be an object of name -> value."),
        ({**OK, "experiment_id": "../1", "experiment_name": "x"}, "Give `experiment_id` or `experiment_name`, not both."),
        ({**OK, "experiment_name": "x", "experiment_id": 0, "run_name": 1}, "Give `experiment_id` or `experiment_name`, not both."),
        ({**OK, "max_instances": "2", "sweep": None}, "`max_instances` must be a positive integer."),
        ({**OK, "max_instances": 2, "sweep": {"grid": {}}}, "`sweep.grid` must map parameter names to lists of values."),
        ({**OK, "max_instances": 2, "options": "x"}, "`options` must be an object."),
        # Within a sweep: its shape, then its sets, then its size.
        ({**OK, "sweep": {"grid": {"a": []}, "x": 1}}, SWEEP_SHAPE),
        ({**OK, "sweep": {"grid": {"a": [1], "b": [], "c": 1}}}, "`sweep.grid.b` must be a non-empty list of values."),
        ({**OK, "sweep": {"list": [{}] * 1001 + [1]}}, "`sweep.list` must be a non-empty list of objects (parameter sets)."),
    ],
)
def test_the_first_problem_is_told(body, message):
    assert refused(body) == message


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_instances", "2"),
        ("max_instances", 2.0),
        ("max_instances", True),
        ("include_folder", "true"),
        ("include_folder", 0),
        ("target", 1),
        ("run_name", 1),
        ("experiment_name", ["x"]),
        ("experiment_id", 1.0),
        ("experiment_id", ["1"]),
        ("options", [("a", 1)]),
        ("parameters", [("a", 1)]),
    ],
)
def test_nothing_is_converted(field, value):
    body = {**OK, field: value, **({"sweep": {"list": [{}]}} if field == "max_instances" else {})}
    assert f"`{field}`" in refused(body)


@pytest.mark.parametrize(
    "field,message",
    [("parameters", "`parameters` must be an object of name -> value."), ("options", "`options` must be an object.")],
)
@pytest.mark.parametrize("value", [[], 0, False, ""])
def test_a_falsy_value_is_not_an_empty_object(field, message, value):
    """Only null stands for "not given"; `"parameters": []` used to pass as no parameters."""
    assert refused({**OK, field: value}) == message


def test_what_a_valid_request_becomes():
    request = JobRequest.from_json(
        {
            "path": "  work/nb.ipynb ",
            "parameters": None,
            "options": None,
            "experiment_id": 7,
            "run_name": "",
            "max_instances": 2,
            "sweep": {"grid": {"a": [1, 2], "b": ["x", None]}},
        }
    )
    assert (request.path, request.target, request.entry_point, request.include_folder) == ("work/nb.ipynb", "inline", "main", False)
    assert (request.parameters, request.options, request.experiment_id, request.run_name) == ({}, {}, "7", None)
    assert isinstance(request.sweep, SweepGrid) and request.max_instances == 2
    assert request.sweep_sets() == [{"a": 1, "b": "x"}, {"a": 1, "b": None}, {"a": 2, "b": "x"}, {"a": 2, "b": None}]
    assert request.sweep_json() == {"grid": {"a": [1, 2], "b": ["x", None]}}

    named = JobRequest.from_json(
        {**OK, "experiment_name": "  exp ", "parameters": {"a": 1, "c": 3}, "sweep": {"list": [{"a": 2}, {"b": 5}]}}
    )
    assert named.experiment_name == "exp" and named.experiment_id is None
    assert named.sweep_sets() == [{"a": 2, "c": 3}, {"a": 1, "c": 3, "b": 5}]
    assert named.sweep_json() == {"list": [{"a": 2}, {"b": 5}]}
    assert JobRequest.from_json(OK).sweep_sets() == [] and JobRequest.from_json(OK).sweep_json() is None


def test_the_model_keeps_its_rules_without_from_json():
    with pytest.raises(ValueError, match="not both"):
        JobRequest.model_validate({**OK, "experiment_id": "1", "experiment_name": "x"})
    with pytest.raises(ValueError, match="applies to sweeps"):
        JobRequest(path="nb.ipynb", max_instances=2)


def test_the_dry_run_tells_each_problem_under_its_field():
    problems = Problems()
    body = {
        "path": "nb.ipynb",
        "colour": 1,
        "target": "",
        "run_name": "r" * 300,
        "parameters": {"ok": 1, "x": LONG_VALUE},
        "sweep": {"grid": {}},
        "max_instances": 3,
        "include_folder": "no",
    }
    request = parse_request(body, problems)
    assert problems.errors == {
        "colour": "Unknown field in the job request: colour.",
        "run_name": "`run_name` is longer than 250 characters (300).",
        "parameters.x": "parameter 'x': values are at most 6,000 characters (MLflow's limit); this one has 6,001.",
        "target": "`target` must be a target name such as 'inline'.",
        "include_folder": "`include_folder` must be true or false.",
        "sweep": "`sweep.grid` must map parameter names to lists of values.",
        "max_instances": "`max_instances` applies to sweeps; give `sweep` too.",
    }
    assert request is not None and request.parameters == {"ok": 1} and request.target == "inline"
    assert parse_request({"path": ""}, Problems()) is None


def test_the_dry_run_tells_a_bad_experiment_id_under_its_field_and_goes_on():
    problems = Problems()
    request = parse_request({"path": "nb.ipynb", "experiment_id": "../1", "target": ""}, problems)
    assert problems.errors == {
        "experiment_id": "`experiment_id`: '../1' is not a valid MLflow experiment id.",
        "target": "`target` must be a target name such as 'inline'.",
    }
    assert request is not None and request.experiment_id is None


# -- the generated schema says the same ----------------------------------------------------------
@pytest.fixture(scope="module")
def request_schema():
    """The request's JSON Schema as docs/openapi.yaml has it (before the OpenAPI 3.0 rewriting)."""
    return Draft202012Validator(JobRequest.model_json_schema(mode="validation"))


@pytest.mark.parametrize(
    "body",
    [
        OK,
        {**OK, "target": "ec2", "parameters": {"a": 1, "b": "x", "c": None, "d": [1], "e": {"k": 1}}, "experiment_id": "12"},
        {**OK, "experiment_id": 12, "run_name": "r", "include_folder": True, "entry_point": "train", "options": {"env_manager": "local"}},
        {**OK, "experiment_name": "e", "sweep": {"grid": {"a": [1, 2]}}, "max_instances": 2},
        {**OK, "sweep": {"list": [{"a": 1}, {"a": 2}]}, "parameters": None, "options": None, "run_name": None},
    ],
)
def test_what_the_server_takes_the_schema_takes(request_schema, body):
    JobRequest.from_json(body)
    assert not list(request_schema.iter_errors(body))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {**OK, "colour": 1},
        {"path": " "},
        {**OK, "target": ""},
        {**OK, "target": "t" * 251},
        {**OK, "parameters": {f"p{i}": i for i in range(101)}},
        {**OK, "parameters": {"x": LONG_VALUE}},
        {**OK, "experiment_id": "../1"},
        {**OK, "experiment_id": True},
        {**OK, "experiment_id": -1},
        {**OK, "experiment_id": "1", "experiment_name": "x"},
        {**OK, "experiment_name": ""},
        {**OK, "run_name": "r" * 251},
        {**OK, "include_folder": 1},
        {**OK, "max_instances": 0},
        {**OK, "max_instances": True},
        {**OK, "max_instances": 2},
        {**OK, "options": []},
        {**OK, "sweep": {}},
        {**OK, "sweep": {"grid": {"a": [1]}, "list": [{}]}},
        {**OK, "sweep": {"grid": {"a": []}}},
        {**OK, "sweep": {"list": []}},
        {**OK, "sweep": {"list": [{}] * 1001}},
    ],
)
def test_what_the_schema_refuses_the_server_refuses(request_schema, body):
    assert list(request_schema.iter_errors(body))
    refused(body)
