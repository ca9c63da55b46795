"""The embedded default: a private MLflow tracking server for this user, started on first need.

It listens on loopback only, keeps its sqlite store and artifacts under the Jupyter data directory,
runs one worker with MLflow's job execution off, and answers only requests that present this
install's secret (see `auth.secret`). The supervisor restarts it if it dies and stops it with
Jupyter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path

import mlflow
import psutil
from tornado.httpclient import AsyncHTTPClient

from ...credentials.secret import SECRET_FILE_ENV, bearer_header, load_or_create_secret
from ...errors import TrackingUnavailable
from ...paths import ensure_private_dir, write_private_file
from .base import TrackingBackend, TrackingState, TrackingStatus

log = logging.getLogger(__name__)

EMBEDDED_URI_ENV = "INFINSTOR_EMBEDDED_URI"
_LOG_MAX_BYTES = 5 * 1024 * 1024


def find_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class EmbeddedTrackingServer(TrackingBackend):
    mode = "embedded"

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 120.0,
        max_restarts: int = 5,
        restart_window: float = 300.0,
        extra_args: list[str] | None = None,
    ):
        self.data_dir = ensure_private_dir(Path(data_dir))
        self.host = host
        self.port_path = self.data_dir / "port"
        # Reuse the last port when it is free: jobs that outlived a Jupyter restart know it.
        self.port = port or self._previous_port() or find_free_port(host)
        self.startup_timeout = startup_timeout
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.extra_args = list(extra_args or [])
        self.secret_path = self.data_dir / "secret"
        self._secret = load_or_create_secret(self.secret_path)
        self.log_path = self.data_dir / "server.log"
        self.pid_path = self.data_dir / "server.json"
        self._proc: asyncio.subprocess.Process | None = None
        self._state: TrackingState = "starting"
        self._message = "The local tracking service has not started yet."
        self._started_once = False
        self._start_task: asyncio.Task | None = None
        self._watch_task: asyncio.Task | None = None
        self._stopping = False
        self._crashes: deque[float] = deque()
        self._given_up = False

    def _previous_port(self) -> int | None:
        try:
            previous = int(self.port_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return previous if 0 < previous < 65536 and _port_is_free(self.host, previous) else None

    # -- TrackingBackend -------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    def auth_headers(self) -> dict[str, str]:
        return bearer_header(self._secret)

    def kernel_environment(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            EMBEDDED_URI_ENV: self.uri,
            SECRET_FILE_ENV: str(self.secret_path),
            # MLflow prints "View run … at: <tracking URI>" as a run ends; this loopback URI only
            # answers the lab and its kernels, so the link would be dead in the notebook.
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        }

    async def status(self) -> TrackingStatus:
        if not self._given_up and not self._is_alive() and not self._starting():
            self._kick_start()
        return TrackingStatus(
            mode="embedded",
            state=self._state,
            message=self._message,
            uri=self.uri,
            mlflow_version=mlflow.__version__,
        )

    async def ensure_running(self, timeout: float | None = None) -> None:
        if self._state == "running" and self._is_alive():
            return
        if self._given_up:
            raise TrackingUnavailable(self._message)
        task = self._kick_start()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout or self.startup_timeout)
        except TimeoutError:
            raise TrackingUnavailable("The local tracking service is still starting; try again in a few seconds.") from None
        if self._state != "running":
            raise TrackingUnavailable(self._message)

    async def restart(self) -> TrackingStatus:
        await self._terminate()
        self._given_up = False
        self._crashes.clear()
        task = self._kick_start()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), self.startup_timeout)
        return await self.status()

    async def stop(self) -> None:
        self._stopping = True
        if self._start_task and not self._start_task.done():
            self._start_task.cancel()
            with contextlib.suppress(BaseException):
                await self._start_task
        await self._terminate()

    # -- lifecycle -------------------------------------------------------------------------------
    def _is_alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _starting(self) -> bool:
        return self._start_task is not None and not self._start_task.done()

    def _kick_start(self) -> asyncio.Task:
        task = self._start_task
        if task is None or task.done():
            self._stopping = False
            task = self._start_task = asyncio.ensure_future(self._start())
        return task

    def _record_failure(self) -> bool:
        """Count a crash or failed start; True once there were too many to keep trying."""
        now = time.monotonic()
        self._crashes.append(now)
        while self._crashes and now - self._crashes[0] > self.restart_window:
            self._crashes.popleft()
        return len(self._crashes) > self.max_restarts

    def _command(self) -> list[str]:
        database = self.data_dir / "mlflow.db"
        if database.exists() and database.stat().st_mode & 0o077:
            os.chmod(database, 0o600)  # made before the server ran with a private umask
        store = f"sqlite:///{database}"
        artifacts = ensure_private_dir(self.data_dir / "artifacts")
        return [
            sys.executable,
            "-m",
            "infinstor_jupyterlab.lab.tracking._launcher",
            str(os.getpid()),
            "--",
            "--app-name",
            "infinstor",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            store,
            "--serve-artifacts",
            "--artifacts-destination",
            str(artifacts),
            "--default-artifact-root",
            "mlflow-artifacts:/",
            *self.extra_args,
        ]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The server must not inherit a client-side tracking URI pointing at itself.
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", EMBEDDED_URI_ENV):
            env.pop(name, None)
        # SQLite connections are cheap: a pool of 80 keeps all 40 of MLflow's handler threads
        # (service.concurrency: some hold two connections); the user's own settings win.
        env.setdefault("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "40")
        env.setdefault("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "40")
        env.update(
            {
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
                "INFINSTOR_SERVICE_MODE": "single-user",
                SECRET_FILE_ENV: str(self.secret_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    async def _start(self) -> None:
        try:
            await self._start_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave the state at "starting" forever
            log.exception("InfinStor: starting the local tracking service failed")
            await self._terminate()
            self._state = "error"
            self._message = f"Could not start the local tracking service: {exc}"

    async def _start_once(self) -> None:
        if self._is_alive():  # a start raced with the crash back-off; one server is enough
            return
        self._state = "starting"
        self._message = "Starting the local tracking service…"
        attempt_ports = 2
        for _attempt in range(attempt_ports):
            await asyncio.to_thread(self._reap_stale_server)
            if not self._started_once and not await asyncio.to_thread(_port_is_free, self.host, self.port):
                # Only before the first start: later, kernels already know this port.
                self.port = find_free_port(self.host)
            log_offset = await asyncio.to_thread(self._prepare_log)
            try:
                await self._spawn()
                await self._wait_healthy()
            except _StartFailed as exc:
                tail = await asyncio.to_thread(self._log_tail, log_offset)
                await self._terminate()
                if "address already in use" in tail.lower() and not self._started_once:
                    self.port = find_free_port(self.host)
                    continue
                self._state = "error"
                self._message = f"{exc}{': ' + tail if tail else ''} (log: {self.log_path})"
                self._given_up = self._record_failure()
                log.error("InfinStor: %s", self._message)
                return
            self._started_once = True
            await asyncio.to_thread(write_private_file, self.port_path, str(self.port))
            self._state = "running"
            self._message = ""
            assert self._proc is not None  # _spawn() set it
            self._watch_task = asyncio.ensure_future(self._watch(self._proc))
            log.info("InfinStor: local tracking service running at %s", self.uri)
            return

    async def _spawn(self) -> None:
        log_file = await asyncio.to_thread(open, self.log_path, "ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=self._environment(),
                cwd=str(self.data_dir),
                start_new_session=True,
                # Our service's own process (never a kernel): its store, artifacts and anything
                # else it writes are this user's only.
                umask=0o077,
            )
        except OSError as exc:
            raise _StartFailed(f"Could not start the local tracking service: {exc}") from exc
        finally:
            log_file.close()
        await asyncio.to_thread(
            write_private_file,
            self.pid_path,
            json.dumps({"pid": self._proc.pid, "owner_pid": os.getpid(), "port": self.port}),
        )

    async def _wait_healthy(self) -> None:
        client = AsyncHTTPClient()
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.uri}/health"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.returncode is not None:
                code = self._proc.returncode if self._proc else "?"
                raise _StartFailed(f"The local tracking service exited during start-up (code {code})")
            try:
                response = await client.fetch(
                    url,
                    headers=self.auth_headers(),
                    connect_timeout=2,
                    request_timeout=5,
                    raise_error=False,
                )
            except OSError:  # not listening yet (tornado raises for 599s)
                response = None
            if response is not None and response.code == 200:
                return
            await asyncio.sleep(0.25)
        raise _StartFailed(f"The local tracking service did not answer within {self.startup_timeout:.0f} s")

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._stopping or proc is not self._proc:
            return
        # Anything the dead leader left behind (its uvicorn worker) would hold the port.
        self._kill_group(proc.pid, signal.SIGKILL)
        if self._record_failure():
            self._given_up = True
            self._state = "error"
            self._message = (
                f"The local tracking service stopped {len(self._crashes)} times in "
                f"{self.restart_window:.0f} s (last exit code {code}); not restarting it. "
                f"See {self.log_path}, then restart it from the sidebar."
            )
            log.error("InfinStor: %s", self._message)
            return
        log.warning("InfinStor: local tracking service exited with code %s; restarting", code)
        self._state = "starting"
        self._message = f"The local tracking service stopped (exit code {code}); restarting…"
        await asyncio.sleep(min(2 ** (len(self._crashes) - 1) * 0.5, 10))
        if not self._stopping and not self._is_alive():
            self._kick_start()

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if self._watch_task:
            self._watch_task.cancel()
            self._watch_task = None
        if proc is None:
            return
        if proc.returncode is None:
            self._kill_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                self._kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        self._kill_group(proc.pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)

    @staticmethod
    def _kill_group(pgid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _reap_stale_server(self) -> None:
        """Stop a server left by a Jupyter process of ours that died without stopping it."""
        try:
            info = json.loads(self.pid_path.read_text())
        except (OSError, ValueError):
            return
        owner, pid = info.get("owner_pid"), info.get("pid")
        if not pid or owner == os.getpid() or (owner and psutil.pid_exists(owner)):
            return
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(psutil.Process(pid).cmdline())
            if "mlflow" in cmdline and str(self.data_dir) in cmdline:
                self._kill_group(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)

    # -- log file --------------------------------------------------------------------------------
    def _prepare_log(self) -> int:
        """Keep the log bounded; return the offset where this start's output begins."""
        try:
            size = self.log_path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size > _LOG_MAX_BYTES:
            os.replace(self.log_path, self.log_path.with_suffix(".log.1"))
            size = 0
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        return size

    def _log_tail(self, offset: int, max_chars: int = 600) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return " | ".join(lines[-5:])[-max_chars:]


class _StartFailed(Exception):
    pass
