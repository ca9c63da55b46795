"""Step 2: one change counter per kind of cached decision ("grants", "tokens"; see changes.py)."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    changes = op.create_table(
        "infinstor_changes",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(changes, [{"kind": "grants", "version": 0}, {"kind": "tokens", "version": 0}])
