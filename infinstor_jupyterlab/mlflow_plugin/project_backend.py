"""`mlflow run -b infinstor-backend --backend-config '{"target": "inline", "wait": true}' PROJECT -P k=v`.

Submits the project to the user's running Jupyter server, so it runs through the same job code
as a job started from the lab and shows in its Jobs view.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mlflow.entities import RunStatus
from mlflow.exceptions import ExecutionException
from mlflow.projects.backend.abstract_backend import AbstractBackend
from mlflow.projects.submitted_run import SubmittedRun

from ..errors import InfinStorError
from ..jobs.lab_client import LabClient, is_local_path

_STATUS = {"QUEUED": "SCHEDULED", "RUNNING": "RUNNING", "FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED"}
_CONFIG_KEYS = {"target", "run_name", "experiment_name", "env_manager", "instance_type", "stream_logs", "wait"}


def _mlflow_injected_keys() -> set[str]:
    """Keys `mlflow run` itself adds to every backend config (synchronous, storage dir, ...)."""
    from mlflow.projects import utils

    return {getattr(utils, name) for name in dir(utils) if name.startswith(("PROJECT_", "MLFLOW_LOCAL_BACKEND_"))}


class InfinStorSubmittedRun(SubmittedRun):
    def __init__(self, client: LabClient, job: dict, *, stream_logs: bool = True, poll_seconds: float = 1.0):
        self._client = client
        self._job = job
        self._stream_logs = stream_logs
        self._poll = poll_seconds
        self._offset = 0

    @property
    def run_id(self) -> str:
        return self._job["run_id"]

    @property
    def job_id(self) -> str:
        return self._job["id"]

    def _refresh(self) -> dict:
        self._job = self._client.job(self.job_id)
        return self._job

    def _drain_log(self) -> None:
        while True:
            chunk = self._client.log(self.job_id, self._offset)
            if chunk["data"]:
                sys.stdout.write(chunk["data"])
                sys.stdout.flush()
            if chunk["next_offset"] == self._offset:
                return
            self._offset = chunk["next_offset"]

    def wait(self) -> bool:
        while True:
            job = self._refresh()
            if self._stream_logs:
                self._drain_log()
            if job["status"] in ("FINISHED", "FAILED", "KILLED"):
                if job.get("failure_reason"):
                    print(f"[infinstor] job {job['id']} {job['status']}: {job['failure_reason']}", file=sys.stderr)
                return job["status"] == "FINISHED"
            time.sleep(self._poll)

    def get_status(self) -> str:
        return RunStatus.to_string(RunStatus.from_string(_STATUS[self._refresh()["status"]]))

    def cancel(self) -> None:
        self._job = self._client.cancel(self.job_id)


class InfinStorProjectBackend(AbstractBackend):
    def run(self, project_uri, entry_point, params, version, backend_config, tracking_uri, experiment_id):
        config = dict(backend_config or {})
        unknown = sorted(set(config) - _CONFIG_KEYS - _mlflow_injected_keys())
        if unknown:
            raise ExecutionException(
                f"infinstor-backend: unknown backend-config key(s) {', '.join(unknown)}; known: {', '.join(sorted(_CONFIG_KEYS))}"
            )
        if version:
            raise ExecutionException("infinstor-backend runs local project folders; --version (git) is not supported.")
        if not is_local_path(project_uri):
            raise ExecutionException(
                f"infinstor-backend runs local project folders inside the Jupyter root; {project_uri!r} is not one. "
                "Clone it into the lab first."
            )
        path = Path(project_uri).resolve()
        options = {}
        env_manager = config.get("env_manager")
        if env_manager:
            options["env_manager"] = env_manager
        if config.get("instance_type"):
            options["instance_type"] = config["instance_type"]
        try:
            client = LabClient.for_path(path)
            body = {
                "path": client.lab_path(path),
                "target": config.get("target", "inline"),
                "parameters": {k: v for k, v in (params or {}).items()},
                "entry_point": entry_point or "main",
                "options": options,
            }
            if config.get("experiment_name"):
                body["experiment_name"] = config["experiment_name"]
            elif experiment_id is not None:
                body["experiment_id"] = str(experiment_id)
            if config.get("run_name"):
                body["run_name"] = config["run_name"]
            job = client.submit(body)
        except InfinStorError as exc:
            raise ExecutionException(f"infinstor-backend: {exc.message}") from None
        print(f"[infinstor] job {job['id']} submitted to {client.url} (target {job['target']}, run {job['run_id']})", file=sys.stderr)
        submitted = InfinStorSubmittedRun(client, job, stream_logs=bool(config.get("stream_logs", True)))
        # `mlflow run` returns right after submitting to a plugin backend; "wait" follows the job
        # here, streaming its log, and fails the command if the job fails.
        if config.get("wait"):
            if not submitted.wait():
                raise ExecutionException(f"infinstor-backend: job {job['id']} ended {submitted._job['status']}")
        else:
            print('[infinstor] follow it in the lab\'s Jobs view, or pass "wait": true in --backend-config', file=sys.stderr)
        return submitted
