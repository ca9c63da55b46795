"""Back up and restore the company tracking service: its PostgreSQL database (MLflow's tables and
ours: grants, users, API tokens, audit) and its artifact store, together.

    python -m infinstor_jupyterlab.tracking_service.backup backup \\
        --database-uri postgresql+psycopg2://mlflow@db/mlflow --artifacts s3://bucket/mlflow --out /backups/2026-11-29
    python -m infinstor_jupyterlab.tracking_service.backup restore \\
        --database-uri postgresql+psycopg2://mlflow@db-new/mlflow --artifacts s3://bucket-new/mlflow --from /backups/2026-11-29

The password, if any, is read from the URI or PGPASSWORD and handed to pg_dump/pg_restore through
the environment, never on a command line. `--artifacts` is a local directory or `s3://bucket/prefix`
(boto3; `--s3-endpoint-url` or AWS_ENDPOINT_URL for S3-compatible stores).

A backup directory holds `database.dump` (pg_dump custom format: one consistent snapshot),
`artifacts/` (a copy of the store, taken *after* the snapshot, so every artifact the database
refers to is in it; files written meanwhile are harmless extras), and `manifest.json` (the dump's
SHA-256, the row count of every table, the artifact count and bytes).

Restore refuses a target database that already has tables (restore into a new, empty database,
then point the service at it), checks the dump's SHA-256, restores in one transaction, copies the
artifacts back, and checks that every table has the row count the manifest recorded.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

MANIFEST = "manifest.json"
DUMP = "database.dump"
ARTIFACTS = "artifacts"
FORMAT_VERSION = 1


class BackupError(Exception):
    pass


# -- PostgreSQL --------------------------------------------------------------------------------------
def _pg_tool(name: str) -> str:
    """The newest installed client (a dump needs a pg_dump at least as new as the server)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return path


def _libpq(database_uri: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment for the PostgreSQL client tools (no password in argv)."""
    url = sa.engine.make_url(database_uri)
    if url.get_backend_name() != "postgresql":
        raise BackupError(f"only PostgreSQL databases are backed up by this tool, not {url.get_backend_name()}")
    if not url.database:
        raise BackupError("the database URI names no database")
    args = ["--dbname", url.database]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "15"}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if key in url.query:
            env[f"PG{key.upper()}"] = str(url.query[key])
    return ["--no-password", *args], env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def _counts(connection: sa.Connection) -> dict[str, int]:
    names = sorted(sa.inspect(connection).get_table_names())
    return {name: connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one() for name in names}


def table_counts(database_uri: str) -> dict[str, int]:
    """Rows per table of the public schema."""
    engine = sa.create_engine(database_uri, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return _counts(connection)
    finally:
        engine.dispose()


def _dump(database_uri: str, out: Path) -> dict[str, int]:
    """pg_dump of one exported snapshot, and the row counts of that same snapshot."""
    connection_args, env = _libpq(database_uri)
    engine = sa.create_engine(database_uri, poolclass=sa.pool.NullPool)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
            with connection.begin():
                snapshot = connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                counts = _counts(connection)
                # The snapshot lives while this transaction is open: pg_dump sees exactly it.
                _run(
                    [
                        _pg_tool("pg_dump"),
                        *connection_args,
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        "--snapshot",
                        snapshot,
                        "--file",
                        str(out),
                    ],
                    env,
                )
        return counts
    finally:
        engine.dispose()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- artifact stores ----------------------------------------------------------------------------------
def _s3(location: str, endpoint_url: str | None) -> tuple[Any, str, str]:
    import boto3

    bucket, _, prefix = location[len("s3://") :].partition("/")
    if not bucket:
        raise BackupError(f"no bucket in {location}")
    client = boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None)
    return client, bucket, prefix.strip("/")


def copy_from_store(location: str, target: Path, endpoint_url: str | None = None) -> tuple[int, int]:
    """Copy the artifact store into `target`; returns (files, bytes)."""
    target.mkdir(parents=True, exist_ok=True)
    files = size = 0
    if location.startswith("s3://"):
        client, bucket, prefix = _s3(location, endpoint_url)
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) + 1 :] if prefix else item["Key"]
                if not relative or relative.endswith("/"):
                    continue
                destination = _inside(target, relative)
                destination.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, item["Key"], str(destination))
                files, size = files + 1, size + item["Size"]
        return files, size
    source = Path(location)
    if not source.is_dir():
        raise BackupError(f"the artifact store {location} is not a directory")
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.is_symlink():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            files, size = files + 1, size + path.stat().st_size
    return files, size


def copy_to_store(source: Path, location: str, endpoint_url: str | None = None) -> tuple[int, int]:
    files = size = 0
    paths = [p for p in sorted(source.rglob("*")) if p.is_file()]
    if location.startswith("s3://"):
        client, bucket, prefix = _s3(location, endpoint_url)
        for path in paths:
            key = "/".join(filter(None, [prefix, path.relative_to(source).as_posix()]))
            client.upload_file(str(path), bucket, key)
            files, size = files + 1, size + path.stat().st_size
        return files, size
    target = Path(location)
    target.mkdir(parents=True, exist_ok=True)
    for path in paths:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        files, size = files + 1, size + path.stat().st_size
    return files, size


def _inside(root: Path, relative: str) -> Path:
    destination = (root / relative).resolve()
    if not destination.is_relative_to(root.resolve()):
        raise BackupError(f"refusing an object key outside the store: {relative!r}")
    return destination


# -- backup and restore ---------------------------------------------------------------------------------
def backup(database_uri: str, artifacts: str, out: Path, *, s3_endpoint_url: str | None = None) -> dict[str, Any]:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # One consistent snapshot of every table (MLflow's and ours), in a format pg_restore checks.
    counts = _dump(database_uri, out / DUMP)
    files, size = copy_from_store(artifacts, out / ARTIFACTS, s3_endpoint_url)
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": started,
        "seconds": round(time.time() - started, 3),
        "database": {"file": DUMP, "sha256": _sha256(out / DUMP), "tables": counts},
        "artifacts": {"directory": ARTIFACTS, "files": files, "bytes": size},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def restore(database_uri: str, artifacts: str, source: Path, *, s3_endpoint_url: str | None = None) -> dict[str, Any]:
    source = Path(source)
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} holds no readable {MANIFEST}: {exc}") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    dump = source / manifest["database"]["file"]
    if _sha256(dump) != manifest["database"]["sha256"]:
        raise BackupError(f"{dump} does not match the SHA-256 in the manifest: the backup is damaged")
    existing = table_counts(database_uri)
    if existing:
        raise BackupError(
            f"the target database already has tables ({', '.join(list(existing)[:5])}...): restore into a new, empty database"
        )
    connection, env = _libpq(database_uri)
    _run([_pg_tool("pg_restore"), *connection, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", str(dump)], env)
    files, size = copy_to_store(source / manifest["artifacts"]["directory"], artifacts, s3_endpoint_url)
    restored = table_counts(database_uri)
    differ = {t: (n, restored.get(t)) for t, n in manifest["database"]["tables"].items() if restored.get(t) != n}
    if differ:
        raise BackupError(f"tables whose row counts differ from the backup (backed up, restored): {differ}")
    if files != manifest["artifacts"]["files"]:
        raise BackupError(f"{files} artifact files restored, {manifest['artifacts']['files']} backed up")
    return {"tables": restored, "artifacts": {"files": files, "bytes": size}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infinstor_jupyterlab.tracking_service.backup", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("backup", "restore"):
        p = sub.add_parser(name)
        p.add_argument(
            "--database-uri",
            default=os.environ.get("INFINSTOR_SERVICE_DATABASE_URI"),
            help="SQLAlchemy URI of the PostgreSQL database (default: INFINSTOR_SERVICE_DATABASE_URI)",
        )
        p.add_argument("--artifacts", required=True, help="the artifact store: a directory or s3://bucket/prefix")
        p.add_argument("--s3-endpoint-url", default=None, help="an S3-compatible endpoint (default: AWS_ENDPOINT_URL or AWS)")
        if name == "backup":
            p.add_argument("--out", required=True, type=Path, help="a new or empty directory")
        else:
            p.add_argument("--from", dest="source", required=True, type=Path, help="a directory written by `backup`")
    args = parser.parse_args(argv)
    if not args.database_uri:
        parser.error("--database-uri is required")
    try:
        if args.command == "backup":
            result = backup(args.database_uri, args.artifacts, args.out, s3_endpoint_url=args.s3_endpoint_url)
        else:
            result = restore(args.database_uri, args.artifacts, args.source, s3_endpoint_url=args.s3_endpoint_url)
    except BackupError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
