"""Real `jupyter server` processes for tests that need a server outside the test process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import requests

TOKEN = "infinstor-test-token"


def stop_process_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM a server started with start_new_session=True (and its children); SIGKILL after `grace`."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_until_healthy(proc: subprocess.Popen, url: str, timeout: float) -> bool:
    """Poll `url` until it answers 200 (True), or until the process exits or `timeout` passes
    (False): the caller reports which, with its own log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return True
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterServer:
    """A real `jupyter server` with the extension, on a given state directory."""

    def __init__(self, base, root, *, command=None, env=None, config=None):
        """`command` replaces `python -m jupyter` (e.g. the venv's `jupyter` by absolute path);
        `env` is laid over the environment (e.g. a PATH without the venv); `config` goes to a
        jupyter_server_config.json in the config directory."""
        self.base, self.root = base, root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "JPY_"))}
        environment.update(
            JUPYTER_DATA_DIR=str(base / "data"),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            JUPYTER_CONFIG_DIR=str(base / "config"),
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        environment.update(env or {})
        if config:
            (base / "config").mkdir(parents=True, exist_ok=True)
            (base / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        self.log = open(base / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [
                *(command or [sys.executable, "-m", "jupyter"]),
                "server",
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={root}",
            ],
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("api/status").ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
        raise RuntimeError("jupyter server did not start")

    def get(self, path, **kw):
        return requests.get(f"{self.url}/{path}", headers={"Authorization": f"token {TOKEN}"}, timeout=30, **kw)

    def post(self, path, json=None):
        return requests.post(f"{self.url}/{path}", headers={"Authorization": f"token {TOKEN}"}, json=json, timeout=120)

    def job(self, job_id):
        return self.get(f"infinstor/api/jobs/{job_id}").json()

    def wait_tracking(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.get("infinstor/api/status").json()["tracking"]["state"] == "running":
                return
            time.sleep(0.5)
        raise AssertionError("tracking never ran")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def mlflow_server_command(port: int | str, backend_store_uri: str, *options: str, workers: int = 1) -> list[str]:
    """`mlflow server --app-name infinstor` on loopback, run by this interpreter: how the tests start the service."""
    return [
        *(sys.executable, "-m", "mlflow", "server", "--app-name", "infinstor", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", str(workers), "--backend-store-uri", backend_store_uri, *options),
    ]


def kill_processes_mentioning(text: str) -> None:
    """Jobs outlive their Jupyter server by design; tests must not leave theirs behind."""
    import psutil

    victims = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if text in " ".join(proc.info["cmdline"] or []) or text in (proc.info["cwd"] or ""):
                victims.append(proc)
        except psutil.Error:
            continue
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, 10)


def process_tree(pid: int | None) -> list:
    """A process and all its descendants (psutil.Process), or [] when it is gone."""
    import psutil

    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
