"""The job store's `jobs.db` under alembic (its own version table, `infinstor_jobs_alembic_version`).

A database made by the release before alembic (its SQL frozen below, with rows) upgrades in place
and keeps every job; a fresh one gets the head revision and exactly the table store.py declares;
two labs opening a fresh database at once both succeed; a database of a newer release is refused
with a message that says so, and left untouched.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from infinstor_jupyterlab.jobs import store as job_store
from infinstor_jupyterlab.jobs.models import Job
from infinstor_jupyterlab.jobs.store import JobStore, SchemaTooNew

# The previous release's jobs/store.py, frozen: its schema and its way of writing a row.
PREVIOUS_RELEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL,
    target TEXT NOT NULL, status TEXT NOT NULL, parameters TEXT NOT NULL,
    experiment_id TEXT NOT NULL, run_id TEXT NOT NULL, run_name TEXT,
    project_dir TEXT NOT NULL, entry_point TEXT NOT NULL, options TEXT NOT NULL,
    include_folder INTEGER NOT NULL, created_at REAL NOT NULL, started_at REAL,
    finished_at REAL, failure_reason TEXT, user TEXT, target_state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
"""
PREVIOUS_RELEASE_COLUMNS = (
    "id",
    "path",
    "kind",
    "target",
    "status",
    "parameters",
    "experiment_id",
    "run_id",
    "run_name",
    "project_dir",
    "entry_point",
    "options",
    "include_folder",
    "created_at",
    "started_at",
    "finished_at",
    "failure_reason",
    "user",
    "target_state",
)
# fmt: skip below: one row a job, its values in PREVIOUS_RELEASE_COLUMNS's order.
PREVIOUS_RELEASE_ROWS = [
    ("a1", "n.ipynb", "notebook", "inline", "FINISHED", '{"alpha": 2}', "1", "r1", "first", "/p/a1", "main",
     '{"env_manager": "local"}', 0, 1700000000.5, 1700000001.0, 1700000060.25, None, "alice", '{"pid": 42}'),
    ("a2", "proj", "project", "ec2", "RUNNING", "{}", "1", "r2", None, "/p/a2", "train",
     '{"children": ["a3"]}', 1, 1700000100.0, 1700000101.0, None, None, None, '{"instance_id": "i-1"}'),
    ("a3", "n.ipynb", "notebook", "inline", "FAILED", '{"x": [1, 2]}', "2", "r3", "é ünïcode", "/p/a3", "main",
     "{}", 0, 1700000200.0, None, 1700000201.0, "RuntimeError: boom", "bob", "{}"),
]  # fmt: skip


def make_previous_release_db(path, rows=PREVIOUS_RELEASE_ROWS, user_version=1):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(PREVIOUS_RELEASE_SCHEMA)
    db.execute(f"PRAGMA user_version={user_version}")
    placeholders = ",".join("?" for _ in PREVIOUS_RELEASE_COLUMNS)
    for row in rows:
        db.execute(f"INSERT OR REPLACE INTO jobs ({','.join(PREVIOUS_RELEASE_COLUMNS)}) VALUES ({placeholders})", row)
    db.close()


def dump(path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT {','.join(PREVIOUS_RELEASE_COLUMNS)} FROM jobs ORDER BY id").fetchall()
    finally:
        db.close()


def revision(path) -> str | None:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT version_num FROM {job_store.VERSION_TABLE}").fetchone()[0]
    finally:
        db.close()


def schema_drift(path) -> list:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as c:
            include = lambda name, type_, *_: type_ != "table" or name != job_store.VERSION_TABLE  # noqa: E731
            context = MigrationContext.configure(c, opts={"include_name": include, "compare_type": True})
            return compare_metadata(context, job_store.metadata)
    finally:
        engine.dispose()


def test_a_database_of_the_previous_release_upgrades_in_place_keeping_every_job(tmp_path):
    path = tmp_path / "jobs.db"
    make_previous_release_db(path)
    store = JobStore(path)
    try:
        assert revision(path) == job_store.revision_of(job_store.SCHEMA_VERSION)
        assert dump(path) == sorted(PREVIOUS_RELEASE_ROWS)
        # The one difference the upgrade leaves: the old `id TEXT PRIMARY KEY` lacked NOT NULL (an
        # SQLite quirk; ids always come from Job.new_id), which SQLite cannot add in place.
        drift = schema_drift(path)
        assert [(d[0][0], d[0][2], d[0][3]) for d in drift] == [("modify_nullable", "jobs", "id")], drift
        # The rows read back through the store as the jobs they were.
        first = store.get("a1")
        assert first is not None
        assert (first.parameters, first.options, first.target_state, first.include_folder) == (
            {"alpha": 2},
            {"env_manager": "local"},
            {"pid": 42},
            False,
        )
        assert [j.id for j in store.list()] == ["a3", "a2", "a1"]  # newest first
        assert [j.id for j in store.list(("RUNNING",))] == ["a2"]
        assert store.get("a2").include_folder is True  # type: ignore[union-attr]
        # ... and the store goes on writing them.
        second = store.get("a2")
        assert second is not None
        second.status = "FINISHED"
        store.save(second)
        assert store.get("a2").status == "FINISHED"  # type: ignore[union-attr]
    finally:
        store.close()
    JobStore(path).close()  # reopened at head: nothing to do, nothing lost
    assert len(dump(path)) == 3


def test_a_previous_release_table_left_without_its_user_version_is_adopted(tmp_path):
    path = tmp_path / "jobs.db"
    make_previous_release_db(path, rows=PREVIOUS_RELEASE_ROWS[:1], user_version=0)
    JobStore(path).close()
    assert revision(path) == job_store.revision_of(job_store.SCHEMA_VERSION)
    assert dump(path) == PREVIOUS_RELEASE_ROWS[:1]


def test_a_fresh_database_gets_the_head_revision(tmp_path):
    path = tmp_path / "jobs" / "jobs.db"
    store = JobStore(path)
    try:
        assert revision(path) == job_store.revision_of(job_store.SCHEMA_VERSION)
        assert schema_drift(path) == []
        job = Job(
            id="j1",
            path="n.ipynb",
            kind="notebook",
            target="inline",
            status="QUEUED",
            parameters={"a": 1},
            experiment_id="0",
            run_id="r",
            run_name=None,
            project_dir="p",
        )
        store.save(job)
        assert store.get("j1") == job
        store.delete("j1")
        assert store.get("j1") is None
    finally:
        store.close()


def test_two_labs_opening_a_fresh_database_at_once_both_succeed(tmp_path):
    path = tmp_path / "jobs.db"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store():
        barrier.wait()
        try:
            JobStore(path).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert revision(path) == job_store.revision_of(job_store.SCHEMA_VERSION)


@pytest.mark.parametrize("newer", ["9999", "abc123def"])
def test_a_database_of_a_newer_release_is_refused_and_left_alone(tmp_path, newer):
    path = tmp_path / "jobs.db"
    make_previous_release_db(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"CREATE TABLE {job_store.VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    db.execute(f"INSERT INTO {job_store.VERSION_TABLE} VALUES ('{newer}')")
    db.close()
    with pytest.raises(SchemaTooNew, match=r"jobs\.db is at .*(newer than|unknown to) this release of infinstor-jupyterlab"):
        JobStore(path)
    assert revision(path) == newer
    assert dump(path) == sorted(PREVIOUS_RELEASE_ROWS)


def test_a_pre_alembic_database_of_an_unknown_step_is_refused(tmp_path):
    path = tmp_path / "jobs.db"
    make_previous_release_db(path, user_version=7)
    with pytest.raises(SchemaTooNew, match="schema version 7, unknown to this release"):
        JobStore(path)
    assert dump(path) == sorted(PREVIOUS_RELEASE_ROWS)
