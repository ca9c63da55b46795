"""Inline: the project runs on the Jupyter host, in its own process tree.

The process is started in a new session so it outlives a restart of the Jupyter server; after a
restart the manager finds it again by pid and start time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
from traitlets import Float, Unicode

from ...errors import BadRequest, InfinStorError
from ...limits import clip, shown
from ...paths import open_private_append
from ..models import Job
from ..process_env import add_own_requirement, find_next_to_python, job_process_environment, remove_job_scratch
from .base import JobTarget


def _available_env_managers() -> list[str]:
    # uv may sit beside this interpreter (the lab's venv) while the venv is off PATH: the job's
    # PATH includes that folder too (process_env).
    managers = ["local"]
    if find_next_to_python("uv"):
        managers.append("uv")
    if find_next_to_python("pyenv") and find_next_to_python("virtualenv"):
        managers.append("virtualenv")
    return managers


def job_python(project_dir: Path) -> str:
    """The interpreter a job runs in with env_manager "local": a converted notebook's kernel's
    (its kernelspec resolved on this host, as at conversion), else the lab's own."""
    from ...projects.convert import load_notebook
    from ...projects.environment import kernel_python
    from ...projects.runner import SPEC_FILE

    try:
        spec = json.loads((project_dir / SPEC_FILE).read_text(encoding="utf-8"))
        return kernel_python(load_notebook(project_dir / spec["notebook"]))
    except FileNotFoundError:
        return sys.executable  # a plain MLflow project: the lab's environment
    except (OSError, ValueError, KeyError, TypeError, InfinStorError):
        return sys.executable


class InlineTarget(JobTarget):
    name = "inline"
    display_name = "Inline (this Jupyter host)"

    default_env_manager = Unicode(
        "local", help="MLflow env manager for inline jobs: local (the kernel's environment), uv or virtualenv."
    ).tag(config=True)
    cancel_grace_seconds = Float(
        20.0, help="Seconds between SIGTERM and SIGKILL on cancel (the runner logs the partly executed notebook meanwhile)."
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._procs: dict[str, asyncio.subprocess.Process] = {}

    def capabilities(self) -> dict[str, Any]:
        return {**super().capabilities(), "env_managers": _available_env_managers()}

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - {"env_manager"})
        if unknown:
            raise BadRequest(f"The inline target has no option(s) {clip(', '.join(unknown))}.")
        env_manager = options.get("env_manager", self.default_env_manager)
        available = _available_env_managers()
        if env_manager not in available:
            raise BadRequest(f"env_manager {shown(env_manager)} is not available on this host; choose one of {', '.join(available)}.")
        return {"env_manager": env_manager}

    def command(self, job: Job) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            job.project_dir,
            "--entry-point",
            job.entry_point,
            "--run-id",
            job.run_id,
            "--experiment-id",
            job.experiment_id,
            "--env-manager",
            job.options.get("env_manager", self.default_env_manager),
        ]
        for key, value in job.parameters.items():
            args += ["-P", f"{key}={value}"]
        return args

    async def start(self, job: Job, env: dict[str, str], log_path) -> None:
        if job.kind == "notebook" and job.options.get("env_manager", self.default_env_manager) != "local":
            # The job's own copy of the project: the environment MLflow builds gets this package.
            await asyncio.to_thread(add_own_requirement, Path(job.project_dir))
        python = await asyncio.to_thread(job_python, Path(job.project_dir))
        env = await asyncio.to_thread(job_process_environment, env, Path(log_path).parent, python)
        with open_private_append(log_path) as log:
            proc = await asyncio.create_subprocess_exec(
                *self.command(job),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=job.project_dir,
                start_new_session=True,
            )
        self._procs[job.id] = proc
        try:
            created = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            created = None
        job.target_state = {"pid": proc.pid, "create_time": created}

    async def finished(self, job: Job, log_path) -> None:
        await asyncio.to_thread(remove_job_scratch, Path(log_path).parent)

    def _process(self, job: Job) -> psutil.Process | None:
        pid = job.target_state.get("pid")
        if not pid:
            return None
        try:
            proc = psutil.Process(pid)
            if job.target_state.get("create_time") and abs(proc.create_time() - job.target_state["create_time"]) > 1:
                return None  # the pid was reused by something else
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def is_alive(self, job: Job) -> bool:
        proc = self._procs.get(job.id)
        if proc is not None:
            return proc.returncode is None
        return self._process(job) is not None

    async def wait(self, job: Job) -> int | None:
        proc = self._procs.get(job.id)
        if proc is not None:
            try:
                return await proc.wait()
            finally:
                self._procs.pop(job.id, None)
        # Reattached after a restart: not our child (no wait() to await), so poll.
        while self._process(job) is not None:  # noqa: ASYNC110
            await asyncio.sleep(1.0)
        return None

    async def cancel(self, job: Job) -> None:
        root = self._process(job)
        if root is None:
            return
        # Kernels started by papermill run in their own session: walk the tree, not the group.
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = [root]
        for proc in tree:
            try:
                proc.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        _, alive = await asyncio.to_thread(psutil.wait_procs, tree, self.cancel_grace_seconds)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        await asyncio.to_thread(psutil.wait_procs, alive, 5)
