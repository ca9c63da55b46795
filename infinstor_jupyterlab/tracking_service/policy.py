"""The operations the company service knows how to authorize, and the policy that maps roles to them.

Operations are MLflow's own REST operations (its protobuf request names), matched from MLflow's
endpoint table so the routes never drift from the MLflow release we run on. Each operation we can
authorize has a `kind`: how to find the resource it is about (an experiment id, a run id, a model
name, an artifact path, ...). The policy says which role an operation needs; it is the shipped
`default_policy.yaml` with per-operation overrides from the operator's file, and it is validated at
start-up: an unknown operation or role name is an error, not a silent no-op.

Why not MLflow's own auth validators: they hard-code the permission each endpoint needs (e.g.
setting a model version tag always needs EDIT), so "readers may tag model versions" cannot be
expressed without replacing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .company.kinds import KIND_TABLE, Kind, Scope

# MLflow's OTLP span export path (mlflow.tracing.utils.otlp.OTLP_TRACES_PATH; a test keeps them equal).
OTLP_TRACES_PATH = "/v1/traces"

POLICY_ROLES = ("member", "reader", "editor", "manager", "admin")
RESOURCE_ROLES = ("reader", "editor", "manager", "admin")

# operation -> kind: how the service finds what the operation is about, and the kind's scope (one
# existing resource; a create or a search, whose role may only be `member` or `admin`; organisation
# infrastructure, `admin` only): company/kinds.py's KIND_TABLE, checked when the policy loads.
# Every MLflow operation is either here or in REFUSED (a test checks it).
KINDS: dict[str, str] = {
    "CreateExperiment": "create_experiment",
    "SearchExperiments": "search_experiments",
    "SearchRuns": "experiment_ids",
    "SearchLoggedModels": "experiment_ids",
    "SearchDatasets": "experiment_ids",
    "CreateRegisteredModel": "create_registered_model",
    "SearchRegisteredModels": "search_registered_models",
    "SearchModelVersions": "search_model_versions",
    "GetServerInfo": "none",
    "ListWorkspaces": "own_workspaces",
    "GetWorkspace": "own_workspaces",
    "GetExperiment": "experiment",
    "GetExperimentByName": "experiment_name",
    "UpdateExperiment": "experiment",
    "DeleteExperiment": "experiment",
    "RestoreExperiment": "experiment",
    "SetExperimentTag": "experiment",
    "DeleteExperimentTag": "experiment",
    "CreateRun": "experiment",
    "CreateLoggedModel": "experiment",
    "GetRun": "run",
    "UpdateRun": "run",
    "DeleteRun": "run",
    "RestoreRun": "run",
    "LogMetric": "run",
    "LogParam": "run",
    "SetTag": "run",
    "DeleteTag": "run",
    "LogBatch": "run",
    "LogModel": "run",
    "LogInputs": "run",
    "LogOutputs": "run",
    "GetMetricHistory": "run",
    "ListArtifacts": "run",
    "GetMetricHistoryBulkInterval": "runs",
    "GetLoggedModel": "logged_model",
    "FinalizeLoggedModel": "logged_model",
    "DeleteLoggedModel": "logged_model",
    "SetLoggedModelTags": "logged_model",
    "DeleteLoggedModelTag": "logged_model",
    "ListLoggedModelArtifacts": "logged_model",
    "LogLoggedModelParamsRequest": "logged_model",
    "DownloadArtifact": "artifact",
    "UploadArtifact": "artifact",
    "ListProxiedArtifacts": "artifact",
    "DeleteArtifact": "artifact",
    "CreateMultipartUpload": "artifact",
    "CompleteMultipartUpload": "artifact",
    "AbortMultipartUpload": "artifact",
    "GetRegisteredModel": "registered_model",
    "UpdateRegisteredModel": "registered_model",
    "RenameRegisteredModel": "registered_model",
    "DeleteRegisteredModel": "registered_model",
    "GetLatestVersions": "registered_model",
    "SetRegisteredModelTag": "registered_model",
    "DeleteRegisteredModelTag": "registered_model",
    "SetRegisteredModelAlias": "registered_model",
    "DeleteRegisteredModelAlias": "registered_model",
    "GetModelVersionByAlias": "registered_model",
    "CreateModelVersion": "create_model_version",
    "UpdateModelVersion": "registered_model",
    "TransitionModelVersionStage": "registered_model",
    "DeleteModelVersion": "registered_model",
    "GetModelVersion": "registered_model",
    "GetModelVersionDownloadUri": "registered_model",
    "SetModelVersionTag": "registered_model",
    "DeleteModelVersionTag": "registered_model",
    # MLflow 3 tracing: a trace belongs to the experiment it was logged to.
    "StartTrace": "experiment",
    "StartTraceV3": "trace_location",
    "EndTrace": "trace",
    "GetTraceInfo": "trace",
    "GetTraceInfoV3": "trace",
    "GetTrace": "trace",
    "GetTraceArtifact": "trace",
    "SetTraceTag": "trace",
    "SetTraceTagV3": "trace",
    "DeleteTraceTag": "trace",
    "DeleteTraceTagV3": "trace",
    "BatchGetTraces": "traces",
    "BatchGetTraceInfos": "traces",
    "DeleteTraces": "experiment",
    "DeleteTracesV3": "experiment",
    "LinkTracesToRun": "traces_to_run",
    "LinkPromptsToTrace": "prompts_to_trace",
    "SearchTraces": "experiment_ids",
    "SearchTracesV3": "trace_locations",
    "QueryTraceMetrics": "experiment_ids",
    "CalculateTraceFilterCorrelation": "experiment_ids",
    # Assessments (feedback, expectations) belong to their trace.
    "CreateAssessment": "trace",
    "GetAssessmentRequest": "trace",
    "UpdateAssessment": "trace",
    "DeleteAssessment": "trace",
    # GenAI evaluation datasets belong to the experiments they are linked to.
    "CreateDataset": "create_dataset",
    "GetDataset": "dataset",
    "DeleteDataset": "dataset",
    "SetDatasetTags": "dataset",
    "DeleteDatasetTag": "dataset",
    "UpsertDatasetRecords": "dataset",
    "GetDatasetRecords": "dataset",
    "DeleteDatasetRecords": "dataset",
    "GetDatasetExperimentIds": "dataset",
    "AddDatasetToExperiments": "dataset_experiments",
    "RemoveDatasetFromExperiments": "dataset_experiments",
    "SearchEvaluationDatasets": "dataset_search",
    # Scorers (LLM judges and code scorers) are registered in one experiment.
    "RegisterScorer": "experiment",
    "GetScorer": "experiment",
    "ListScorerVersions": "experiment",
    "DeleteScorer": "experiment",
    "ListScorers": "scorer_listing",
    # Issues and label schemas belong to one experiment.
    "CreateIssue": "create_issue",
    "GetIssue": "issue",
    "UpdateIssue": "issue",
    "SearchIssues": "experiment",
    "CreateLabelSchema": "experiment",
    "GetLabelSchemaByName": "experiment",
    "ListLabelSchemas": "experiment",
    "GetLabelSchema": "label_schema",
    "UpdateLabelSchema": "label_schema",
    "DeleteLabelSchema": "label_schema",
    # Presigned URLs of a run's (or logged model's) artifacts in the artifact store.
    "CreatePresignedUploadUrl": "run_or_logged_model",
    "CreatePresignedDownloadUrl": "run",
    "GetPresignedDownloadUrl": "artifact",
    # OpenTelemetry span export (OTLP/HTTP at /v1/traces): how MLflow's client logs a trace's spans.
    "LogSpans": "span_export",
}

_GATEWAY = (
    "CreateGatewaySecret",
    "GetGatewaySecretInfo",
    "UpdateGatewaySecret",
    "DeleteGatewaySecret",
    "ListGatewaySecretInfos",
    "CreateGatewayEndpoint",
    "GetGatewayEndpoint",
    "UpdateGatewayEndpoint",
    "DeleteGatewayEndpoint",
    "ListGatewayEndpoints",
    "CreateGatewayModelDefinition",
    "GetGatewayModelDefinition",
    "ListGatewayModelDefinitions",
    "UpdateGatewayModelDefinition",
    "DeleteGatewayModelDefinition",
    "AttachModelToGatewayEndpoint",
    "DetachModelFromGatewayEndpoint",
    "CreateGatewayEndpointBinding",
    "DeleteGatewayEndpointBinding",
    "ListGatewayEndpointBindings",
    "SetGatewayEndpointTag",
    "DeleteGatewayEndpointTag",
    "CreateGatewayBudgetPolicy",
    "GetGatewayBudgetPolicy",
    "UpdateGatewayBudgetPolicy",
    "DeleteGatewayBudgetPolicy",
    "ListGatewayBudgetPolicies",
    "ListGatewayBudgetWindows",
    "CreateGatewayGuardrail",
    "GetGatewayGuardrail",
    "DeleteGatewayGuardrail",
    "ListGatewayGuardrails",
    "AddGuardrailToEndpoint",
    "RemoveGuardrailFromEndpoint",
    "ListEndpointGuardrailConfigs",
    "UpdateEndpointGuardrailConfig",
)
_REVIEW_QUEUES = (
    "CreateReviewQueue",
    "GetOrCreateUserQueue",
    "GetReviewQueue",
    "GetReviewQueueByName",
    "ListReviewQueues",
    "UpdateReviewQueue",
    "DeleteReviewQueue",
    "AddItemsToReviewQueue",
    "RemoveItemsFromReviewQueue",
    "ListReviewQueueItems",
    "SetReviewQueueItemStatus",
)
_PROMPT_OPTIMIZATION = (
    "CreatePromptOptimizationJob",
    "GetPromptOptimizationJob",
    "SearchPromptOptimizationJobs",
    "CancelPromptOptimizationJob",
    "DeletePromptOptimizationJob",
)

# Operations for organisation admins only, and why: the policy cannot give them to another role.
ADMIN_ONLY: dict[str, str] = {
    **dict.fromkeys(
        _GATEWAY,
        "the AI gateway (provider secrets, endpoints, model definitions, budgets, guardrails) is "
        "organisation-wide infrastructure: it spends the organisation's provider keys and budgets",
    ),
    **dict.fromkeys(
        _REVIEW_QUEUES,
        "MLflow ties review-queue ownership and reviewer attribution (created_by, completed_by) "
        "to an identity its own auth plugin puts in Flask's request context, which this service does not "
        "supply: a reviewer could claim another reviewer's work",
    ),
    **dict.fromkeys(
        _PROMPT_OPTIMIZATION,
        "prompt optimization runs as a server-side job on MLflow's job runner, calling LLMs "
        "with the server's credentials, and a job's experiment is only one of its parameters",
    ),
}
KINDS.update(dict.fromkeys(ADMIN_ONLY, "org_admin"))

# Operations refused to everyone, organisation admins included, and why. No policy can allow them.
REFUSED: dict[str, str] = {
    **dict.fromkeys(
        ("CreateWorkspace", "UpdateWorkspace", "DeleteWorkspace"),
        "organisations are MLflow workspaces made on first sign-in from the identity provider's organisation "
        "claim; creating, changing (e.g. its artifact root) or deleting one is a platform operation",
    ),
    **dict.fromkeys(
        ("SearchUnifiedTraces", "GetOnlineTraceDetails"),
        "MLflow's own server does not implement it (Databricks only), and its results name no experiment this service could check",
    ),
}

# MLflow's artifact service reuses the name ListArtifacts; ours is the proxied listing.
_RENAMED = {("MlflowArtifactsService", "ListArtifacts"): "ListProxiedArtifacts"}


class PolicyError(ValueError):
    """The policy file is not valid (the message says where)."""


def kind_of(operation: str) -> Kind:
    """The kind of an operation of KINDS, from the table of kinds (company/kinds.py)."""
    name = KINDS[operation]
    kind = KIND_TABLE.get(name)
    if kind is None:
        raise PolicyError(f"{operation} is of the unknown kind {name!r}; the kinds are {', '.join(sorted(KIND_TABLE))}")
    return kind


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern[str]


def _path_regex(path: str) -> re.Pattern[str]:
    out, pos = [], 0
    for match in re.finditer(r"<(?:(path):)?([A-Za-z_]+)>", path):
        out.append(re.escape(path[pos : match.start()]))
        out.append(f"(?P<{match.group(2)}>.+)" if match.group(1) else f"(?P<{match.group(2)}>[^/]+)")
        pos = match.end()
    out.append(re.escape(path[pos:]))
    return re.compile("^" + "".join(out) + "/?$")


@lru_cache(maxsize=1)
def routes() -> tuple[Route, ...]:
    """Every MLflow REST endpoint of the tracking, registry and artifact services, by operation."""
    from mlflow.protos.mlflow_artifacts_pb2 import MlflowArtifactsService
    from mlflow.protos.model_registry_pb2 import ModelRegistryService
    from mlflow.protos.service_pb2 import MlflowService
    from mlflow.server.handlers import _get_paths, get_service_endpoints

    table: list[Route] = []
    for service in (MlflowService, ModelRegistryService, MlflowArtifactsService):
        service_name = service.DESCRIPTOR.name
        for path, name, methods in get_service_endpoints(service, lambda request_class: request_class.__name__):
            operation = _RENAMED.get((service_name, name), name)
            for method in methods:
                table.append(Route(operation, method, _path_regex(path)))
    for path in _get_paths("/mlflow/server-info", version=3):
        table.append(Route("GetServerInfo", "GET", _path_regex(path)))
    # MLflow serves dataset search for its UI on a route of its own (the proto's path lacks a '/').
    table.append(Route("SearchDatasets", "POST", _path_regex("/ajax-api/2.0/mlflow/experiments/search-datasets")))
    # The web UI loads a trace's spans and attachments on a route of its own.
    for version in ("2.0", "3.0"):
        table.append(Route("GetTraceArtifact", "GET", _path_regex(f"/ajax-api/{version}/mlflow/get-trace-artifact")))
    # The OTLP span export has no MLflow request name: it is named after MLflow's `log_spans`.
    table.append(Route("LogSpans", "POST", _path_regex(OTLP_TRACES_PATH)))
    return tuple(table)


_READ_PREFIXES = ("Get", "Search", "List", "BatchGet", "Query", "Calculate", "Download")


def is_read(operation: str) -> bool:
    """True for an operation that changes nothing (MLflow names them so). Reads are not audited:
    the audit log is of writes and permission changes, and a record per read would make every
    search and get a database write."""
    if operation == "GetOrCreateUserQueue":  # creates the queue the first time
        return False
    return operation.startswith(_READ_PREFIXES) or operation == "CreatePresignedDownloadUrl"


@lru_cache(maxsize=1)
def mlflow_operations() -> frozenset[str]:
    return frozenset(r.operation for r in routes())


@lru_cache(maxsize=4096)
def _match(method: str, path: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    best = None
    for route in routes():
        if route.method == method:
            match = route.pattern.match(path)
            # Like Flask, a route's fixed segment wins over another's variable one: GET
            # .../traces/get is GetTrace, not GetTraceInfoV3 of a trace called "get".
            if match and (best is None or len(match.groupdict()) < len(best[1])):
                best = (route.operation, tuple(match.groupdict().items()))
    return best


def match_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """(operation, path variables) of an MLflow REST request, or None for any other path."""
    if "api/" not in path and path != OTLP_TRACES_PATH:
        return None
    # Artifact paths make the cache useless for them; match those without caching.
    if "/mlflow-artifacts/" in path:
        found = _match.__wrapped__(method, path)
    else:
        found = _match(method, path)
    return None if found is None else (found[0], dict(found[1]))


@dataclass(frozen=True)
class Policy:
    roles: dict[str, str]  # operation -> least role (see POLICY_ROLES)
    kinds: dict[str, Kind] = field(default_factory=dict)  # operation -> its kind (resolver and scope)

    def role_for(self, operation: str) -> str:
        return self.roles.get(operation, "admin")


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: expected a mapping at the top level")
    unknown = set(data) - {"roles", "operations"}
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {sorted(unknown)}; expected 'roles' and/or 'operations'")
    return data


def _check_operation(operation: object, role: str, where: str) -> str:
    if not isinstance(operation, str):
        raise PolicyError(f"{where}: operation names must be strings, got {operation!r}")
    if operation in REFUSED:
        raise PolicyError(f"{where}: {operation} is refused by this service to everyone: {REFUSED[operation]}")
    if operation not in KINDS:
        hint = " (an MLflow operation this service cannot authorize yet)" if operation in mlflow_operations() else ""
        raise PolicyError(f"{where}: unknown operation {operation!r}{hint}")
    scope = kind_of(operation).scope
    if scope is Scope.ORG_ADMIN and role != "admin":
        raise PolicyError(f"{where}: {operation} is for organisation admins only ({ADMIN_ONLY[operation]}); give it 'admin'")
    if scope is not Scope.RESOURCE and role not in ("member", "admin"):
        raise PolicyError(f"{where}: {operation} is not about one existing resource; its role must be 'member' or 'admin', not {role!r}")
    if scope is Scope.RESOURCE and role == "member":
        raise PolicyError(f"{where}: {operation} is about one resource; give it reader, editor, manager or admin")
    return operation


def _apply(data: dict[str, Any], roles: dict[str, str], where: str) -> None:
    if "roles" in data:
        by_role = data["roles"] or {}
        if not isinstance(by_role, dict):
            raise PolicyError(f"{where}: 'roles' must map a role to a list of operations")
        seen: dict[str, str] = {}
        for role, operations in by_role.items():
            if role not in POLICY_ROLES:
                raise PolicyError(f"{where}: unknown role {role!r}; roles are {', '.join(POLICY_ROLES)}")
            if not isinstance(operations, list):
                raise PolicyError(f"{where}: roles.{role} must be a list of operations")
            for operation in operations:
                _check_operation(operation, role, f"{where}: roles.{role}")
                if operation in seen:
                    raise PolicyError(f"{where}: {operation} is listed under both {seen[operation]} and {role}")
                seen[operation] = role
        roles.clear()
        roles.update(seen)
    for operation, role in (data.get("operations") or {}).items():
        if role not in POLICY_ROLES:
            raise PolicyError(f"{where}: operations.{operation}: unknown role {role!r}; roles are {', '.join(POLICY_ROLES)}")
        roles[_check_operation(operation, role, f"{where}: operations")] = role


def default_policy_text() -> str:
    return resources.files(__package__).joinpath("default_policy.yaml").read_text()


def load_policy(override_path: str | Path | None = None) -> Policy:
    """The shipped policy, with the operator's file (if any) applied over it; validated."""
    kinds = {operation: kind_of(operation) for operation in KINDS}
    roles: dict[str, str] = {}
    _apply(_read_yaml(default_policy_text(), "default_policy.yaml"), roles, "default_policy.yaml")
    if override_path:
        path = Path(override_path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise PolicyError(f"cannot read the policy file {path}: {exc.strerror}") from None
        _apply(_read_yaml(text, str(path)), roles, str(path))
    missing = set(KINDS) - set(mlflow_operations())
    if missing:  # only if MLflow renamed an operation: fail loudly rather than leave it open
        raise PolicyError(f"MLflow no longer has the operation(s) {sorted(missing)}; update the service")
    return Policy(roles, kinds)
