"""Searches answered over what the caller may read (private views).

Experiment and registered model / version searches are answered here from MLflow's stores,
filtered to what the caller holds a role on, paging over the filtered stream (a page is short only
when it is the last; `private_views` pushes the filter down into MLflow's SQL). Run, logged model,
dataset, trace, evaluation dataset and scorer searches keep only the experiments the caller may
read. Organisation admins search everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import private_views
from .lookups import stores
from .params import Params, message_json
from .principals import Outcome, Principal
from .refusals import bad_request

if TYPE_CHECKING:
    from .service import CompanyService


def filtered_page(
    fetch: Callable[[int, str | None], Any], keep: Callable[[Any], bool], max_results: int, page_token: str | None, batch: int = 1000
) -> tuple[list[Any], str | None]:
    """One page of the items `keep` accepts, paging over the filtered stream.

    `fetch(max_results, page_token)` is a store search whose page tokens are offsets (MLflow's SQL
    stores). The next-page token points just past the last returned item, and is given only if
    another acceptable item exists, so pages are never short except the last one.
    """
    from mlflow.utils.search_utils import SearchUtils

    offset = SearchUtils.parse_start_offset_from_page_token(page_token) if page_token else 0
    if max_results <= 0:
        raise bad_request("max_results must be positive")
    items: list[Any] = []
    # Start near the page size (most callers see most of what they search) and widen the window
    # while filtering drops items, up to `batch` rows per query.
    size = min(max(2 * max_results, 50), max(batch, max_results))
    while True:
        page = fetch(size, SearchUtils.create_page_token(offset) if offset else None)
        size = min(size * 4, max(batch, max_results))
        for index, item in enumerate(page):
            if keep(item):
                if len(items) == max_results:
                    return items, SearchUtils.create_page_token(offset + index)
                items.append(item)
        if not page.token or not len(page):
            return items, None
        offset += len(page)


def page_answer(response: Any, field: str, items: list[Any], token: str | None) -> tuple[int, bytes]:
    """One page of a filtered search as MLflow answers it (the token only when more follow)."""
    getattr(response, field).extend([item.to_proto() for item in items])
    if token:
        response.next_page_token = token
    return (200, message_json(response))


def search_only(params: Params, outcome: Outcome, requested: list[str], kept: list[str]) -> None:
    """Let a search over experiments run over `kept` only; with none left, answer the empty
    result MLflow gives for a search that finds nothing."""
    if not kept:
        outcome.respond = (200, b"{}")
    elif kept != requested:
        outcome.body, outcome.query = params.with_values("experiment_ids", kept)


def experiment_ids(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    if who.is_admin:
        return
    if params.method != "GET" and not isinstance(params.body_json, dict):
        raise bad_request("Expected a JSON body.")
    requested = params.get_all("experiment_ids")
    search_only(params, outcome, requested, service.access.readable_experiments(who, requested))


def search_experiments(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    if who.is_admin:
        return
    from mlflow.protos.service_pb2 import SearchExperiments
    from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT

    request = params.message(SearchExperiments(), repeated=("order_by",))
    if not request.HasField("max_results"):
        request.max_results = SEARCH_MAX_RESULTS_DEFAULT
    readable = service.store.readable_ids(who.org, "experiment", who.username, list(who.groups))
    tracking, registry = stores()
    private_views.install(tracking, registry)

    def fetch(max_results: int, token: str | None) -> Any:
        with private_views.only_readable("experiment", readable):
            return tracking.search_experiments(
                view_type=request.view_type,
                max_results=max_results,
                filter_string=request.filter,
                order_by=list(request.order_by),
                page_token=token,
            )

    items, token = filtered_page(fetch, lambda e: e.experiment_id in readable, request.max_results, request.page_token)
    outcome.respond = page_answer(SearchExperiments.Response(), "experiments", items, token)


def search_registered_models(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    if who.is_admin:
        return
    from mlflow.protos.model_registry_pb2 import SearchRegisteredModels

    request = params.message(SearchRegisteredModels(), repeated=("order_by",))
    if request.max_results > 1000:
        raise bad_request("max_results must be at most 1000")
    readable = service.store.readable_ids(who.org, "registered_model", who.username, list(who.groups))
    tracking, registry = stores()
    private_views.install(tracking, registry)

    def fetch(max_results: int, token: str | None) -> Any:
        with private_views.only_readable("registered_model", readable):
            return registry.search_registered_models(
                filter_string=request.filter, max_results=min(max_results, 1000), order_by=list(request.order_by), page_token=token
            )

    items, token = filtered_page(fetch, lambda m: m.name in readable, request.max_results, request.page_token)
    outcome.respond = page_answer(SearchRegisteredModels.Response(), "registered_models", items, token)


def search_model_versions(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    if who.is_admin:
        return
    from mlflow.protos.model_registry_pb2 import SearchModelVersions

    request = params.message(SearchModelVersions(), repeated=("order_by",))
    readable = service.store.readable_ids(who.org, "registered_model", who.username, list(who.groups))
    registry = stores()[1]

    def fetch(max_results: int, token: str | None) -> Any:
        return registry.search_model_versions(
            filter_string=request.filter, max_results=max_results, order_by=list(request.order_by), page_token=token
        )

    items, token = filtered_page(fetch, lambda v: v.name in readable, request.max_results, request.page_token)
    outcome.respond = page_answer(SearchModelVersions.Response(), "model_versions", items, token)


def trace_locations(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    """SearchTracesV3: only experiment locations the caller may read; other kinds of location
    (inference tables, Unity Catalog) name nothing this service can check and are dropped."""
    if who.is_admin:
        return
    from mlflow.protos.service_pb2 import SearchTracesV3

    request = params.message(SearchTracesV3(), repeated=("locations", "order_by"))
    requested = [loc.mlflow_experiment.experiment_id for loc in request.locations if loc.HasField("mlflow_experiment")]
    kept = service.access.readable_experiments(who, requested)
    if not kept:
        outcome.respond = (200, b"{}")
    elif kept != requested or len(requested) != len(request.locations):
        del request.locations[:]
        for experiment_id in kept:
            request.locations.add().mlflow_experiment.experiment_id = experiment_id
        outcome.body = message_json(request)


def dataset_search(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    if who.is_admin:
        return
    requested = params.get_all("experiment_ids")
    # Without experiment ids MLflow searches the whole organisation: search the caller's instead.
    wanted = requested or service.access.all_readable_experiments(who)
    search_only(params, outcome, requested, service.access.readable_experiments(who, wanted))


def scorer_listing(
    service: CompanyService, who: Principal, operation: str, need: str, params: Params, path_vars: dict[str, str], outcome: Outcome
) -> None:
    if who.is_admin:
        return
    single = params.get("experiment_id")
    if single:
        if not service.access.readable_experiments(who, [single]):
            outcome.respond = (200, b"{}")
        return
    requested = params.get_all("experiment_ids")
    # Without experiment ids MLflow lists the scorers of the whole organisation.
    wanted = requested or service.access.all_readable_experiments(who)
    search_only(params, outcome, requested, service.access.readable_experiments(who, wanted))
