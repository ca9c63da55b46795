"""The job manager: validates submissions, queues them per target, mirrors status on the MLflow run.

Status goes QUEUED -> RUNNING -> FINISHED | FAILED | KILLED, and the MLflow run follows
(SCHEDULED -> RUNNING -> the same terminal state). Jobs persist in the job store; after a restart
of the Jupyter server, running jobs are found again (or marked FAILED with the reason) and queued
ones are queued again.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import contextlib
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
from ..limits import shown
from ..paths import ensure_private_dir, open_private_append
from ..projects import ProjectError, build_project
from ..projects.convert import load_notebook
from ..projects.parameters import coerce_value, extract_parameters
from ..projects.runner import PROGRESS_ENV
from ..projects.service import lab_path, resolve_in_root
from ..tracking.base import TrackingBackend
from ..tracking.client import MlflowClientAsync
from .dry_run import Problems, check_parameters, parse_request
from .models import TERMINAL, Job, JobRequest
from .progress import PROGRESS_FILE, read_progress_lines
from .store import JobStore
from .targets.base import JobFailed, JobTarget, TargetUnavailable

log = logging.getLogger(__name__)

JOB_ID_TAG = "infinstor.job.id"
JOB_TARGET_TAG = "infinstor.job.target"
SWEEP_TAG = "infinstor.sweep"
PARENT_RUN_TAG = "mlflow.parentRunId"
LOG_ARTIFACT_DIR = "job"
_LOG_CHUNK = 256 * 1024
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))(?::\s*(.*))?$")
_WRAPPER_ERRORS = {"PapermillExecutionError", "ExecutionException", "CalledProcessError"}


class Conflict(InfinStorError):
    status = 409
    reason = "conflict"


def failure_reason_from_log(text: str, exit_code: int | None) -> str:
    """The most telling error line of a failed run's output (the user's exception, not wrappers')."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    fallback = None
    for line in reversed(lines[-400:]):
        match = _ERROR_LINE.match(line)
        if not match:
            continue
        name = match.group(1).rsplit(".", 1)[-1]
        if name in _WRAPPER_ERRORS:
            fallback = fallback or line.strip()
            continue
        return line.strip()[:500]
    if fallback:
        return fallback[:500]
    tail = lines[-1][:300] if lines else "no output"
    return f"The job's process exited with code {exit_code}: {tail}"


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
        events, next_offset, size = await asyncio.to_thread(
            read_progress_lines, self.progress_path(job_id), offset, limit, job.is_terminal
        )
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

    def _prepare_project(self, request: JobRequest, source: Path, job_dir: Path) -> tuple[str, Path, dict[str, str]]:
        """Runs in a thread: convert or load the project and validate the parameters."""
        from mlflow.exceptions import ExecutionException
        from mlflow.projects import _project_spec

        given = dict(request.parameters)
        if source.is_file():
            nb = load_notebook(source)
            declared = {p.name: p for p in extract_parameters(nb)}
            unknown = sorted(set(given) - set(declared))
            if unknown:
                raise ProjectError(
                    f"unknown parameter(s) {', '.join(unknown)}; the notebook defines: {', '.join(declared) or 'none'}"
                )
            for name, value in given.items():
                coerce_value(declared[name], value)  # raises with a message naming the parameter
            info = build_project(source, job_dir / "project", include_folder=request.include_folder, private=True)
            kind, project_dir = "notebook", info.path
        else:
            if request.include_folder:
                raise BadRequest("include_folder applies to notebooks; a project folder is run as it is.")
            if not (source / "MLproject").is_file() and not (source / "mlproject").is_file():
                raise BadRequest(f"{self.lab_path(source)!r} is a folder without an MLproject file.")
            kind, project_dir = "project", source
        try:
            project = _project_spec.load_project(str(project_dir))
            entry_point = project.get_entry_point(request.entry_point)
            as_text = {k: _param_text(v) for k, v in given.items()}
            _check_entry_point_parameters(entry_point, as_text)
        except ExecutionException as exc:
            raise BadRequest(f"Invalid project or parameters: {exc.message}") from None
        except BadRequest:
            raise
        except Exception as exc:  # malformed MLproject files raise assorted errors
            raise BadRequest(f"Invalid MLproject: {exc}") from None
        return kind, project_dir, as_text

    async def _experiment_id(self, request: JobRequest) -> str:
        """The request's experiment: by id (must exist) or by name (created when missing)."""
        if request.experiment_id is not None:
            return (await self.mlflow.get_experiment(request.experiment_id))["experiment_id"]
        return await self.mlflow.get_or_create_experiment(request.experiment_name or "Default")

    def _run_tags(self, source: Path, kind: str, entry_point: str, target_name: str) -> dict[str, str]:
        return {
            MLFLOW_USER: self.user,
            MLFLOW_SOURCE_NAME: self.lab_path(source),
            MLFLOW_SOURCE_TYPE: "NOTEBOOK" if kind == "notebook" else "PROJECT",
            MLFLOW_PROJECT_ENTRY_POINT: entry_point,
            JOB_TARGET_TAG: target_name,
        }

    async def validate(self, body: dict) -> dict[str, Any]:
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
        parameters = await asyncio.to_thread(check_parameters, request, source, self.lab_path(source), problems)
        if request.experiment_id is not None:
            try:
                await self.mlflow.get_experiment(request.experiment_id)
            except InfinStorError as exc:
                if exc.status >= 500:
                    raise  # the tracking service's trouble, not the request's
                problems.add("experiment_id", f"Experiment not found: {exc.message}")
        return problems.answer(parameters)

    async def submit(self, request: JobRequest) -> Job:
        target = self.targets.get(request.target)
        if target is None:
            raise BadRequest(f"Unknown target {request.target!r}; available: {', '.join(self.targets)}.")
        reason = target.unavailable_reason()
        if reason:
            raise TargetUnavailable(f"The {target.display_name} target is not available: {reason}")
        options = target.validate_options(request.options)
        source = self._resolve_path(request.path)
        if request.sweep is not None:
            return await self._submit_sweep(request, target, options, source)

        job_id = Job.new_id()
        job_dir = ensure_private_dir(self.jobs_dir / job_id)
        try:
            kind, project_dir, params = await asyncio.to_thread(self._prepare_project, request, source, job_dir)
            experiment_id = await self._experiment_id(request)
        except NotFound as exc:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise BadRequest(f"Experiment not found: {exc.message}") from None
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise

        tags = {**self._run_tags(source, kind, request.entry_point, target.name), JOB_ID_TAG: job_id}
        run = await self.mlflow.create_run(experiment_id, request.run_name, tags)
        run_id = run["info"]["run_id"]
        job = Job(
            id=job_id,
            path=self.lab_path(source),
            kind=kind,
            target=target.name,
            status="QUEUED",
            parameters=params,
            experiment_id=experiment_id,
            run_id=run_id,
            run_name=run["info"].get("run_name") or request.run_name,
            project_dir=str(project_dir),
            entry_point=request.entry_point,
            options=options,
            include_folder=request.include_folder,
            user=self.user,
        )
        try:
            if params:
                await self.mlflow.log_params(run_id, params)
            await self.mlflow.update_run(run_id, "SCHEDULED")
            await asyncio.to_thread(self.store.save, job)
        except BaseException as exc:
            # No half-written job: the run says why it never ran, the job directory goes.
            with contextlib.suppress(Exception):
                await self.mlflow.set_tags(run_id, {"infinstor.job.error": str(exc)[:500]})
                await self.mlflow.update_run(run_id, "FAILED", end=True)
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        self._queues[target.name].append(job.id)
        await self._pump(target.name)
        return await self.get(job.id)

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
            await self.mlflow.update_run(job.run_id, status, end=True)
        except Exception as exc:  # the job's own outcome is recorded regardless
            log.warning("InfinStor: could not update MLflow run %s of job %s: %s", job.run_id, job.id, exc)
        await asyncio.to_thread(self.store.save, job)
        log.info("InfinStor: job %s %s%s", job.id, status, f": {reason}" if reason else "")

    # -- sweeps ----------------------------------------------------------------------------------
    def _sweep_active(self, parent_id: str) -> int:
        return sum(
            1 for running in self._running.values() for job_id in running
            if self._sweep_of.get(job_id, ("",))[0] == parent_id
        )  # fmt: skip

    def _validate_set(self, kind: str, source: Path, project_dir: Path, entry_point: str, given: dict) -> dict[str, str]:
        """Runs in a thread: one parameter set of a sweep, checked as a single job's would be."""
        from mlflow.exceptions import ExecutionException
        from mlflow.projects import _project_spec

        if kind == "notebook":
            declared = {p.name: p for p in extract_parameters(load_notebook(source))}
            unknown = sorted(set(given) - set(declared))
            if unknown:
                raise ProjectError(f"unknown parameter(s) {', '.join(unknown)}; the notebook defines: {', '.join(declared) or 'none'}")
            for name, value in given.items():
                coerce_value(declared[name], value)
        as_text = {k: _param_text(v) for k, v in given.items()}
        try:
            entry = _project_spec.load_project(str(project_dir)).get_entry_point(entry_point)
            _check_entry_point_parameters(entry, as_text)
        except ExecutionException as exc:
            raise BadRequest(f"Invalid project or parameters: {exc.message}") from None
        return as_text

    async def _submit_sweep(self, request: JobRequest, target: JobTarget, options: dict, source: Path) -> Job:
        """One parent run and job; one child job (and run, tagged with its parent) per parameter set."""
        import dataclasses

        if not target.capabilities().get("sweeps"):
            raise BadRequest(f"The {target.display_name} target does not run parameter sweeps.")
        sets = request.sweep_sets()
        limit = int(target.capabilities().get("max_instances") or target.max_parallel)
        max_instances = min(request.max_instances or limit, limit)
        parent_id = Job.new_id()
        parent_dir = ensure_private_dir(self.jobs_dir / parent_id)
        try:
            first = dataclasses.replace(request, parameters=sets[0], sweep=None, max_instances=None)
            kind, project_dir, _ = await asyncio.to_thread(self._prepare_project, first, source, parent_dir)
            texts = [
                await asyncio.to_thread(self._validate_set, kind, source, project_dir, request.entry_point, s) for s in sets
            ]
            experiment_id = await self._experiment_id(request)
        except NotFound as exc:
            shutil.rmtree(parent_dir, ignore_errors=True)
            raise BadRequest(f"Experiment not found: {exc.message}") from None
        except BaseException:
            shutil.rmtree(parent_dir, ignore_errors=True)
            raise
        base_tags = self._run_tags(source, kind, request.entry_point, target.name)
        parent_run = await self.mlflow.create_run(
            experiment_id, request.run_name,
            {**base_tags, JOB_ID_TAG: parent_id, SWEEP_TAG: json.dumps(request.sweep)[:5000]},
        )  # fmt: skip
        parent_run_id = parent_run["info"]["run_id"]
        parent_name = parent_run["info"].get("run_name") or request.run_name or "sweep"
        children: list[Job] = []
        for index, params in enumerate(texts):
            child_id = Job.new_id()
            run = await self.mlflow.create_run(
                experiment_id, f"{parent_name}-{index + 1}",
                {**base_tags, JOB_ID_TAG: child_id, PARENT_RUN_TAG: parent_run_id},
            )  # fmt: skip
            child = Job(
                id=child_id, path=self.lab_path(source), kind=kind, target=target.name, status="QUEUED",
                parameters=params, experiment_id=experiment_id, run_id=run["info"]["run_id"],
                run_name=run["info"].get("run_name"), project_dir=str(project_dir), entry_point=request.entry_point,
                options={**options, "sweep_parent": parent_id}, include_folder=request.include_folder, user=self.user,
            )  # fmt: skip
            if params:
                await self.mlflow.log_params(child.run_id, params)
            await self.mlflow.update_run(child.run_id, "SCHEDULED")
            children.append(child)
        parent = Job(
            id=parent_id, path=self.lab_path(source), kind="sweep", target=target.name, status="RUNNING",
            parameters={k: _param_text(v) for k, v in request.parameters.items()}, experiment_id=experiment_id,
            run_id=parent_run_id, run_name=parent_name, project_dir=str(project_dir), entry_point=request.entry_point,
            options={**options, "sweep": request.sweep, "max_instances": max_instances, "children": [c.id for c in children]},
            include_folder=request.include_folder, user=self.user, started_at=time.time(),
        )  # fmt: skip
        await self.mlflow.update_run(parent_run_id, "RUNNING")
        await asyncio.to_thread(self.store.save, parent)
        for child in children:
            await asyncio.to_thread(self.store.save, child)
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
                children = [await asyncio.to_thread(self.store.get, cid) for cid in parent.options.get("children", [])]
                children = [c for c in children if c is not None]
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
                            current, "FAILED",
                            f"{len(failed)} of {len(children)} child jobs did not finish; {first.id}: {first.failure_reason or first.status}",
                        )  # fmt: skip
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


def _param_text(value: Any) -> str:
    return str(value)


def _check_entry_point_parameters(entry_point, given: dict[str, str]) -> None:
    """What `mlflow run` would only find out later: missing values and non-numbers for floats.

    (MLflow's own compute_parameters also downloads `path` parameters: not at submit time.)
    """
    missing = [n for n, p in entry_point.parameters.items() if n not in given and p.default is None]
    if missing:
        raise BadRequest(f"Missing value(s) for parameter(s) {', '.join(sorted(missing))}.")
    for name, value in given.items():
        param = entry_point.parameters.get(name)
        if param is not None and param.type == "float":
            try:
                float(value)
            except ValueError:
                raise BadRequest(f"parameter {name!r} must be a number; got {shown(value)}") from None
