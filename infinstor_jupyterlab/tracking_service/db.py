"""The company service's own tables: users, role grants, API tokens and the audit log.

They live beside MLflow's tables (same database by default, `infinstor_` prefix). Their schema is
upgraded at start-up by alembic from the revisions in `migrations/versions`, with our own version
table (`infinstor_alembic_version`), so MLflow's alembic history (`alembic_version`) is never
touched and ours does not depend on its revisions; MLflow's auth module does the same. Works on
SQLite and PostgreSQL (SQLAlchemy Core only).

Why our own grant table rather than MLflow's auth permission store: MLflow's store grants to
users and to roles that users are *assigned* to; we need grants to IdP groups and to a whole
organisation that follow the token's claims on every request, with no per-user assignment to keep
in sync, and roles whose allowed operations come from a policy file.
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
from pathlib import Path

import sqlalchemy as sa

# The tables as the latest revision leaves them (a test compares the two on SQLite and PostgreSQL).
metadata = sa.MetaData()

users = sa.Table(
    "infinstor_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org", sa.String(63), nullable=False),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("groups", sa.Text, nullable=False, default="[]"),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.UniqueConstraint("org", "username", name="uq_infinstor_users_org_username"),
)

grants = sa.Table(
    "infinstor_grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org", sa.String(63), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("resource_id", sa.String(512), nullable=False),
    sa.Column("principal_type", sa.String(16), nullable=False),
    sa.Column("principal", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("granted_by", sa.String(255)),
    sa.Column("granted_at", sa.Float, nullable=False),
    sa.UniqueConstraint("org", "resource_type", "resource_id", "principal_type", "principal", name="uq_infinstor_grants"),
    sa.Index("ix_infinstor_grants_principal", "org", "principal_type", "principal"),
)

api_tokens = sa.Table(
    "infinstor_api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_id", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("org", sa.String(63), nullable=False),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("last_used_at", sa.Float),
    sa.Index("ix_infinstor_api_tokens_user", "org", "username"),
)

audit = sa.Table(
    "infinstor_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("org", sa.String(63), nullable=False),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("resource_type", sa.String(32)),
    sa.Column("resource_id", sa.String(512)),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Index("ix_infinstor_audit_org_at", "org", "at"),
)


# One counter per kind of cached decision ("grants", "tokens"), raised in the same transaction as
# every change of that kind: a replica compares it, polled about once a second, with the counter
# it saw when it cached a decision (service/changes.py), so a change on one replica reaches the
# caches of every other within that poll.
changes = sa.Table(
    "infinstor_changes",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)
CHANGE_KINDS = ("grants", "tokens")

# SCIM 2.0 provisioning (service/scim.py, service/directory.py), per organisation. A resource is
# kept as the JSON the SCIM models dump, beside the columns that are searched or joined on; a
# group's members live in their own table (a user's groups are read from it). A user deleted by
# SCIM leaves a row in `scim_deprovisioned`, so that tokens issued before keep failing until SCIM
# provisions the user again. Changes that affect access raise the "tokens" counter.
scim_tokens = sa.Table(
    "infinstor_scim_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_id", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("org", sa.String(63), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("last_used_at", sa.Float),
    sa.Index("ix_infinstor_scim_tokens_org", "org"),
)

scim_users = sa.Table(
    "infinstor_scim_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org", sa.String(63), nullable=False),
    sa.Column("scim_id", sa.String(64), nullable=False),
    sa.Column("user_name", sa.String(255), nullable=False),
    sa.Column("user_key", sa.String(255), nullable=False),  # userName, lower-case: SCIM compares it so
    sa.Column("external_id", sa.String(255)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("modified_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.UniqueConstraint("org", "scim_id", name="uq_infinstor_scim_users_id"),
    sa.UniqueConstraint("org", "user_key", name="uq_infinstor_scim_users_name"),
    sa.Index("ix_infinstor_scim_users_external", "org", "external_id"),
)

scim_groups = sa.Table(
    "infinstor_scim_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org", sa.String(63), nullable=False),
    sa.Column("scim_id", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("external_id", sa.String(255)),
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("modified_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.UniqueConstraint("org", "scim_id", name="uq_infinstor_scim_groups_id"),
    sa.Index("ix_infinstor_scim_groups_name", "org", "display_name"),
    sa.Index("ix_infinstor_scim_groups_external", "org", "external_id"),
)

scim_members = sa.Table(
    "infinstor_scim_members",
    metadata,
    sa.Column("org", sa.String(63), primary_key=True),
    sa.Column("group_id", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("member_type", sa.String(16), nullable=False),  # User or Group
    sa.Column("display", sa.String(255)),
    sa.Index("ix_infinstor_scim_members_member", "org", "member_id"),
)

scim_deprovisioned = sa.Table(
    "infinstor_scim_deprovisioned",
    metadata,
    sa.Column("org", sa.String(63), primary_key=True),
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
)


def _bump(connection, kind: str) -> None:
    """Raise `kind`'s counter in the transaction that makes the change (see ServiceStore._changed)."""
    connection.execute(changes.update().where(changes.c.kind == kind).values(version=changes.c.version + 1))


MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "infinstor_alembic_version"
# What alembic keeps in VERSION_TABLE; tests read and set it (alembic's own layout).
version_table = sa.Table(VERSION_TABLE, sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))
# The releases before alembic kept their step in this one-row table; migrate() replaces it.
LEGACY_SCHEMA_TABLE = "infinstor_schema"
# Revision ids are the schema steps, zero-padded: "0003" is step 3.
SCHEMA_VERSION = 3

ROLES = ("reader", "editor", "manager")
ROLE_RANK = {"reader": 1, "editor": 2, "manager": 3}
PRINCIPAL_TYPES = ("user", "group", "org")
RESOURCE_TYPES = ("experiment", "registered_model")
TOKEN_PREFIX = "inf_"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer release than this one."""


def revision_of(step: int) -> str:
    return f"{step:04d}"


def current_version(connection: sa.Connection) -> int:
    """Our schema step in this database: alembic's revision, else a pre-alembic release's step, else 0."""
    inspector = sa.inspect(connection)
    if inspector.has_table(VERSION_TABLE):
        revision = connection.execute(sa.select(version_table.c.version_num)).scalar()
        if revision is None:
            return 0
        if not revision.isdigit():  # not one of ours: a later release with another naming
            raise SchemaTooNew(f"the InfinStor tables are at revision {revision!r}, unknown to this release; upgrade the service")
        return int(revision)
    if inspector.has_table(LEGACY_SCHEMA_TABLE):
        step = connection.execute(sa.text(f"SELECT version FROM {LEGACY_SCHEMA_TABLE}")).scalar()
        return int(step or 0)
    return 0


def _alembic_config(connection: sa.Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection  # migrations/env.py runs on it, in our transaction
    return config


def migrate(engine: sa.Engine) -> int:
    """Bring our tables to SCHEMA_VERSION with alembic; safe when several replicas start at once.

    A database of a release before alembic (its step in `infinstor_schema`) is stamped at that
    step, the old table dropped, and the later revisions applied, all in one transaction."""
    from alembic import command

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # One migrator at a time across replicas; released at commit.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7107274757)"))
        version = current_version(connection)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the InfinStor tables are at schema version {version}, newer than this release ({SCHEMA_VERSION}); upgrade the service"
            )
        config = _alembic_config(connection)
        inspector = sa.inspect(connection)
        if inspector.has_table(LEGACY_SCHEMA_TABLE) and not inspector.has_table(VERSION_TABLE):
            if version:
                command.stamp(config, revision_of(version))
            connection.execute(sa.text(f"DROP TABLE {LEGACY_SCHEMA_TABLE}"))
        command.upgrade(config, "head")
    return SCHEMA_VERSION


def make_engine(uri: str) -> sa.Engine:
    if uri.startswith("sqlite"):
        engine = sa.create_engine(uri, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(uri, pool_pre_ping=True, pool_size=10, max_overflow=20)


@dataclass(frozen=True)
class Grant:
    resource_type: str
    resource_id: str
    principal_type: str
    principal: str
    role: str
    granted_by: str | None
    granted_at: float

    def to_json(self) -> dict:
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

    def to_json(self) -> dict:
        ms = lambda t: None if t is None else int(t * 1000)  # noqa: E731
        return {
            "id": self.token_id,
            "name": self.name,
            "username": self.username,
            "created_at": ms(self.created_at),
            "expires_at": ms(self.expires_at),
            "revoked_at": ms(self.revoked_at),
            "last_used_at": ms(self.last_used_at),
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
                    _bump(c, "tokens")  # the user's API tokens act with these groups
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
    def _principal_clause(username: str, groups: list[str], org: str):
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
            _bump(c, "grants")
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
                _bump(c, "grants")
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
            _bump(c, "grants")
        self._changed("grants")

    def forget_resource(self, org: str, resource_type: str, resource_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(
                grants.delete().where(
                    grants.c.org == org, grants.c.resource_type == resource_type, grants.c.resource_id == str(resource_id)
                )
            )
            _bump(c, "grants")
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
                _bump(c, "tokens")
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
        detail: dict | None = None,
    ) -> dict:
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
        detail: dict | None = None,
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                audit.insert().values(
                    at=time.time(),
                    org=org,
                    username=username,
                    action=action,
                    status=status,
                    resource_type=resource_type,
                    resource_id=None if resource_id is None else str(resource_id),
                    detail=None if detail is None else json.dumps(detail, sort_keys=True),
                )
            )

    def record_many(self, rows: list[dict]) -> None:
        """Audit rows as built by `audit_row`, in one transaction."""
        if rows:
            with self.engine.begin() as c:
                c.execute(audit.insert(), rows)

    def audit_log(self, org: str, limit: int = 100, before_id: int | None = None) -> list[dict]:
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
