"""Unit tests of the Compute view's answers (infinstor_jupyterlab.jobs.compute), with a stand-in EC2
target and job manager: no server, no AWS. test_ec2.py and test_ec2_config.py cover the same
answers through the HTTP API against moto."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from infinstor_jupyterlab.errors import NotFound
from infinstor_jupyterlab.jobs import compute
from infinstor_jupyterlab.jobs.models import Job


def job(job_id: str, path: str, run_name: str | None = None) -> Job:
    return Job(
        id=job_id,
        path=path,
        kind="notebook",
        target="ec2",
        status="RUNNING",
        parameters={},
        experiment_id="0",
        run_id=f"run-{job_id}",
        run_name=run_name,
        project_dir="/tmp/p",
    )


def instance(instance_id: str, current_job: str | None = None) -> dict[str, Any]:
    return {"id": instance_id, "state": "running", "instance_type": "t3.medium", "current_job": current_job}


@dataclass
class FakeEC2Target:
    """What the Compute view asks of EC2Target; records the calls."""

    reason: str | None = None
    # Set by refresh_availability, as a credentials check that fails would.
    reason_after_refresh: str | None = None
    instances: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)
    identity: dict[str, str] | None = field(
        default_factory=lambda: {"account": "123456789012", "arn": "arn:aws:iam::123456789012:user/lab"}
    )

    async def refresh_availability(self) -> None:
        self.calls.append(("refresh_availability",))
        if self.reason_after_refresh is not None:
            self.reason = self.reason_after_refresh

    def unavailable_reason(self) -> str | None:
        return self.reason

    async def list_instances(self, user: str) -> list[dict[str, Any]]:
        self.calls.append(("list_instances", user))
        return [dict(i) for i in self.instances]

    def missing_settings(self) -> list[str]:
        return ["subnet_id"] if self.reason else []

    def public_config(self) -> dict[str, Any]:
        return {"region": "eu-west-1"}

    async def control_instance(self, user: str, instance_id: str, action: str) -> dict[str, Any]:
        self.calls.append((action, user, instance_id))
        return {"id": instance_id, "state": "stopping" if action == "stop" else "shutting-down"}


@dataclass
class FakeJobManager:
    """The job manager's parts the Compute view uses: its targets, the lab's user, its jobs."""

    targets: dict[str, Any]
    jobs: dict[str, Job] = field(default_factory=dict)
    user: str = "ann"

    async def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise NotFound(f"No job {job_id!r}.")
        return self.jobs[job_id]


def test_job_title_is_the_run_name_else_the_file_name():
    assert compute.job_title(job("j1", "work/train.ipynb", run_name="nightly")) == "nightly"
    assert compute.job_title(job("j2", "work/train.ipynb")) == "train.ipynb"
    assert compute.job_title(job("j3", "projects/churn/")) == "churn"


async def test_instances_name_the_job_each_runs():
    target = FakeEC2Target(instances=[instance("i-1", "j1"), instance("i-2"), instance("i-3", "gone")])
    jobs = FakeJobManager({"ec2": target}, jobs={"j1": job("j1", "work/train.ipynb", run_name="nightly")})
    answer = await compute.list_instances(jobs)
    assert answer["available"] is True and answer["reason"] is None
    titles = {i["id"]: i["current_job_title"] for i in answer["instances"]}
    # A job another lab started (or one deleted since) has no title here.
    assert titles == {"i-1": "nightly", "i-2": None, "i-3": None}
    assert target.calls == [("refresh_availability",), ("list_instances", "ann")]


async def test_instances_are_not_listed_while_ec2_is_unavailable():
    target = FakeEC2Target(reason_after_refresh="EC2 is not available: AWS did not accept the credentials.")
    answer = await compute.list_instances(FakeJobManager({"ec2": target}))
    assert answer == {"available": False, "reason": target.reason, "instances": []}
    assert target.calls == [("refresh_availability",)]


async def test_without_the_ec2_target_the_view_is_told_why():
    jobs = FakeJobManager({})
    assert await compute.list_instances(jobs) == {"available": False, "reason": compute.NOT_ENABLED, "instances": []}
    assert await compute.describe_settings(jobs) == {
        "enabled": False,
        "available": False,
        "reason": compute.NOT_ENABLED,
        "missing": [],
        "config": None,
        "identity": None,
    }
    with pytest.raises(NotFound):
        await compute.control_instance(jobs, "i-1", "stop")


async def test_settings_after_the_credentials_check():
    target = FakeEC2Target()
    assert await compute.describe_settings(FakeJobManager({"ec2": target})) == {
        "enabled": True,
        "available": True,
        "reason": None,
        "missing": [],
        "config": {"region": "eu-west-1"},
        "identity": target.identity,
    }
    assert target.calls == [("refresh_availability",)]
    unconfigured = FakeEC2Target(reason="EC2 is not configured: set c.EC2Target.subnet_id.", identity=None)
    settings = await compute.describe_settings(FakeJobManager({"ec2": unconfigured}))
    assert settings["enabled"] is True and settings["available"] is False
    assert settings["reason"] == unconfigured.reason and settings["missing"] == ["subnet_id"]


async def test_instance_actions_go_to_the_target_as_the_lab_user():
    target = FakeEC2Target()
    jobs = FakeJobManager({"ec2": target}, user="bob")
    assert await compute.control_instance(jobs, "i-1", "terminate") == {"id": "i-1", "state": "shutting-down"}
    assert target.calls == [("terminate", "bob", "i-1")]
    target.reason = "EC2 is not configured."
    with pytest.raises(NotFound):
        await compute.control_instance(jobs, "i-1", "stop")
