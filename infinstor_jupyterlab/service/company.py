"""Company mode: sign-in, organisations, groups, roles and private views on MLflow's own server.

One ASGI middleware in front of MLflow's app (FastAPI routes and the Flask app alike):

1. **Who**: a bearer credential: an OIDC access token (JWT, checked by `TokenVerifier`), an API
   token (`inf_...`, stored hashed) or a job-scoped token (HS256, one run). Users are provisioned
   on first sight; their organisation and groups come from token claims.
2. **Where**: the caller's organisation is an MLflow workspace. We set the workspace header
   ourselves (whatever the client sent), so MLflow's stores keep organisations apart: another
   organisation's ids answer 404 and its names never appear in lists.
3. **What**: the request is matched to an MLflow operation (see `policy`), the resource it is about
   is found (MLflow 3 traces, assessments, evaluation datasets, scorers, issues and label schemas
   lead to their experiments), and the caller's role on it (user, group and organisation grants;
   organisation admins manage everything) is compared with the role the policy asks for. No role
   at all answers 404, as if the resource did not exist; too small a role answers 403.
4. **Private views**: experiment and registered model / version searches are answered here from
   MLflow's stores, filtered to what the caller holds a role on, paging over the filtered stream
   (a page is short only when it is the last). Run, logged model, dataset, trace, evaluation
   dataset and scorer searches keep only the experiments the caller may read.
5. **After**: defaults on create (grants written before the client sees the response), grant
   bookkeeping on rename and delete, and an audit record for every write; refused credentials
   leave a coalesced failed sign-in record (see `signin_audit`).

Our own REST API (tokens, sharing, audit, whoami) is under /api/2.0/infinstor/.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import functools
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlencode

import requests

import jwt

from . import graphql_authz, job_tokens, private_views, web_ui
from .browser import LOGIN_PATH, LOGOUT_PATH, BrowserSignIn, SignInFailed, sign_in_page
from .config import ServiceConfig
from .changes import ChangeWatcher
from .directory import Directory, DirectoryStore
from .db import PRINCIPAL_TYPES, RESOURCE_TYPES, ROLE_RANK, ROLES, TOKEN_PREFIX, ServiceStore, split_api_token
from .oidc_auth import InvalidToken, TokenVerifier, VerifierUnavailable, _bearer, rewrite_create_run
from .otlp import InvalidExport, trace_ids_in_export
from .outage import classify_exception, send_outage, store_unavailable
from .policy import KINDS, REFUSED, Policy, is_read, match_route
from .signin_audit import TOKEN_ID_CHARS, FailedSignIns, describe

log = logging.getLogger(__name__)

WORKSPACE_HEADER = b"x-mlflow-workspace"
OPEN_PATHS = frozenset({"/health", "/version"})
UI_PATHS = frozenset({"/", "/favicon.ico"})
MAX_BODY = 32 * 1024 * 1024
API_PREFIX = "/api/2.0/infinstor/"
RANK_ADMIN = 4


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> bytes:
        return json.dumps({"error_code": self.code, "message": self.message}).encode()


def not_found(message: str) -> Refusal:
    return Refusal(404, "RESOURCE_DOES_NOT_EXIST", message)


def forbidden(message: str = "Permission denied for this operation.") -> Refusal:
    return Refusal(403, "PERMISSION_DENIED", message)


def bad_request(message: str) -> Refusal:
    return Refusal(400, "INVALID_PARAMETER_VALUE", message)


@dataclass(frozen=True)
class Principal:
    username: str
    org: str
    groups: tuple[str, ...]
    email: str | None
    kind: str  # "oidc", "api_token" or "job"
    is_admin: bool = False
    job_scope: job_tokens.JobScope | None = field(default=None, compare=False)
    token_id: str | None = None

    def to_json(self) -> dict:
        return {"username": self.username, "org": self.org, "groups": list(self.groups), "email": self.email,
                "admin": self.is_admin, "auth": self.kind}  # fmt: skip


@dataclass
class Outcome:
    """What the middleware does with a request once it is authorized."""

    principal: Principal
    operation: str | None = None
    body: bytes | None = None  # a rewritten request body to send instead of the client's
    query: str | None = None  # a rewritten query string to send instead of the client's
    respond: tuple[int, bytes] | None = None  # answer here, do not call MLflow
    respond_headers: list[tuple[bytes, bytes]] | None = None  # with these headers (default: JSON)
    after: Callable[[int, bytes], None] | None = None  # runs before the response leaves (grants)
    audit: tuple[str | None, str | None] | None = None  # (resource type, id) of a write to audit
    detail: dict | None = None
    graphql: Any = None  # the caller, for MLflow's GraphQL executor (see graphql_authz)


class _LRU:
    def __init__(self, size: int = 100_000):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def clear(self) -> None:
        with self.lock:
            self.data.clear()

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


def _stores():
    from mlflow.server.handlers import _get_model_registry_store, _get_tracking_store

    return _get_tracking_store(), _get_model_registry_store()


def _experiment_of_run(run_id: str) -> str | None:
    """The experiment of a run in the request's workspace (None: no such run there).

    One indexed query for one column: MLflow's `get_run` would load the run's params, tags,
    latest metrics, inputs and outputs just to tell us its experiment.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
    from mlflow.store.tracking.dbmodels.models import SqlRun

    store = _stores()[0]
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


def _with_workspace(org: str):
    from mlflow.utils.workspace_context import set_server_request_workspace

    set_server_request_workspace(org)


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class CompanyService:
    """Authentication and authorization decisions; blocking (runs in worker threads)."""

    def __init__(self, config: ServiceConfig, policy: Policy, store: ServiceStore, verifier: TokenVerifier | None = None):
        self.config = config
        self.policy = policy
        self.store = store
        self.verifier = verifier or TokenVerifier(
            config.issuer, config.audience, jwks_uri=config.jwks_uri, leeway=config.leeway, claim_names=config.claims,
            audience_claim=config.audience_claim,
        )
        self.job_key = job_tokens.derive_key(config.job_token_secret) if config.job_token_secret else None
        self.browser = BrowserSignIn(config.browser, config.issuer, config.audience) if config.browser else None
        self._run_experiments = _LRU()
        # Reused decisions: (what, reuse until, change counter they were made under); see changes.py.
        self.changes = ChangeWatcher(store.change_versions, config.change_poll_seconds)
        # SCIM provisioning (scim.py) and what it means for a caller's groups (directory.py).
        self.directory_store = DirectoryStore(store)
        self.directory = Directory(self.directory_store, config.groups_from, config.scim_group_name, self.changes,
                                   config.grant_cache_seconds)  # fmt: skip
        self._scim = None
        self._roles = _LRU(50_000)  # (org, user, groups, type, id) -> (rank, until, counter)
        self._api_tokens = _LRU(50_000)  # sha256(token) -> ((record, groups), until, counter)
        store.listeners.append(self._forget_reused)
        self.audit = AuditWriter(store)
        self.failed_sign_ins = FailedSignIns(self.audit.add)
        self.audit.collectors.append(self.failed_sign_ins.collect)
        self._logged_models = _LRU()
        self._owning_experiments = _LRU()  # (org, kind, id) of a trace, issue, label schema -> its experiment
        self._workspaces: set[str] = set()
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()
        self._workspace_lock = threading.Lock()

    # -- authentication -------------------------------------------------------------------------
    def authenticate(self, authorization: bytes | str | None) -> Principal:
        token = _bearer(authorization)
        if token is None:
            raise InvalidToken("no bearer token", "no_credential")
        if split_api_token(token) is not None:
            record, groups = self._api_token(token)
            self._touch(record.token_id)
            return self._principal(record.username, record.org, groups, None, "api_token", token_id=record.token_id)
        if self.job_key is not None and _is_job_token(token):
            try:
                claims = job_tokens.verify(self.job_key, token)
            except job_tokens.InvalidJobToken:
                raise InvalidToken("the job token is not valid or has expired", "invalid_job_token") from None
            if not claims.workspace:
                raise InvalidToken("the job token names no organisation", "no_organisation")
            self.ensure_workspace(claims.workspace)
            scope = job_tokens.JobScope(claims, self._job_model_owner(claims.workspace))
            return Principal(f"job:{claims.job_id}", claims.workspace, (), None, "job", job_scope=scope, token_id=claims.token_id)
        caller = self.verifier.verify(token)
        org = caller.org
        if not org:
            identity = {"username": caller.username, "subject": caller.subject, "issuer": self.verifier.issuer, "verified": True}
            raise InvalidToken(f"the token names no organisation (claim {self.config.claims.org!r})", "no_organisation", identity)
        org = _workspace_name(org)
        groups = self.directory.groups_for(org, caller.username, caller.groups, caller.groups_overage)
        self.ensure_workspace(org)
        self.store.see_user(org, caller.username, caller.email, list(caller.groups))  # the token's own groups
        return self._principal(caller.username, org, groups, caller.email, "oidc")

    def _reused(self, cache: _LRU, key, kind: str):
        """A decision cached under the current change counter of `kind`, or None."""
        cached = cache.get(key)
        if cached is None or cached[1] <= time.monotonic():
            return None
        return cached[0] if cached[2] == self.changes.version(kind) else None

    def _reuse(self, cache: _LRU, key, value, counter: int | None) -> None:
        if counter is not None and self.config.grant_cache_seconds > 0:
            cache.put(key, (value, time.monotonic() + self.config.grant_cache_seconds, counter))

    def _api_token(self, token: str):
        """(record, groups) of a valid API token. A token checked here is reused until a token or
        a user's groups change anywhere (see changes.py), for at most `grant_cache_seconds`:
        automation calls every few seconds, and two queries per call were the largest share of
        the service's own database time under load."""
        key = hashlib.sha256(token.encode()).digest()
        cached = self._reused(self._api_tokens, key, "tokens")
        if cached is not None and cached[0].expires_at > time.time():
            return cached
        counter = self.changes.version("tokens")  # read before the database: a change after it shows
        record, state = self.store.inspect_token(token)
        if state != "valid":
            raise InvalidToken("the API token is unknown, revoked or expired", f"{state}_api_token", _token_identity(token, record, state))
        last_seen = tuple(self.store.user_groups(record.org, record.username) or ())
        # The groups its user's last token had, as SCIM has them now; refused if deprovisioned.
        groups = self.directory.groups_for(record.org, record.username, last_seen, overage=not last_seen)
        self._reuse(self._api_tokens, key, (record, groups), counter)
        return record, groups

    # -- SCIM ------------------------------------------------------------------------------------
    def scim_application(self):
        if self._scim is None:  # built on first use: the SCIM models take a moment to load
            from .scim import ScimApplication

            self._scim = ScimApplication(self.directory_store)
        return self._scim

    def touch_scim_token(self, token_id: str) -> None:
        self._touch(f"scim:{token_id}", lambda: self.directory_store.touch_token(token_id))

    def record_scim(self, record, method: str, path: str, status: int) -> None:
        who = Principal(f"scim:{record.name}", record.org, (), None, "scim")
        parts = [p for p in path.split("/") if p]
        kind = {"Users": "scim_user", "Groups": "scim_group"}.get(parts[0] if parts else "", "scim")
        self.record(who, f"scim:{method} {parts[0] if parts else ''}", status, (kind, parts[1] if len(parts) > 1 else None))

    def _forget_reused(self, kind: str) -> None:
        """This process changed grants or tokens: forget the decisions of that kind at once (other
        replicas follow the change counters)."""
        {"grants": self._roles, "tokens": self._api_tokens}[kind].clear()

    def sign_in_failed(self, authorization: bytes | None, error: InvalidToken, source: str) -> None:
        """Audit a refused credential (coalesced; see signin_audit). No credential is no sign-in."""
        token = _bearer(authorization)
        if token is None or error.reason == "no_credential":
            return
        self.failed_sign_ins.failed(describe(token, error, source, self.config.claims, _organisation_or_nothing))

    def _touch(self, token_id: str, write=None) -> None:
        """Record a token's last use, at most once a minute (not a database write per request)."""
        now = time.monotonic()
        with self._touch_lock:
            if now - self._touched.get(token_id, -3600.0) < 60:
                return
            self._touched[token_id] = now
        (write or (lambda: self.store.touch_token(token_id)))()

    def _principal(self, username, org, groups, email, kind, token_id=None) -> Principal:
        is_admin = any(g in self.config.org_admin_groups for g in groups)
        return Principal(username, org, tuple(groups), email, kind, is_admin=is_admin, token_id=token_id)

    def _job_model_owner(self, org: str):
        def owner(model_id: str) -> str | None:
            _with_workspace(org)
            return job_tokens.store_model_owner(model_id)

        return owner

    def ensure_workspace(self, org: str) -> None:
        if org in self._workspaces:
            return
        with self._workspace_lock:
            if org in self._workspaces:
                return
            from mlflow.entities import Workspace
            from mlflow.exceptions import MlflowException
            from mlflow.server.workspace_helpers import _get_workspace_store

            store = _get_workspace_store()
            try:
                store.get_workspace(org)
            except MlflowException:
                try:
                    store.create_workspace(Workspace(name=org, description="InfinStor organisation"))
                    log.info("InfinStor: created the workspace of organisation %s", org)
                except MlflowException:
                    store.get_workspace(org)  # created by another replica meanwhile
            self._workspaces.add(org)

    # -- roles ----------------------------------------------------------------------------------
    def rank(self, who: Principal, resource_type: str, resource_id: str) -> int:
        if who.is_admin:
            return RANK_ADMIN
        key = (who.org, who.username, who.groups, resource_type, str(resource_id))
        cached = self._reused(self._roles, key, "grants")
        if cached is not None:
            return cached
        counter = self.changes.version("grants")
        role = self.store.role_on(who.org, resource_type, resource_id, who.username, list(who.groups))
        rank = ROLE_RANK.get(role, 0)
        # Only roles held are reused: a resource created a moment ago must not stay hidden.
        if rank:
            self._reuse(self._roles, key, rank, counter)
        return rank

    def run_experiment(self, org: str, run_id: str) -> str:
        key = (org, run_id)
        experiment_id = self._run_experiments.get(key)
        if experiment_id is None:
            experiment_id = _experiment_of_run(run_id)  # a database failure raises: 503, not 404
            if experiment_id is None:
                raise not_found(f"Run with id={run_id} not found")
            self._run_experiments.put(key, experiment_id)
        return experiment_id

    def logged_model(self, org: str, model_id: str) -> tuple[str, str | None]:
        key = (org, model_id)
        found = self._logged_models.get(key)
        if found is None:
            from mlflow.exceptions import MlflowException

            try:
                model = _stores()[0].get_logged_model(model_id)
            except MlflowException as exc:
                if store_unavailable(exc):  # the database failed: 503, not "not found"
                    raise
                raise not_found(f"Logged model with ID '{model_id}' not found.") from None
            found = (str(model.experiment_id), model.source_run_id)
            self._logged_models.put(key, found)
        return found

    def _read_via_model_version(self, who: Principal, run_id: str) -> bool:
        """Whoever may read a registered model version may read the run that produced it."""
        versions = _stores()[1].search_model_versions(filter_string=f"run_id = {_quote(run_id)}", max_results=1000)
        names = sorted({v.name for v in versions})
        return bool(self.store.roles_on_any(who.org, "registered_model", names, who.username, list(who.groups)))

    def check(self, rank: int, need: str, missing: str, what: str = "this") -> None:
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
        self.check(self.rank(who, "experiment", experiment_id), need, f"No Experiment with id={experiment_id} exists",
                   f"experiment {experiment_id}")  # fmt: skip

    def check_run(self, who: Principal, run_id: str, need: str) -> str:
        experiment_id = self.run_experiment(who.org, run_id)
        rank = self.rank(who, "experiment", experiment_id)
        if rank == 0 and self._read_via_model_version(who, run_id):
            rank = ROLE_RANK["reader"]
        self.check(rank, need, f"Run with id={run_id} not found")
        return experiment_id

    def check_logged_model(self, who: Principal, model_id: str, need: str) -> str:
        experiment_id, source_run = self.logged_model(who.org, model_id)
        rank = self.rank(who, "experiment", experiment_id)
        if rank == 0 and source_run and self._read_via_model_version(who, source_run):
            rank = ROLE_RANK["reader"]
        self.check(rank, need, f"Logged model with ID '{model_id}' not found.")
        return experiment_id

    def check_model(self, who: Principal, name: str, need: str) -> None:
        self.check(self.rank(who, "registered_model", name), need, f"Registered Model with name={name} not found",
                   f"registered model {name}")  # fmt: skip

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
                model_experiment, source_run = self.logged_model(who.org, parts[4])
                if model_experiment == experiment_id and source_run and self._read_via_model_version(who, source_run):
                    rank = ROLE_RANK["reader"]
            elif self.run_experiment(who.org, parts[3]) == experiment_id and self._read_via_model_version(who, parts[3]):
                rank = ROLE_RANK["reader"]
        self.check(rank, need, "No such artifact")
        return experiment_id

    # -- authorization of one MLflow request ---------------------------------------------------
    def authorize(self, who: Principal, method: str, path: str, query: str, body: bytes | None,
                  headers: list[tuple[bytes, bytes]] | None = None) -> Outcome:  # fmt: skip
        _with_workspace(who.org)
        matched = match_route(method, path)
        if who.kind == "job":
            if matched is None and not _is_ui_path(path):
                raise forbidden("This operation is not available to a job token.")
            if matched is not None and not who.job_scope.allows(method, path, query, body):
                raise Refusal(403, "PERMISSION_DENIED", json.loads(job_tokens.FORBIDDEN_BODY)["message"])
            is_write = not is_read(matched[0]) if matched else method != "GET"
            audit = ("run", who.job_scope.claims.run_id) if is_write else None
            return Outcome(who, matched[0] if matched else None, audit=audit)
        if matched is None:
            # The web UI's pages and its calls outside MLflow's REST API (GraphQL, ...).
            if (ui := web_ui.decide(self, who, method, path, query, body)) is not None:
                return ui
            if _is_ui_path(path):
                return Outcome(who)
            raise forbidden("This operation is not available on this service.")
        operation, path_vars = matched
        # An OTLP export's body is protobuf or OTLP/JSON, read by its own handler, never as MLflow JSON.
        params = _params(query, None if KINDS.get(operation) == "span_export" else body, method)
        params.raw_body = body
        params.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers or []}
        return self.authorize_operation(who, operation, params, path_vars)

    def authorize_operation(self, who: Principal, operation: str, params: _Params, path_vars: dict[str, str]) -> Outcome:
        """The policy and resource checks of one MLflow operation, from its parameters (a REST
        request's, or the input of the GraphQL field that mirrors it)."""
        kind = KINDS.get(operation)
        if kind is None:
            reason = REFUSED.get(operation)
            raise forbidden(f"{operation} is not available on this service" + (f": {reason}." if reason else "."))
        need = self.policy.role_for(operation)
        if need == "admin" and not who.is_admin:
            raise forbidden(f"{operation} is reserved to organisation admins.")
        outcome = Outcome(who, operation)
        handler = getattr(self, "_kind_" + kind.rstrip("!"))
        handler(who, operation, need, params, path_vars, outcome)
        if operation == "CreateRun" and outcome.respond is None:
            outcome.body = rewrite_create_run(outcome.body if outcome.body is not None else (params.raw_body or b"{}"), who.username)
        if is_read(operation):
            outcome.audit = None
        elif outcome.audit is None:
            outcome.audit = (None, None)
        return outcome

    def _kind_none(self, who, operation, need, params, path_vars, outcome):
        pass

    def _kind_org_admin(self, who, operation, need, params, path_vars, outcome):
        pass  # organisation infrastructure: the policy check above admitted only organisation admins

    def _kind_own_workspaces(self, who, operation, need, params, path_vars, outcome):
        """A caller's workspaces are their organisation's, and no other (names never leak)."""
        if operation == "ListWorkspaces":
            outcome.respond = (200, _json({"workspaces": [{"name": who.org}]}))
        elif path_vars.get("workspace_name") != who.org:
            raise not_found(f"Workspace '{path_vars.get('workspace_name')}' not found")

    def _kind_experiment(self, who, operation, need, params, path_vars, outcome):
        experiment_id = _required(params, "experiment_id")
        self.check_experiment(who, experiment_id, need)
        outcome.audit = ("experiment", experiment_id)

    def _kind_experiment_name(self, who, operation, need, params, path_vars, outcome):
        name = _required(params, "experiment_name")
        experiment = _stores()[0].get_experiment_by_name(name)
        missing = f"Could not find experiment with name '{name}'"
        if experiment is None:
            raise not_found(missing)
        self.check(self.rank(who, "experiment", experiment.experiment_id), need, missing)

    def _kind_run(self, who, operation, need, params, path_vars, outcome):
        run_id = _required(params, "run_id", "run_uuid")
        self.check_run(who, run_id, need)
        outcome.audit = ("run", run_id)

    def _kind_runs(self, who, operation, need, params, path_vars, outcome):
        for run_id in _required_all(params, "run_ids"):
            self.check_run(who, run_id, need)

    def _kind_logged_model(self, who, operation, need, params, path_vars, outcome):
        model_id = path_vars["model_id"]
        # Some MLflow handlers act on the body's model_id rather than the path's: they must agree.
        if params.get("model_id") not in (None, model_id):
            raise bad_request("The model_id in the body does not match the path.")
        self.check_logged_model(who, model_id, need)
        outcome.audit = ("logged_model", model_id)

    def _kind_artifact(self, who, operation, need, params, path_vars, outcome):
        artifact_path = path_vars.get("artifact_path") if "artifact_path" in path_vars else params.get("path")
        self.check_artifact(who, artifact_path or "", need)
        outcome.audit = ("artifact", artifact_path)

    def _kind_registered_model(self, who, operation, need, params, path_vars, outcome):
        name = _required(params, "name")
        self.check_model(who, name, need)
        outcome.audit = ("registered_model", name)
        if operation == "RenameRegisteredModel":
            new_name = _required(params, "new_name")
            outcome.after = lambda status, _body: status == 200 and self.store.rename_resource(who.org, "registered_model", name, new_name)
            outcome.detail = {"new_name": new_name}
        elif operation == "DeleteRegisteredModel":
            outcome.after = lambda status, _body: status == 200 and self.store.forget_resource(who.org, "registered_model", name)

    def _kind_create_model_version(self, who, operation, need, params, path_vars, outcome):
        name = _required(params, "name")
        self.check_model(who, name, need)
        # The version must come from something the caller may read.
        run_id = params.get("run_id")
        source = params.get("source") or ""
        if run_id:
            self.check_run(who, run_id, "reader")
        if params.get("model_id"):
            self.check_logged_model(who, params.get("model_id"), "reader")
        if source.startswith("models:/m-"):
            self.check_logged_model(who, source[len("models:/"):].split("/")[0], "reader")
        elif source.startswith("models:/"):  # a version copied from another registered model
            self.check_model(who, source[len("models:/"):].split("/")[0], "reader")
        elif source.startswith("runs:/"):
            self.check_run(who, source[len("runs:/"):].split("/")[0], "reader")
        elif source.startswith("mlflow-artifacts:/"):
            self.check_artifact(who, source[len("mlflow-artifacts:/"):], "reader")
        outcome.audit = ("registered_model", name)

    def _kind_create_experiment(self, who, operation, need, params, path_vars, outcome):
        outcome.after = lambda status, body: status == 200 and self._grant_on_create_experiment(who, body)
        outcome.audit = ("experiment", None)

    def _kind_create_registered_model(self, who, operation, need, params, path_vars, outcome):
        outcome.after = lambda status, body: status == 200 and self._grant_on_create_model(who, body)
        outcome.audit = ("registered_model", params.get("name"))

    def _grant_on_create_experiment(self, who: Principal, body: bytes) -> None:
        experiment_id = str(json.loads(body)["experiment_id"])
        self.store.grant(who.org, "experiment", experiment_id, "user", who.username, "manager", who.username)
        if self.config.experiment_default == "shared":
            for group in who.groups:
                self.store.grant(who.org, "experiment", experiment_id, "group", group, self.config.experiment_group_role, who.username)

    def _grant_on_create_model(self, who: Principal, body: bytes) -> None:
        name = json.loads(body)["registered_model"]["name"]
        self.store.grant(who.org, "registered_model", name, "user", who.username, "manager", who.username)
        for group in who.groups:
            self.store.grant(who.org, "registered_model", name, "group", group, self.config.model_group_role, who.username)
        if self.config.models_org_readable:
            self.store.grant(who.org, "registered_model", name, "org", who.org, "reader", who.username)

    # -- private views --------------------------------------------------------------------------
    def readable_experiments(self, who: Principal, experiment_ids: list[str]) -> list[str]:
        """Those of `experiment_ids` the caller holds a role on, in the order given."""
        readable = self.store.roles_on_any(who.org, "experiment", experiment_ids, who.username, list(who.groups))
        return [i for i in experiment_ids if i in readable]

    def all_readable_experiments(self, who: Principal) -> list[str]:
        return sorted(self.store.readable_ids(who.org, "experiment", who.username, list(who.groups)))

    @staticmethod
    def _search_only(params: _Params, outcome: Outcome, requested: list[str], kept: list[str]) -> None:
        """Let a search over experiments run over `kept` only; with none left, answer the empty
        result MLflow gives for a search that finds nothing."""
        if not kept:
            outcome.respond = (200, b"{}")
        elif kept != requested:
            outcome.body, outcome.query = params.with_values("experiment_ids", kept)

    def _kind_experiment_ids(self, who, operation, need, params, path_vars, outcome):
        if who.is_admin:
            return
        if params.method != "GET" and not isinstance(params.body_json, dict):
            raise bad_request("Expected a JSON body.")
        requested = params.get_all("experiment_ids")
        self._search_only(params, outcome, requested, self.readable_experiments(who, requested))

    def _kind_search_experiments(self, who, operation, need, params, path_vars, outcome):
        if who.is_admin:
            return
        from mlflow.protos.service_pb2 import SearchExperiments

        from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT

        request = params.message(SearchExperiments(), repeated=("order_by",))
        if not request.HasField("max_results"):
            request.max_results = SEARCH_MAX_RESULTS_DEFAULT
        readable = self.store.readable_ids(who.org, "experiment", who.username, list(who.groups))
        tracking, registry = _stores()
        private_views.install(tracking, registry)

        def fetch(max_results, token):
            with private_views.only_readable("experiment", readable):
                return tracking.search_experiments(
                    view_type=request.view_type, max_results=max_results, filter_string=request.filter,
                    order_by=list(request.order_by), page_token=token,
                )  # fmt: skip

        items, token = filtered_page(fetch, lambda e: e.experiment_id in readable, request.max_results, request.page_token)
        outcome.respond = _page_answer(SearchExperiments.Response(), "experiments", items, token)

    def _kind_search_registered_models(self, who, operation, need, params, path_vars, outcome):
        if who.is_admin:
            return
        from mlflow.protos.model_registry_pb2 import SearchRegisteredModels

        request = params.message(SearchRegisteredModels(), repeated=("order_by",))
        if request.max_results > 1000:
            raise bad_request("max_results must be at most 1000")
        readable = self.store.readable_ids(who.org, "registered_model", who.username, list(who.groups))
        tracking, registry = _stores()
        private_views.install(tracking, registry)

        def fetch(max_results, token):
            with private_views.only_readable("registered_model", readable):
                return registry.search_registered_models(
                    filter_string=request.filter, max_results=min(max_results, 1000), order_by=list(request.order_by), page_token=token
                )

        items, token = filtered_page(fetch, lambda m: m.name in readable, request.max_results, request.page_token)
        outcome.respond = _page_answer(SearchRegisteredModels.Response(), "registered_models", items, token)

    def _kind_search_model_versions(self, who, operation, need, params, path_vars, outcome):
        if who.is_admin:
            return
        from mlflow.protos.model_registry_pb2 import SearchModelVersions

        request = params.message(SearchModelVersions(), repeated=("order_by",))
        readable = self.store.readable_ids(who.org, "registered_model", who.username, list(who.groups))
        registry = _stores()[1]

        def fetch(max_results, token):
            return registry.search_model_versions(
                filter_string=request.filter, max_results=max_results, order_by=list(request.order_by), page_token=token
            )

        items, token = filtered_page(fetch, lambda v: v.name in readable, request.max_results, request.page_token)
        outcome.respond = _page_answer(SearchModelVersions.Response(), "model_versions", items, token)

    # -- MLflow 3 tracing and GenAI evaluation: all of it belongs to experiments ---------------
    def _owning_experiment(self, org: str, kind: str, object_id: str, lookup: Callable[[str], Any], missing: str) -> str:
        """The experiment a trace, issue or label schema belongs to (it never moves: cached)."""
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
        return experiment_id

    def check_owned(self, who: Principal, kind: str, object_id: str, lookup: Callable[[str], Any], missing: str, need: str) -> str:
        """The caller's role on the experiment a trace, issue or label schema belongs to."""
        experiment_id = self._owning_experiment(who.org, kind, object_id, lookup, missing)
        self.check(self.rank(who, "experiment", experiment_id), need, missing, f"experiment {experiment_id}")
        return experiment_id

    def check_trace(self, who: Principal, trace_id: str, need: str) -> str:
        return self.check_owned(who, "trace", trace_id, _stores()[0].get_trace_info, f"Trace with ID '{trace_id}' not found.", need)

    def check_traces_written_to(self, who: Principal, experiment_id: str, trace_ids, need: str) -> None:
        """Starting a trace or exporting its spans into `experiment_id` (already checked): MLflow
        merges such writes into an existing trace of the same id wherever that trace lives, so
        each existing one needs the role on its own experiment too."""
        for trace_id in trace_ids:
            try:
                existing = self._owning_experiment(who.org, "trace", trace_id, _stores()[0].get_trace_info, "")
            except Refusal:
                continue  # a new trace: MLflow creates it in experiment_id
            if existing != experiment_id:
                self.check_trace(who, trace_id, need)

    def check_dataset(self, who: Principal, dataset_id: str, need: str) -> None:
        """An evaluation dataset is shared through the experiments it is linked to: whoever may
        read one of them may read it; changing it needs the role on every one of them."""
        if who.is_admin:
            return
        experiment_ids = _stores()[0].get_dataset_experiment_ids(dataset_id)  # [] if not in this organisation
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

    def _kind_trace(self, who, operation, need, params, path_vars, outcome):
        # The path's id is the one MLflow acts on when there is one (it overrides the body's).
        trace_id = path_vars.get("trace_id") or path_vars.get("request_id") or _required(params, "trace_id", "request_id")
        self.check_trace(who, trace_id, need)
        outcome.audit = ("trace", trace_id)

    def _kind_traces(self, who, operation, need, params, path_vars, outcome):
        for trace_id in dict.fromkeys(_required_all(params, "trace_ids")):  # every one of them
            self.check_trace(who, trace_id, need)

    def _kind_trace_location(self, who, operation, need, params, path_vars, outcome):
        from mlflow.protos.service_pb2 import StartTraceV3

        info = params.message(StartTraceV3()).trace.trace_info
        experiment_id = info.trace_location.mlflow_experiment.experiment_id
        if not experiment_id:
            raise bad_request("A trace must name its experiment (trace_info.trace_location.mlflow_experiment).")
        self.check_experiment(who, experiment_id, need)
        self.check_traces_written_to(who, experiment_id, [info.trace_id] if info.trace_id else [], need)
        outcome.audit = ("trace", info.trace_id or None)

    def _kind_trace_locations(self, who, operation, need, params, path_vars, outcome):
        """SearchTracesV3: only experiment locations the caller may read; other kinds of location
        (inference tables, Unity Catalog) name nothing this service can check and are dropped."""
        if who.is_admin:
            return
        from mlflow.protos.service_pb2 import SearchTracesV3

        request = params.message(SearchTracesV3(), repeated=("locations", "order_by"))
        requested = [loc.mlflow_experiment.experiment_id for loc in request.locations if loc.HasField("mlflow_experiment")]
        kept = self.readable_experiments(who, requested)
        if not kept:
            outcome.respond = (200, b"{}")
        elif kept != requested or len(requested) != len(request.locations):
            del request.locations[:]
            for experiment_id in kept:
                request.locations.add().mlflow_experiment.experiment_id = experiment_id
            outcome.body = _message_json(request)

    def _kind_traces_to_run(self, who, operation, need, params, path_vars, outcome):
        run_id = _required(params, "run_id")
        self.check_run(who, run_id, need)
        for trace_id in dict.fromkeys(params.get_all("trace_ids")):
            self.check_trace(who, trace_id, "reader")
        outcome.audit = ("run", run_id)

    def _kind_prompts_to_trace(self, who, operation, need, params, path_vars, outcome):
        from mlflow.protos.service_pb2 import LinkPromptsToTrace

        request = params.message(LinkPromptsToTrace(), repeated=("prompt_versions",))
        if not request.trace_id:
            raise bad_request("Missing value for required parameter 'trace_id'.")
        self.check_trace(who, request.trace_id, need)
        for name in dict.fromkeys(version.name for version in request.prompt_versions):
            self.check_model(who, name, "reader")  # a prompt is a registered model to MLflow
        outcome.audit = ("trace", request.trace_id)

    def _kind_create_dataset(self, who, operation, need, params, path_vars, outcome):
        experiment_ids = list(dict.fromkeys(params.get_all("experiment_ids")))
        if not experiment_ids and not who.is_admin:
            raise bad_request("Name the experiment(s) the dataset belongs to (experiment_ids): it is shared through them.")
        for experiment_id in experiment_ids:
            self.check_experiment(who, experiment_id, need)
        outcome.audit = ("dataset", None)

    def _kind_dataset(self, who, operation, need, params, path_vars, outcome):
        dataset_id = path_vars["dataset_id"]
        self.check_dataset(who, dataset_id, need)
        outcome.audit = ("dataset", dataset_id)

    def _kind_dataset_experiments(self, who, operation, need, params, path_vars, outcome):
        """Linking a dataset to experiments (or unlinking it) changes the dataset and each of them."""
        self._kind_dataset(who, operation, need, params, path_vars, outcome)
        for experiment_id in dict.fromkeys(params.get_all("experiment_ids")):
            self.check_experiment(who, experiment_id, need)

    def _kind_dataset_search(self, who, operation, need, params, path_vars, outcome):
        if who.is_admin:
            return
        requested = params.get_all("experiment_ids")
        # Without experiment ids MLflow searches the whole organisation: search the caller's instead.
        wanted = requested or self.all_readable_experiments(who)
        self._search_only(params, outcome, requested, self.readable_experiments(who, wanted))

    def _kind_scorer_listing(self, who, operation, need, params, path_vars, outcome):
        if who.is_admin:
            return
        single = params.get("experiment_id")
        if single:
            if not self.readable_experiments(who, [single]):
                outcome.respond = (200, b"{}")
            return
        requested = params.get_all("experiment_ids")
        # Without experiment ids MLflow lists the scorers of the whole organisation.
        wanted = requested or self.all_readable_experiments(who)
        self._search_only(params, outcome, requested, self.readable_experiments(who, wanted))

    def _kind_create_issue(self, who, operation, need, params, path_vars, outcome):
        experiment_id = _required(params, "experiment_id")
        self.check_experiment(who, experiment_id, need)
        if params.get("source_run_id"):
            self.check_run(who, params.get("source_run_id"), "reader")
        # Who raised an issue is the caller, whatever the client claims (as for a run's user).
        data = params.body_json if isinstance(params.body_json, dict) else {}
        rest = {k: v for k, v in data.items() if k not in ("created_by", "createdBy")}
        outcome.body = _json({**rest, "created_by": who.username})
        outcome.audit = ("experiment", experiment_id)

    def _kind_issue(self, who, operation, need, params, path_vars, outcome):
        issue_id = path_vars.get("issue_id") or _required(params, "issue_id")
        self.check_owned(who, "issue", issue_id, _stores()[0].get_issue, f"Issue with ID '{issue_id}' not found.", need)
        outcome.audit = ("issue", issue_id)

    def _kind_label_schema(self, who, operation, need, params, path_vars, outcome):
        schema_id = _required(params, "schema_id")
        missing = f"Label schema with ID '{schema_id}' not found."
        self.check_owned(who, "label_schema", schema_id, _stores()[0].get_label_schema, missing, need)
        outcome.audit = ("label_schema", schema_id)

    def _kind_span_export(self, who, operation, need, params, path_vars, outcome):
        """LogSpans (OTLP): the experiment named in MLflow's header, every existing trace the spans
        extend, and the run the traces are to be linked to."""
        from mlflow.tracing.utils.otlp import MLFLOW_EXPERIMENT_ID_HEADER, MLFLOW_RUN_ID_HEADER

        experiment_id = params.headers.get(MLFLOW_EXPERIMENT_ID_HEADER.lower())
        if not experiment_id:
            raise bad_request(f"Missing required header: {MLFLOW_EXPERIMENT_ID_HEADER}")
        self.check_experiment(who, experiment_id, need)
        try:
            trace_ids = trace_ids_in_export(params.raw_body or b"", params.headers.get("content-type"), params.headers.get("content-encoding"))
        except InvalidExport as exc:
            raise bad_request(str(exc)) from None
        self.check_traces_written_to(who, experiment_id, trace_ids, need)
        if run_id := params.headers.get(MLFLOW_RUN_ID_HEADER.lower()):
            self.check_run(who, run_id, self.policy.role_for("LinkTracesToRun"))
        outcome.audit = ("experiment", experiment_id)

    def _kind_run_or_logged_model(self, who, operation, need, params, path_vars, outcome):
        run_id, model_id = params.get("run_id"), params.get("model_id")
        if bool(run_id) == bool(model_id):
            raise bad_request("Give exactly one of run_id and model_id.")
        if run_id:
            self.check_run(who, run_id, need)
            outcome.audit = ("run", run_id)
        else:
            self.check_logged_model(who, model_id, need)
            outcome.audit = ("logged_model", model_id)

    # -- our REST API ---------------------------------------------------------------------------
    def api(self, who: Principal, method: str, path: str, query: str, body: bytes | None) -> tuple[int, dict, tuple | None]:
        """(status, JSON, audit entry) for a request under /api/2.0/infinstor/."""
        _with_workspace(who.org)
        route = path[len(API_PREFIX):].strip("/")
        params = _params(query, body)
        if route == "whoami" and method == "GET":
            return 200, who.to_json(), None
        if who.kind == "job":
            raise forbidden("A job token may not use this API.")
        if route == "tokens" and method == "POST":
            return self._create_token(who, params)
        if route == "tokens" and method == "GET":
            everyone = params.get("all") in ("true", "1") and who.is_admin
            records = self.store.list_tokens(who.org, None if everyone else who.username)
            return 200, {"tokens": [r.to_json() for r in records]}, None
        if route.startswith("tokens/") and method == "DELETE":
            token_id = route[len("tokens/"):]
            if not self.store.revoke_token(who.org, token_id, None if who.is_admin else who.username):
                raise not_found(f"No active token with id {token_id}")
            return 200, {}, ("api_token", token_id)
        if route == "permissions":
            return self._permissions(who, method, params)
        if route == "scim-tokens" or route.startswith("scim-tokens/"):
            return self._scim_tokens(who, method, route, params)
        if route == "audit" and method == "GET":
            if not who.is_admin:
                raise forbidden("The audit log is for organisation admins.")
            limit = min(max(int(params.get("limit") or 100), 1), 1000)
            self.audit.flush()
            before = params.get("before_id")
            return 200, {"events": self.store.audit_log(who.org, limit, int(before) if before else None)}, None
        raise not_found(f"No such InfinStor API: {method} {route}")

    def _create_token(self, who: Principal, params) -> tuple[int, dict, tuple]:
        if who.kind != "oidc":
            raise forbidden("Create tokens while signed in with the identity provider, not with another token.")
        if (params.get("kind") or "api") == "job":
            return self._create_job_token(who, params)
        name = (params.get("name") or "").strip()
        if not name or len(name) > 255:
            raise bad_request("A token needs a name (1-255 characters).")
        days = params.get("expires_in_days")
        try:
            days = float(days) if days not in (None, "") else self.config.token_default_days
        except (TypeError, ValueError):
            raise bad_request("expires_in_days must be a number") from None
        if not 0 < days <= self.config.token_max_days:
            raise bad_request(f"expires_in_days must be more than 0 and at most {self.config.token_max_days:g}")
        token, record = self.store.create_token(who.org, who.username, name, days * 86400)
        return 200, {"token": token, **record.to_json()}, ("api_token", record.token_id)

    def _scim_tokens(self, who: Principal, method: str, route: str, params) -> tuple[int, dict, tuple | None]:
        """The organisation's SCIM tokens (for its directory's provisioning): its admins only."""
        if not who.is_admin:
            raise forbidden("SCIM tokens are for organisation admins.")
        if route == "scim-tokens" and method == "GET":
            return 200, {"tokens": [t.to_json() for t in self.directory_store.list_tokens(who.org)]}, None
        if route == "scim-tokens" and method == "POST":
            if who.kind != "oidc":
                raise forbidden("Create tokens while signed in with the identity provider, not with another token.")
            name = (params.get("name") or "").strip()
            if not name or len(name) > 255:
                raise bad_request("A SCIM token needs a name (1-255 characters), e.g. the directory it is for.")
            token, record = self.directory_store.create_token(who.org, name, who.username)
            return 200, {"token": token, **record.to_json()}, ("scim_token", record.token_id)
        if route.startswith("scim-tokens/") and method == "DELETE":
            token_id = route[len("scim-tokens/"):]
            if not self.directory_store.revoke_token(who.org, token_id):
                raise not_found(f"No active SCIM token with id {token_id}")
            return 200, {}, ("scim_token", token_id)
        raise not_found(f"No such InfinStor API: {method} {route}")

    def _create_job_token(self, who: Principal, params) -> tuple[int, dict, tuple]:
        if self.job_key is None:
            raise Refusal(501, "NOT_IMPLEMENTED", "This service mints no job tokens (job_tokens.secret is not set).")
        run_id = _required(params, "run_id")
        experiment_id = self.check_run(who, run_id, "editor")
        try:
            ttl = float(params.get("ttl_seconds") or 3600)
        except (TypeError, ValueError):
            raise bad_request("ttl_seconds must be a number") from None
        if not 0 < ttl <= self.config.job_token_max_seconds:
            raise bad_request(f"ttl_seconds must be more than 0 and at most {self.config.job_token_max_seconds:g}")
        job_id = (params.get("job_id") or "").strip() or f"{who.username}-{run_id[:8]}"
        token = job_tokens.issue(self.job_key, job_id=job_id, run_id=run_id, experiment_id=experiment_id, ttl=ttl, workspace=who.org)
        return 200, {"token": token, "run_id": run_id, "experiment_id": experiment_id, "expires_in": int(ttl)}, ("run", run_id)

    def _resource(self, who: Principal, params, need: str) -> tuple[str, str]:
        resource_type = _required(params, "resource_type")
        resource_id = _required(params, "resource_id")
        if resource_type not in RESOURCE_TYPES:
            raise bad_request(f"resource_type must be one of {', '.join(RESOURCE_TYPES)}")
        if resource_type == "experiment":
            self.check_experiment(who, resource_id, need)
        else:
            self.check_model(who, resource_id, need)
        return resource_type, resource_id

    def _permissions(self, who: Principal, method: str, params) -> tuple[int, dict, tuple | None]:
        if method == "GET":
            resource_type, resource_id = self._resource(who, params, "reader")
            return 200, {"permissions": [g.to_json() for g in self.store.list_grants(who.org, resource_type, resource_id)]}, None
        if method not in ("POST", "DELETE"):
            raise Refusal(405, "BAD_REQUEST", "Use GET, POST or DELETE")
        resource_type, resource_id = self._resource(who, params, "manager")
        principal_type = _required(params, "principal_type")
        principal = _required(params, "principal")
        if principal_type not in PRINCIPAL_TYPES:
            raise bad_request(f"principal_type must be one of {', '.join(PRINCIPAL_TYPES)}")
        if principal_type == "org" and principal != who.org:
            raise bad_request("Only your own organisation can be given a role.")
        entry = (resource_type, resource_id)
        if method == "POST":
            role = _required(params, "role")
            if role not in ROLES:
                raise bad_request(f"role must be one of {', '.join(ROLES)}")
            self.store.grant(who.org, resource_type, resource_id, principal_type, principal, role, who.username)
            return 200, {"granted": {"principal_type": principal_type, "principal": principal, "role": role}}, entry
        if not self.store.revoke(who.org, resource_type, resource_id, principal_type, principal):
            raise not_found(f"{principal_type} {principal} holds no role on this {resource_type}")
        return 200, {"revoked": {"principal_type": principal_type, "principal": principal}}, entry

    def record(self, who: Principal, action: str, status: int, entry: tuple | None, detail: dict | None = None) -> None:
        resource_type, resource_id = entry or (None, None)
        self.audit.add(self.store.audit_row(who.org, who.username, action, status, resource_type, resource_id, detail))


class AuditWriter:
    """Audit rows written in batches by one background thread (a few per second), so a busy
    service does not pay a database transaction per write; `flush` writes what is pending now.
    `collectors` are asked for rows that have become due (e.g. coalesced counts) before each
    flush, with final=True at shut-down."""

    def __init__(self, store: ServiceStore, interval: float = 0.25, max_pending: int = 10_000):
        self.store, self.interval, self.max_pending = store, interval, max_pending
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self.collectors: list[Callable[[bool], None]] = []
        self._thread = threading.Thread(target=self._run, name="infinstor-audit", daemon=True)
        self._thread.start()
        atexit.register(self.flush, final=True)

    def add(self, row: dict) -> None:
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= 500
        if full:
            self._wake.set()

    def flush(self, final: bool = False) -> None:
        for collect in self.collectors:
            try:
                collect(final)
            except Exception:  # never let one source stop the writer thread
                log.exception("InfinStor: could not collect due audit records")
        with self._flush_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                self.store.record_many(rows)
            except Exception:
                log.exception("InfinStor: could not write %d audit records; keeping them for the next attempt", len(rows))
                with self._lock:  # keep them, but never grow without bound
                    self._pending = (rows + self._pending)[-self.max_pending:]

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()


def filtered_page(fetch, keep, max_results: int, page_token: str | None, batch: int = 1000):
    """One page of the items `keep` accepts, paging over the filtered stream.

    `fetch(max_results, page_token)` is a store search whose page tokens are offsets (MLflow's SQL
    stores). The next-page token points just past the last returned item, and is given only if
    another acceptable item exists, so pages are never short except the last one.
    """
    from mlflow.utils.search_utils import SearchUtils

    offset = SearchUtils.parse_start_offset_from_page_token(page_token) if page_token else 0
    if max_results <= 0:
        raise bad_request("max_results must be positive")
    items: list = []
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


class _Params:
    """Request parameters the way MLflow reads them: JSON body first, then the query string."""

    def __init__(self, query: dict[str, list[str]], body_json: Any, method: str = "POST"):
        self.query, self.body_json, self.method = query, body_json, method
        self.raw_body: bytes | None = None
        self.headers: dict[str, str] = {}  # lower-case names

    def _body_value(self, name: str):
        """A body field by its proto name or its JSON (camelCase) name, as protobuf parsing
        accepts both: authorizing one spelling while MLflow acts on the other must not happen."""
        if not isinstance(self.body_json, dict):
            return None
        value = self.body_json.get(name)
        if value in (None, ""):
            value = self.body_json.get(_camel(name))
        return None if value in (None, "") else value

    def get(self, name: str) -> str | None:
        value = self._body_value(name)
        if value is not None:
            return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        values = self.query.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        value = self._body_value(name)
        if isinstance(value, list):
            return [str(v) for v in value]
        return self.query.get(name, [])

    def message(self, message, repeated: tuple[str, ...] = ()):
        from mlflow.utils.proto_json_utils import parse_dict

        if isinstance(self.body_json, dict) and self.body_json:
            data = dict(self.body_json)
        else:
            data = {k: (v if k in repeated else v[0]) for k, v in self.query.items()}
        try:
            parse_dict(data, message)
        except Exception as exc:
            raise bad_request(f"Invalid search parameters: {exc}") from None
        return message

    def with_values(self, name: str, values: list[str]) -> tuple[bytes | None, str | None]:
        """(body, query string) of this request with the repeated parameter `name` set to `values`,
        where MLflow will read it (the query string of a GET, the JSON body otherwise); None for
        the part that stays as the client sent it."""
        if self.method == "GET":
            query = {k: v for k, v in self.query.items() if k != name}
            return None, urlencode({**query, name: values}, doseq=True)
        data = self.body_json if isinstance(self.body_json, dict) else {}
        rest = {k: v for k, v in data.items() if k not in (name, _camel(name))}
        return _json({**rest, name: values}), None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _params(query: str, body: bytes | None, method: str = "POST") -> _Params:
    body_json = None
    if body:
        try:
            body_json = json.loads(body)
        except ValueError:
            raise bad_request("The request body is not valid JSON.") from None
    return _Params(parse_qs(query or "", keep_blank_values=False), body_json, method)


def _required(params: _Params, name: str, *aliases: str) -> str:
    """A parameter MLflow requires (or the first of its older names that is given)."""
    for candidate in (name, *aliases):
        if value := params.get(candidate):
            return value
    raise bad_request(f"Missing value for required parameter '{name}'.")


def _required_all(params: _Params, name: str) -> list[str]:
    """A repeated parameter MLflow requires at least one value of."""
    if values := params.get_all(name):
        return values
    raise bad_request(f"Missing value for required parameter '{name}'.")


def _page_answer(response, field: str, items, token: str | None) -> tuple[int, bytes]:
    """One page of a filtered search as MLflow answers it (the token only when more follow)."""
    getattr(response, field).extend([item.to_proto() for item in items])
    if token:
        response.next_page_token = token
    return (200, _message_json(response))


def _message_json(message) -> bytes:
    from mlflow.utils.proto_json_utils import message_to_json

    return message_to_json(message).encode()


def _is_ui_path(path: str) -> bool:
    return path in UI_PATHS or path.startswith("/static-files/")


def _is_job_token(token: str) -> bool:
    if not job_tokens.looks_like_job_token(token):
        return False
    try:
        return jwt.get_unverified_header(token).get("alg") == "HS256"
    except jwt.PyJWTError:
        return False


def _token_identity(token: str, record, state: str) -> dict:
    """What a refused API token says about its holder: its id's first characters, and the owner of
    the real token it names (proven when its secret matched, i.e. it was revoked or expired)."""
    identity = {"token_id": token[len(TOKEN_PREFIX):][:TOKEN_ID_CHARS]}
    if record is not None:
        identity.update(username=record.username, org=record.org, verified=state in ("revoked", "expired"))
    return identity


def _organisation_or_nothing(claim: str) -> str:
    try:
        return _workspace_name(claim) if claim else ""
    except InvalidToken:
        return ""


def _workspace_name(org: str) -> str:
    from mlflow.exceptions import MlflowException
    from mlflow.store.workspace.abstract_store import WorkspaceNameValidator

    name = org.strip().lower()
    try:
        if name == "default":
            raise MlflowException("reserved")
        WorkspaceNameValidator.validate(name)
    except MlflowException:
        raise InvalidToken(f"the organisation {org!r} cannot name a workspace (lowercase letters, digits and '-')") from None
    return name


# -- the ASGI middleware ---------------------------------------------------------------------------
def _needs_body(method: str, path: str) -> bool:
    # Artifact uploads stream through untouched; MLflow's JSON APIs are small.
    return method in ("POST", "PATCH", "DELETE", "PUT") and "/mlflow-artifacts/" not in path


class CompanyASGIMiddleware:
    def __init__(self, app, service: CompanyService, threads: int = 32):
        self.app = app
        self.service = service
        # Decisions block on the database: they run here, never on the event loop. Sized like the
        # thread pool that serves MLflow's Flask app, so neither starves the other.
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="infinstor-authz")

    async def _in_thread(self, fn, *args):
        # A fresh copy of the context per call: the workspace each decision sets stays its own.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(context.run, fn, *args))

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if scope["type"] == "http" and path in OPEN_PATHS:
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and (path == "/scim/v2" or path.startswith("/scim/v2/")):
            from . import scim  # SCIM 2.0 provisioning: its own credentials (SCIM tokens), its own protocol

            return await scim.serve(self.service, self._in_thread, scope, receive, send)
        if scope["type"] == "websocket":
            # No MLflow operation we authorize uses websockets.
            await send({"type": "websocket.close", "code": 1008})
            return None
        method = scope["method"]
        query = (scope.get("query_string") or b"").decode("latin-1")
        browser = self.service.browser
        cookie_auth = False
        if browser is not None:
            handled = await self._browser_flow(browser, scope, send, path, query)
            if handled:
                return None
            if not any(k == b"authorization" for k, _ in scope.get("headers") or []):
                token, set_cookies = await self._in_thread(browser.session, scope)
                if set_cookies:
                    send = _adding_headers(send, [(b"set-cookie", c) for c in set_cookies])
                if token is None and method == "GET" and (_is_ui_path(path) or _wants_html(scope)):
                    target = path + (f"?{query}" if query else "")
                    if path == "/":  # MLflow's UI: its route is in the fragment, which only the page sees
                        return await _send(send, 200, sign_in_page(target), headers=_HTML)
                    return await _redirect(send, f"{LOGIN_PATH}?{urlencode({'next': target})}")
                if token is not None:
                    cookie_auth = True
                    scope = {**scope, "headers": [*scope.get("headers", []), (b"authorization", f"Bearer {token}".encode())]}
            if cookie_auth and method not in ("GET", "HEAD", "OPTIONS") and not browser.same_origin(scope):
                refusal = forbidden("A change made with the browser session must come from this service's own pages.")
                return await _send(send, 403, refusal.body())
        body = None
        if _needs_body(method, path):
            try:
                body = await _read_body(receive)
            except _TooLarge:
                return await _send(send, 413, Refusal(413, "INVALID_PARAMETER_VALUE", "request body too large").body())
            if body is None:
                return None  # the client went away
        headers = [(k, v) for k, v in scope.get("headers") or [] if k != WORKSPACE_HEADER]
        authorization = next((v for k, v in headers if k == b"authorization"), None)
        try:
            source = (scope.get("client") or ("",))[0] or ""
            who, outcome, api_answer = await self._in_thread(self._decide, authorization, method, path, query, body, headers, source)
        except InvalidToken as exc:
            return await _send(send, 401, _unauthenticated(str(exc)), [(b"www-authenticate", b'Bearer realm="infinstor"')])
        except VerifierUnavailable as exc:
            log.error("InfinStor company: %s", exc)
            return await _send(send, 503, Refusal(503, "TEMPORARILY_UNAVAILABLE", f"Cannot verify credentials now: {exc}").body())
        except _Denied as denied:
            if denied.audit:
                await self._in_thread(self.service.record, denied.who, denied.action, denied.refusal.status, denied.audit)
            return await _send(send, denied.refusal.status, denied.refusal.body())
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if isinstance(exc, MlflowException):  # e.g. a bad search filter, as MLflow would answer
                return await _send(send, exc.get_http_status_code(), exc.serialize_as_json().encode())
            if unavailable := classify_exception(exc):  # database away or pool exhausted: 503, retry
                log.warning("InfinStor company: %s on %s %s: %s", unavailable, method, path, type(exc).__name__)
                return await send_outage(send, unavailable)
            log.exception("InfinStor company: cannot decide on %s %s", method, path)
            return await _send(send, 500, Refusal(500, "INTERNAL_ERROR", "The service could not authorize this request.").body())
        if api_answer is not None:
            return await _send(send, api_answer[0], api_answer[1])
        if outcome.respond is not None:
            return await _send(send, *outcome.respond, headers=outcome.respond_headers)
        new_body = outcome.body if outcome.body is not None else body
        headers.append((WORKSPACE_HEADER, who.org.encode()))
        if new_body is not None:
            headers = [(k, v) for k, v in headers if k != b"content-length"] + [(b"content-length", str(len(new_body)).encode())]
        scope = {**scope, "headers": headers}
        if outcome.query is not None:
            scope["query_string"] = outcome.query.encode("latin-1")
        if new_body is not None:
            receive = _replay(new_body, receive)
        # MLflow's GraphQL executor finds the caller here (its worker thread gets a copy of this context).
        caller = graphql_authz.CALLER.set(outcome.graphql)
        try:
            status = await self._forward(scope, receive, send, outcome)
        finally:
            graphql_authz.CALLER.reset(caller)
        if outcome.audit is not None:
            await self._in_thread(self.service.record, who, outcome.operation or method, status, outcome.audit, outcome.detail)
        return None

    async def _browser_flow(self, browser, scope, send, path: str, query: str) -> bool:
        """Serve the sign-in pages; True if this request was one of them."""
        if scope["method"] != "GET" or path not in (LOGIN_PATH, LOGOUT_PATH, browser.config.redirect_path):
            return False
        params = parse_qs(query)
        try:
            if path == LOGIN_PATH:
                location, cookies = await self._in_thread(browser.login, scope, (params.get("next") or ["/"])[0])
            elif path == LOGOUT_PATH:
                location, cookies = browser.logout(scope)
            else:
                cookie_header = dict(scope.get("headers") or []).get(b"cookie")
                location, cookies = await self._in_thread(browser.callback, scope, params, cookie_header)
        except SignInFailed as exc:
            body = f"Sign-in failed: {exc}.".encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return True
        except requests.RequestException as exc:
            log.error("InfinStor browser sign-in: cannot reach the identity provider: %s", type(exc).__name__)
            await _send(send, 503, Refusal(503, "TEMPORARILY_UNAVAILABLE", "Cannot reach the identity provider now.").body())
            return True
        await _redirect(_adding_headers(send, [(b"set-cookie", c) for c in cookies]), location)
        return True

    def _decide(self, authorization, method, path, query, body, headers=None, source=""):
        service = self.service
        try:
            who = service.authenticate(authorization)
        except InvalidToken as exc:
            service.sign_in_failed(authorization, exc, source)  # in this worker thread, like every decision
            raise
        if path.startswith(API_PREFIX):
            try:
                status, data, entry = service.api(who, method, path, query, body)
            except Refusal as refusal:
                raise _Denied(who, refusal, f"infinstor:{method} {path[len(API_PREFIX):]}", (None, None) if method != "GET" else None) from None
            if entry is not None:
                service.record(who, f"infinstor:{method} {path[len(API_PREFIX):].split('/')[0]}", status, entry,
                               {k: data.get(k) for k in ("granted", "revoked") if k in data} or None)  # fmt: skip
            return who, None, (status, _json(data))
        try:
            return who, service.authorize(who, method, path, query, body, headers), None
        except Refusal as refusal:
            matched = match_route(method, path)
            action = matched[0] if matched else method
            is_write = not is_read(matched[0]) if matched else not web_ui.is_read(method, path)
            raise _Denied(who, refusal, action, (None, None) if is_write else None) from None

    async def _forward(self, scope, receive, send, outcome: Outcome) -> int:
        status = 500
        if outcome.after is None:
            async def tracking_send(message):
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, receive, tracking_send)
            return status
        # Hold the response until the grants it implies are written: the client's next request
        # must already see them.
        held: list[dict] = []

        async def holding_send(message):
            held.append(message)

        await self.app(scope, receive, holding_send)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        status = start["status"] if start else 500
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        try:
            await self._in_thread(outcome.after, status, body)
        except Exception:
            log.exception("InfinStor: could not record the grants of %s", outcome.operation)
            message = "The resource was created but its permissions could not be recorded."
            await _send(send, 500, Refusal(500, "INTERNAL_ERROR", message).body())
            return 500
        for message in held:
            await send(message)
        return status


class _TooLarge(Exception):
    pass


class _Denied(Exception):
    def __init__(self, who: Principal, refusal: Refusal, action: str, audit: tuple | None):
        self.who, self.refusal, self.action, self.audit = who, refusal, action, audit


def _unauthenticated(message: str) -> bytes:
    return _json({
        "error_code": "UNAUTHENTICATED",
        "message": f"Authentication required: {message}. Sign in from the InfinStor sidebar or run "
        "`infinstor login` (or pass an API token with `infinstor login --token`).",
    })  # fmt: skip


async def _read_body(receive) -> bytes | None:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge()
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _wants_html(scope) -> bool:
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"text/html" in accept


def _adding_headers(send, extra: list[tuple[bytes, bytes]]):
    if not extra:
        return send

    async def sending(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


_HTML = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]


async def _redirect(send, location: str):
    await send({"type": "http.response.start", "status": 302,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"), (b"cache-control", b"no-store")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b""})


async def _send(send, status: int, body: bytes, extra_headers: list | None = None, headers: list | None = None):
    """A whole response: JSON unless `headers` say otherwise (then they replace the content type)."""
    await send({
        "type": "http.response.start", "status": status,
        "headers": (headers or [(b"content-type", b"application/json")]) + [(b"content-length", str(len(body)).encode())]
        + (extra_headers or []),
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
    return None
