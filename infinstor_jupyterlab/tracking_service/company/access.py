"""A caller's role on a resource, and the checks built on it.

Roles come from user, group and organisation grants (organisation admins manage everything). No
role at all answers 404, as if the resource did not exist; too small a role answers 403 saying
which role it takes. Whoever may read a registered model version may read the run (and logged
model) that produced it. Roles held are reused under the "grants" change counter (cache.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from ..service_store import ROLE_RANK, ServiceStore
from .cache import ReusedDecisions
from .lookups import Lookups, quote, stores
from .principals import Principal
from .refusals import Refusal, bad_request, forbidden, not_found

RANK_ADMIN = 4


class Access:
    def __init__(self, store: ServiceStore, lookups: Lookups, roles: ReusedDecisions):
        self.store, self.lookups = store, lookups
        self.roles = roles  # (org, user, groups, type, id) -> rank

    def rank(self, who: Principal, resource_type: str, resource_id: str) -> int:
        if who.is_admin:
            return RANK_ADMIN
        key = (who.org, who.username, who.groups, resource_type, str(resource_id))
        cached = self.roles.get(key)
        if cached is not None:
            return int(cached)
        counter = self.roles.counter()
        role = self.store.role_on(who.org, resource_type, resource_id, who.username, list(who.groups))
        rank = ROLE_RANK.get(role or "", 0)
        # Only roles held are reused: a resource created a moment ago must not stay hidden.
        if rank:
            self.roles.put(key, rank, counter)
        return rank

    def read_via_model_version(self, who: Principal, run_id: str) -> bool:
        """Whoever may read a registered model version may read the run that produced it."""
        versions = stores()[1].search_model_versions(filter_string=f"run_id = {quote(run_id)}", max_results=1000)
        names = sorted({v.name for v in versions})
        return bool(self.store.roles_on_any(who.org, "registered_model", names, who.username, list(who.groups)))

    @staticmethod
    def check(rank: int, need: str, missing: str, what: str = "this") -> None:
        """404 without any role (the caller must not learn it exists); 403 saying which role it
        takes with too small a one (the sidebar shows the message as it is)."""
        if rank == 0:
            raise not_found(missing)
        if rank < ROLE_RANK.get(need, RANK_ADMIN):
            held = next((role for role, r in ROLE_RANK.items() if r == rank), None)
            if need not in ROLE_RANK:
                raise forbidden(f"Only organisation admins may do this to {what}.")
            raise forbidden(f"This needs the {need} role on {what}; you hold {held}.")

    def check_experiment(self, who: Principal, experiment_id: str, need: str) -> None:
        self.check(
            self.rank(who, "experiment", experiment_id),
            need,
            f"No Experiment with id={experiment_id} exists",
            f"experiment {experiment_id}",
        )

    def check_run(self, who: Principal, run_id: str, need: str) -> str:
        experiment_id = self.lookups.run_experiment(who.org, run_id)
        rank = self.rank(who, "experiment", experiment_id)
        if rank == 0 and self.read_via_model_version(who, run_id):
            rank = ROLE_RANK["reader"]
        self.check(rank, need, f"Run with id={run_id} not found")
        return experiment_id

    def check_logged_model(self, who: Principal, model_id: str, need: str) -> str:
        experiment_id, source_run = self.lookups.logged_model(who.org, model_id)
        rank = self.rank(who, "experiment", experiment_id)
        if rank == 0 and source_run and self.read_via_model_version(who, source_run):
            rank = ROLE_RANK["reader"]
        self.check(rank, need, f"Logged model with ID '{model_id}' not found.")
        return experiment_id

    def check_model(self, who: Principal, name: str, need: str) -> None:
        self.check(
            self.rank(who, "registered_model", name), need, f"Registered Model with name={name} not found", f"registered model {name}"
        )

    def check_artifact(self, who: Principal, artifact_path: str, need: str) -> str:
        parts = [p for p in unquote(artifact_path or "").split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise bad_request("Invalid artifact path")
        if len(parts) < 3 or parts[0] != "workspaces":
            raise forbidden("Only artifacts of an experiment can be reached here.")
        if parts[1] != who.org:
            raise not_found("No such artifact")
        experiment_id = parts[2]
        rank = self.rank(who, "experiment", experiment_id)
        if rank == 0 and len(parts) >= 5:
            if parts[3] == "models":
                model_experiment, source_run = self.lookups.logged_model(who.org, parts[4])
                if model_experiment == experiment_id and source_run and self.read_via_model_version(who, source_run):
                    rank = ROLE_RANK["reader"]
            elif self.lookups.run_experiment(who.org, parts[3]) == experiment_id and self.read_via_model_version(who, parts[3]):
                rank = ROLE_RANK["reader"]
        self.check(rank, need, "No such artifact")
        return experiment_id

    # -- MLflow 3 tracing and GenAI evaluation: all of it belongs to experiments ---------------
    def check_owned(self, who: Principal, kind: str, object_id: str, lookup: Callable[[str], Any], missing: str, need: str) -> str:
        """The caller's role on the experiment a trace, issue or label schema belongs to."""
        experiment_id = self.lookups.owning_experiment(who.org, kind, object_id, lookup, missing)
        self.check(self.rank(who, "experiment", experiment_id), need, missing, f"experiment {experiment_id}")
        return experiment_id

    def check_trace(self, who: Principal, trace_id: str, need: str) -> str:
        return self.check_owned(who, "trace", trace_id, stores()[0].get_trace_info, f"Trace with ID '{trace_id}' not found.", need)

    def check_traces_written_to(self, who: Principal, experiment_id: str, trace_ids: Iterable[str], need: str) -> None:
        """Starting a trace or exporting its spans into `experiment_id` (already checked): MLflow
        merges such writes into an existing trace of the same id wherever that trace lives, so
        each existing one needs the role on its own experiment too."""
        for trace_id in trace_ids:
            try:
                existing = self.lookups.owning_experiment(who.org, "trace", trace_id, stores()[0].get_trace_info, "")
            except Refusal:
                continue  # a new trace: MLflow creates it in experiment_id
            if existing != experiment_id:
                self.check_trace(who, trace_id, need)

    def check_dataset(self, who: Principal, dataset_id: str, need: str) -> None:
        """An evaluation dataset is shared through the experiments it is linked to: whoever may
        read one of them may read it; changing it needs the role on every one of them."""
        if who.is_admin:
            return
        experiment_ids = stores()[0].get_dataset_experiment_ids(dataset_id)  # [] if not in this organisation
        ranks = [self.rank(who, "experiment", e) for e in experiment_ids]
        visible = max(ranks, default=0)
        if visible == 0:
            raise not_found(f"Dataset '{dataset_id}' not found")
        need_rank = ROLE_RANK.get(need, RANK_ADMIN)
        if need_rank <= ROLE_RANK["reader"]:
            return
        if min(ranks) < need_rank:
            # (not naming them: some may be experiments the caller cannot see)
            raise forbidden(f"Changing dataset {dataset_id} needs the {need} role on every experiment it is linked to.")

    # -- what a caller may read ---------------------------------------------------------------
    def readable_experiments(self, who: Principal, experiment_ids: list[str]) -> list[str]:
        """Those of `experiment_ids` the caller holds a role on, in the order given."""
        readable = self.store.roles_on_any(who.org, "experiment", experiment_ids, who.username, list(who.groups))
        return [i for i in experiment_ids if i in readable]

    def all_readable_experiments(self, who: Principal) -> list[str]:
        return sorted(self.store.readable_ids(who.org, "experiment", who.username, list(who.groups)))
