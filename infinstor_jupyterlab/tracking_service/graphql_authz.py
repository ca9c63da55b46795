"""GraphQL on the company service, authorized like the REST operations it mirrors.

MLflow's web UI loads a run, an experiment, metric histories and run searches through MLflow's
GraphQL endpoint (`POST /graphql`, MLflow's schema in `mlflow.server.graphql`). Each root field of
that schema is one REST operation in another form (`ROOT_FIELDS`) and is authorized as that
operation, by the same code and the same policy:

1. Before MLflow sees the request (`check`, in the middleware's worker thread), the query is parsed
   and validated against MLflow's schema with graphql-core, and every root field of every operation
   in it, fragments included, must be one of ROOT_FIELDS (or `__typename`): anything else (MLflow's
   echo fields, introspection, subscriptions) is refused with 403, naming what is served.
2. While MLflow executes it, `FieldAuthorizer`, a graphene middleware, runs every root field through
   `CompanyService.authorize_operation` with the field's input: an id the caller holds no role on
   fails the field with the message of an id that does not exist, a search runs over what the
   caller may read (the REST private views, page for page). Nested fields that load more than
   their parent are checked too: a run's `experiment` is its id alone unless the caller may read
   that experiment (a run can be readable through a registered model version alone), and a run's
   `modelVersions` keep only models the caller may read.

The graphene middleware reaches MLflow through the hook MLflow's own basic-auth plugin uses for its
GraphQL middleware (`install`); the caller reaches MLflow's worker thread in a context variable set
for this request only (`CALLER`). Without either, GraphQL is refused: never run unchecked.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .company.lookups import with_workspace
from .company.params import Params
from .company.refusals import Refusal, bad_request, forbidden

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from graphql import GraphQLResolveInfo, GraphQLSchema
    from graphql.language import DocumentNode

    from .company.principals import Outcome, Principal
    from .company.service import CompanyService

log = logging.getLogger(__name__)

# root field of MLflow's schema -> the REST operation it mirrors (and whose policy applies)
ROOT_FIELDS: dict[str, str] = {
    "mlflowGetExperiment": "GetExperiment",
    "mlflowGetRun": "GetRun",
    "mlflowListArtifacts": "ListArtifacts",
    "mlflowGetMetricHistoryBulkInterval": "GetMetricHistoryBulkInterval",
    "mlflowSearchRuns": "SearchRuns",
    "mlflowSearchDatasets": "SearchDatasets",
    "mlflowSearchModelVersions": "SearchModelVersions",
}

CALLER: ContextVar[GraphQLCaller | None] = ContextVar("infinstor_graphql_caller", default=None)
_installed = False


@dataclass(frozen=True)
class GraphQLCaller:
    service: CompanyService
    who: Principal


# A graphene resolver and the next one in its chain: MLflow's resolvers take and return anything
# (protobuf messages, lists of them, plain values), so these are typed no further.
Next = Callable[..., Any]
FieldCheck = Callable[[GraphQLCaller, Next, Any, "GraphQLResolveInfo", dict[str, Any]], Any]


@lru_cache(maxsize=1)
def _schema() -> GraphQLSchema:
    from mlflow.server.graphql.graphql_schema_extensions import schema

    graphql_schema: GraphQLSchema = schema.graphql_schema  # graphene (untyped) builds a graphql-core schema
    return graphql_schema


def check(service: CompanyService, who: Principal, body: bytes | None) -> GraphQLCaller:
    """Refuse a GraphQL request that asks for anything but MLflow's served operations; else the
    caller to hand to MLflow's executor."""
    from graphql import GraphQLError, parse, validate

    if not _installed:
        raise forbidden("GraphQL cannot be authorized on this MLflow release, so this service does not serve it.")
    try:
        request = json.loads(body or b"")
    except ValueError:
        raise bad_request("A GraphQL request is a JSON object with a 'query'.") from None
    query = request.get("query") if isinstance(request, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise bad_request("A GraphQL request is a JSON object with a 'query'.")
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise bad_request(f"Invalid GraphQL query: {exc.message}") from None
    errors = validate(_schema(), document)
    if errors:
        raise bad_request("Invalid GraphQL query: " + " ".join(error.message for error in errors[:5]))
    refused = sorted(field for field in root_fields(document) if field not in ROOT_FIELDS and field != "__typename")
    if refused:
        raise forbidden(
            f"GraphQL field(s) {', '.join(refused)} are not served here; this service serves MLflow's {', '.join(sorted(ROOT_FIELDS))}."
        )
    return GraphQLCaller(service, who)


def root_fields(document: DocumentNode) -> set[str]:
    """The root fields of every operation of a parsed document, through fragments; a subscription
    counts as a field of its own name (MLflow serves none)."""
    from graphql.language import FieldNode, FragmentDefinitionNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode

    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    found: set[str] = set()
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if definition.operation.value == "subscription":
            found.add("subscription")
            continue
        pending, seen = list(definition.selection_set.selections), set()
        while pending:
            selection = pending.pop()
            if isinstance(selection, FieldNode):
                found.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.extend(selection.selection_set.selections)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                pending.extend(fragments[selection.name.value].selection_set.selections)
    return found


def install() -> bool:
    """Hand FieldAuthorizer to MLflow's GraphQL executor, through the hook its basic-auth uses.
    False (and GraphQL stays refused) if this MLflow release has no such hook."""
    global _installed
    from mlflow.server import handlers

    graphql_handler = inspect.unwrap(getattr(handlers, "_graphql", None) or (lambda: None))
    if not hasattr(handlers, "_get_graphql_auth_middleware") or "_get_graphql_auth_middleware" not in graphql_handler.__code__.co_names:
        log.error("InfinStor: this MLflow release has no GraphQL middleware hook; GraphQL is refused")
        return False
    handlers._get_graphql_auth_middleware = lambda: [FieldAuthorizer()]
    _installed = True
    return True


# -- while MLflow executes the query --------------------------------------------------------------
class FieldAuthorizer:
    """Graphene middleware: every root field, and the nested fields that load more, checked."""

    def resolve(self, next: Next, root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        if info.field_name == "__typename":  # the type's own name (Apollo asks for it everywhere)
            return next(root, info, **args)
        schema = info.schema
        if info.parent_type in (schema.query_type, schema.mutation_type):
            return _root_field(_caller(), next, root, info, args)
        nested = NESTED.get((info.parent_type.name, info.field_name))
        if nested is None:
            return next(root, info, **args)
        return nested(_caller(), next, root, info, args)


def _caller() -> GraphQLCaller:
    caller = CALLER.get()
    if caller is None:  # never reached through the company middleware: refuse
        raise forbidden("GraphQL is served only through this service's authorization.")
    return caller


def _authorize(caller: GraphQLCaller, operation: str, values: dict[str, Any]) -> Outcome:
    with_workspace(caller.who.org)  # (MLflow set it from our header too; the decision must not depend on that)
    return caller.service.authorize_operation(caller.who, operation, Params({}, values, "POST"), {})


def _response(operation: str, answer: tuple[int, bytes]) -> Message:
    """A search answered by the service (a private view), as the protobuf response MLflow's resolver returns."""
    from mlflow.protos import model_registry_pb2, service_pb2
    from mlflow.utils.proto_json_utils import parse_dict

    message = getattr(service_pb2, operation, None) or getattr(model_registry_pb2, operation)
    response = message.Response()
    parse_dict(json.loads(answer[1]), response)
    return response


def _plain(input_object: object) -> dict[str, Any]:
    """A field's input as the JSON parameters of its REST operation (unset fields left out)."""
    values = vars(input_object) if input_object is not None else {}
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, list)) and not isinstance(v, bool)}


def _root_field(caller: GraphQLCaller, next: Next, root: Any, info: GraphQLResolveInfo, args: dict[str, Any]) -> Any:
    operation = ROOT_FIELDS.get(info.field_name)
    if operation is None:  # `check` refused it already; never run it unchecked
        raise forbidden(f"GraphQL field {info.field_name} is not served here.")
    input_object = args.get("input")
    values = _plain(input_object)
    outcome = _authorize(caller, operation, values)
    if outcome.respond is not None:
        return _response(operation, outcome.respond)
    if outcome.body is not None:  # a search narrowed to the experiments the caller may read
        for key, value in json.loads(outcome.body).items():
            if values.get(key) != value:
                setattr(input_object, key, value)
    return next(root, info, **args)


def _run_experiment(caller: GraphQLCaller, next: Next, root: Any, info: GraphQLResolveInfo, args: dict[str, Any]) -> Any:
    """A run's experiment, if the caller may read it (GetExperiment's policy). A run readable only
    through a registered model version gets its experiment's id alone (already in the run): no
    name, tags or location, and MLflow's run page still renders."""
    from mlflow.protos.service_pb2 import Experiment

    try:
        _authorize(caller, "GetExperiment", {"experiment_id": root.info.experiment_id})
    except Refusal:
        return Experiment(experiment_id=root.info.experiment_id)
    return next(root, info, **args)


def _run_model_versions(caller: GraphQLCaller, next: Next, root: Any, info: GraphQLResolveInfo, args: dict[str, Any]) -> Any:
    """A run's model versions: of the models the caller holds a role on, as SearchModelVersions'
    private view keeps them (and none if the policy gives that search to organisation admins)."""
    service, who = caller.service, caller.who
    if service.policy.role_for("SearchModelVersions") == "admin" and not who.is_admin:
        return []
    return [version for version in next(root, info, **args) or [] if service.access.rank(who, "registered_model", version.name) > 0]


# (GraphQL type, field) -> its check; every other nested field only reads its parent's data (a test
# keeps this list complete: each field of MLflow's schema with a resolver of its own is here).
NESTED: dict[tuple[str, str], FieldCheck] = {
    ("MlflowRunExtension", "experiment"): _run_experiment,
    ("MlflowRunExtension", "modelVersions"): _run_model_versions,
}
