"""Step 1: the jobs table, as the releases before alembic made it (their `PRAGMA user_version=1`)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("experiment_id", sa.Text, nullable=False),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("run_name", sa.Text),
        sa.Column("project_dir", sa.Text, nullable=False),
        sa.Column("entry_point", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("include_folder", sa.Integer, nullable=False),
        sa.Column("created_at", sa.REAL, nullable=False),
        sa.Column("started_at", sa.REAL),
        sa.Column("finished_at", sa.REAL),
        sa.Column("failure_reason", sa.Text),
        sa.Column("user", sa.Text),
        sa.Column("target_state", sa.Text, nullable=False),
    )
    op.create_index("jobs_status", "jobs", ["status"])
    op.create_index("jobs_created", "jobs", ["created_at"])
