"""The job manager: validates submissions, queues them per target, mirrors status on the MLflow run.

Status goes QUEUED -> RUNNING -> FINISHED | FAILED | KILLED, and the MLflow run follows
(SCHEDULED -> RUNNING -> the same terminal state). Jobs persist in the job store; after a restart
of the Jupyter server, running jobs are found again (or marked FAILED with the reason) and queued
ones are queued again.
"""

from __future__ import annotations

import asyncio
import builtins  # `list` is a method here: builtins.list[str] in annotations
import codecs
import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections import deque
from pathlib import Path
from typing import Any

from mlflow.utils.mlflow_tags import (
    MLFLOW_PROJECT_ENTRY_POINT,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
    MLFLOW_USER,
)

from ..errors import BadRequest, InfinStorError, NotFound
from ..lab.tracking.base import TrackingBackend
from ..lab.tracking.client import MlflowClientAsync
from ..paths import ensure_private_dir, open_private_append
from ..projects import build_project
from ..projects.runner import PROGRESS_ENV
from ..projects.service import lab_path, resolve_in_root
from .dry_run import Problems, check_parameters, parse_request
from .models import Job
from .plan import JobPlan, inspect_source, resolve_parameters
from .progress import PROGRESS_FILE, read_progress_lines
from .schema import JobRequest
from .store import JobStore
from .targets.base import JobFailed, JobTarget, TargetUnavailable

log = logging.getLogger(__name__)

JOB_ID_TAG = "infinstor.job.id"
JOB_TARGET_TAG = "infinstor.job.target"
SWEEP_TAG = "infinstor.sweep"
PARENT_RUN_TAG = "mlflow.parentRunId"
LOG_ARTIFACT_DIR = "job"
_LOG_CHUNK = 256 * 1024
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|NoSuchKernel))(?::\s*(.*))?$")
_WRAPPER_ERRORS = {"PapermillExecutionError", "ExecutionException", "CalledProcessError"}
# The runner's last word on a failed run (projects/runner.py ERROR_PREFIX).
_RUNNER_ERROR = "[infinstor] error: "
# bash's and dash's "command not found" (MLflow runs the entry point with `bash -c`).
_NOT_FOUND = re.compile(r"^(?:/usr)?(?:/bin/)?(?:ba|da)?sh: (?:line )?\d*:? ?(.+?): (?:command )?not found$")
# Lines that are MLflow's, a logger's or a kernel's chatter, never a job's own error.
_NOISE = re.compile(
    r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) |(?:INFO|WARNI|DEBUG)\s+\[alembic|"
    r"🏃 View run |🧪 View experiment |\[IPKernelApp\]|\[infinstor\] |Traceback \(most recent call last\)|  File \"|usage: )"
)


def failure_reason_from_log(text: str, exit_code: int | None) -> str:
    """The underlying error of a failed run, from its output: the runner's own reason, a command
    the shell could not find, the user's exception (not MLflow's or papermill's wrappers), else
    the last line the job printed itself (a project's `sys.exit("...")`, argparse's error)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()][-400:]
    for line in reversed(lines):
        if line.startswith(_RUNNER_ERROR):
            return line[len(_RUNNER_ERROR) :][:500]
    for line in reversed(lines):
        match = _NOT_FOUND.match(line)
        if match:
            return f"{match.group(1)}: command not found"
    fallback = None
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if not match:
            continue
        name = match.group(1).rsplit(".", 1)[-1]
        if name in _WRAPPER_ERRORS:
            fallback = fallback or line.strip()
            continue
        return line.strip()[:500]
    own = next((line.strip() for line in reversed(lines) if not _NOISE.match(line)), None)
    if own:
        return own[:500]
    if fallback:
        return fallback[:500]
    return f"The job's process exited with code {exit_code} and printed no error."


class Conflict(InfinStorError):
    status = 409
    reason = "conflict"


class JobManager:
    def __init__(
        self,
        *,
        store: JobStore,
        targets: dict[str, JobTarget],
        tracking: TrackingBackend,
        root_dir: Path,
        jobs_dir: Path,
        user: str,
        base_env: dict[str, str] | None = None,
    ):
        self.store = store
        self.targets = targets
        self.tracking = tracking
        self.mlflow = MlflowClientAsync(tracking)
        self.root_dir = Path(root_dir).resolve()
        self.jobs_dir = ensure_private_dir(Path(jobs_dir))
        self.user = user
        self.base_env = base_env
        self._queues: dict[str, deque[str]] = {name: deque() for name in targets}
        self._running: dict[str, set[str]] = {name: set() for name in targets}
        self._monitors: dict[str, asyncio.Task] = {}
        self._cancelling: set[str] = set()
        self._lock = asyncio.Lock()
        self._shutting_down = False
        self._sweep_of: dict[str, tuple[str, int]] = {}  # child job id -> (parent job id, max at once)
        self._sweep_watchers: dict[str, asyncio.Task] = {}
        for target in targets.values():
            target.bind(self)

    # -- queries ---------------------------------------------------------------------------------
    def describe_targets(self) -> list[dict[str, Any]]:
        return [target.describe() for target in self.targets.values()]

    async def list(self) -> list[Job]:
        return await asyncio.to_thread(self.store.list)

    async def get(self, job_id: str) -> Job:
        job = await asyncio.to_thread(self.store.get, job_id)
        if job is None:
            raise NotFound(f"No job {job_id!r}.")
        return job

    def log_path(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / "output.log"

    async def read_log(self, job_id: str, offset: int = 0, limit: int = _LOG_CHUNK) -> dict[str, Any]:
        if offset < 0:
            raise BadRequest("offset must be >= 0")
        job = await self.get(job_id)
        data, next_offset, size = await asyncio.to_thread(self._read_log, job_id, offset, limit)
        return {
            "job_id": job_id,
            "offset": offset,
            "next_offset": next_offset,
            "data": data,
            "complete": job.is_terminal and next_offset >= size,
            "status": job.status,
        }

    def _read_log(self, job_id: str, offset: int, limit: int) -> tuple[str, int, int]:
        path = self.log_path(job_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return "", offset, 0
        start = min(offset, size)
        with open(path, "rb") as handle:
            handle.seek(start)
            chunk = handle.read(limit)
        # Never split a UTF-8 character across two reads: hold back an incomplete tail.
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(chunk, final=start + len(chunk) >= size and len(chunk) < limit)
        pending = len(decoder.getstate()[0])
        return text, start + len(chunk) - pending, size

    def progress_path(self, job_id: str) -> Path:
        """The runner's live cell progress (JSON lines; see projects/runner.py `Progress`)."""
        return self.jobs_dir / job_id / PROGRESS_FILE

    async def read_progress(self, job_id: str, offset: int = 0, limit: int = _LOG_CHUNK) -> dict[str, Any]:
        """The progress events from byte `offset` on, whole lines only (`next_offset` is the cursor)."""
        if offset < 0:
            raise BadRequest("offset must be >= 0")
        job = await self.get(job_id)
        events, next_offset, size = await asyncio.to_thread(read_progress_lines, self.progress_path(job_id), offset, limit, job.is_terminal)
        return {
            "job_id": job_id,
            "offset": offset,
            "next_offset": next_offset,
            "events": events,
            "complete": job.is_terminal and next_offset >= size,
            "status": job.status,
            "now": time.time(),
        }

    # -- submit ----------------------------------------------------------------------------------
    def _resolve_path(self, path: str) -> Path:
        return resolve_in_root(self.root_dir, path)

    def lab_path(self, path: Path) -> str:
        return lab_path(self.root_dir, path)

    async def validate(self, request: JobRequest) -> JobPlan:
        """Every check of a submission, creating nothing: the target and its options, the path, the
        notebook or project, each parameter set (types, names and values MLflow accepts), the
        experiment. What `submit` would run; BadRequest (or TargetUnavailable) saying why not."""
        target = self.targets.get(request.target)
        if target is None:
            raise BadRequest(f"Unknown target {request.target!r}; available: {', '.join(self.targets)}.")
        reason = target.unavailable_reason()
        if reason:
            raise TargetUnavailable(f"The {target.display_name} target is not available: {reason}")
        options = target.validate_options(request.options)
        if request.sweep is not None and not target.capabilities().get("sweeps"):
            raise BadRequest(f"The {target.display_name} target does not run parameter sweeps.")
        source = self._resolve_path(request.path)

        def inspect():
            plan = inspect_source(source, request.entry_point, request.include_folder, self.lab_path)
            if request.sweep is None:
                return plan, *resolve_parameters(plan, request.parameters), []
            sets = [resolve_parameters(plan, values) for values in request.sweep_sets()]
            return plan, {}, {}, sets

        source_plan, arguments, logged, sets = await asyncio.to_thread(inspect)
        experiment_id, experiment_name = await self._find_experiment(request)
        return JobPlan(
            request=request,
            target=target,
            options=options,
            source=source,
            path=self.lab_path(source),
            source_plan=source_plan,
            arguments=arguments,
            logged=logged,
            sets=sets,
            experiment_id=experiment_id,
            experiment_name=experiment_name,
        )

    async def _find_experiment(self, request: JobRequest) -> tuple[str | None, str | None]:
        """(id, name) of the request's experiment; the id is None when the named one does not exist yet."""
        if request.experiment_id is not None:
            try:
                experiment = await self.mlflow.get_experiment(request.experiment_id)
            except NotFound as exc:
                raise BadRequest(f"Experiment not found: {exc.message}") from None
            return experiment["experiment_id"], experiment.get("name")
        name = request.experiment_name or "Default"
        return await self.mlflow.find_experiment(name), name

    async def _experiment_of(self, plan: JobPlan) -> str:
        if plan.experiment_id is not None:
            return plan.experiment_id
        return await self.mlflow.get_or_create_experiment(plan.experiment_name or "Default")

    async def _project_dir(self, plan: JobPlan, job_dir: Path) -> Path:
        if plan.kind != "notebook":
            return plan.source
        info = await asyncio.to_thread(
            build_project, plan.source, job_dir / "project", include_folder=plan.request.include_folder, source_name=plan.path, private=True
        )
        return info.path

    def _run_tags(self, source: Path, kind: str, entry_point: str, target_name: str) -> dict[str, str]:
        return {
            MLFLOW_USER: self.user,
            MLFLOW_SOURCE_NAME: self.lab_path(source),
            MLFLOW_SOURCE_TYPE: "NOTEBOOK" if kind == "notebook" else "PROJECT",
            MLFLOW_PROJECT_ENTRY_POINT: entry_point,
            JOB_TARGET_TAG: target_name,
        }

    async def dry_run(self, body: dict) -> dict[str, Any]:
        """A dry run of `submit` for the job dialog: every problem of the request body by field,
        and the parameters it resolves to. Creates nothing (no job, folder, experiment or run)."""
        problems = Problems()
        request = parse_request(body, problems)
        if request is None:
            return problems.answer()
        target = self.targets.get(request.target)
        if target is None:
            problems.add("target", f"Unknown target {request.target!r}; available: {', '.join(self.targets)}.")
        else:
            reason = target.unavailable_reason()
            if reason:
                problems.add("target", f"The {target.display_name} target is not available: {reason}")
            try:
                target.validate_options(request.options)
            except BadRequest as exc:
                problems.add("options", exc.message)
            if request.sweep is not None and not target.capabilities().get("sweeps"):
                problems.add("sweep", f"The {target.display_name} target does not run parameter sweeps.")
        try:
            source = self._resolve_path(request.path)
        except BadRequest as exc:
            problems.add("path", exc.message)
            return problems.answer()
        parameters = await asyncio.to_thread(check_parameters, request, source, self.lab_path, problems)
        try:
            await self._find_experiment(request)
        except InfinStorError as exc:
            if exc.status >= 500:
                raise  # the tracking service's trouble, not the request's
            problems.add("experiment_id", exc.message)
        return problems.answer(parameters)

    async def submit(self, request: JobRequest) -> Job:
        """Validate the whole request first (nothing exists until it is known to be valid), then
        convert the notebook, create the run, log every parameter and queue the job."""
        plan = await self.validate(request)
        if request.sweep is not None:
            return await self._submit_sweep(plan)
        target = plan.target
        job_id = Job.new_id()
        job_dir = ensure_private_dir(self.jobs_dir / job_id)
        run_id = None
        try:
            project_dir = await self._project_dir(plan, job_dir)
            experiment_id = await self._experiment_of(plan)
            tags = {**self._run_tags(plan.source, plan.kind, request.entry_point, target.name), JOB_ID_TAG: job_id}
            run = await self.mlflow.create_run(experiment_id, request.run_name, tags)
            run_id = run["info"]["run_id"]
            job = Job(
                id=job_id,
                path=plan.path,
                kind=plan.kind,
                target=target.name,
                status="QUEUED",
                parameters=plan.arguments,
                experiment_id=experiment_id,
                run_id=run_id,
                run_name=run["info"].get("run_name") or request.run_name,
                project_dir=str(project_dir),
                entry_point=request.entry_point,
                options=plan.options,
                include_folder=request.include_folder,
                user=self.user,
            )
            if plan.logged:
                await self.mlflow.log_params(run_id, plan.logged)
            await self.mlflow.update_run(run_id, "SCHEDULED")
            await asyncio.to_thread(self.store.save, job)
        except BaseException:
            # No half-made job: its run and folder go.
            await self._discard(job_dir, [run_id] if run_id else [])
            raise
        self._queues[target.name].append(job.id)
        await self._pump(target.name)
        return await self.get(job.id)

    async def _discard(self, job_dir: Path, run_ids: builtins.list[str]) -> None:
        for run_id in run_ids:
            try:
                await self.mlflow.delete_run(run_id)
            except Exception as exc:
                log.warning("InfinStor: could not delete run %s of a job that was not created: %s", run_id, exc)
        await asyncio.to_thread(shutil.rmtree, job_dir, True)

    # -- running ---------------------------------------------------------------------------------
    def job_environment(self) -> dict[str, str]:
        env = dict(self.base_env if self.base_env is not None else os.environ)
        env.pop("JPY_SESSION_NAME", None)
        env.update(self.tracking.kernel_environment())
        env["INFINSTOR_USER"] = self.user
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def _pump(self, target_name: str) -> None:
        if self._shutting_down:
            return
        async with self._lock:
            target = self.targets[target_name]
            queue = self._queues[target_name]
            held: list[str] = []  # sweep children waiting for their sweep's own limit
            while queue and len(self._running[target_name]) < target.max_parallel:
                job_id = queue.popleft()
                sweep = self._sweep_of.get(job_id)
                if sweep is not None and self._sweep_active(sweep[0]) >= sweep[1]:
                    held.append(job_id)
                    continue
                job = await asyncio.to_thread(self.store.get, job_id)
                if job is None or job.status != "QUEUED":
                    continue
                await self._start(target, job)
            queue.extendleft(reversed(held))

    async def _start(self, target: JobTarget, job: Job) -> None:
        log_path = self.log_path(job.id)
        ensure_private_dir(log_path.parent)
        job.status = "RUNNING"
        job.started_at = time.time()
        env = {**self.job_environment(), PROGRESS_ENV: str(self.progress_path(job.id))}
        try:
            await self.mlflow.update_run(job.run_id, "RUNNING")
            await target.start(job, env, log_path)
        except Exception as exc:
            log.exception("InfinStor: job %s could not start", job.id)
            await self._finish(job, "FAILED", f"The job could not start: {exc}")
            return
        await asyncio.to_thread(self.store.save, job)
        self._running[target.name].add(job.id)
        self._monitors[job.id] = asyncio.ensure_future(self._monitor(target, job))

    async def _monitor(self, target: JobTarget, job: Job) -> None:
        try:
            try:
                exit_code = await target.wait(job)
            except JobFailed as exc:  # the target knows why (lost instance, no check-in, ...)
                if job.id not in self._cancelling:
                    await self._finish(job, "FAILED", exc.message)
                    return
                exit_code = None
            if job.id in self._cancelling:
                status, reason = "KILLED", "Cancelled by the user."
            elif exit_code == 0:
                status, reason = "FINISHED", None
            elif exit_code is None:
                status, reason = await self._status_from_run(job)
            else:
                text = await asyncio.to_thread(self._tail, job.id)
                status, reason = "FAILED", failure_reason_from_log(text, exit_code)
            await self._finish(job, status, reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("InfinStor: monitoring job %s failed", job.id)
        finally:
            self._running[target.name].discard(job.id)
            self._monitors.pop(job.id, None)
            self._cancelling.discard(job.id)
            with contextlib.suppress(Exception):
                await self._pump(target.name)

    async def _status_from_run(self, job: Job) -> tuple[str, str | None]:
        """After a restart the exit code is lost: the MLflow run (set by `mlflow run`) tells."""
        try:
            run = await self.mlflow.get_run(job.run_id)
            status = run["info"]["status"]
        except Exception as exc:
            return "FAILED", f"The job ended while the Jupyter server was restarting; its outcome is unknown ({exc})."
        if status == "FINISHED":
            return "FINISHED", None
        if status in ("FAILED", "KILLED"):
            text = await asyncio.to_thread(self._tail, job.id)
            return status, failure_reason_from_log(text, None) if status == "FAILED" else "Killed."
        return "FAILED", "The job's process ended while the Jupyter server was restarting, without reporting a result."

    def _tail(self, job_id: str, size: int = 64 * 1024) -> str:
        path = self.log_path(job_id)
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, path.stat().st_size - size))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    async def _finish(self, job: Job, status: str, reason: str | None) -> None:
        job.status = status
        job.failure_reason = reason
        job.finished_at = time.time()
        # Mirror on the run first: whoever sees the job ended then finds the run complete too.
        try:
            if reason:
                await self.mlflow.set_tags(job.run_id, {"infinstor.job.failure_reason": reason[:5000]})
            log_path = self.log_path(job.id)
            if log_path.exists():
                run = await self.mlflow.get_run(job.run_id)
                await self.mlflow.upload_artifact(run, log_path, LOG_ARTIFACT_DIR)
            # The job's run name stays: a notebook's `mlflow.start_run(run_name=...)` resumes the
            # job's run and renames it, and the Jobs view and the runs table must agree.
            await self.mlflow.update_run(job.run_id, status, end=True, run_name=job.run_name)
        except Exception as exc:  # the job's own outcome is recorded regardless
            log.warning("InfinStor: could not update MLflow run %s of job %s: %s", job.run_id, job.id, exc)
        await asyncio.to_thread(self.store.save, job)
        target = self.targets.get(job.target)
        if target is not None:
            try:
                await target.finished(job, self.log_path(job.id))
            except Exception as exc:
                log.warning("InfinStor: cleaning up after job %s: %s", job.id, exc)
        log.info("InfinStor: job %s %s%s", job.id, status, f": {reason}" if reason else "")

    # -- sweeps ----------------------------------------------------------------------------------
    def _sweep_active(self, parent_id: str) -> int:
        return sum(1 for running in self._running.values() for job_id in running if self._sweep_of.get(job_id, ("",))[0] == parent_id)

    async def _submit_sweep(self, plan: JobPlan) -> Job:
        """One parent run and job; one child job (and run, tagged with its parent) per parameter set."""
        request, target = plan.request, plan.target
        limit = int(target.capabilities().get("max_instances") or target.max_parallel)
        max_instances = min(request.max_instances or limit, limit)
        parent_id = Job.new_id()
        parent_dir = ensure_private_dir(self.jobs_dir / parent_id)
        run_ids: list[str] = []
        try:
            project_dir = await self._project_dir(plan, parent_dir)
            experiment_id = await self._experiment_of(plan)
            base_tags = self._run_tags(plan.source, plan.kind, request.entry_point, target.name)
            parent_run = await self.mlflow.create_run(
                experiment_id, request.run_name, {**base_tags, JOB_ID_TAG: parent_id, SWEEP_TAG: json.dumps(request.sweep_json())[:5000]}
            )
            parent_run_id = parent_run["info"]["run_id"]
            run_ids.append(parent_run_id)
            parent_name = parent_run["info"].get("run_name") or request.run_name or "sweep"
            children: list[Job] = []
            for index, (arguments, logged) in enumerate(plan.sets):
                child_id = Job.new_id()
                run = await self.mlflow.create_run(
                    experiment_id, f"{parent_name}-{index + 1}", {**base_tags, JOB_ID_TAG: child_id, PARENT_RUN_TAG: parent_run_id}
                )
                run_ids.append(run["info"]["run_id"])
                child = Job(
                    id=child_id,
                    path=plan.path,
                    kind=plan.kind,
                    target=target.name,
                    status="QUEUED",
                    parameters=arguments,
                    experiment_id=experiment_id,
                    run_id=run["info"]["run_id"],
                    run_name=run["info"].get("run_name"),
                    project_dir=str(project_dir),
                    entry_point=request.entry_point,
                    options={**plan.options, "sweep_parent": parent_id},
                    include_folder=request.include_folder,
                    user=self.user,
                )
                if logged:
                    await self.mlflow.log_params(child.run_id, logged)
                await self.mlflow.update_run(child.run_id, "SCHEDULED")
                children.append(child)
            first_arguments = plan.sets[0][0]
            parent = Job(
                id=parent_id,
                path=plan.path,
                kind="sweep",
                target=target.name,
                status="RUNNING",
                parameters={k: first_arguments[k] for k in request.parameters if k in first_arguments},
                experiment_id=experiment_id,
                run_id=parent_run_id,
                run_name=parent_name,
                project_dir=str(project_dir),
                entry_point=request.entry_point,
                options={
                    **plan.options,
                    "sweep": request.sweep_json(),
                    "max_instances": max_instances,
                    "children": [c.id for c in children],
                },
                include_folder=request.include_folder,
                user=self.user,
                started_at=time.time(),
            )
            await self.mlflow.update_run(parent_run_id, "RUNNING")
            await asyncio.to_thread(self.store.save, parent)
            for child in children:
                await asyncio.to_thread(self.store.save, child)
        except BaseException:
            for child_id in [c.id for c in locals().get("children", [])]:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.delete, child_id)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.delete, parent_id)
            await self._discard(parent_dir, run_ids)
            raise
        for child in children:
            self._sweep_of[child.id] = (parent_id, max_instances)
            self._queues[target.name].append(child.id)
        self._sweep_watchers[parent_id] = asyncio.ensure_future(self._watch_sweep(parent))
        await self._pump(target.name)
        return await self.get(parent_id)

    async def _watch_sweep(self, parent: Job, interval: float = 1.0) -> None:
        """The parent follows its children: it ends when they all did (FINISHED only if all did)."""
        reported: set[str] = set()
        log_path = self.log_path(parent.id)
        ensure_private_dir(log_path.parent)
        try:
            while True:
                found = [await asyncio.to_thread(self.store.get, cid) for cid in parent.options.get("children", [])]
                children = [c for c in found if c is not None]
                lines = []
                for child in children:
                    if child.is_terminal and child.id not in reported:
                        reported.add(child.id)
                        params = ", ".join(f"{k}={v}" for k, v in child.parameters.items())
                        why = f": {child.failure_reason}" if child.failure_reason else ""
                        lines.append(f"[infinstor] child job {child.id} ({params}) {child.status}{why}\n")
                if lines:
                    await asyncio.to_thread(_append, log_path, "".join(lines))
                if children and all(c.is_terminal for c in children):
                    current = await asyncio.to_thread(self.store.get, parent.id)
                    if current is None or current.is_terminal:
                        return
                    failed = [c for c in children if c.status != "FINISHED"]
                    if not failed:
                        await self._finish(current, "FINISHED", None)
                    elif all(c.status == "KILLED" for c in failed) and current.options.get("cancelled"):
                        await self._finish(current, "KILLED", "Cancelled by the user.")
                    else:
                        first = next((c for c in failed if c.failure_reason), failed[0])
                        await self._finish(
                            current,
                            "FAILED",
                            f"{len(failed)} of {len(children)} child jobs did not finish; {first.id}: {first.failure_reason or first.status}",
                        )
                    return
                await asyncio.sleep(interval)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("InfinStor: following sweep %s failed", parent.id)
        finally:
            self._sweep_watchers.pop(parent.id, None)

    async def _cancel_sweep(self, parent: Job) -> Job:
        parent.options["cancelled"] = True
        await asyncio.to_thread(self.store.save, parent)
        for child_id in parent.options.get("children", []):
            child = await asyncio.to_thread(self.store.get, child_id)
            if child is not None and not child.is_terminal:
                with contextlib.suppress(Conflict):
                    await self.cancel(child_id)
        watcher = self._sweep_watchers.get(parent.id)
        if watcher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(watcher), 30)
        job = await self.get(parent.id)
        if not job.is_terminal:
            await self._finish(job, "KILLED", "Cancelled by the user.")
        return await self.get(parent.id)

    # -- control ---------------------------------------------------------------------------------
    async def cancel(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job.is_terminal:
            raise Conflict(f"Job {job_id} already ended ({job.status}).")
        if job.kind == "sweep":
            return await self._cancel_sweep(job)
        target = self.targets.get(job.target)
        if job.status == "QUEUED":
            with contextlib.suppress(ValueError):
                self._queues[job.target].remove(job.id)
            await self._finish(job, "KILLED", "Cancelled before it started.")
            return await self.get(job_id)
        self._cancelling.add(job.id)
        if target is not None:
            await target.cancel(job)
        monitor = self._monitors.get(job.id)
        if monitor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(monitor), 30)
        job = await self.get(job_id)
        if not job.is_terminal:
            await self._finish(job, "KILLED", "Cancelled by the user.")
        return await self.get(job_id)

    async def delete(self, job_id: str) -> None:
        job = await self.get(job_id)
        if not job.is_terminal:
            raise Conflict(f"Job {job_id} is {job.status}; cancel it before deleting it.")
        for child_id in job.options.get("children", []) if job.kind == "sweep" else []:
            child = await asyncio.to_thread(self.store.get, child_id)
            if child is not None and child.is_terminal:
                await asyncio.to_thread(self.store.delete, child_id)
                await asyncio.to_thread(shutil.rmtree, self.jobs_dir / child_id, True)
        await asyncio.to_thread(self.store.delete, job_id)
        await asyncio.to_thread(shutil.rmtree, self.jobs_dir / job_id, True)

    async def recover(self) -> None:
        """After a restart: reattach to running jobs, fail the lost ones, queue the queued."""
        reattached = False
        for job in reversed(await self.list()):
            target = self.targets.get(job.target)
            if job.kind == "sweep":
                if not job.is_terminal:
                    for child_id in job.options.get("children", []):
                        self._sweep_of[child_id] = (job.id, int(job.options.get("max_instances") or 1))
                    self._sweep_watchers[job.id] = asyncio.ensure_future(self._watch_sweep(job))
                continue
            if job.status == "RUNNING":
                if target is not None and target.is_alive(job):
                    log.info("InfinStor: job %s is still running; following it again", job.id)
                    self._running[target.name].add(job.id)
                    self._monitors[job.id] = asyncio.ensure_future(self._monitor(target, job))
                    reattached = True
                else:
                    status, reason = await self._status_from_run(job)
                    if target is None:
                        status, reason = "FAILED", f"The target {job.target!r} is no longer configured."
                    await self._finish(job, status, reason)
            elif job.status == "QUEUED":
                if target is None:
                    await self._finish(job, "FAILED", f"The target {job.target!r} is no longer configured.")
                else:
                    self._queues[target.name].append(job.id)
        if reattached:
            # Running jobs log to the tracking service: it is needed now, not at the first poll.
            self._warmup = asyncio.ensure_future(self._ensure_tracking())
        for name in self.targets:
            await self._pump(name)

    async def _ensure_tracking(self) -> None:
        try:
            await self.tracking.ensure_running()
        except Exception as exc:
            log.warning("InfinStor: the tracking service for running jobs is unavailable: %s", exc)

    async def shutdown(self) -> None:
        """Stop following jobs (they keep running and are found again at the next start)."""
        self._shutting_down = True
        for task in list(self._sweep_watchers.values()):
            task.cancel()
        for task in list(self._monitors.values()):
            task.cancel()
        for task in list(self._monitors.values()):
            with contextlib.suppress(BaseException):
                await task
        self._monitors.clear()
        await asyncio.to_thread(self.store.close)


def _append(path: Path, text: str) -> None:
    with open_private_append(path) as handle:
        handle.write(text.encode("utf-8"))
