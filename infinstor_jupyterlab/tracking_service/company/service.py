"""`CompanyService`: the decisions of company mode, put together from their parts.

authentication.py says who calls; access.py what role they hold on a resource; kinds.py and
searches.py what each MLflow operation is about; rest_api.py answers our own API; audit.py keeps
the record. This class wires them to one configuration, policy and store, and decides on one
request at a time. Blocking: it runs in the middleware's worker threads.
"""

from __future__ import annotations

import json
from typing import Any

from .. import job_tokens, web_ui
from ..browser import BrowserSignIn
from ..changes import ChangeWatcher
from ..config import ServiceConfig
from ..directory import Directory, DirectoryStore
from ..oidc_auth import TokenVerifier, rewrite_create_run
from ..policy import KINDS, REFUSED, Policy, is_read, match_route
from ..service_store import ServiceStore
from ..signin_audit import FailedSignIns
from .access import Access
from .audit import AuditWriter
from .authentication import Authenticator
from .cache import ReusedDecisions
from .lookups import Lookups, with_workspace
from .params import Params, parse_params
from .principals import AuditEntry, Outcome, Principal
from .refusals import Refusal, forbidden
from .rest_api import RestApi

OPEN_PATHS = frozenset({"/health", "/version"})
UI_PATHS = frozenset({"/", "/favicon.ico"})


def is_ui_path(path: str) -> bool:
    return path in UI_PATHS or path.startswith("/static-files/")


class CompanyService:
    """Authentication and authorization decisions; blocking (runs in worker threads)."""

    def __init__(self, config: ServiceConfig, policy: Policy, store: ServiceStore, verifier: TokenVerifier | None = None):
        self.config = config
        self.policy = policy
        self.store = store
        verifier = verifier or TokenVerifier(
            config.issuer,
            config.audience,
            jwks_uri=config.jwks_uri,
            leeway=config.leeway,
            claim_names=config.claims,
            audience_claim=config.audience_claim,
        )
        self.browser = BrowserSignIn(config.browser, config.issuer, config.audience) if config.browser else None
        # Reused decisions: (what, reuse until, change counter they were made under); see changes.py.
        self.changes = ChangeWatcher(store.change_versions, config.change_poll_seconds)
        # SCIM provisioning (scim.py) and what it means for a caller's groups (directory.py).
        self.directory_store = DirectoryStore(store)
        self.directory = Directory(
            self.directory_store, config.groups_from, config.scim_group_name, self.changes, config.grant_cache_seconds
        )
        self._scim: Any = None
        self.audit = AuditWriter(store)
        failed_sign_ins = FailedSignIns(self.audit.add)
        self.audit.collectors.append(failed_sign_ins.collect)
        self._reused = {
            "grants": ReusedDecisions("grants", self.changes, config.grant_cache_seconds),
            "tokens": ReusedDecisions("tokens", self.changes, config.grant_cache_seconds),
        }
        store.listeners.append(self._forget_reused)
        self.authn = Authenticator(config, store, verifier, self.directory, self._reused["tokens"], failed_sign_ins)
        self.verifier = verifier
        self.lookups = Lookups()
        self.access = Access(store, self.lookups, self._reused["grants"])
        self.api = RestApi(self)

    def _forget_reused(self, kind: str) -> None:
        """This process changed grants or tokens: forget the decisions of that kind at once (other
        replicas follow the change counters)."""
        self._reused[kind].clear()

    # -- SCIM ------------------------------------------------------------------------------------
    def scim_application(self) -> Any:
        if self._scim is None:  # built on first use: the SCIM models take a moment to load
            from ..scim import ScimApplication

            self._scim = ScimApplication(self.directory_store)
        return self._scim

    def touch_scim_token(self, token_id: str) -> None:
        self.authn.touch(f"scim:{token_id}", lambda: self.directory_store.touch_token(token_id))

    def record_scim(self, record: Any, method: str, path: str, status: int) -> None:
        who = Principal(f"scim:{record.name}", record.org, (), None, "scim")
        parts = [p for p in path.split("/") if p]
        kind = {"Users": "scim_user", "Groups": "scim_group"}.get(parts[0] if parts else "", "scim")
        self.record(who, f"scim:{method} {parts[0] if parts else ''}", status, (kind, parts[1] if len(parts) > 1 else None))

    # -- authorization of one MLflow request ---------------------------------------------------
    def authorize(
        self, who: Principal, method: str, path: str, query: str, body: bytes | None, headers: list[tuple[bytes, bytes]] | None = None
    ) -> Outcome:
        with_workspace(who.org)
        matched = match_route(method, path)
        if who.kind == "job":
            assert who.job_scope is not None
            if matched is None and not is_ui_path(path):
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
            if is_ui_path(path):
                return Outcome(who)
            raise forbidden("This operation is not available on this service.")
        operation, path_vars = matched
        # An OTLP export's body is protobuf or OTLP/JSON, read by its own handler, never as MLflow JSON.
        params = parse_params(query, None if KINDS.get(operation) == "span_export" else body, method)
        params.raw_body = body
        params.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers or []}
        return self.authorize_operation(who, operation, params, path_vars)

    def authorize_operation(self, who: Principal, operation: str, params: Params, path_vars: dict[str, str]) -> Outcome:
        """The policy and resource checks of one MLflow operation, from its parameters (a REST
        request's, or the input of the GraphQL field that mirrors it)."""
        kind = self.policy.kinds.get(operation)
        if kind is None:
            reason = REFUSED.get(operation)
            raise forbidden(f"{operation} is not available on this service" + (f": {reason}." if reason else "."))
        need = self.policy.role_for(operation)
        if need == "admin" and not who.is_admin:
            raise forbidden(f"{operation} is reserved to organisation admins.")
        outcome = Outcome(who, operation)
        kind.resolve(self, who, operation, need, params, path_vars, outcome)
        if operation == "CreateRun" and outcome.respond is None:
            outcome.body = rewrite_create_run(outcome.body if outcome.body is not None else (params.raw_body or b"{}"), who.username)
        if is_read(operation):
            outcome.audit = None
        elif outcome.audit is None:
            outcome.audit = (None, None)
        return outcome

    def record(self, who: Principal, action: str, status: int, entry: AuditEntry | None, detail: dict[str, Any] | None = None) -> None:
        resource_type, resource_id = entry or (None, None)
        self.audit.add(self.store.audit_row(who.org, who.username, action, status, resource_type, resource_id, detail))
