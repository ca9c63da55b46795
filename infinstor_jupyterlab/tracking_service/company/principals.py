"""Who is calling (`Principal`), what the service decided to do with their request (`Outcome`), and
how an organisation claim becomes the name of an MLflow workspace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import job_tokens
from ..oidc_auth import InvalidToken

if TYPE_CHECKING:
    from ..graphql_authz import GraphQLCaller


@dataclass(frozen=True)
class Principal:
    username: str
    org: str
    groups: tuple[str, ...]
    email: str | None
    kind: str  # "oidc", "api_token", "job" or "scim"
    is_admin: bool = False
    job_scope: job_tokens.JobScope | None = field(default=None, compare=False)
    token_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "org": self.org,
            "groups": list(self.groups),
            "email": self.email,
            "admin": self.is_admin,
            "auth": self.kind,
        }


# (resource type, resource id) of a write to audit; either may be None.
AuditEntry = tuple[str | None, str | None]


@dataclass
class Outcome:
    """What the middleware does with a request once it is authorized."""

    principal: Principal
    operation: str | None = None
    body: bytes | None = None  # a rewritten request body to send instead of the client's
    query: str | None = None  # a rewritten query string to send instead of the client's
    respond: tuple[int, bytes] | None = None  # answer here, do not call MLflow
    respond_headers: list[tuple[bytes, bytes]] | None = None  # with these headers (default: JSON)
    after: Callable[[int, bytes], object] | None = None  # runs before the response leaves (grants)
    audit: AuditEntry | None = None  # a write to audit
    detail: dict[str, Any] | None = None
    graphql: GraphQLCaller | None = None  # the caller, for MLflow's GraphQL executor (see graphql_authz)


def workspace_name(org: str) -> str:
    """The MLflow workspace of an organisation claim (refused if it cannot name one)."""
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


def organisation_or_nothing(claim: str) -> str:
    try:
        return workspace_name(claim) if claim else ""
    except InvalidToken:
        return ""
