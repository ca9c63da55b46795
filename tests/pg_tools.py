"""A throwaway PostgreSQL cluster (service_fixture.PostgresCluster) that can also be stopped and
started again on the same port, as a database restart or fail-over looks to the service."""

from __future__ import annotations

import subprocess
import time

import psycopg2

from service_fixture import PostgresCluster


class RestartablePostgres(PostgresCluster):
    def _options(self) -> str:
        return f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c fsync=off -c full_page_writes=off"

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server; `fast` disconnects every client, like a restart or fail-over does."""
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    def start_server(self) -> None:
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                self._options(),
                "start",
            ]
        )

    def postmaster_pid(self) -> int | None:
        """The server's main process, while it runs (its first line of postmaster.pid)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        result = subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"], capture_output=True, timeout=30)
        return result.returncode == 0

    def wait_accepting(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
