"""How each kind of MLflow operation finds the resource it is about and checks the caller's role.

`policy.KINDS` names the kind of every operation the service authorizes; `KIND_TABLE` here says,
for each kind, its resolver and its scope: whether it is about one existing resource (the policy
gives it reader, editor, manager or admin), a create or a search (member or admin), or
organisation infrastructure (admin only). `load_policy` checks both tables when the policy loads,
so an operation of an unknown kind stops the service at start-up, not at its first request.

A resolver gets the caller, the operation, the role the policy asks for, the request's parameters
and path variables, and the `Outcome` to fill: it raises a `Refusal`, or returns having checked the
caller's role (and maybe rewritten the request, answered it, or set what to do after it).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..otlp import InvalidExport, trace_ids_in_export
from . import searches
from .lookups import stores
from .params import Params, json_bytes, required, required_all
from .principals import Outcome, Principal
from .refusals import bad_request, not_found

if TYPE_CHECKING:
    from .service import CompanyService


class Scope(enum.Enum):
    RESOURCE = "one existing resource"  # reader, editor, manager or admin
    COLLECTION = "a create or a search"  # not about one existing resource: member or admin
    ORG_ADMIN = "organisation infrastructure"  # organisation admins only


Resolver = Callable[["CompanyService", Principal, str, str, Params, "dict[str, str]", Outcome], None]


@dataclass(frozen=True)
class Kind:
    name: str
    resolve: Resolver
    scope: Scope


def _if_ok(action: Callable[[bytes], object]) -> Callable[[int, bytes], None]:
    """An Outcome.after that runs `action(body)` once MLflow answered 200."""

    def after(status: int, body: bytes) -> None:
        if status == 200:
            action(body)

    return after


def _none(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    pass


def _org_admin(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    pass  # organisation infrastructure: the policy check above admitted only organisation admins


def _own_workspaces(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    """A caller's workspaces are their organisation's, and no other (names never leak)."""
    if operation == "ListWorkspaces":
        outcome.respond = (200, json_bytes({"workspaces": [{"name": who.org}]}))
    elif path_vars.get("workspace_name") != who.org:
        raise not_found(f"Workspace '{path_vars.get('workspace_name')}' not found")


def _experiment(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    experiment_id = required(params, "experiment_id")
    service.access.check_experiment(who, experiment_id, need)
    outcome.audit = ("experiment", experiment_id)


def _experiment_name(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    name = required(params, "experiment_name")
    experiment = stores()[0].get_experiment_by_name(name)
    missing = f"Could not find experiment with name '{name}'"
    if experiment is None:
        raise not_found(missing)
    service.access.check(service.access.rank(who, "experiment", experiment.experiment_id), need, missing)


def _run(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    run_id = required(params, "run_id", "run_uuid")
    service.access.check_run(who, run_id, need)
    outcome.audit = ("run", run_id)


def _runs(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    for run_id in required_all(params, "run_ids"):
        service.access.check_run(who, run_id, need)


def _logged_model(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    model_id = path_vars["model_id"]
    # Some MLflow handlers act on the body's model_id rather than the path's: they must agree.
    if params.get("model_id") not in (None, model_id):
        raise bad_request("The model_id in the body does not match the path.")
    service.access.check_logged_model(who, model_id, need)
    outcome.audit = ("logged_model", model_id)


def _artifact(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    artifact_path = path_vars.get("artifact_path") if "artifact_path" in path_vars else params.get("path")
    service.access.check_artifact(who, artifact_path or "", need)
    outcome.audit = ("artifact", artifact_path)


def _registered_model(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    name = required(params, "name")
    service.access.check_model(who, name, need)
    outcome.audit = ("registered_model", name)
    if operation == "RenameRegisteredModel":
        new_name = required(params, "new_name")
        outcome.after = _if_ok(lambda _body: service.store.rename_resource(who.org, "registered_model", name, new_name))
        outcome.detail = {"new_name": new_name}
    elif operation == "DeleteRegisteredModel":
        outcome.after = _if_ok(lambda _body: service.store.forget_resource(who.org, "registered_model", name))


def _create_model_version(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    name = required(params, "name")
    service.access.check_model(who, name, need)
    # The version must come from something the caller may read.
    run_id = params.get("run_id")
    source = params.get("source") or ""
    if run_id:
        service.access.check_run(who, run_id, "reader")
    if model_id := params.get("model_id"):
        service.access.check_logged_model(who, model_id, "reader")
    if source.startswith("models:/m-"):
        service.access.check_logged_model(who, source[len("models:/") :].split("/")[0], "reader")
    elif source.startswith("models:/"):  # a version copied from another registered model
        service.access.check_model(who, source[len("models:/") :].split("/")[0], "reader")
    elif source.startswith("runs:/"):
        service.access.check_run(who, source[len("runs:/") :].split("/")[0], "reader")
    elif source.startswith("mlflow-artifacts:/"):
        service.access.check_artifact(who, source[len("mlflow-artifacts:/") :], "reader")
    outcome.audit = ("registered_model", name)


def _create_experiment(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    outcome.after = _if_ok(lambda body: _grant_on_create_experiment(service, who, body))
    outcome.audit = ("experiment", None)


def _create_registered_model(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    outcome.after = _if_ok(lambda body: _grant_on_create_model(service, who, body))
    outcome.audit = ("registered_model", params.get("name"))


def _trace(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    # The path's id is the one MLflow acts on when there is one (it overrides the body's).
    trace_id = path_vars.get("trace_id") or path_vars.get("request_id") or required(params, "trace_id", "request_id")
    service.access.check_trace(who, trace_id, need)
    outcome.audit = ("trace", trace_id)


def _traces(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    for trace_id in dict.fromkeys(required_all(params, "trace_ids")):  # every one of them
        service.access.check_trace(who, trace_id, need)


def _trace_location(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    from mlflow.protos.service_pb2 import StartTraceV3

    info = params.message(StartTraceV3()).trace.trace_info
    experiment_id = info.trace_location.mlflow_experiment.experiment_id
    if not experiment_id:
        raise bad_request("A trace must name its experiment (trace_info.trace_location.mlflow_experiment).")
    service.access.check_experiment(who, experiment_id, need)
    service.access.check_traces_written_to(who, experiment_id, [info.trace_id] if info.trace_id else [], need)
    outcome.audit = ("trace", info.trace_id or None)


def _traces_to_run(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    run_id = required(params, "run_id")
    service.access.check_run(who, run_id, need)
    for trace_id in dict.fromkeys(params.get_all("trace_ids")):
        service.access.check_trace(who, trace_id, "reader")
    outcome.audit = ("run", run_id)


def _prompts_to_trace(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    from mlflow.protos.service_pb2 import LinkPromptsToTrace

    request = params.message(LinkPromptsToTrace(), repeated=("prompt_versions",))
    if not request.trace_id:
        raise bad_request("Missing value for required parameter 'trace_id'.")
    service.access.check_trace(who, request.trace_id, need)
    for name in dict.fromkeys(version.name for version in request.prompt_versions):
        service.access.check_model(who, name, "reader")  # a prompt is a registered model to MLflow
    outcome.audit = ("trace", request.trace_id)


def _create_dataset(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    experiment_ids = list(dict.fromkeys(params.get_all("experiment_ids")))
    if not experiment_ids and not who.is_admin:
        raise bad_request("Name the experiment(s) the dataset belongs to (experiment_ids): it is shared through them.")
    for experiment_id in experiment_ids:
        service.access.check_experiment(who, experiment_id, need)
    outcome.audit = ("dataset", None)


def _dataset(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    dataset_id = path_vars["dataset_id"]
    service.access.check_dataset(who, dataset_id, need)
    outcome.audit = ("dataset", dataset_id)


def _dataset_experiments(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    """Linking a dataset to experiments (or unlinking it) changes the dataset and each of them."""
    _dataset(service, who, operation, need, params, path_vars, outcome)
    for experiment_id in dict.fromkeys(params.get_all("experiment_ids")):
        service.access.check_experiment(who, experiment_id, need)


def _create_issue(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    experiment_id = required(params, "experiment_id")
    service.access.check_experiment(who, experiment_id, need)
    if source_run_id := params.get("source_run_id"):
        service.access.check_run(who, source_run_id, "reader")
    # Who raised an issue is the caller, whatever the client claims (as for a run's user).
    data = params.body_json if isinstance(params.body_json, dict) else {}
    rest = {k: v for k, v in data.items() if k not in ("created_by", "createdBy")}
    outcome.body = json_bytes({**rest, "created_by": who.username})
    outcome.audit = ("experiment", experiment_id)


def _issue(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    issue_id = path_vars.get("issue_id") or required(params, "issue_id")
    service.access.check_owned(who, "issue", issue_id, stores()[0].get_issue, f"Issue with ID '{issue_id}' not found.", need)
    outcome.audit = ("issue", issue_id)


def _label_schema(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    schema_id = required(params, "schema_id")
    missing = f"Label schema with ID '{schema_id}' not found."
    service.access.check_owned(who, "label_schema", schema_id, stores()[0].get_label_schema, missing, need)
    outcome.audit = ("label_schema", schema_id)


def _span_export(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    """LogSpans (OTLP): the experiment named in MLflow's header, every existing trace the spans
    extend, and the run the traces are to be linked to."""
    from mlflow.tracing.utils.otlp import MLFLOW_EXPERIMENT_ID_HEADER, MLFLOW_RUN_ID_HEADER

    experiment_id = params.headers.get(MLFLOW_EXPERIMENT_ID_HEADER.lower())
    if not experiment_id:
        raise bad_request(f"Missing required header: {MLFLOW_EXPERIMENT_ID_HEADER}")
    service.access.check_experiment(who, experiment_id, need)
    try:
        trace_ids = trace_ids_in_export(params.raw_body or b"", params.headers.get("content-type"), params.headers.get("content-encoding"))
    except InvalidExport as exc:
        raise bad_request(str(exc)) from None
    service.access.check_traces_written_to(who, experiment_id, trace_ids, need)
    if run_id := params.headers.get(MLFLOW_RUN_ID_HEADER.lower()):
        service.access.check_run(who, run_id, service.policy.role_for("LinkTracesToRun"))
    outcome.audit = ("experiment", experiment_id)


def _run_or_logged_model(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    run_id, model_id = params.get("run_id"), params.get("model_id")
    if bool(run_id) == bool(model_id):
        raise bad_request("Give exactly one of run_id and model_id.")
    if run_id:
        service.access.check_run(who, run_id, need)
        outcome.audit = ("run", run_id)
    elif model_id:
        service.access.check_logged_model(who, model_id, need)
        outcome.audit = ("logged_model", model_id)


def _grant_on_create_experiment(service: CompanyService, who: Principal, body: bytes) -> None:
    experiment_id = str(json.loads(body)["experiment_id"])
    service.store.grant(who.org, "experiment", experiment_id, "user", who.username, "manager", who.username)
    if service.config.experiment_default == "shared":
        for group in who.groups:
            service.store.grant(who.org, "experiment", experiment_id, "group", group, service.config.experiment_group_role, who.username)


def _grant_on_create_model(service: CompanyService, who: Principal, body: bytes) -> None:
    name = json.loads(body)["registered_model"]["name"]
    service.store.grant(who.org, "registered_model", name, "user", who.username, "manager", who.username)
    for group in who.groups:
        service.store.grant(who.org, "registered_model", name, "group", group, service.config.model_group_role, who.username)
    if service.config.models_org_readable:
        service.store.grant(who.org, "registered_model", name, "org", who.org, "reader", who.username)


R, C, A = Scope.RESOURCE, Scope.COLLECTION, Scope.ORG_ADMIN
KIND_TABLE: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("none", _none, C),
        Kind("org_admin", _org_admin, A),
        Kind("own_workspaces", _own_workspaces, C),
        Kind("experiment", _experiment, R),
        Kind("experiment_name", _experiment_name, R),
        Kind("create_experiment", _create_experiment, C),
        Kind("run", _run, R),
        Kind("runs", _runs, R),
        Kind("logged_model", _logged_model, R),
        Kind("artifact", _artifact, R),
        Kind("registered_model", _registered_model, R),
        Kind("create_registered_model", _create_registered_model, C),
        Kind("create_model_version", _create_model_version, R),
        Kind("trace", _trace, R),
        Kind("traces", _traces, R),
        Kind("trace_location", _trace_location, R),
        Kind("traces_to_run", _traces_to_run, R),
        Kind("prompts_to_trace", _prompts_to_trace, R),
        Kind("create_dataset", _create_dataset, R),
        Kind("dataset", _dataset, R),
        Kind("dataset_experiments", _dataset_experiments, R),
        Kind("create_issue", _create_issue, R),
        Kind("issue", _issue, R),
        Kind("label_schema", _label_schema, R),
        Kind("span_export", _span_export, R),
        Kind("run_or_logged_model", _run_or_logged_model, R),
        # Searches over what the caller may read (searches.py).
        Kind("experiment_ids", searches.experiment_ids, C),
        Kind("search_experiments", searches.search_experiments, C),
        Kind("search_registered_models", searches.search_registered_models, C),
        Kind("search_model_versions", searches.search_model_versions, C),
        Kind("trace_locations", searches.trace_locations, C),
        Kind("dataset_search", searches.dataset_search, C),
        Kind("scorer_listing", searches.scorer_listing, C),
    )
}
