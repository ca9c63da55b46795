"""`ServiceStore`: the reads and writes of the service's own tables (db.py) but SCIM's (those are
`directory.DirectoryStore`): users as they were last seen, role grants, API tokens, the change
counters and the audit log; and what they are read into (`Grant`, `TokenRecord`, audit rows).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import sqlalchemy as sa

from .db import api_tokens, audit, bump, changes, grants, users

ROLES = ("reader", "editor", "manager")
ROLE_RANK = {"reader": 1, "editor": 2, "manager": 3}
PRINCIPAL_TYPES = ("user", "group", "org")
RESOURCE_TYPES = ("experiment", "registered_model")
TOKEN_PREFIX = "inf_"


def epoch_ms(seconds: float | None) -> int | None:
    """A time as the API gives it: milliseconds since the epoch, like MLflow's."""
    return None if seconds is None else int(seconds * 1000)


class AuditRow(TypedDict):
    """One row of the audit table, as `ServiceStore.audit_row` builds it for `record_many`."""

    at: float
    org: str
    username: str
    action: str
    status: int
    resource_type: str | None
    resource_id: str | None
    detail: str | None  # JSON


class AuditEvent(TypedDict):
    """One audit record as the audit log API returns it."""

    id: int
    at: int  # ms
    username: str
    action: str
    resource_type: str | None
    resource_id: str | None
    status: int
    detail: Any  # the JSON detail the writer gave


@dataclass(frozen=True)
class Grant:
    resource_type: str
    resource_id: str
    principal_type: str
    principal: str
    role: str
    granted_by: str | None
    granted_at: float

    def to_json(self) -> dict[str, object]:
        return {
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "principal_type": self.principal_type,
            "principal": self.principal,
            "role": self.role,
            "granted_by": self.granted_by,
            "granted_at": int(self.granted_at * 1000),
        }


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    org: str
    username: str
    name: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    last_used_at: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.token_id,
            "name": self.name,
            "username": self.username,
            "created_at": epoch_ms(self.created_at),
            "expires_at": epoch_ms(self.expires_at),
            "revoked_at": epoch_ms(self.revoked_at),
            "last_used_at": epoch_ms(self.last_used_at),
        }


def _hash_secret(secret: str) -> str:
    # API token secrets are 256-bit random strings, so one SHA-256 is enough (no slow KDF needed,
    # and none runs per request).
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_token(token: str) -> tuple[str, str] | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if len(token_id) != 16 or not secret or len(secret) > 128:
        return None
    return token_id, secret


class ServiceStore:
    """All reads and writes of our tables. Blocking: call from worker threads, never an event loop."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        # Told the kind ("grants", "tokens") of every change this store commits, so that caches of
        # the same process forget at once; other processes follow the counters (changes.py).
        self.listeners: list[Callable[[str], None]] = []
        self._seen: dict[tuple[str, str], tuple[str, str | None, float]] = {}
        self._seen_lock = threading.Lock()

    # -- users --------------------------------------------------------------------------------
    def see_user(self, org: str, username: str, email: str | None, groups: list[str], refresh_every: float = 300.0) -> None:
        """Provision on first sight; keep email and groups current (at most every few minutes)."""
        key = (org, username)
        groups_json = json.dumps(sorted(set(groups)))
        now = time.time()
        with self._seen_lock:
            seen = self._seen.get(key)
        if seen and seen[0] == groups_json and seen[1] == email and now - seen[2] < refresh_every:
            return
        groups_changed = False
        with self.engine.begin() as c:
            found = c.execute(sa.select(users.c.groups).where(users.c.org == org, users.c.username == username)).first()
            row: tuple[str | None] | None = None if found is None else (found[0],)
            if row is None:
                try:
                    with c.begin_nested():
                        c.execute(
                            users.insert().values(
                                org=org, username=username, email=email, groups=groups_json, first_seen=now, last_seen=now
                            )
                        )
                except sa.exc.IntegrityError:
                    row = (None,)  # another replica provisioned it first
            if row is not None:
                c.execute(
                    users.update()
                    .where(users.c.org == org, users.c.username == username)
                    .values(email=email, groups=groups_json, last_seen=now)
                )
                if row[0] != groups_json:
                    groups_changed = True
                    bump(c, "tokens")  # the user's API tokens act with these groups
        if groups_changed:
            self._changed("tokens")
        with self._seen_lock:
            self._seen[key] = (groups_json, email, now)

    def _changed(self, kind: str) -> None:
        """After the commit of a change of `kind` (whose counter its transaction raised)."""
        for listener in self.listeners:
            listener(kind)

    def user_groups(self, org: str, username: str) -> list[str] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(users.c.groups).where(users.c.org == org, users.c.username == username)).first()
        return None if row is None else list(json.loads(row[0] or "[]"))

    # -- grants -------------------------------------------------------------------------------
    @staticmethod
    def _principal_clause(username: str, groups: list[str], org: str) -> sa.ColumnElement[bool]:
        clauses = [sa.and_(grants.c.principal_type == "user", grants.c.principal == username)]
        if groups:
            clauses.append(sa.and_(grants.c.principal_type == "group", grants.c.principal.in_(list(groups))))
        clauses.append(sa.and_(grants.c.principal_type == "org", grants.c.principal == org))
        return sa.or_(*clauses)

    def role_on(self, org: str, resource_type: str, resource_id: str, username: str, groups: list[str]) -> str | None:
        """The caller's highest role on one resource (from their user, group and org grants)."""
        query = sa.select(grants.c.role).where(
            grants.c.org == org,
            grants.c.resource_type == resource_type,
            grants.c.resource_id == str(resource_id),
            self._principal_clause(username, groups, org),
        )
        with self.engine.connect() as c:
            roles = [r[0] for r in c.execute(query)]
        return max(roles, key=ROLE_RANK.__getitem__, default=None)

    def roles_on_any(self, org: str, resource_type: str, resource_ids: list[str], username: str, groups: list[str]) -> dict[str, str]:
        if not resource_ids:
            return {}
        query = sa.select(grants.c.resource_id, grants.c.role).where(
            grants.c.org == org,
            grants.c.resource_type == resource_type,
            grants.c.resource_id.in_([str(i) for i in resource_ids]),
            self._principal_clause(username, groups, org),
        )
        result: dict[str, str] = {}
        with self.engine.connect() as c:
            for resource_id, role in c.execute(query):
                if ROLE_RANK[role] > ROLE_RANK.get(result.get(resource_id, ""), 0):
                    result[resource_id] = role
        return result

    def readable_ids(self, org: str, resource_type: str, username: str, groups: list[str]) -> set[str]:
        query = sa.select(grants.c.resource_id).where(
            grants.c.org == org, grants.c.resource_type == resource_type, self._principal_clause(username, groups, org)
        )
        with self.engine.connect() as c:
            return {r[0] for r in c.execute(query)}

    def grant(
        self, org: str, resource_type: str, resource_id: str, principal_type: str, principal: str, role: str, granted_by: str | None
    ) -> None:
        if role not in ROLE_RANK or principal_type not in PRINCIPAL_TYPES or resource_type not in RESOURCE_TYPES:
            raise ValueError("unknown role, principal type or resource type")
        key = dict(org=org, resource_type=resource_type, resource_id=str(resource_id), principal_type=principal_type, principal=principal)
        now = time.time()
        with self.engine.begin() as c:
            where = [getattr(grants.c, k) == v for k, v in key.items()]
            updated = c.execute(grants.update().where(*where).values(role=role, granted_by=granted_by, granted_at=now)).rowcount
            if not updated:
                c.execute(grants.insert().values(**key, role=role, granted_by=granted_by, granted_at=now))
            bump(c, "grants")
        self._changed("grants")

    def revoke(self, org: str, resource_type: str, resource_id: str, principal_type: str, principal: str) -> bool:
        with self.engine.begin() as c:
            deleted = c.execute(
                grants.delete().where(
                    grants.c.org == org,
                    grants.c.resource_type == resource_type,
                    grants.c.resource_id == str(resource_id),
                    grants.c.principal_type == principal_type,
                    grants.c.principal == principal,
                )
            ).rowcount
            if deleted:
                bump(c, "grants")
        if deleted:
            self._changed("grants")
        return bool(deleted)

    def grants_held(self, org: str, username: str, groups: list[str]) -> list[Grant]:
        """Every grant to the user, one of their groups or their organisation."""
        query = (
            sa.select(
                grants.c.resource_type,
                grants.c.resource_id,
                grants.c.principal_type,
                grants.c.principal,
                grants.c.role,
                grants.c.granted_by,
                grants.c.granted_at,
            )
            .where(grants.c.org == org, self._principal_clause(username, groups, org))
            .order_by(grants.c.principal_type, grants.c.principal, grants.c.resource_type, grants.c.resource_id)
        )
        with self.engine.connect() as c:
            return [Grant(*row) for row in c.execute(query)]

    def user_id(self, org: str, username: str) -> int | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(users.c.id).where(users.c.org == org, users.c.username == username)).first()
        return None if row is None else int(row[0])

    def list_grants(self, org: str, resource_type: str, resource_id: str) -> list[Grant]:
        query = (
            sa.select(
                grants.c.resource_type,
                grants.c.resource_id,
                grants.c.principal_type,
                grants.c.principal,
                grants.c.role,
                grants.c.granted_by,
                grants.c.granted_at,
            )
            .where(grants.c.org == org, grants.c.resource_type == resource_type, grants.c.resource_id == str(resource_id))
            .order_by(grants.c.principal_type, grants.c.principal)
        )
        with self.engine.connect() as c:
            return [Grant(*row) for row in c.execute(query)]

    def rename_resource(self, org: str, resource_type: str, old_id: str, new_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(grants.delete().where(grants.c.org == org, grants.c.resource_type == resource_type, grants.c.resource_id == new_id))
            c.execute(
                grants.update()
                .where(grants.c.org == org, grants.c.resource_type == resource_type, grants.c.resource_id == old_id)
                .values(resource_id=new_id)
            )
            bump(c, "grants")
        self._changed("grants")

    def forget_resource(self, org: str, resource_type: str, resource_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(
                grants.delete().where(
                    grants.c.org == org, grants.c.resource_type == resource_type, grants.c.resource_id == str(resource_id)
                )
            )
            bump(c, "grants")
        self._changed("grants")

    # -- API tokens ---------------------------------------------------------------------------
    def create_token(self, org: str, username: str, name: str, ttl_seconds: float) -> tuple[str, TokenRecord]:
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        record = TokenRecord(token_id, org, username, name, now, now + ttl_seconds, None, None)
        with self.engine.begin() as c:
            c.execute(
                api_tokens.insert().values(
                    token_id=token_id,
                    secret_hash=_hash_secret(secret),
                    org=org,
                    username=username,
                    name=name,
                    created_at=now,
                    expires_at=record.expires_at,
                )
            )
        return f"{TOKEN_PREFIX}{token_id}_{secret}", record

    def check_token(self, token: str) -> TokenRecord | None:
        """The record of a valid (known, unexpired, unrevoked) API token; None otherwise."""
        record, state = self.inspect_token(token)
        return record if state == "valid" else None

    def inspect_token(self, token: str) -> tuple[TokenRecord | None, str]:
        """(record, state) of an API token in one lookup. State is "valid", "revoked" or "expired"
        (the secret matched), "wrong_secret" (the record is whose token was claimed), or
        "unknown" / "malformed" (no record)."""
        parts = split_api_token(token)
        if parts is None:
            return None, "malformed"
        token_id, secret = parts
        with self.engine.connect() as c:
            row = c.execute(sa.select(api_tokens).where(api_tokens.c.token_id == token_id)).mappings().first()
        if row is None:
            return None, "unknown"
        record = TokenRecord(
            row["token_id"],
            row["org"],
            row["username"],
            row["name"],
            row["created_at"],
            row["expires_at"],
            row["revoked_at"],
            row["last_used_at"],
        )
        if not hmac.compare_digest(row["secret_hash"], _hash_secret(secret)):
            return record, "wrong_secret"
        if row["revoked_at"] is not None:
            return record, "revoked"
        if row["expires_at"] <= time.time():
            return record, "expired"
        return record, "valid"

    def touch_token(self, token_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(api_tokens.update().where(api_tokens.c.token_id == token_id).values(last_used_at=time.time()))

    def list_tokens(self, org: str, username: str | None) -> list[TokenRecord]:
        query = sa.select(
            api_tokens.c.token_id,
            api_tokens.c.org,
            api_tokens.c.username,
            api_tokens.c.name,
            api_tokens.c.created_at,
            api_tokens.c.expires_at,
            api_tokens.c.revoked_at,
            api_tokens.c.last_used_at,
        ).where(api_tokens.c.org == org)
        if username is not None:
            query = query.where(api_tokens.c.username == username)
        with self.engine.connect() as c:
            return [TokenRecord(*row) for row in c.execute(query.order_by(api_tokens.c.created_at))]

    def revoke_token(self, org: str, token_id: str, username: str | None) -> bool:
        where = [api_tokens.c.org == org, api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None)]
        if username is not None:
            where.append(api_tokens.c.username == username)
        with self.engine.begin() as c:
            revoked = bool(c.execute(api_tokens.update().where(*where).values(revoked_at=time.time())).rowcount)
            if revoked:
                bump(c, "tokens")
        if revoked:
            self._changed("tokens")
        return revoked

    def change_versions(self) -> dict[str, int]:
        """The change counters (see `changes`), one small read."""
        with self.engine.connect() as c:
            return {kind: int(version) for kind, version in c.execute(sa.select(changes.c.kind, changes.c.version))}

    # -- audit --------------------------------------------------------------------------------
    @staticmethod
    def audit_row(
        org: str,
        username: str,
        action: str,
        status: int,
        resource_type: str | None = None,
        resource_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditRow:
        return {
            "at": time.time(),
            "org": org,
            "username": username,
            "action": action,
            "status": status,
            "resource_type": resource_type,
            "resource_id": None if resource_id is None else str(resource_id),
            "detail": None if detail is None else json.dumps(detail, sort_keys=True),
        }

    def record(
        self,
        org: str,
        username: str,
        action: str,
        status: int,
        resource_type: str | None = None,
        resource_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One audit row, written now (the service batches its rows through company/audit.py)."""
        self.record_many([self.audit_row(org, username, action, status, resource_type, resource_id, detail)])

    def record_many(self, rows: list[AuditRow]) -> None:
        """Audit rows as built by `audit_row`, in one transaction."""
        if rows:
            with self.engine.begin() as c:
                c.execute(audit.insert(), rows)

    def audit_log(self, org: str, limit: int = 100, before_id: int | None = None) -> list[AuditEvent]:
        query = sa.select(audit).where(audit.c.org == org)
        if before_id is not None:
            query = query.where(audit.c.id < before_id)
        with self.engine.connect() as c:
            rows = c.execute(query.order_by(audit.c.id.desc()).limit(limit)).mappings().all()
        return [
            {
                "id": r["id"],
                "at": int(r["at"] * 1000),
                "username": r["username"],
                "action": r["action"],
                "resource_type": r["resource_type"],
                "resource_id": r["resource_id"],
                "status": r["status"],
                "detail": json.loads(r["detail"]) if r["detail"] else None,
            }
            for r in rows
        ]
