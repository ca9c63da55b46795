"""The company service's own tables under alembic, on SQLite and on a real PostgreSQL.

A fresh database, and one left by each schema step of the releases before alembic
(tests/legacy_service_schema.py, that release's own code), upgrade in place to the head revision,
keep their rows, end with exactly the tables db.py declares, and never touch MLflow's
`alembic_version`.
"""

from __future__ import annotations

import itertools
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import legacy_service_schema as legacy
from infinstor_jupyterlab.tracking_service import db
from infinstor_jupyterlab.tracking_service.service_store import ServiceStore

_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'service.db'}"
    else:
        uri = request.getfixturevalue("postgres_cluster").create_database(f"migrations_{next(_names)}")
    engine = db.make_engine(uri)
    yield engine
    engine.dispose()


def ours(name, type_, *_args) -> bool:
    # Only our tables (MLflow's or anything else in the same database is not ours to compare).
    table = name if type_ == "table" else None
    return table is None or (table.startswith("infinstor_") and table != db.VERSION_TABLE)


def schema_drift(engine: sa.Engine) -> list:
    """What alembic's autogenerate would change to make the database match db.metadata."""
    with engine.connect() as c:
        context = MigrationContext.configure(c, opts={"include_name": ours, "compare_type": True})
        return compare_metadata(context, db.metadata)


def revision(engine: sa.Engine) -> str | None:
    with engine.connect() as c:
        return c.execute(sa.select(db.version_table.c.version_num)).scalar()


def tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as c:
        return set(sa.inspect(c).get_table_names())


def test_a_fresh_database_gets_the_head_revision_in_its_own_version_table(engine):
    with engine.begin() as c:  # MLflow's own alembic history, in the same database by default
        c.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        c.execute(sa.text("INSERT INTO alembic_version VALUES ('mlflow_head')"))
    assert db.migrate(engine) == db.SCHEMA_VERSION
    assert revision(engine) == db.revision_of(db.SCHEMA_VERSION)
    assert db.LEGACY_SCHEMA_TABLE not in tables(engine)
    assert schema_drift(engine) == []
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["mlflow_head"]
        assert db.current_version(c) == db.SCHEMA_VERSION
    assert ServiceStore(engine).change_versions() == {"grants": 0, "tokens": 0}
    assert db.migrate(engine) == db.SCHEMA_VERSION  # idempotent
    assert revision(engine) == db.revision_of(db.SCHEMA_VERSION)


@pytest.mark.parametrize("step", [1, 2, 3])
def test_a_database_of_the_release_before_alembic_upgrades_in_place(engine, step):
    legacy.make_database(engine, step)
    store = ServiceStore(engine)
    if step >= 2:
        store.grant("acme", "experiment", "1", "group", "vision", "editor", "alice")
    with engine.begin() as c:  # a step-1 database has no change counters to raise: write the row itself
        c.execute(db.users.insert().values(org="acme", username="bob", email=None, groups='["vision"]', first_seen=1.0, last_seen=1.0))
        if step == 1:
            c.execute(
                db.grants.insert().values(
                    org="acme",
                    resource_type="experiment",
                    resource_id="1",
                    principal_type="group",
                    principal="vision",
                    role="editor",
                    granted_by="alice",
                    granted_at=1.0,
                )
            )
        c.execute(db.audit.insert().values(at=1.0, org="acme", username="alice", action="CreateExperiment", status=200))
    token, _ = store.create_token("acme", "alice", "ci", 3600)
    with engine.connect() as c:
        assert db.current_version(c) == step  # read from the old release's table

    assert db.migrate(engine) == db.SCHEMA_VERSION
    assert revision(engine) == db.revision_of(db.SCHEMA_VERSION)
    assert db.LEGACY_SCHEMA_TABLE not in tables(engine)
    assert schema_drift(engine) == []
    assert store.role_on("acme", "experiment", "1", "bob", ["vision"]) == "editor"
    assert store.user_groups("acme", "bob") == ["vision"]
    assert store.check_token(token) is not None
    assert [e["action"] for e in store.audit_log("acme")] == ["CreateExperiment"]
    expected = {"grants": 1, "tokens": 0} if step >= 2 else {"grants": 0, "tokens": 0}
    assert store.change_versions() == expected  # counters made once, never reset
    assert db.migrate(engine) == db.SCHEMA_VERSION
    assert store.change_versions() == expected


def test_a_database_migrated_by_a_newer_release_is_refused_untouched(engine):
    db.migrate(engine)
    with engine.begin() as c:
        c.execute(db.version_table.update().values(version_num=db.revision_of(db.SCHEMA_VERSION + 1)))
    with pytest.raises(db.SchemaTooNew, match=f"version {db.SCHEMA_VERSION + 1}, newer than this release"):
        db.migrate(engine)
    assert revision(engine) == db.revision_of(db.SCHEMA_VERSION + 1)


def test_replicas_migrating_at_once_apply_each_revision_once(engine):
    if engine.dialect.name == "sqlite":
        pytest.skip("replicas share a database only on a server database")
    errors: list[BaseException] = []

    def run():
        try:
            db.migrate(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert revision(engine) == db.revision_of(db.SCHEMA_VERSION)
    assert ServiceStore(engine).change_versions() == {"grants": 0, "tokens": 0}
