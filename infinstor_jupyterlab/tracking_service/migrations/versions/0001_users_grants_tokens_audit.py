"""Step 1: users, role grants, API tokens and the audit log."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "infinstor_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org", sa.String(63), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.UniqueConstraint("org", "username", name="uq_infinstor_users_org_username"),
    )
    op.create_table(
        "infinstor_grants",
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
    )
    op.create_index("ix_infinstor_grants_principal", "infinstor_grants", ["org", "principal_type", "principal"])
    op.create_table(
        "infinstor_api_tokens",
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
    )
    op.create_index("ix_infinstor_api_tokens_user", "infinstor_api_tokens", ["org", "username"])
    op.create_table(
        "infinstor_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("org", sa.String(63), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("resource_type", sa.String(32)),
        sa.Column("resource_id", sa.String(512)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_infinstor_audit_org_at", "infinstor_audit", ["org", "at"])
