"""The users and groups a company's directory provisions by SCIM, and what they mean for access.

`DirectoryStore` keeps the SCIM resources of each organisation in our tables (db.py, schema
step 3) and the SCIM tokens that the organisation's admins create for their directory. Every write
that changes who may do what (a user deactivated, deleted or reactivated, a membership, a group's
name or existence) raises the "tokens" change counter in its transaction, as grant and token
changes do (changes.py): every replica stops reusing what it decided within about two change polls.

`Directory` answers, per request, the caller's groups and whether the directory still admits them:

- A user SCIM marked `active: false` or deleted is refused, whatever token they bring (until SCIM
  provisions them again); deprovisioning also revokes their API tokens.
- Groups come from `scim.groups` (config): `token` (the token's claim; SCIM's only when the
  provider left the claim out for overage), `scim` (SCIM membership only), or `both` (the
  default): the token's groups and SCIM's, where SCIM decides for the groups it knows: a group that
  SCIM provisions counts only while SCIM lists the user in it, so removing a user from a group in
  the directory takes its roles away even while an older token still names it.
- A SCIM user is the same person as a token's user when SCIM's `userName` equals the token's
  username claim (case-insensitively, as SCIM compares userName). A group is named, in grants, by
  its `displayName` or, with `scim.group_name: externalId`, its externalId (e.g. Entra's object id,
  which is what Entra's `groups` claim holds).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .db import api_tokens, bump, scim_deprovisioned, scim_groups, scim_members, scim_tokens, scim_users
from .oidc_auth import InvalidToken
from .service_store import ServiceStore, epoch_ms

if TYPE_CHECKING:
    from .changes import ChangeWatcher

SCIM_TOKEN_PREFIX = "scim_"

# A resource as the SCIM models dump it (JSON), and a group's member: (member id, "User" or
# "Group", display name).
Resource = dict[str, Any]
Member = tuple[str, str, str | None]


@dataclass(frozen=True)
class ScimTokenRecord:
    token_id: str
    org: str
    name: str
    created_by: str
    created_at: float
    revoked_at: float | None
    last_used_at: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.token_id,
            "name": self.name,
            "created_by": self.created_by,
            "created_at": epoch_ms(self.created_at),
            "revoked_at": epoch_ms(self.revoked_at),
            "last_used_at": epoch_ms(self.last_used_at),
        }


@dataclass(frozen=True)
class Row:
    """A stored SCIM resource: its JSON and the columns kept beside it."""

    scim_id: str
    resource: Resource
    created_at: float
    modified_at: float
    version: int
    members: tuple[Member, ...] = ()  # groups
    groups: tuple[tuple[str, str], ...] = ()  # users: (group id, displayName)


@dataclass(frozen=True)
class UserState:
    known: bool  # SCIM provisioned (or deleted) this user
    admitted: bool  # not deactivated or deleted by SCIM
    groups: tuple[str, ...]  # the user's SCIM groups, by the configured name
    managed: frozenset[str]  # of the token's groups, those SCIM provisions


class Conflict(Exception):
    """A userName already taken in the organisation."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_scim_token(token: str) -> tuple[str, str] | None:
    if not token.startswith(SCIM_TOKEN_PREFIX):
        return None
    token_id, _, secret = token[len(SCIM_TOKEN_PREFIX) :].partition("_")
    if len(token_id) != 16 or not secret or len(secret) > 128:
        return None
    return token_id, secret


class DirectoryStore:
    """Reads and writes of the SCIM tables. Blocking: call from worker threads."""

    def __init__(self, service_store: ServiceStore) -> None:
        self.service_store = service_store  # its listeners hear of our "tokens" changes
        self.engine = service_store.engine

    def _changed(self) -> None:
        self.service_store._changed("tokens")

    # -- SCIM tokens --------------------------------------------------------------------------
    def create_token(self, org: str, name: str, created_by: str) -> tuple[str, ScimTokenRecord]:
        token_id, secret, now = secrets.token_hex(8), secrets.token_urlsafe(32), time.time()
        with self.engine.begin() as c:
            c.execute(
                scim_tokens.insert().values(
                    token_id=token_id, secret_hash=_hash(secret), org=org, name=name, created_by=created_by, created_at=now
                )
            )
        return f"{SCIM_TOKEN_PREFIX}{token_id}_{secret}", ScimTokenRecord(token_id, org, name, created_by, now, None, None)

    def check_token(self, token: str) -> ScimTokenRecord | None:
        parts = split_scim_token(token)
        if parts is None:
            return None
        with self.engine.connect() as c:
            row = c.execute(sa.select(scim_tokens).where(scim_tokens.c.token_id == parts[0])).mappings().first()
        if row is None or row["revoked_at"] is not None or not hmac.compare_digest(row["secret_hash"], _hash(parts[1])):
            return None
        return ScimTokenRecord(row["token_id"], row["org"], row["name"], row["created_by"], row["created_at"], None, row["last_used_at"])

    def touch_token(self, token_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(scim_tokens.update().where(scim_tokens.c.token_id == token_id).values(last_used_at=time.time()))

    def list_tokens(self, org: str) -> list[ScimTokenRecord]:
        columns = [scim_tokens.c[k] for k in ("token_id", "org", "name", "created_by", "created_at", "revoked_at", "last_used_at")]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(*columns).where(scim_tokens.c.org == org).order_by(scim_tokens.c.created_at))
            return [ScimTokenRecord(*row) for row in rows]

    def revoke_token(self, org: str, token_id: str) -> bool:
        with self.engine.begin() as c:
            where = [scim_tokens.c.org == org, scim_tokens.c.token_id == token_id, scim_tokens.c.revoked_at.is_(None)]
            return bool(c.execute(scim_tokens.update().where(*where).values(revoked_at=time.time())).rowcount)

    # -- users --------------------------------------------------------------------------------
    def get_user(self, org: str, scim_id: str) -> Row | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(scim_users).where(scim_users.c.org == org, scim_users.c.scim_id == scim_id)).mappings().first()
            if row is None:
                return None
            return self._user_row(c, org, row)

    def _user_row(self, c: sa.Connection, org: str, row: Mapping[Any, Any]) -> Row:
        """A user's stored row (by column name) with its groups."""
        groups = c.execute(
            sa.select(scim_groups.c.scim_id, scim_groups.c.display_name)
            .join(scim_members, sa.and_(scim_members.c.org == scim_groups.c.org, scim_members.c.group_id == scim_groups.c.scim_id))
            .where(scim_members.c.org == org, scim_members.c.member_id == row["scim_id"])
            .order_by(scim_groups.c.display_name)
        ).all()
        return Row(
            row["scim_id"],
            json.loads(row["resource"]),
            row["created_at"],
            row["modified_at"],
            row["version"],
            groups=tuple((g[0], g[1]) for g in groups),
        )

    def users(self, org: str, user_name: str | None = None, external_id: str | None = None, scim_id: str | None = None) -> list[Row]:
        """Every user of the organisation, or those with this userName / externalId / id."""
        query = sa.select(scim_users).where(scim_users.c.org == org)
        if user_name is not None:
            query = query.where(scim_users.c.user_key == user_name.lower())
        if external_id is not None:
            query = query.where(scim_users.c.external_id == external_id)
        if scim_id is not None:
            query = query.where(scim_users.c.scim_id == scim_id)
        with self.engine.connect() as c:
            rows = c.execute(query.order_by(scim_users.c.id)).mappings().all()
            memberships: dict[str, list[tuple[str, str]]] = {}
            if rows:
                found = c.execute(
                    sa.select(scim_members.c.member_id, scim_groups.c.scim_id, scim_groups.c.display_name)
                    .join(scim_groups, sa.and_(scim_members.c.org == scim_groups.c.org, scim_members.c.group_id == scim_groups.c.scim_id))
                    .where(scim_members.c.org == org, scim_members.c.member_id.in_([r["scim_id"] for r in rows]))
                )
                for member_id, group_id, name in found:
                    memberships.setdefault(member_id, []).append((group_id, name))
        return [
            Row(
                r["scim_id"],
                json.loads(r["resource"]),
                r["created_at"],
                r["modified_at"],
                r["version"],
                groups=tuple(sorted(memberships.get(r["scim_id"], []), key=lambda g: g[1])),
            )
            for r in rows
        ]

    def create_user(self, org: str, user_name: str, external_id: str | None, active: bool, resource: Resource) -> Row:
        key, now, scim_id = user_name.lower(), time.time(), uuid.uuid4().hex
        with self.engine.begin() as c:
            if c.execute(sa.select(scim_users.c.id).where(scim_users.c.org == org, scim_users.c.user_key == key)).first():
                raise Conflict(user_name)
            try:
                with c.begin_nested():
                    c.execute(
                        scim_users.insert().values(
                            org=org,
                            scim_id=scim_id,
                            user_name=user_name,
                            user_key=key,
                            external_id=external_id,
                            active=active,
                            resource=json.dumps(resource),
                            created_at=now,
                            modified_at=now,
                            version=1,
                        )
                    )
            except sa.exc.IntegrityError:
                raise Conflict(user_name) from None  # another replica created it meanwhile
            # Provisioned again: the deletion no longer holds (and an inactive user is deprovisioned).
            c.execute(scim_deprovisioned.delete().where(scim_deprovisioned.c.org == org, scim_deprovisioned.c.user_key == key))
            if not active:
                self._revoke_api_tokens(c, org, key, now)
            bump(c, "tokens")
        self._changed()
        return Row(scim_id, resource, now, now, 1)

    def update_user(
        self,
        org: str,
        scim_id: str,
        user_name: str,
        external_id: str | None,
        active: bool,
        resource: Resource,
        expected_version: int | None = None,
    ) -> Row | None:
        """The new state of a user (None: no such user; ValueError: not the expected version)."""
        key, now = user_name.lower(), time.time()
        with self.engine.begin() as c:
            row = c.execute(sa.select(scim_users).where(scim_users.c.org == org, scim_users.c.scim_id == scim_id)).mappings().first()
            if row is None:
                return None
            if expected_version is not None and row["version"] != expected_version:
                raise ValueError("version")
            if (
                key != row["user_key"]
                and c.execute(sa.select(scim_users.c.id).where(scim_users.c.org == org, scim_users.c.user_key == key)).first()
            ):
                raise Conflict(user_name)
            c.execute(
                scim_users.update()
                .where(scim_users.c.id == row["id"])
                .values(
                    user_name=user_name,
                    user_key=key,
                    external_id=external_id,
                    active=active,
                    resource=json.dumps(resource),
                    modified_at=now,
                    version=row["version"] + 1,
                )
            )
            if (row["active"] and not active) or key != row["user_key"]:
                # Deactivated (or renamed: the old name's tokens belong to nobody provisioned now).
                self._revoke_api_tokens(c, org, row["user_key"], now)
            bump(c, "tokens")
            result = self._user_row(c, org, {**row, "resource": json.dumps(resource), "modified_at": now, "version": row["version"] + 1})
        self._changed()
        return result

    def delete_user(self, org: str, scim_id: str, expected_version: int | None = None) -> bool:
        now = time.time()
        with self.engine.begin() as c:
            row = c.execute(sa.select(scim_users).where(scim_users.c.org == org, scim_users.c.scim_id == scim_id)).mappings().first()
            if row is None:
                return False
            if expected_version is not None and row["version"] != expected_version:
                raise ValueError("version")
            c.execute(scim_members.delete().where(scim_members.c.org == org, scim_members.c.member_id == scim_id))
            c.execute(scim_users.delete().where(scim_users.c.id == row["id"]))
            where = [scim_deprovisioned.c.org == org, scim_deprovisioned.c.user_key == row["user_key"]]
            if not c.execute(sa.select(scim_deprovisioned.c.at).where(*where)).first():
                c.execute(scim_deprovisioned.insert().values(org=org, user_key=row["user_key"], at=now))
            self._revoke_api_tokens(c, org, row["user_key"], now)
            bump(c, "tokens")
        self._changed()
        return True

    @staticmethod
    def _revoke_api_tokens(c: sa.Connection, org: str, user_key: str, now: float) -> None:
        c.execute(
            api_tokens.update()
            .where(
                api_tokens.c.org == org,
                sa.func.lower(api_tokens.c.username) == user_key,
                api_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )

    # -- groups -------------------------------------------------------------------------------
    def _members(self, c: sa.Connection, org: str, group_ids: list[str]) -> dict[str, tuple[Member, ...]]:
        found: dict[str, list[Member]] = {}
        if group_ids:
            rows = c.execute(
                sa.select(scim_members.c.group_id, scim_members.c.member_id, scim_members.c.member_type, scim_members.c.display)
                .where(scim_members.c.org == org, scim_members.c.group_id.in_(group_ids))
                .order_by(scim_members.c.member_id)
            )
            for group_id, member_id, member_type, display in rows:
                found.setdefault(group_id, []).append((member_id, member_type, display))
        return {k: tuple(v) for k, v in found.items()}

    def groups(self, org: str, display_name: str | None = None, external_id: str | None = None, scim_id: str | None = None) -> list[Row]:
        query = sa.select(scim_groups).where(scim_groups.c.org == org)
        if display_name is not None:
            query = query.where(sa.func.lower(scim_groups.c.display_name) == display_name.lower())
        if external_id is not None:
            query = query.where(scim_groups.c.external_id == external_id)
        if scim_id is not None:
            query = query.where(scim_groups.c.scim_id == scim_id)
        with self.engine.connect() as c:
            rows = c.execute(query.order_by(scim_groups.c.id)).mappings().all()
            members = self._members(c, org, [r["scim_id"] for r in rows])
        return [
            Row(
                r["scim_id"],
                json.loads(r["resource"]),
                r["created_at"],
                r["modified_at"],
                r["version"],
                members=members.get(r["scim_id"], ()),
            )
            for r in rows
        ]

    def _check_members(self, c: sa.Connection, org: str, members: list[Member]) -> None:
        for member_id, member_type, _ in members:
            table = scim_users if member_type == "User" else scim_groups
            if not c.execute(sa.select(table.c.id).where(table.c.org == org, table.c.scim_id == member_id)).first():
                raise LookupError(member_id)

    def create_group(self, org: str, display_name: str, external_id: str | None, resource: Resource, members: list[Member]) -> Row:
        now, scim_id = time.time(), uuid.uuid4().hex
        with self.engine.begin() as c:
            self._check_members(c, org, members)
            c.execute(
                scim_groups.insert().values(
                    org=org,
                    scim_id=scim_id,
                    display_name=display_name,
                    external_id=external_id,
                    resource=json.dumps(resource),
                    created_at=now,
                    modified_at=now,
                    version=1,
                )
            )
            self._set_members(c, org, scim_id, members)
            bump(c, "tokens")
        self._changed()
        return Row(scim_id, resource, now, now, 1, members=tuple(sorted(members)))

    def update_group(
        self,
        org: str,
        scim_id: str,
        display_name: str,
        external_id: str | None,
        resource: Resource,
        members: list[Member],
        expected_version: int | None = None,
    ) -> Row | None:
        now = time.time()
        with self.engine.begin() as c:
            row = c.execute(sa.select(scim_groups).where(scim_groups.c.org == org, scim_groups.c.scim_id == scim_id)).mappings().first()
            if row is None:
                return None
            if expected_version is not None and row["version"] != expected_version:
                raise ValueError("version")
            self._check_members(c, org, members)
            c.execute(
                scim_groups.update()
                .where(scim_groups.c.id == row["id"])
                .values(
                    display_name=display_name,
                    external_id=external_id,
                    resource=json.dumps(resource),
                    modified_at=now,
                    version=row["version"] + 1,
                )
            )
            self._set_members(c, org, scim_id, members)
            bump(c, "tokens")
        self._changed()
        return Row(scim_id, resource, row["created_at"], now, row["version"] + 1, members=tuple(sorted(members)))

    @staticmethod
    def _set_members(c: sa.Connection, org: str, group_id: str, members: list[Member]) -> None:
        c.execute(scim_members.delete().where(scim_members.c.org == org, scim_members.c.group_id == group_id))
        unique = {member_id: (member_id, member_type, display) for member_id, member_type, display in members}
        if unique:
            c.execute(
                scim_members.insert(),
                [{"org": org, "group_id": group_id, "member_id": m, "member_type": t, "display": d} for m, t, d in unique.values()],
            )

    def delete_group(self, org: str, scim_id: str, expected_version: int | None = None) -> bool:
        with self.engine.begin() as c:
            row = c.execute(sa.select(scim_groups).where(scim_groups.c.org == org, scim_groups.c.scim_id == scim_id)).mappings().first()
            if row is None:
                return False
            if expected_version is not None and row["version"] != expected_version:
                raise ValueError("version")
            c.execute(
                scim_members.delete().where(
                    scim_members.c.org == org, sa.or_(scim_members.c.group_id == scim_id, scim_members.c.member_id == scim_id)
                )
            )
            c.execute(scim_groups.delete().where(scim_groups.c.id == row["id"]))
            bump(c, "tokens")
        self._changed()
        return True

    # -- what access sees ---------------------------------------------------------------------
    def user_state(self, org: str, username: str, token_groups: tuple[str, ...], group_name: str) -> UserState:
        key = username.lower()
        name_column = scim_groups.c.external_id if group_name == "externalId" else scim_groups.c.display_name
        with self.engine.connect() as c:
            user = c.execute(
                sa.select(scim_users.c.scim_id, scim_users.c.active).where(scim_users.c.org == org, scim_users.c.user_key == key)
            ).first()
            deleted = (
                user is None
                and c.execute(
                    sa.select(scim_deprovisioned.c.at).where(scim_deprovisioned.c.org == org, scim_deprovisioned.c.user_key == key)
                ).first()
                is not None
            )
            groups: list[str] = []
            if user is not None:
                groups = [
                    g
                    for (g,) in c.execute(
                        sa.select(name_column)
                        .join(
                            scim_members, sa.and_(scim_members.c.org == scim_groups.c.org, scim_members.c.group_id == scim_groups.c.scim_id)
                        )
                        .where(scim_members.c.org == org, scim_members.c.member_id == user[0])
                        .order_by(name_column)
                    )
                    if g
                ]
            managed: set[str] = set()
            if token_groups:
                managed = {
                    g for (g,) in c.execute(sa.select(name_column).where(scim_groups.c.org == org, name_column.in_(list(token_groups))))
                }
        return UserState(user is not None or deleted, user is not None and bool(user[1]), tuple(groups), frozenset(managed))


class Directory:
    """The caller's groups and admission, from the token and SCIM, reused under the "tokens" counter."""

    def __init__(self, store: DirectoryStore, groups_from: str, group_name: str, changes: ChangeWatcher, reuse_seconds: float):
        self.store, self.groups_from, self.group_name = store, groups_from, group_name
        self.changes, self.reuse_seconds = changes, reuse_seconds
        # (org, username in lower case, token groups) -> (state, reuse until, "tokens" counter)
        self._cache: OrderedDict[tuple[str, str, tuple[str, ...]], tuple[UserState, float, int]] = OrderedDict()
        self._lock = threading.Lock()
        store.service_store.listeners.append(self._forget)

    def _forget(self, kind: str) -> None:
        if kind == "tokens":
            with self._lock:
                self._cache.clear()

    def _state(self, org: str, username: str, token_groups: tuple[str, ...]) -> UserState:
        key = (org, username.lower(), token_groups)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic() and cached[2] == self.changes.version("tokens"):
            return cached[0]
        counter = self.changes.version("tokens")  # read before the database: a change after it shows
        state = self.store.user_state(org, username, token_groups, self.group_name)
        if counter is not None and self.reuse_seconds > 0:
            with self._lock:
                self._cache[key] = (state, time.monotonic() + self.reuse_seconds, counter)
                while len(self._cache) > 50_000:
                    self._cache.popitem(last=False)
        return state

    def groups_for(self, org: str, username: str, token_groups: Iterable[str], overage: bool = False) -> tuple[str, ...]:
        """The caller's groups; InvalidToken if the directory deprovisioned them."""
        token_groups = tuple(token_groups)
        state = self._state(org, username, token_groups if self.groups_from == "both" else ())
        if state.known and not state.admitted:
            raise InvalidToken(
                "this account was deprovisioned by the organisation's directory (SCIM)",
                "deprovisioned",
                {"username": username, "org": org, "verified": True},
            )
        if self.groups_from == "scim" or (self.groups_from == "token" and overage and not token_groups):
            return state.groups
        if self.groups_from == "token":
            return token_groups
        kept = [g for g in token_groups if g not in state.managed or g in state.groups]
        return tuple(dict.fromkeys([*kept, *state.groups]))
