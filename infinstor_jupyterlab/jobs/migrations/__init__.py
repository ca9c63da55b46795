"""Alembic revisions of the job store's `jobs.db` (run by store.migrate, through env.py).

The version is kept in `infinstor_jobs_alembic_version`. Revision ids are the schema steps,
zero-padded ("0001" is step 1, the schema the releases before alembic marked `PRAGMA
user_version=1`), and store.SCHEMA_VERSION names the head. To change the schema: change the table
in store.py, append a revision file (the next step, its `down_revision` the previous one) and raise
SCHEMA_VERSION; never edit a released revision. tests/test_job_store_migrations.py checks that the
head revision builds exactly store.metadata.
"""
