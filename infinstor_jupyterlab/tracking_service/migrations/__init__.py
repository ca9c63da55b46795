"""Alembic revisions of the company service's own tables (run by db.migrate, through env.py).

Their history is ours alone: the version is kept in `infinstor_alembic_version`, so MLflow's
alembic history (`alembic_version`, in the same database by default) is never touched. Revision
ids are the schema steps, zero-padded ("0003" is step 3), and db.SCHEMA_VERSION names the head.
To change the schema: change the tables in db.py, append a revision file (the next step, its
`down_revision` the previous one) and raise SCHEMA_VERSION; never edit a released revision.
tests/test_service_migrations.py checks that the head revision builds exactly db.metadata.
"""
