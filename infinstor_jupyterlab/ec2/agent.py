"""The VM agent: `python -m infinstor_jupyterlab.ec2.agent --config /etc/infinstor/agent.json`.

Runs on each EC2 instance the lab launched (started by systemd from the user data), as the
instance's own role. It:

- finds its instance id (IMDSv2; `--instance-id` or $INFINSTOR_AGENT_INSTANCE_ID for tests),
- sends heartbeats to S3 (idle or busy, which job, since when idle),
- picks up jobs addressed to it (`<prefix>/instances/<id>/inbox/<job>.json`), fetches the staged
  project, reads the job token from SSM into a 0600 file (never the environment, arguments or log),
- runs `mlflow run` against the tracking URI with that token (the request header provider reads
  the file named by $INFINSTOR_JOB_TOKEN_FILE), streaming the log and the notebook's cell
  progress record to S3 in chunks,
- honours cancel requests, sets the MLflow run's status, writes the job's final status, deletes the
  job's SSM parameter and local files,
- and after `idle_timeout` seconds without work stops its own instance.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ..jobs.process_env import add_own_requirement, job_process_environment
from ..projects.runner import PROGRESS_ENV
from . import layout
from .aws import Clients, describe, is_not_found

log = logging.getLogger("infinstor.agent")

INSTANCE_ID_ENV = "INFINSTOR_AGENT_INSTANCE_ID"
_IMDS = "http://169.254.169.254/latest"
_MAX_CHUNK = 1024 * 1024


def imds_instance_id(timeout: float = 2.0) -> str:
    """The instance id from the instance metadata service (IMDSv2)."""
    import urllib.request

    token_req = urllib.request.Request(f"{_IMDS}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    with urllib.request.urlopen(token_req, timeout=timeout) as response:
        token = response.read().decode()
    req = urllib.request.Request(f"{_IMDS}/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return response.read().decode().strip()


class Agent:
    def __init__(self, config: dict[str, Any], instance_id: str, work_dir: Path):
        self.config = config
        self.instance_id = instance_id
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.bucket = config["bucket"]
        self.prefix = config.get("prefix", "")
        self.idle_timeout = float(config.get("idle_timeout", 900))
        self.heartbeat_interval = float(config.get("heartbeat_interval", 15))
        self.poll_interval = float(config.get("poll_interval", 2))
        self.log_interval = float(config.get("log_interval", 2))
        self.cancel_grace = float(config.get("cancel_grace", 10))
        self.token_refresh_interval = float(config.get("token_refresh_interval", 300))
        self.clients = Clients(config.get("region"), config.get("endpoint_url"))
        self.s3 = self.clients("s3")
        self.ssm = self.clients("ssm")
        self.started_at = time.time()
        self.idle_since = time.time()
        self.current_job: str | None = None
        self.state = "idle"
        self._stop = threading.Event()
        self._beat_lock = threading.Lock()

    # -- S3 helpers ------------------------------------------------------------------------------
    def _put_json(self, key: str, data: dict) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(data).encode(), ContentType="application/json")

    def _get_json(self, key: str) -> dict | None:
        try:
            return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise

    # -- heartbeats ------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        with self._beat_lock:
            self._put_json(
                layout.heartbeat_key(self.prefix, self.instance_id),
                {
                    "instance_id": self.instance_id,
                    "time": time.time(),
                    "state": self.state,
                    "job_id": self.current_job,
                    "idle_since": self.idle_since if self.state == "idle" else None,
                    "agent_started": self.started_at,
                    "pid": os.getpid(),
                },
            )

    def _heartbeats(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                self.heartbeat()
            except Exception as exc:  # keep beating; S3 hiccups pass
                log.warning("heartbeat failed: %s", describe(exc))

    # -- main loop -------------------------------------------------------------------------------
    def run(self) -> int:
        log.info(
            "InfinStor agent on %s: bucket %s, prefix %r, idle timeout %.0f s",
            self.instance_id,
            self.bucket,
            self.prefix,
            self.idle_timeout,
        )
        self.heartbeat()  # the check-in
        beats = threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True)
        beats.start()
        try:
            while True:
                assignment = self._next_assignment()
                if assignment is not None:
                    self._run_assignment(*assignment)
                    self.idle_since = time.time()
                    self.state = "idle"
                    self.current_job = None
                    self.heartbeat()
                    continue
                if time.time() - self.idle_since >= self.idle_timeout:
                    if self._next_assignment(peek=True) is not None:
                        continue
                    self._stop_instance()
                    return 0
                time.sleep(self.poll_interval)
        finally:
            self._stop.set()

    def _next_assignment(self, peek: bool = False) -> tuple[str, dict] | None:
        try:
            listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=layout.inbox_prefix(self.prefix, self.instance_id))
        except Exception as exc:
            log.warning("reading the inbox failed: %s", describe(exc))
            return None
        keys = sorted(o["Key"] for o in listed.get("Contents", []))
        for key in keys:
            if peek:
                return key, {}
            body = self._get_json(key)
            if body is not None:
                return key, body
        return None

    def _stop_instance(self) -> None:
        self.state = "stopping"
        try:
            self.heartbeat()
        except Exception:
            pass
        log.info("idle for %.0f s: stopping instance %s", time.time() - self.idle_since, self.instance_id)
        try:
            self.clients("ec2").stop_instances(InstanceIds=[self.instance_id])
        except Exception as exc:
            log.error("could not stop instance %s: %s", self.instance_id, describe(exc))

    # -- one job ---------------------------------------------------------------------------------
    def _run_assignment(self, inbox_key: str, assignment: dict) -> None:
        spec = self._get_json(assignment["spec_key"]) if assignment.get("spec_key") else None
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=inbox_key)
        except Exception as exc:
            log.warning("could not clear %s: %s", inbox_key, describe(exc))
        if spec is None:
            log.error("job spec %s is gone; ignoring the assignment", assignment.get("spec_key"))
            return
        job = JobRun(self, spec)
        self.state, self.current_job = "busy", spec["job_id"]
        self.heartbeat()
        job.execute()


class JobRun:
    """One job on this instance, from its spec to its final status."""

    def __init__(self, agent: Agent, spec: dict):
        self.agent = agent
        self.spec = spec
        self.s3 = agent.s3
        self.bucket = agent.bucket
        self.dir = Path(tempfile.mkdtemp(prefix=f"job-{layout.safe(spec['job_id'])}-", dir=agent.work_dir))
        self.token_path = self.dir / "job-token"
        self.log_path = self.dir / "output.log"
        self.progress_path = self.dir / "progress.jsonl"
        self.seq = 0
        self.uploaded = 0
        self.progress_seq = 0
        self.progress_uploaded = 0
        self.token_read_at = 0.0

    def status(self, state: str, **extra) -> None:
        body = {"state": state, "instance_id": self.agent.instance_id, "time": time.time(), **extra}
        self.agent._put_json(self.spec["status_key"], body)

    def execute(self) -> None:
        try:
            self.status("accepted")
            project = self._fetch_project()
            if (self.spec.get("env_manager") or "local") != "local":
                # The environment MLflow builds needs this package: it sends the job token.
                add_own_requirement(project)
            self._read_token()
            outcome = self._run(project)
        except Exception as exc:
            log.error("job %s failed in the agent: %s", self.spec["job_id"], traceback.format_exc())
            self._append_log(f"\n[infinstor agent] {describe(exc)}\n")
            self._flush_log(final=True)
            self._flush_progress(final=True)
            self.status("failed", exit_code=None, message=f"The VM agent failed: {describe(exc)}")
            self._set_run_status("FAILED")
        else:
            state, code = outcome
            self._flush_log(final=True)
            self._flush_progress(final=True)
            self._set_run_status({"finished": "FINISHED", "killed": "KILLED"}.get(state, "FAILED"))
            self.status(state, exit_code=code)
        finally:
            self._cleanup()

    def _fetch_project(self) -> Path:
        archive = self.dir / "project.tar.gz"
        self.s3.download_file(self.bucket, self.spec["project_key"], str(archive))
        target = self.dir / "project"
        target.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
        return target

    def _read_token(self) -> None:
        value = self.agent.ssm.get_parameter(Name=self.spec["token_parameter"], WithDecryption=True)["Parameter"]["Value"]
        tmp = self.token_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.replace(tmp, self.token_path)
        self.token_read_at = time.time()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_"))}
        env.update(
            {
                "MLFLOW_TRACKING_URI": self.spec["tracking_uri"],
                "MLFLOW_EXPERIMENT_ID": str(self.spec["experiment_id"]),
                "INFINSTOR_JOB_TOKEN_FILE": str(self.token_path),
                "INFINSTOR_JOB_TRACKING_URI": self.spec["tracking_uri"],
                "INFINSTOR_USER": self.spec.get("user") or "",
                "INFINSTOR_JOB_ID": self.spec["job_id"],
                PROGRESS_ENV: str(self.progress_path),
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        # systemd gives the unit a minimal PATH without the venv: the job's `python` (MLflow runs
        # `bash -c "python ..."`) and `uv` must be the venv's; its temp files stay in the job's folder.
        return job_process_environment(env, self.dir, sys.executable)

    def _command(self, project: Path) -> list[str]:
        spec = self.spec
        args = [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(project),
            "--entry-point",
            spec.get("entry_point") or "main",
            "--run-id",
            spec["run_id"],
            "--experiment-id",
            str(spec["experiment_id"]),
            "--env-manager",
            spec.get("env_manager") or "local",
        ]
        for key, value in (spec.get("parameters") or {}).items():
            args += ["-P", f"{key}={value}"]
        return args

    def _run(self, project: Path) -> tuple[str, int | None]:
        with open(self.log_path, "ab") as out:
            proc = subprocess.Popen(
                self._command(project),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=str(project),
                start_new_session=True,
            )
        self.status("running", pid=proc.pid)
        last_log = 0.0
        cancel_key = self.spec["cancel_key"]
        while True:
            try:
                code = proc.wait(timeout=self.agent.poll_interval)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                return ("finished" if code == 0 else "failed"), code
            now = time.time()
            if now - last_log >= self.agent.log_interval:
                self._flush_log()
                self._flush_progress()
                last_log = now
            if now - self.token_read_at >= self.agent.token_refresh_interval:
                try:
                    self._read_token()  # the lab renews short-lived tokens of long jobs
                except Exception as exc:
                    log.warning("refreshing the job token failed: %s", describe(exc))
            if self.agent._exists(cancel_key):
                self._append_log("\n[infinstor agent] cancel requested from the lab; stopping the job\n")
                self._kill_tree(proc)
                return "killed", proc.returncode

    def _kill_tree(self, proc: subprocess.Popen) -> None:
        import psutil

        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(tree, self.agent.cancel_grace)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, 5)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def _append_log(self, text: str) -> None:
        with open(self.log_path, "ab") as out:
            out.write(text.encode())

    def _flush_log(self, final: bool = False) -> None:
        self.seq, self.uploaded = self._ship(self.log_path, self.spec["log_prefix"], self.seq, self.uploaded, final)

    def _flush_progress(self, final: bool = False) -> None:
        """The runner's cell progress record, shipped like the log (a lab older than the agent
        names no prefix for it)."""
        if self.spec.get("progress_prefix"):
            self.progress_seq, self.progress_uploaded = self._ship(
                self.progress_path, self.spec["progress_prefix"], self.progress_seq, self.progress_uploaded, final
            )

    def _ship(self, path: Path, prefix: str, seq: int, uploaded: int, final: bool) -> tuple[int, int]:
        """Upload what `path` gained since `uploaded` bytes as chunks `<prefix><seq>`, in order."""
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return seq, uploaded
        while uploaded < size:
            with open(path, "rb") as handle:
                handle.seek(uploaded)
                chunk = handle.read(min(_MAX_CHUNK, size - uploaded))
            if not chunk:
                break
            key = f"{prefix}{seq:08d}"
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=chunk, ContentType="text/plain; charset=utf-8")
            seq += 1
            uploaded += len(chunk)
            if not final and uploaded >= size:
                break
        return seq, uploaded

    def _set_run_status(self, status: str) -> None:
        """The run's final status, set with the job token (a no-op when `mlflow run` already did)."""
        import requests

        try:
            token = self.token_path.read_text().strip()
            response = requests.post(
                f"{self.spec['tracking_uri'].rstrip('/')}/api/2.0/mlflow/runs/update",
                json={"run_id": self.spec["run_id"], "status": status, "end_time": int(time.time() * 1000)},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            if response.status_code >= 400:
                log.warning("setting run %s to %s: HTTP %s", self.spec["run_id"], status, response.status_code)
        except Exception as exc:
            log.warning("could not set the run status: %s", exc)

    def _cleanup(self) -> None:
        try:
            self.agent.ssm.delete_parameter(Name=self.spec["token_parameter"])
        except Exception as exc:
            if not is_not_found(exc):
                log.warning("could not delete the job's credentials: %s", describe(exc))
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infinstor agent", description="The InfinStor VM agent for EC2 jobs.")
    parser.add_argument("--config", default="/etc/infinstor/agent.json", help="agent configuration (JSON, written by the user data)")
    parser.add_argument("--instance-id", default=os.environ.get(INSTANCE_ID_ENV), help="default: from the instance metadata service")
    parser.add_argument("--work-dir", default=None, help="where jobs run (default: <config dir>/work or /var/lib/infinstor)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = json.loads(Path(args.config).read_text())
    instance_id = args.instance_id or imds_instance_id()
    work_dir = Path(args.work_dir or config.get("work_dir") or "/var/lib/infinstor")
    return Agent(config, instance_id, work_dir).run()


if __name__ == "__main__":
    sys.exit(main())
