"""Jobs persist in a small SQLite database (`jobs.db`) in the InfinStor data directory.

SQLAlchemy Core; the schema is upgraded when the store opens, by alembic from the revisions in
`migrations/versions`, with our own version table (`infinstor_jobs_alembic_version`). A database
of a release before alembic (which marked its schema with `PRAGMA user_version`) is stamped at
that step and upgraded in place, keeping its rows.

Blocking by nature: the manager calls it through `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..paths import ensure_private_dir
from .models import Job

# The table as the latest revision leaves it (tests/test_job_store_migrations.py compares the two).
metadata = sa.MetaData()
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),  # JSON
    sa.Column("experiment_id", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("run_name", sa.Text),
    sa.Column("project_dir", sa.Text, nullable=False),
    sa.Column("entry_point", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),  # JSON
    sa.Column("include_folder", sa.Integer, nullable=False),  # 0 or 1
    sa.Column("created_at", sa.REAL, nullable=False),
    sa.Column("started_at", sa.REAL),
    sa.Column("finished_at", sa.REAL),
    sa.Column("failure_reason", sa.Text),
    sa.Column("user", sa.Text),
    sa.Column("target_state", sa.Text, nullable=False),  # JSON
    sa.Index("jobs_status", "status"),
    sa.Index("jobs_created", "created_at"),
)
_COLUMNS = tuple(c.name for c in jobs.columns)
_JSON = {"parameters", "options", "target_state"}

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "infinstor_jobs_alembic_version"
# What alembic keeps in VERSION_TABLE (its own layout); tests read and set it.
version_table = sa.Table(VERSION_TABLE, sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))
# Revision ids are the schema steps, zero-padded: "0001" is step 1.
SCHEMA_VERSION = 1
# The last step the releases before alembic knew (their `PRAGMA user_version`).
LEGACY_LAST_STEP = 1


class SchemaTooNew(RuntimeError):
    """jobs.db was upgraded by a newer release than this one."""


def revision_of(step: int) -> str:
    return f"{step:04d}"


def current_version(connection: sa.Connection) -> int:
    """The schema step of this database: alembic's revision, else a pre-alembic release's
    `user_version` (or 1 for its table without it), else 0 (empty)."""
    inspector = sa.inspect(connection)
    if inspector.has_table(VERSION_TABLE):
        revision = connection.execute(sa.select(version_table.c.version_num)).scalar()
        if revision is None:
            return 0
        if not revision.isdigit():  # not one of ours: a later release with another naming
            raise SchemaTooNew(f"jobs.db is at revision {revision!r}, unknown to this release of infinstor-jupyterlab; upgrade it")
        return int(revision)
    user_version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if user_version > LEGACY_LAST_STEP:
        raise SchemaTooNew(f"jobs.db is at schema version {user_version}, unknown to this release of infinstor-jupyterlab; upgrade it")
    if user_version == 0 and inspector.has_table("jobs"):
        return LEGACY_LAST_STEP  # the old release made the table and stopped before marking it
    return user_version


def _alembic_config(connection: sa.Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection  # migrations/env.py runs on it, in our transaction
    return config


def migrate(engine: sa.Engine) -> int:
    """Bring jobs.db to SCHEMA_VERSION with alembic, in one `BEGIN IMMEDIATE` transaction, so two
    labs opening the same database at once take turns (the second finds it at head)."""
    with writer(engine).begin() as connection:
        version = current_version(connection)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"jobs.db is at schema version {version}, newer than this release of infinstor-jupyterlab ({SCHEMA_VERSION}); "
                "upgrade it, or point c.InfinStor.jobs_dir elsewhere"
            )
        if version == SCHEMA_VERSION and sa.inspect(connection).has_table(VERSION_TABLE):
            return SCHEMA_VERSION  # the usual start: nothing to do, alembic not even imported
        from alembic import command

        config = _alembic_config(connection)
        if version and not sa.inspect(connection).has_table(VERSION_TABLE):
            command.stamp(config, revision_of(version))  # a pre-alembic database: its rows stay
        command.upgrade(config, "head")
    return SCHEMA_VERSION


def make_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        # SQLAlchemy, not the sqlite3 module, says when a transaction begins (see _begin): the
        # module's own implicit BEGIN comes late and leaves DDL outside the transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        # Writes (and migrations) take the write lock up front: a transaction that reads and then
        # writes could otherwise fail at once with "database is locked" rather than wait its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


_WRITE = "infinstor_write"


def writer(engine: sa.Engine) -> sa.Engine:
    """The engine whose transactions begin with `BEGIN IMMEDIATE`."""
    return engine.execution_options(**{_WRITE: True})


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        ensure_private_dir(self.path.parent)
        # SQLite creates the -wal and -shm files with the database's mode: create it 0600 first.
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        for existing in (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            if existing.exists() and existing.stat().st_mode & 0o077:
                os.chmod(existing, 0o600)
        self.engine = make_engine(self.path)
        self._writer = writer(self.engine)
        try:
            migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def _row(job: Job) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in _COLUMNS:
            value = getattr(job, name)
            if name in _JSON:
                value = json.dumps(value)
            elif name == "include_folder":
                value = int(value)
            values[name] = value
        return values

    @staticmethod
    def _job(row: sa.RowMapping) -> Job:
        data = dict(row)
        for name in _JSON:
            data[name] = json.loads(data[name])
        data["include_folder"] = bool(data["include_folder"])
        return Job(**data)

    def save(self, job: Job) -> None:
        row = self._row(job)
        statement = sqlite_insert(jobs).values(row)
        statement = statement.on_conflict_do_update(index_elements=[jobs.c.id], set_={k: v for k, v in row.items() if k != "id"})
        with self._writer.begin() as c:
            c.execute(statement)

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return self._job(row) if row else None

    def list(self, statuses: tuple[str, ...] | None = None, limit: int = 500) -> list[Job]:
        query = sa.select(jobs)
        if statuses:
            query = query.where(jobs.c.status.in_(statuses))
        query = query.order_by(jobs.c.created_at.desc()).limit(limit)
        with self.engine.connect() as c:
            rows = c.execute(query).mappings().all()
        return [self._job(r) for r in rows]

    def delete(self, job_id: str) -> None:
        with self._writer.begin() as c:
            c.execute(jobs.delete().where(jobs.c.id == job_id))
