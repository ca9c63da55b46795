"""Step 3: SCIM 2.0 provisioning (tokens, users, groups, memberships, deprovisioned users)."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "infinstor_scim_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_id", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("org", sa.String(63), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("last_used_at", sa.Float),
    )
    op.create_index("ix_infinstor_scim_tokens_org", "infinstor_scim_tokens", ["org"])
    op.create_table(
        "infinstor_scim_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org", sa.String(63), nullable=False),
        sa.Column("scim_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("user_key", sa.String(255), nullable=False),
        sa.Column("external_id", sa.String(255)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("modified_at", sa.Float, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("org", "scim_id", name="uq_infinstor_scim_users_id"),
        sa.UniqueConstraint("org", "user_key", name="uq_infinstor_scim_users_name"),
    )
    op.create_index("ix_infinstor_scim_users_external", "infinstor_scim_users", ["org", "external_id"])
    op.create_table(
        "infinstor_scim_groups",
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
    )
    op.create_index("ix_infinstor_scim_groups_name", "infinstor_scim_groups", ["org", "display_name"])
    op.create_index("ix_infinstor_scim_groups_external", "infinstor_scim_groups", ["org", "external_id"])
    op.create_table(
        "infinstor_scim_members",
        sa.Column("org", sa.String(63), primary_key=True),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("member_type", sa.String(16), nullable=False),
        sa.Column("display", sa.String(255)),
    )
    op.create_index("ix_infinstor_scim_members_member", "infinstor_scim_members", ["org", "member_id"])
    op.create_table(
        "infinstor_scim_deprovisioned",
        sa.Column("org", sa.String(63), primary_key=True),
        sa.Column("user_key", sa.String(255), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
    )
