"""Emulated AWS for the EC2 target: moto's server on loopback, and a "hypervisor" that boots agents.

moto launches instances that never boot. The hypervisor plays the part of the VM: when an
instance of ours enters `running`, it reads the instance's user data from EC2 (what cloud-init
would run), takes the agent configuration out of it, and starts the real VM agent as a local
process (`python -m infinstor_jupyterlab.ec2.agent --config ... --instance-id ...`), the same
command the user data's systemd unit runs. When the instance stops or terminates, the agent is
killed, as shutting the VM down would; a stopped instance that starts again boots a new agent.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
import requests

from servers import wait_until_healthy

REGION = "us-east-1"
BUCKET = "infinstor-test-staging"
PROFILE = "infinstor-test-runner"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **AWS_ENV},
    )
    url = f"http://127.0.0.1:{port}"
    if not wait_until_healthy(proc, f"{url}/moto-api/", timeout=30):
        raise RuntimeError("moto_server did not start")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


class Aws:
    """Clients on the emulator, and what tests look at."""

    def __init__(self, endpoint: str):
        import boto3

        self.endpoint = endpoint
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing", region_name=REGION
        )
        self.ec2 = session.client("ec2", endpoint_url=endpoint)
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.ssm = session.client("ssm", endpoint_url=endpoint)
        self.iam = session.client("iam", endpoint_url=endpoint)
        images = [i["ImageId"] for i in self.ec2.describe_images()["Images"]]
        self.ami, self.silent_ami = images[0], images[1]  # the second one's instances never check in

    def setup(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=30)
        self.s3.create_bucket(Bucket=BUCKET)
        self.iam.create_role(RoleName=PROFILE, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
        self.iam.create_instance_profile(InstanceProfileName=PROFILE)
        self.iam.add_role_to_instance_profile(InstanceProfileName=PROFILE, RoleName=PROFILE)
        self.ssm.put_parameter(Name="/infinstor/test/ami", Value=self.ami, Type="String")

    def target_config(self, **overrides) -> dict:
        return {
            "region": REGION,
            "endpoint_url": self.endpoint,
            "ami": "/infinstor/test/ami",
            "s3_bucket": BUCKET,
            "s3_prefix": "lab",
            "iam_instance_profile": PROFILE,
            "default_instance_type": "t3.medium",
            "allowed_instance_types": ["t3.medium", "t3.large", "g5.xlarge"],
            "tags": {"team": "ml", "cost-center": "42"},
            "max_instances_per_user": 3,
            "idle_timeout": 6.0,
            "checkin_timeout": 60.0,
            "heartbeat_timeout": 6.0,
            "heartbeat_interval": 0.5,
            "poll_interval": 0.25,
            "agent_poll_interval": 0.25,
            "log_interval": 0.5,
            **overrides,
        }

    def instances(self, states=("pending", "running", "stopping", "stopped", "shutting-down", "terminated")) -> list[dict]:
        found = []
        for reservation in self.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": list(states)}])["Reservations"]:
            found.extend(reservation["Instances"])
        return found

    def state(self, instance_id: str) -> str:
        return self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def parameters(self, path: str = "/infinstor/jobs") -> list[str]:
        found = self.ssm.get_parameters_by_path(Path=path, Recursive=True).get("Parameters", [])
        return [p["Name"] for p in found]

    def user_data(self, instance_id: str) -> str:
        value = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
        return base64.b64decode(value).decode()


class Hypervisor(threading.Thread):
    """Boots the VM agent for every running instance of ours, and shuts it down with the instance."""

    def __init__(self, aws: Aws, work: Path):
        super().__init__(name="hypervisor", daemon=True)
        self.aws = aws
        self.work = work
        self.agents: dict[str, subprocess.Popen] = {}
        self.crashed: set[str] = set()
        self.boots: dict[str, int] = {}
        self._stop_event = threading.Event()
        self.errors: list[str] = []

    def agent_env(self) -> dict[str, str]:
        # What a VM has: no lab settings, no tracking secret; AWS access is the instance role's.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "AWS_", "JPY_"))}
        env.update(AWS_ENV)
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        return env

    def agent_command(self, instance_id: str, folder: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "infinstor_jupyterlab.ec2.agent",
            "--config",
            str(folder / "agent.json"),
            "--instance-id",
            instance_id,
            "--work-dir",
            str(folder / "work"),
        ]

    def run(self) -> None:
        from infinstor_jupyterlab.ec2.pool import agent_config_from_user_data

        while not self._stop_event.wait(0.2):
            try:
                instances = self.aws.instances()
            except Exception as exc:  # the emulator is being reset
                self.errors.append(str(exc))
                continue
            for instance in instances:
                iid, state = instance["InstanceId"], instance["State"]["Name"]
                proc = self.agents.get(iid)
                if state == "running":
                    if proc is None and iid not in self.crashed and instance["ImageId"] != self.aws.silent_ami:
                        config = agent_config_from_user_data(self.aws.user_data(iid))
                        folder = self.work / iid
                        folder.mkdir(parents=True, exist_ok=True)
                        (folder / "agent.json").write_text(json.dumps(config))
                        self.boots[iid] = self.boots.get(iid, 0) + 1
                        log = open(folder / f"agent-{self.boots[iid]}.log", "wb")
                        self.agents[iid] = subprocess.Popen(
                            self.agent_command(iid, folder),
                            env=self.agent_env(),
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                        log.close()
                    elif proc is not None and proc.poll() is not None:
                        self.crashed.add(iid)  # the agent died on a running VM: no restart
                        self.agents.pop(iid)
                else:
                    self.crashed.discard(iid)
                    if proc is not None:
                        self.agents.pop(iid)
                        kill_tree(proc.pid)

    def agent_log(self, instance_id: str) -> str:
        folder = self.work / instance_id
        return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("agent-*.log")))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)
        for proc in self.agents.values():
            kill_tree(proc.pid)


def kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for proc in tree:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(tree, 10)


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    emulated = Aws(moto_endpoint)
    emulated.setup()
    return emulated


@pytest.fixture
def hypervisor(aws, tmp_path):
    machine = Hypervisor(aws, tmp_path / "vms")
    machine.start()
    yield machine
    machine.stop()
