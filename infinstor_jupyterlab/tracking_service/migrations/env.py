"""Alembic's entry point for our revisions: run on the connection `db.migrate` hands over.

There is no alembic.ini and no offline (SQL script) mode: `db.migrate` (the service's start-up and
`infinstor service migrate`) is the one way the revisions run, inside its transaction and, on
PostgreSQL, under its advisory lock.
"""

from alembic import context

from infinstor_jupyterlab.tracking_service import db

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the InfinStor migrations through infinstor_jupyterlab.tracking_service.db.migrate")
context.configure(connection=connection, target_metadata=db.metadata, version_table=db.VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
