"""Alembic's entry point for the job store's revisions: run on the connection `store.migrate` hands over.

No alembic.ini and no offline mode: `store.migrate` (called when a JobStore opens) is the one way
they run, inside its `BEGIN IMMEDIATE` transaction.
"""

from alembic import context

from infinstor_jupyterlab.jobs import store

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the job store's migrations through infinstor_jupyterlab.jobs.store.migrate")
context.configure(connection=connection, target_metadata=store.metadata, version_table=store.VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
