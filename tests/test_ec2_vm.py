"""EC2 notebook jobs on a VM built exactly as the user data builds it, on emulated AWS.

The other EC2 tests run the agent from the development venv, which has everything (and the
developer's PATH). Here the agent runs from a clean venv holding only `infinstor_jupyterlab[ec2]`
and what it declares (tests/vm_env.py builds it with the user data's own lines), started with the
systemd unit's ExecStart, systemd's default PATH and a fresh HOME: what a VM has.
"""

from __future__ import annotations

import itertools
import json

import pytest

from conftest import mlflow_api, wait_for_state
from ec2_fixture import AWS_ENV, Hypervisor, aws, moto_endpoint  # noqa: F401
from notebooks import failing_notebook, notebook, write
from test_jobs import artifacts_of, read_whole_log, run_of, submit, wait_for_job
from vm_env import vm_env  # noqa: F401

pytestmark = pytest.mark.slow

# A notebook as data scientists write them: a None default, a run name of its own. (A job token
# writes to the job's run only: on a VM the notebook cannot start other runs.)
NOTEBOOK_RUNS = notebook(
    "import os, shutil, sys, mlflow\n"
    "print('EXECUTABLE', sys.executable)\n"
    "print('PYTHON_ON_PATH', shutil.which('python'))\n"
    "print('MESSAGE', repr(msg))\n"
    "print('MLFLOW', mlflow.__file__)",
    "with mlflow.start_run(run_name='the-notebooks-own-name'):\n    mlflow.log_metric('steps', steps)",
    parameters="msg = None\nsteps = 3",
)


class UnitHypervisor(Hypervisor):
    """Boots each instance's agent as the user data's systemd unit would run it."""

    def __init__(self, aws, work, vm):  # noqa: F811
        super().__init__(aws, work)
        self.vm = vm
        self._homes = itertools.count()

    def agent_command(self, instance_id, folder):
        return self.vm.unit_command(self.aws.user_data(instance_id), folder / "agent.json", folder / "work", instance_id)

    def agent_env(self):
        home = self.work / f"home-{next(self._homes)}"
        home.mkdir(parents=True)
        # The instance role's credentials come from IMDS on a VM; moto takes these.
        return self.vm.unit_environment(home, dict(AWS_ENV))


@pytest.fixture
def jp_server_config(jp_server_config, aws, vm_env):  # noqa: F811
    return {**jp_server_config, "EC2Target": aws.target_config(package_spec=f"{vm_env.wheel}[ec2]", heartbeat_timeout=60.0)}


@pytest.fixture
def vm(aws, vm_env, tmp_path):  # noqa: F811
    machine = UnitHypervisor(aws, tmp_path / "vms", vm_env)
    machine.start()
    yield machine
    machine.stop()


def printed(log: str, key: str) -> str:
    return next(line.split(" ", 1)[1] for line in log.splitlines() if line.startswith(key + " "))


async def runs_named(infinstor, experiment_id: str) -> dict[str, dict]:
    tracking = infinstor.tracking
    code, body = await mlflow_api(
        tracking.uri, "runs/search", body={"experiment_ids": [experiment_id], "max_results": 100}, headers=tracking.auth_headers()
    )
    assert code == 200, body
    return {r["info"]["run_name"]: r for r in body.get("runs", [])}


def tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


async def test_notebook_jobs_on_a_vm_built_by_the_user_data(jp_fetch, jp_root_dir, infinstor, aws, vm, vm_env):  # noqa: F811
    write(NOTEBOOK_RUNS, jp_root_dir / "work" / "runs.ipynb")
    write(failing_notebook(), jp_root_dir / "fail.ipynb")
    await wait_for_state(jp_fetch, "running")

    job = await submit(
        jp_fetch, path="work/runs.ipynb", target="ec2", parameters={"msg": "Hello"}, experiment_name="on-the-vm", run_name="the-jobs-name"
    )
    job = await wait_for_job(jp_fetch, job["id"], timeout=600)
    log = await read_whole_log(jp_fetch, job["id"])
    agent = "".join(vm.agent_log(i["InstanceId"]) for i in aws.instances())
    assert job["status"] == "FINISHED", (job, log[-3000:], agent[-3000:])
    assert printed(log, "EXECUTABLE").startswith(str(vm_env.prefix))  # the VM's venv, not a system python
    assert printed(log, "MESSAGE") == "'Hello'"
    run = await run_of(infinstor, job["run_id"])
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"msg": "Hello", "steps": "3"}
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"steps": 3.0}
    # The job's run keeps its name (the notebook's start_run(run_name=...) resumed and renamed it).
    assert run["info"]["run_name"] == "the-jobs-name" and job["run_name"] == "the-jobs-name"
    assert tags(run)["mlflow.runName"] == "the-jobs-name"
    assert set(await runs_named(infinstor, job["experiment_id"])) == {"the-jobs-name"}
    assert await artifacts_of(infinstor, job["run_id"], "notebook") == {"notebook/runs.ipynb", "notebook/runs.html"}

    # A failing notebook: the reason is the notebook's exception.
    job = await wait_for_job(jp_fetch, (await submit(jp_fetch, path="fail.ipynb", target="ec2"))["id"], timeout=600)
    assert job["status"] == "FAILED" and job["failure_reason"] == "RuntimeError: boom in the third cell", job

    # env_manager uv: MLflow builds a fresh environment with the VM's uv (not on systemd's PATH).
    job = await submit(
        jp_fetch,
        path="work/runs.ipynb",
        target="ec2",
        parameters={"msg": None, "steps": 5},
        experiment_name="on-the-vm-uv",
        options={"env_manager": "uv"},
    )
    job = await wait_for_job(jp_fetch, job["id"], timeout=900)
    log = await read_whole_log(jp_fetch, job["id"])
    assert job["status"] == "FINISHED", (job, log[-3000:])
    assert "/.mlflow/envs/" in printed(log, "EXECUTABLE")
    assert printed(log, "MLFLOW").startswith(printed(log, "EXECUTABLE").rsplit("/bin/", 1)[0])
    assert printed(log, "MESSAGE") == "None"
    run = await run_of(infinstor, job["run_id"])
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"steps": 5.0}
    assert json.loads(json.dumps(job["parameters"])) == {"msg": "None", "steps": "5"}
