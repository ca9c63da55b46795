"""Jobs persist in a small SQLite database in the InfinStor data directory.

Blocking by nature: the manager calls it through `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from ..paths import ensure_private_dir
from .models import Job

SCHEMA_VERSION = 1
_COLUMNS = (
    "id", "path", "kind", "target", "status", "parameters", "experiment_id", "run_id", "run_name",
    "project_dir", "entry_point", "options", "include_folder", "created_at", "started_at",
    "finished_at", "failure_reason", "user", "target_state",
)  # fmt: skip
_JSON = {"parameters", "options", "target_state"}


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        ensure_private_dir(self.path.parent)
        # SQLite creates the -wal and -shm files with the database's mode: create it 0600 first.
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        for existing in (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            if existing.exists() and existing.stat().st_mode & 0o077:
                os.chmod(existing, 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version < 1:
                self._db.executescript(
                    """
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
                )
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _row(job: Job) -> tuple:
        values = []
        for name in _COLUMNS:
            value = getattr(job, name)
            if name in _JSON:
                value = json.dumps(value)
            elif name == "include_folder":
                value = int(value)
            values.append(value)
        return tuple(values)

    @staticmethod
    def _job(row: tuple) -> Job:
        data = dict(zip(_COLUMNS, row))
        for name in _JSON:
            data[name] = json.loads(data[name])
        data["include_folder"] = bool(data["include_folder"])
        return Job(**data)

    def save(self, job: Job) -> None:
        placeholders = ",".join("?" for _ in _COLUMNS)
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO jobs ({','.join(_COLUMNS)}) VALUES ({placeholders})", self._row(job))

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {','.join(_COLUMNS)} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def list(self, statuses: tuple[str, ...] | None = None, limit: int = 500) -> list[Job]:
        query = f"SELECT {','.join(_COLUMNS)} FROM jobs"
        args: list = []
        if statuses:
            query += f" WHERE status IN ({','.join('?' for _ in statuses)})"
            args.extend(statuses)
        query += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [self._job(r) for r in rows]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
