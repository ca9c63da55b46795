"""A real Jupyter server with the extension, for benchmarks (not a test helper)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

TOKEN = "infinstor-bench-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    def __init__(self, base: Path, root: Path, extra_args: list[str] | None = None):
        self.base, self.root = base, root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {TOKEN}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "JPY_"))}
        env.update(
            JUPYTER_DATA_DIR=str(base / "data"),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            JUPYTER_CONFIG_DIR=str(base / "config"),
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        self.env = env
        self.log = open(base / "lab.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "server",
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={root}",
                *(extra_args or []),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait(lambda: self.get("api/status").ok, "jupyter server")

    def _wait(self, ready, what, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not become ready")

    def get(self, path, **kw):
        return self.session.get(f"{self.url}/{path}", timeout=60, **kw)

    def post(self, path, **kw):
        return self.session.post(f"{self.url}/{path}", timeout=300, **kw)

    def tracking(self) -> dict:
        self._wait(lambda: self.get("infinstor/api/status").json()["tracking"]["state"] == "running", "tracking")
        return self.get("infinstor/api/status").json()["tracking"]

    @property
    def secret(self) -> str:
        return (self.base / "data" / "infinstor" / "embedded" / "secret").read_text().strip()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
