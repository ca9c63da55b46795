"""Private views pushed down into MLflow's SQL queries.

An experiment or registered-model search must return only what the caller holds a role on.
`company.filtered_page` guarantees that by filtering MLflow's answer page by page; on its own it
reads every experiment of the organisation to find the caller's few (an organisation of 10,000
experiments where a user sees 5 meant 10,000 rows read per search). So while our search runs,
MLflow's own where-clause hooks (`_experiment_where_clauses` of the tracking store, which the
workspace store also uses; `_get_workspace_clauses` of the registry store) add "id IN (the ids the
caller may read)", and the database does the filtering with MLflow's own paging.

This is only an optimisation: `filtered_page` still checks every item, so a store without these
hooks (or an MLflow release that renamed them) is as correct as before, just slower.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# (resource type, ids the caller may read) while one of our private-view searches runs
_READABLE: contextvars.ContextVar[tuple[str, frozenset[str]] | None] = contextvars.ContextVar("infinstor_readable", default=None)
_INSTALLED = "_infinstor_private_views"


@contextmanager
def only_readable(resource_type: str, ids: set[str]) -> Iterator[None]:
    """MLflow's searches in this block see only these experiments or registered models."""
    token = _READABLE.set((resource_type, frozenset(ids)))
    try:
        yield
    finally:
        _READABLE.reset(token)


def install(tracking_store: Any, registry_store: Any) -> None:  # MLflow's SQL stores
    """Wrap the stores' where-clause hooks (once per store object; MLflow caches its stores)."""
    if hasattr(tracking_store, "_experiment_where_clauses") and not getattr(tracking_store, _INSTALLED, False):
        experiment_clauses = tracking_store._experiment_where_clauses

        def readable_experiment_clauses() -> list[Any]:
            clauses = list(experiment_clauses())
            current = _READABLE.get()
            if current is not None and current[0] == "experiment":
                from mlflow.store.tracking.dbmodels.models import SqlExperiment

                # experiment_id is an integer column; ids are kept as strings in our grants
                clauses.append(SqlExperiment.experiment_id.in_(sorted(int(i) for i in current[1] if i.isdigit())))
            return clauses

        tracking_store._experiment_where_clauses = readable_experiment_clauses
        setattr(tracking_store, _INSTALLED, True)

    if hasattr(registry_store, "_get_workspace_clauses") and not getattr(registry_store, _INSTALLED, False):
        workspace_clauses = registry_store._get_workspace_clauses

        def readable_model_clauses(model: type) -> list[Any]:
            clauses = list(workspace_clauses(model))
            current = _READABLE.get()
            if current is not None and current[0] == "registered_model":
                from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModel

                if model is SqlRegisteredModel:
                    clauses.append(SqlRegisteredModel.name.in_(sorted(current[1])))
            return clauses

        registry_store._get_workspace_clauses = readable_model_clauses
        setattr(registry_store, _INSTALLED, True)
