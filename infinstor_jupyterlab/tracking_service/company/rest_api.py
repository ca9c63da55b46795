"""Our own REST API, under /api/2.0/infinstor/: whoami, API and job tokens, sharing (permissions),
SCIM tokens and the audit log. Documented in docs/service.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import job_tokens
from ..service_store import PRINCIPAL_TYPES, RESOURCE_TYPES, ROLES
from .lookups import with_workspace
from .params import Params, parse_params, required
from .principals import AuditEntry, Principal
from .refusals import Refusal, bad_request, forbidden, not_found

if TYPE_CHECKING:
    from .service import CompanyService

API_PREFIX = "/api/2.0/infinstor/"
# (status, JSON answer, what to audit: None for a read)
Answer = tuple[int, dict[str, Any], AuditEntry | None]


class RestApi:
    def __init__(self, service: CompanyService):
        self.service = service

    def answer(self, who: Principal, method: str, path: str, query: str, body: bytes | None) -> Answer:
        """(status, JSON, audit entry) for a request under /api/2.0/infinstor/."""
        with_workspace(who.org)
        route = path[len(API_PREFIX) :].strip("/")
        params = parse_params(query, body)
        if route == "whoami" and method == "GET":
            return 200, who.to_json(), None
        if who.kind == "job":
            raise forbidden("A job token may not use this API.")
        if route == "tokens" and method == "POST":
            return self._create_token(who, params)
        if route == "tokens" and method == "GET":
            everyone = params.get("all") in ("true", "1") and who.is_admin
            records = self.service.store.list_tokens(who.org, None if everyone else who.username)
            return 200, {"tokens": [r.to_json() for r in records]}, None
        if route.startswith("tokens/") and method == "DELETE":
            token_id = route[len("tokens/") :]
            if not self.service.store.revoke_token(who.org, token_id, None if who.is_admin else who.username):
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
            self.service.audit.flush()
            before = params.get("before_id")
            return 200, {"events": self.service.store.audit_log(who.org, limit, int(before) if before else None)}, None
        raise not_found(f"No such InfinStor API: {method} {route}")

    def _create_token(self, who: Principal, params: Params) -> tuple[int, dict[str, Any], AuditEntry]:
        if who.kind != "oidc":
            raise forbidden("Create tokens while signed in with the identity provider, not with another token.")
        if (params.get("kind") or "api") == "job":
            return self._create_job_token(who, params)
        name = (params.get("name") or "").strip()
        if not name or len(name) > 255:
            raise bad_request("A token needs a name (1-255 characters).")
        given = params.get("expires_in_days")
        try:
            days = float(given) if given not in (None, "") else self.service.config.token_default_days
        except (TypeError, ValueError):
            raise bad_request("expires_in_days must be a number") from None
        if not 0 < days <= self.service.config.token_max_days:
            raise bad_request(f"expires_in_days must be more than 0 and at most {self.service.config.token_max_days:g}")
        token, record = self.service.store.create_token(who.org, who.username, name, days * 86400)
        return 200, {"token": token, **record.to_json()}, ("api_token", record.token_id)

    def _scim_tokens(self, who: Principal, method: str, route: str, params: Params) -> Answer:
        """The organisation's SCIM tokens (for its directory's provisioning): its admins only."""
        if not who.is_admin:
            raise forbidden("SCIM tokens are for organisation admins.")
        if route == "scim-tokens" and method == "GET":
            return 200, {"tokens": [t.to_json() for t in self.service.directory_store.list_tokens(who.org)]}, None
        if route == "scim-tokens" and method == "POST":
            if who.kind != "oidc":
                raise forbidden("Create tokens while signed in with the identity provider, not with another token.")
            name = (params.get("name") or "").strip()
            if not name or len(name) > 255:
                raise bad_request("A SCIM token needs a name (1-255 characters), e.g. the directory it is for.")
            token, record = self.service.directory_store.create_token(who.org, name, who.username)
            return 200, {"token": token, **record.to_json()}, ("scim_token", record.token_id)
        if route.startswith("scim-tokens/") and method == "DELETE":
            token_id = route[len("scim-tokens/") :]
            if not self.service.directory_store.revoke_token(who.org, token_id):
                raise not_found(f"No active SCIM token with id {token_id}")
            return 200, {}, ("scim_token", token_id)
        raise not_found(f"No such InfinStor API: {method} {route}")

    def _create_job_token(self, who: Principal, params: Params) -> tuple[int, dict[str, Any], AuditEntry]:
        if self.service.authn.job_key is None:
            raise Refusal(501, "NOT_IMPLEMENTED", "This service mints no job tokens (job_tokens.secret is not set).")
        run_id = required(params, "run_id")
        experiment_id = self.service.access.check_run(who, run_id, "editor")
        try:
            ttl = float(params.get("ttl_seconds") or 3600)
        except (TypeError, ValueError):
            raise bad_request("ttl_seconds must be a number") from None
        if not 0 < ttl <= self.service.config.job_token_max_seconds:
            raise bad_request(f"ttl_seconds must be more than 0 and at most {self.service.config.job_token_max_seconds:g}")
        job_id = (params.get("job_id") or "").strip() or f"{who.username}-{run_id[:8]}"
        token = job_tokens.issue(
            self.service.authn.job_key, job_id=job_id, run_id=run_id, experiment_id=experiment_id, ttl=ttl, workspace=who.org
        )
        return 200, {"token": token, "run_id": run_id, "experiment_id": experiment_id, "expires_in": int(ttl)}, ("run", run_id)

    def _resource(self, who: Principal, params: Params, need: str) -> tuple[str, str]:
        resource_type = required(params, "resource_type")
        resource_id = required(params, "resource_id")
        if resource_type not in RESOURCE_TYPES:
            raise bad_request(f"resource_type must be one of {', '.join(RESOURCE_TYPES)}")
        if resource_type == "experiment":
            self.service.access.check_experiment(who, resource_id, need)
        else:
            self.service.access.check_model(who, resource_id, need)
        return resource_type, resource_id

    def _permissions(self, who: Principal, method: str, params: Params) -> Answer:
        if method == "GET":
            resource_type, resource_id = self._resource(who, params, "reader")
            return 200, {"permissions": [g.to_json() for g in self.service.store.list_grants(who.org, resource_type, resource_id)]}, None
        if method not in ("POST", "DELETE"):
            raise Refusal(405, "BAD_REQUEST", "Use GET, POST or DELETE")
        resource_type, resource_id = self._resource(who, params, "manager")
        principal_type = required(params, "principal_type")
        principal = required(params, "principal")
        if principal_type not in PRINCIPAL_TYPES:
            raise bad_request(f"principal_type must be one of {', '.join(PRINCIPAL_TYPES)}")
        if principal_type == "org" and principal != who.org:
            raise bad_request("Only your own organisation can be given a role.")
        entry = (resource_type, resource_id)
        if method == "POST":
            role = required(params, "role")
            if role not in ROLES:
                raise bad_request(f"role must be one of {', '.join(ROLES)}")
            self.service.store.grant(who.org, resource_type, resource_id, principal_type, principal, role, who.username)
            return 200, {"granted": {"principal_type": principal_type, "principal": principal, "role": role}}, entry
        if not self.service.store.revoke(who.org, resource_type, resource_id, principal_type, principal):
            raise not_found(f"{principal_type} {principal} holds no role on this {resource_type}")
        return 200, {"revoked": {"principal_type": principal_type, "principal": principal}}, entry
