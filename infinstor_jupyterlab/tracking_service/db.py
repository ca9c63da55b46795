"""The company service's own tables (users, role grants, API tokens, the audit log, change
counters, SCIM's directory), how they are migrated, and the engine that reaches them. Their reads
and writes are `service_store.ServiceStore` and, for SCIM, `directory.DirectoryStore`.

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

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

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


def bump(connection: sa.Connection, kind: str) -> None:
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


def _alembic_config(connection: sa.Connection) -> Config:
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
        def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(uri, pool_pre_ping=True, pool_size=10, max_overflow=20)
