"""What the service looks up in MLflow's stores to find the experiment a request is about.

A run, a logged model, a trace, an issue or a label schema belongs to one experiment and never
moves, so each answer is cached per organisation. A database failure raises (the middleware turns
it into a 503), never "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..outage import store_unavailable
from .cache import LRU
from .refusals import not_found


def stores() -> tuple[Any, Any]:
    """MLflow's tracking store and model registry store (of the request's workspace)."""
    from mlflow.server.handlers import _get_model_registry_store, _get_tracking_store

    return _get_tracking_store(), _get_model_registry_store()


def with_workspace(org: str) -> None:
    """Make MLflow's stores act in the organisation's workspace, for this thread's decision."""
    from mlflow.utils.workspace_context import set_server_request_workspace

    set_server_request_workspace(org)


def quote(value: str) -> str:
    """A string literal of MLflow's search filter language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def experiment_of_run(run_id: str) -> str | None:
    """The experiment of a run in the request's workspace (None: no such run there).

    One indexed query for one column: MLflow's `get_run` would load the run's params, tags,
    latest metrics, inputs and outputs just to tell us its experiment.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
    from mlflow.store.tracking.dbmodels.models import SqlRun

    store = stores()[0]
    if not hasattr(store, "ManagedSessionMaker"):  # not a SQL tracking store
        try:
            return str(store.get_run(run_id).info.experiment_id)
        except MlflowException as exc:
            if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                return None
            raise
    with store.ManagedSessionMaker() as session:
        # `_get_query` is the store's workspace-scoped query (it joins the run's experiment).
        row = store._get_query(session, SqlRun).filter(SqlRun.run_uuid == run_id).with_entities(SqlRun.experiment_id).first()
    return None if row is None else str(row[0])


class Lookups:
    """The owning experiment of runs, logged models, traces, issues and label schemas (cached)."""

    def __init__(self) -> None:
        self._run_experiments = LRU()
        self._logged_models = LRU()
        self._owning_experiments = LRU()  # (org, kind, id) of a trace, issue, label schema -> its experiment

    def run_experiment(self, org: str, run_id: str) -> str:
        key = (org, run_id)
        experiment_id = self._run_experiments.get(key)
        if experiment_id is None:
            experiment_id = experiment_of_run(run_id)  # a database failure raises: 503, not 404
            if experiment_id is None:
                raise not_found(f"Run with id={run_id} not found")
            self._run_experiments.put(key, experiment_id)
        return str(experiment_id)

    def logged_model(self, org: str, model_id: str) -> tuple[str, str | None]:
        """(experiment id, source run id) of a logged model."""
        key = (org, model_id)
        found: tuple[str, str | None] | None = self._logged_models.get(key)
        if found is None:
            from mlflow.exceptions import MlflowException

            try:
                model = stores()[0].get_logged_model(model_id)
            except MlflowException as exc:
                if store_unavailable(exc):  # the database failed: 503, not "not found"
                    raise
                raise not_found(f"Logged model with ID '{model_id}' not found.") from None
            found = (str(model.experiment_id), model.source_run_id)
            self._logged_models.put(key, found)
        return found

    def owning_experiment(self, org: str, kind: str, object_id: str, lookup: Callable[[str], Any], missing: str) -> str:
        """The experiment a trace, issue or label schema belongs to."""
        key = (org, kind, object_id)
        experiment_id = self._owning_experiments.get(key)
        if experiment_id is None:
            from mlflow.exceptions import MlflowException

            try:
                experiment_id = str(lookup(object_id).experiment_id)
            except MlflowException as exc:
                if store_unavailable(exc):  # the database failed: 503, not "not found"
                    raise
                raise not_found(missing) from None
            self._owning_experiments.put(key, experiment_id)
        return str(experiment_id)
