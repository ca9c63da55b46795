"""The company service's schema as the release before alembic made it (a test fixture, frozen).

Copied from `service/db.py` of that release: its tables and its hand-written migrator
(`MIGRATIONS`, the version in `infinstor_schema`), so upgrade tests start from a database exactly as
that release left it, at any of its steps.

The original docstring follows.

The company service's own tables: users, role grants, API tokens and the audit log.

They live beside MLflow's tables (same database by default, `infinstor_` prefix) and carry their
own schema version in `infinstor_schema`, upgraded at start-up by the ordered steps in
`MIGRATIONS` (MLflow's alembic history is MLflow's; ours must not depend on its revisions).
Works on SQLite and PostgreSQL (SQLAlchemy Core only).

Why our own grant table rather than MLflow's auth permission store: MLflow's store grants to
users and to roles that users are *assigned* to; we need grants to IdP groups and to a whole
organisation that follow the token's claims on every request, with no per-user assignment to keep
in sync, and roles whose allowed operations come from a policy file.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_table = sa.Table("infinstor_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

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


def _v1(connection) -> None:
    for table in (users, grants, api_tokens, audit):
        table.create(connection, checkfirst=True)


def _v2(connection) -> None:
    changes.create(connection, checkfirst=True)
    connection.execute(changes.insert(), [{"kind": kind, "version": 0} for kind in CHANGE_KINDS])


def _v3(connection) -> None:
    for table in (scim_tokens, scim_users, scim_groups, scim_members, scim_deprovisioned):
        table.create(connection, checkfirst=True)


# (version, step): each step brings the schema from version-1 to version.
MIGRATIONS = [(1, _v1), (2, _v2), (3, _v3)]


def make_database(engine: sa.Engine, step: int) -> None:
    """What that release's migrate() left at schema step `step`."""
    with engine.begin() as connection:
        schema_table.create(connection)
        for _version, run in MIGRATIONS[:step]:
            run(connection)
        connection.execute(schema_table.insert().values(version=step))
