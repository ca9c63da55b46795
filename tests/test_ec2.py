"""Jobs on EC2, end to end on emulated AWS (moto's server) with the real VM agent as a local process.

Submitted through the lab's REST API; the instance moto "launches" is booted by the hypervisor
fixture (see ec2_fixture), which runs the agent from the instance's own user data.
"""

from __future__ import annotations

import asyncio
import json
import stat
import textwrap
import time

import pytest
import yaml
from tornado.httpclient import HTTPClientError

from conftest import mlflow_api, wait_for_state
from ec2_fixture import BUCKET, PROFILE, aws, hypervisor, kill_tree, moto_endpoint  # noqa: F401
from notebooks import sklearn_training_notebook, write
from test_jobs import artifacts_of, get_job, read_whole_log, run_of, submit, wait_for_job

pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config(jp_server_config, aws):  # noqa: F811
    return {**jp_server_config, "EC2Target": aws.target_config()}


def quick_project(root, name="quick", seconds=0.0):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "MLproject").write_text(
        yaml.safe_dump(
            {
                "name": name,
                "entry_points": {
                    "main": {
                        "parameters": {"alpha": {"type": "float", "default": 0.5}},
                        "command": "python train.py --alpha {alpha}",
                    }
                },
            }
        )
    )
    (folder / "train.py").write_text(
        textwrap.dedent(
            f"""
            import argparse, os, stat, time, mlflow
            parser = argparse.ArgumentParser()
            parser.add_argument("--alpha", type=float)
            args = parser.parse_args()
            token_file = os.environ["INFINSTOR_JOB_TOKEN_FILE"]
            print("token file mode", oct(stat.S_IMODE(os.stat(token_file).st_mode)), flush=True)
            print("secret in env:", "INFINSTOR_SECRET_FILE" in os.environ, flush=True)
            print("training with", args.alpha, flush=True)
            deadline = time.time() + {seconds}
            while time.time() < deadline:
                time.sleep(0.1)
            mlflow.log_metric("score", args.alpha * 2)
            with open("result.txt", "w") as handle:
                handle.write(str(args.alpha))
            mlflow.log_artifact("result.txt", "out")
            print("done", flush=True)
            """
        )
    )
    return folder


def our_instances(aws, states=("pending", "running", "stopping", "stopped")):  # noqa: F811
    return [i for i in aws.instances(states) if any(t["Key"] == "infinstor:purpose" for t in i.get("Tags", []))]


def tags_of(instance) -> dict:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


async def until(predicate, timeout=60.0, interval=0.25, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def assert_nothing_left(aws, instances_allowed=()):  # noqa: F811
    assert aws.keys("lab/users/") == [], aws.keys("lab/users/")
    assert [k for k in aws.keys("lab/instances/") if "/inbox/" in k] == []
    assert aws.parameters() == []
    running = [i["InstanceId"] for i in our_instances(aws, ("pending", "running")) if i["InstanceId"] not in instances_allowed]
    assert running == [], running


async def test_notebook_on_ec2_end_to_end(jp_fetch, jp_root_dir, infinstor, aws, hypervisor):  # noqa: F811
    write(sklearn_training_notebook(), jp_root_dir / "models" / "iris.ipynb")
    quick_project(jp_root_dir)
    targets = json.loads((await jp_fetch("infinstor", "api", "targets")).body)["targets"]
    ec2 = next(t for t in targets if t["name"] == "ec2")
    assert ec2["available"], ec2
    assert ec2["capabilities"]["instance_types"] == ["t3.medium", "t3.large", "g5.xlarge"]
    assert ec2["capabilities"]["sweeps"] and ec2["capabilities"]["max_instances"] == 3
    await wait_for_state(jp_fetch, "running")

    job = await submit(
        jp_fetch,
        path="models/iris.ipynb",
        target="ec2",
        parameters={"C": 0.3, "max_iter": 120, "label": "on ec2"},
        experiment_name="iris-ec2",
        run_name="iris-on-ec2",
        options={"instance_type": "t3.large"},
    )
    assert job["target"] == "ec2" and job["options"] == {"instance_type": "t3.large", "env_manager": "local"}
    [instance] = our_instances(aws)
    instance_id = instance["InstanceId"]
    assert instance["InstanceType"] == "t3.large"
    assert instance["ImageId"] == aws.ami  # resolved from the SSM parameter
    assert PROFILE in instance["IamInstanceProfile"]["Arn"]
    tags = tags_of(instance)
    user = infinstor.jobs.user
    assert tags["infinstor:user"] == user and tags["infinstor:purpose"] == "infinstor-job-runner"
    assert tags["infinstor:instance-type"] == "t3.large" and tags["infinstor:job"] == job["id"]
    assert tags["team"] == "ml" and tags["cost-center"] == "42" and tags["Name"] == f"infinstor-{user}-t3.large"
    user_data = aws.user_data(instance_id)
    assert user_data.startswith("#!/bin/bash") and "pip install" in user_data and "'infinstor_jupyterlab[ec2]==" in user_data
    assert "python -m infinstor_jupyterlab.ec2.agent" in user_data and "systemctl enable --now infinstor-agent" in user_data
    secret = infinstor.tracking.auth_headers()["Authorization"].split()[1]
    assert secret not in user_data and "eyJ" not in user_data  # no secret, no token

    job = await wait_for_job(jp_fetch, job["id"], timeout=240)
    log = await read_whole_log(jp_fetch, job["id"])
    assert job["status"] == "FINISHED", (job, log[-3000:], hypervisor.agent_log(instance_id)[-3000:])
    assert f"t3.large {instance_id}: launched" in log and "accuracy" in log
    assert secret not in log and "eyJ" not in log

    run = await run_of(infinstor, job["run_id"])
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == "iris-on-ec2"
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {
        "C": "0.3",
        "max_iter": "120",
        "label": "on ec2",
        "seed": "7",
        "verbose": "False",
    }
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert 0.5 < metrics["accuracy"] <= 1.0
    assert await artifacts_of(infinstor, job["run_id"], "notebook") == {"notebook/iris.ipynb", "notebook/iris.html"}
    assert await artifacts_of(infinstor, job["run_id"], "job") == {"job/output.log"}
    tracking = infinstor.tracking
    code, body = await mlflow_api(
        tracking.uri, "logged-models/search", body={"experiment_ids": [job["experiment_id"]]}, headers=tracking.auth_headers()
    )
    assert code == 200 and [m["info"]["source_run_id"] for m in body["models"]] == [job["run_id"]]
    assert_nothing_left(aws, instances_allowed=(instance_id,))
    assert tags_of(our_instances(aws)[0]).get("infinstor:job") is None  # released, still warm

    # A second job of the same type reuses the warm instance.
    second = await submit(jp_fetch, path="quick", target="ec2", parameters={"alpha": 0.25}, options={"instance_type": "t3.large"})
    second = await wait_for_job(jp_fetch, second["id"], timeout=120)
    log = await read_whole_log(jp_fetch, second["id"])
    assert second["status"] == "FINISHED", log[-3000:]
    assert f"{instance_id}: reusing the warm instance" in log
    assert "token file mode 0o600" in log and "secret in env: False" in log
    assert len(our_instances(aws)) == 1
    run = await run_of(infinstor, second["run_id"])
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"score": 0.5}
    assert await artifacts_of(infinstor, second["run_id"], "out") == {"out/result.txt"}

    # The Compute view's API: the instance, idle; then the agent stops it after the idle timeout.
    listed = json.loads((await jp_fetch("infinstor", "api", "compute", "instances")).body)
    assert listed["available"] is True
    [row] = listed["instances"]
    assert row["id"] == instance_id and row["instance_type"] == "t3.large" and row["state"] == "running"
    assert row["current_job"] is None and row["uptime"] >= 0
    await until(lambda: aws.state(instance_id) == "stopped", timeout=40, what="the idle instance to stop itself")
    assert "stopping instance" in hypervisor.agent_log(instance_id)
    assert_nothing_left(aws)

    # A stopped instance is started again for the next job of its type (a new boot of its agent).
    third = await submit(jp_fetch, path="quick", target="ec2", options={"instance_type": "t3.large"})
    third = await wait_for_job(jp_fetch, third["id"], timeout=120)
    log = await read_whole_log(jp_fetch, third["id"])
    assert third["status"] == "FINISHED", log[-3000:]
    assert f"{instance_id}: starting the stopped instance" in log and hypervisor.boots[instance_id] == 2

    # Stop and terminate from the Compute API; someone else's instance id is not found.
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "compute", "instances", "i-0123456789abcdef0", "terminate", method="POST", body=b"")
    assert excinfo.value.code == 404
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "compute", "instances", "not-an-id", "stop", method="POST", body=b"")
    assert excinfo.value.code == 400
    response = await jp_fetch("infinstor", "api", "compute", "instances", instance_id, "terminate", method="POST", body=b"")
    assert json.loads(response.body)["id"] == instance_id
    assert aws.state(instance_id) in ("shutting-down", "terminated")
    listed = json.loads((await jp_fetch("infinstor", "api", "compute", "instances")).body)["instances"]
    assert listed == []


async def test_live_cell_progress_of_a_notebook_on_ec2(jp_fetch, jp_root_dir, infinstor, aws, hypervisor):  # noqa: F811
    """The agent ships the runner's progress record to S3 as it grows; the lab serves it as for inline jobs."""
    from notebooks import notebook
    from test_job_progress import read_all_progress, read_progress

    nb = notebook(
        "import time",
        "# on the VM\nprint('cell two says hello', flush=True)\ntime.sleep(6)\nprint('cell two is done', flush=True)",
        "raise KeyError('missing on the vm')",
    )
    write(nb, jp_root_dir / "vm.ipynb")
    await wait_for_state(jp_fetch, "running")
    job = await submit(jp_fetch, path="vm.ipynb", target="ec2")
    offset, events, seen_running = 0, [], False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not seen_running:
        answer = await read_progress(jp_fetch, job["id"], offset)
        events += answer["events"]
        offset = answer["next_offset"]
        started = {e["cell"]: e for e in events if e["event"] == "start"}
        ended = {e["cell"] for e in events if e["event"] == "end"}
        said = "".join(e["text"] for e in events if e["event"] == "output" and e["cell"] == 2)
        if 2 in started and 2 not in ended and "cell two says hello" in said:
            seen_running = True
            assert answer["status"] == "RUNNING" and not answer["complete"]
            assert started[2]["source"] == "# on the VM" and events[0]["cells"] == 3
        if answer["complete"]:
            break
        await asyncio.sleep(0.3)
    assert seen_running, (events, await read_whole_log(jp_fetch, job["id"]))

    job = await wait_for_job(jp_fetch, job["id"], timeout=240)
    assert job["status"] == "FAILED", await read_whole_log(jp_fetch, job["id"])
    rest, last = await read_all_progress(jp_fetch, job["id"], offset)
    everything = events + rest
    assert last["complete"] and everything[-1]["event"] == "done"
    failed = next(e for e in everything if e["event"] == "end" and e["status"] == "error")
    assert failed["cell"] == 3 and failed["error"]["ename"] == "KeyError"
    assert "missing on the vm" in "\n".join(failed["error"]["traceback"])
    assert "cell two is done" in "".join(e.get("text", "") for e in everything if e["event"] == "output")
    assert stat.S_IMODE(infinstor.jobs.progress_path(job["id"]).stat().st_mode) == 0o600
    text = json.dumps(everything)
    assert "eyJ" not in text and infinstor.tracking.auth_headers()["Authorization"].split()[1] not in text
    assert_nothing_left(aws, instances_allowed={i["InstanceId"] for i in our_instances(aws)})


async def test_sweep_fans_out_over_three_instances(jp_fetch, jp_root_dir, infinstor, aws, hypervisor):  # noqa: F811
    quick_project(jp_root_dir, seconds=2)
    await wait_for_state(jp_fetch, "running")
    parent = await submit(
        jp_fetch,
        path="quick",
        target="ec2",
        sweep={"grid": {"alpha": [0.1, 0.2, 0.3]}},
        max_instances=10,
        experiment_name="sweeps",
        run_name="alpha-sweep",
    )
    assert parent["kind"] == "sweep" and parent["status"] == "RUNNING"
    assert parent["options"]["max_instances"] == 3  # capped by the admin's limit
    children = parent["options"]["children"]
    assert len(children) == 3
    # All three run at once, each on its own instance.
    await until(lambda: len(our_instances(aws, ("pending", "running"))) == 3, timeout=30, what="three instances")
    parent = await wait_for_job(jp_fetch, parent["id"], timeout=180)
    jobs = [await get_job(jp_fetch, cid) for cid in children]
    assert parent["status"] == "FINISHED", (parent, jobs)
    assert sorted(j["parameters"]["alpha"] for j in jobs) == ["0.1", "0.2", "0.3"]
    assert {j["status"] for j in jobs} == {"FINISHED"}
    assert len({i["InstanceId"] for i in our_instances(aws)}) == 3
    parent_run = await run_of(infinstor, parent["run_id"])
    assert parent_run["info"]["status"] == "FINISHED" and parent_run["info"]["run_name"] == "alpha-sweep"
    for job in jobs:
        run = await run_of(infinstor, job["run_id"])
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags["mlflow.parentRunId"] == parent["run_id"]
        assert run["info"]["status"] == "FINISHED"
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"score": float(job["parameters"]["alpha"]) * 2}
    log = await read_whole_log(jp_fetch, parent["id"])
    assert log.count("FINISHED") == 3
    assert_nothing_left(aws, instances_allowed={i["InstanceId"] for i in our_instances(aws)})

    # A sweep of 2 at once over 3 sets: never more than 2 instances busy.
    busy_seen = []

    def busy():
        count = sum(1 for i in our_instances(aws, ("pending", "running")) if tags_of(i).get("infinstor:job"))
        busy_seen.append(count)
        return False

    sweep = await submit(jp_fetch, path="quick", target="ec2", sweep={"list": [{"alpha": 1}, {"alpha": 2}, {"alpha": 3}]}, max_instances=2)
    deadline = time.monotonic() + 120
    while (await get_job(jp_fetch, sweep["id"]))["status"] == "RUNNING" and time.monotonic() < deadline:
        busy()
        await asyncio.sleep(0.3)
    assert (await get_job(jp_fetch, sweep["id"]))["status"] == "FINISHED"
    assert max(busy_seen) == 2, busy_seen


def inject(target, operation: str, code: str, message: str, status: int = 400, service: str = "ec2"):
    """Make the target's own client of `service` receive this AWS error response for `operation`.

    moto cannot produce capacity, authorization or quota errors: the response is injected at the
    boto3 client boundary, so botocore itself raises the real ClientError, as with AWS.
    """
    from botocore.awsrequest import AWSResponse

    def respond(**kwargs):
        return AWSResponse(f"https://{service}.amazonaws.com/", status, {}, None), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client = target.clients(service)
    event = f"before-call.{service}.{operation}"
    client.meta.events.register(event, respond, unique_id="infinstor-test-inject")
    return lambda: client.meta.events.unregister(event, unique_id="infinstor-test-inject")


async def test_aws_refusals_fail_the_job_clearly_and_leave_nothing(jp_fetch, jp_root_dir, infinstor, aws, hypervisor):  # noqa: F811
    quick_project(jp_root_dir)
    await wait_for_state(jp_fetch, "running")
    target = infinstor.jobs.targets["ec2"]
    cases = [
        (
            "InsufficientInstanceCapacity",
            "We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested (us-east-1a).",
            500,
            "no capacity",
        ),
        (
            "UnauthorizedOperation",
            "You are not authorized to perform this operation. Encoded authorization failure message: abc",
            403,
            "may not do this",
        ),
        (
            "VcpuLimitExceeded",
            "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to.",
            400,
            "vCPU quota",
        ),
        (
            "InstanceLimitExceeded",
            "You have requested more instances (21) than your current instance limit of 20 allows for the specified instance type.",
            400,
            "instance quota",
        ),
    ]
    for code, message, status, hint in cases:
        remove = inject(target, "RunInstances", code, message, status)
        try:
            job = await submit(jp_fetch, path="quick", target="ec2", options={"instance_type": "g5.xlarge"})
            job = await wait_for_job(jp_fetch, job["id"], timeout=60)
        finally:
            remove()
        assert job["status"] == "FAILED"
        assert f"EC2 could not launch a g5.xlarge instance: {code}: {message}" in job["failure_reason"], job
        assert hint in job["failure_reason"]
        run = await run_of(infinstor, job["run_id"])
        assert run["info"]["status"] == "FAILED"
        assert_nothing_left(aws)
        assert our_instances(aws) == []

    # Real emulated errors: a subnet that does not exist, an AMI that does not exist.
    target.subnet_id = "subnet-0badbad0"
    job = await wait_for_job(jp_fetch, (await submit(jp_fetch, path="quick", target="ec2"))["id"], timeout=60)
    assert job["status"] == "FAILED" and "InvalidSubnetID.NotFound" in job["failure_reason"], job
    assert "subnet-0badbad0" in job["failure_reason"]
    assert_nothing_left(aws)
    target.subnet_id = ""
    target.ami = "ami-0000000000dead00"
    job = await wait_for_job(jp_fetch, (await submit(jp_fetch, path="quick", target="ec2"))["id"], timeout=60)
    assert job["status"] == "FAILED" and "The AMI ami-0000000000dead00 cannot be used: InvalidAMIID.NotFound" in job["failure_reason"], job
    assert_nothing_left(aws)
    target.ami = "/infinstor/test/no-such-parameter"
    job = await wait_for_job(jp_fetch, (await submit(jp_fetch, path="quick", target="ec2"))["id"], timeout=60)
    assert job["status"] == "FAILED" and "could not be read from SSM: ParameterNotFound" in job["failure_reason"], job
    assert our_instances(aws) == []
    assert_nothing_left(aws)

    # An instance that never checks in: the job fails at the time limit and the instance goes.
    target.ami = aws.silent_ami
    target.checkin_timeout = 3.0
    job = await submit(jp_fetch, path="quick", target="ec2")
    [instance] = our_instances(aws)
    job = await wait_for_job(jp_fetch, job["id"], timeout=60)
    assert job["status"] == "FAILED"
    assert job["failure_reason"].startswith(f"Instance {instance['InstanceId']} did not check in within 3 s; it was terminated."), job
    assert aws.state(instance["InstanceId"]) in ("shutting-down", "terminated")
    assert_nothing_left(aws)

    # Unauthorized for the Compute API's own calls: a clear 403.
    remove = inject(target, "DescribeInstances", "UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
    try:
        with pytest.raises(HTTPClientError) as excinfo:
            await jp_fetch("infinstor", "api", "compute", "instances")
        assert excinfo.value.code == 502
        assert "UnauthorizedOperation" in json.loads(excinfo.value.response.body)["message"]
    finally:
        remove()


async def test_cancel_and_agent_crash(jp_fetch, jp_root_dir, infinstor, aws, hypervisor):  # noqa: F811
    quick_project(jp_root_dir, seconds=120)
    await wait_for_state(jp_fetch, "running")
    # Cancel: the request reaches the agent, which kills the job's process tree; the VM stays warm.
    job = await submit(jp_fetch, path="quick", target="ec2")
    [instance] = our_instances(aws)
    instance_id = instance["InstanceId"]

    async def log_has(job_id, text):
        return text in await read_whole_log(jp_fetch, job_id)

    deadline = time.monotonic() + 90
    while not await log_has(job["id"], "training with") and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    import psutil

    agent = psutil.Process(hypervisor.agents[instance_id].pid)
    tree = agent.children(recursive=True)
    assert any("mlflow" in " ".join(p.cmdline()) for p in tree)
    response = await jp_fetch("infinstor", "api", "jobs", job["id"], "cancel", method="POST", body=b"")
    job = json.loads(response.body)
    assert job["status"] == "KILLED"
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert (await run_of(infinstor, job["run_id"]))["info"]["status"] == "KILLED"
    assert agent.is_running() and aws.state(instance_id) == "running"
    await until(lambda: not aws.keys("lab/users/"), timeout=20, what="the cancelled job's files to go")
    assert_nothing_left(aws, instances_allowed=(instance_id,))

    # Agent crash mid-run: heartbeats stop; the job fails with the reason, the instance is terminated.
    infinstor.jobs.targets["ec2"].idle_timeout = 60
    job = await submit(jp_fetch, path="quick", target="ec2")
    log = ""
    deadline = time.monotonic() + 90
    while "training with" not in log and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        log = await read_whole_log(jp_fetch, job["id"])
    assert f"{instance_id}: reusing the warm instance" in log
    kill_tree(hypervisor.agents[instance_id].pid)
    job = await wait_for_job(jp_fetch, job["id"], timeout=60)
    assert job["status"] == "FAILED"
    assert job["failure_reason"].startswith(f"The VM agent on {instance_id} stopped sending heartbeats"), job
    assert "the instance terminated" in job["failure_reason"]
    assert aws.state(instance_id) in ("shutting-down", "terminated")
    assert (await run_of(infinstor, job["run_id"]))["info"]["status"] == "FAILED"
    assert_nothing_left(aws)


def test_mlflow_run_backend_on_ec2(tmp_path, aws, hypervisor):  # noqa: F811
    """`mlflow run -b infinstor-backend --backend-config '{"target": "ec2", "instance_type": ...}'`."""
    import os
    import subprocess
    import sys

    from servers import JupyterServer, kill_processes_mentioning

    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "jupyter_server_config.json").write_text(json.dumps({"EC2Target": aws.target_config()}))
    server = JupyterServer(tmp_path, root)
    try:
        server.wait_tracking()
        status = server.get("infinstor/api/status").json()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "JPY_"))}
        env.update(
            JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
            MLFLOW_TRACKING_URI=status["tracking"]["uri"],
            INFINSTOR_EMBEDDED_URI=status["tracking"]["uri"],
            INFINSTOR_SECRET_FILE=str(tmp_path / "data" / "infinstor" / "embedded" / "secret"),
        )
        project = quick_project(root)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlflow",
                "run",
                str(project),
                "-b",
                "infinstor-backend",
                "--backend-config",
                json.dumps({"target": "ec2", "instance_type": "g5.xlarge", "run_name": "cli-on-ec2", "wait": True}),
                "-P",
                "alpha=0.75",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
        assert "training with 0.75" in result.stdout  # the VM's log, streamed through the lab
        [job] = server.get("infinstor/api/jobs").json()["jobs"]
        assert job["status"] == "FINISHED" and job["target"] == "ec2" and job["run_name"] == "cli-on-ec2"
        assert job["options"] == {"instance_type": "g5.xlarge", "env_manager": "local"}
        [instance] = our_instances(aws)
        assert instance["InstanceType"] == "g5.xlarge"
        assert_nothing_left(aws, instances_allowed=(instance["InstanceId"],))

        # A Jupyter restart during an EC2 job: the new server follows it to the end, log included.
        quick_project(root, "slow", seconds=6)
        job = server.post("infinstor/api/jobs", {"path": "slow", "target": "ec2", "options": {"instance_type": "g5.xlarge"}}).json()
        deadline = time.monotonic() + 60
        while "training with" not in server.get(f"infinstor/api/jobs/{job['id']}/log").json()["data"]:
            assert time.monotonic() < deadline, server.job(job["id"])
            time.sleep(0.3)
    finally:
        server.stop()
    server = JupyterServer(tmp_path, root)
    try:
        deadline = time.monotonic() + 120
        while (current := server.job(job["id"]))["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)
        log = server.get(f"infinstor/api/jobs/{job['id']}/log").json()["data"]
        assert current["status"] == "FINISHED", (current, log[-2000:])
        assert log.count("training with") == 1 and "done" in log  # each chunk copied exactly once
        assert_nothing_left(aws, instances_allowed=(instance["InstanceId"],))
    finally:
        server.stop()
        kill_processes_mentioning(str(tmp_path))


async def test_instance_terminated_by_someone_else_mid_run(jp_fetch, jp_root_dir, infinstor, aws, hypervisor):  # noqa: F811
    """Someone terminates the instance (console, CLI, another tool) while its job runs: the job ends
    FAILED with the instance's state and AWS's reason, its credentials and staged files are removed."""
    quick_project(jp_root_dir, seconds=120)
    await wait_for_state(jp_fetch, "running")
    job = await submit(jp_fetch, path="quick", target="ec2", run_name="doomed")
    [instance] = our_instances(aws)
    instance_id = instance["InstanceId"]
    log = ""
    deadline = time.monotonic() + 90
    while "training with" not in log and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        log = await read_whole_log(jp_fetch, job["id"])
    assert "training with" in log, (log[-2000:], hypervisor.agent_log(instance_id)[-2000:])
    # While it runs, the token and the staged project exist; the Compute API names the job.
    assert aws.parameters() == [f"/infinstor/jobs/{infinstor.jobs.user}/{job['id']}/token"]
    assert any(k.endswith("/project.tar.gz") for k in aws.keys("lab/users/")), aws.keys("lab/users/")
    [row] = json.loads((await jp_fetch("infinstor", "api", "compute", "instances")).body)["instances"]
    assert row["id"] == instance_id and row["current_job"] == job["id"] and row["current_job_title"] == "doomed"
    assert row["agent"] == "busy" and row["idle_seconds"] is None

    aws.ec2.terminate_instances(InstanceIds=[instance_id])  # not through the lab
    job = await wait_for_job(jp_fetch, job["id"], timeout=60)
    assert job["status"] == "FAILED", job
    reason = job["failure_reason"]
    assert reason.startswith(f"Instance {instance_id} is "), reason
    assert any(state in reason for state in ("terminated", "shutting-down")), reason
    assert "the job on it was lost" in reason
    assert (await run_of(infinstor, job["run_id"]))["info"]["status"] == "FAILED"
    run = await run_of(infinstor, job["run_id"])
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["infinstor.job.failure_reason"] == reason
    await until(lambda: not aws.keys("lab/users/") and not aws.parameters(), timeout=20, what="the job's files and token to go")
    assert_nothing_left(aws)
    assert json.loads((await jp_fetch("infinstor", "api", "compute", "instances")).body)["instances"] == []


async def test_aws_identity_decides_availability(jp_fetch, jp_root_dir, infinstor, aws):  # noqa: F811
    """The target asks STS who the server's credentials are: refused credentials disable it with
    AWS's message (dialog, Compute view, submits); the identity shows in the read-only settings."""
    quick_project(jp_root_dir)
    target = infinstor.jobs.targets["ec2"]
    config = json.loads((await jp_fetch("infinstor", "api", "compute", "config")).body)
    assert config["enabled"] and config["available"] and config["reason"] is None and config["missing"] == []
    import boto3

    sts = boto3.client("sts", endpoint_url=aws.endpoint, region_name="us-east-1")
    assert config["identity"]["account"] == sts.get_caller_identity()["Account"]
    assert config["identity"]["arn"].startswith("arn:aws:")
    assert config["config"] == {
        "region": "us-east-1",
        "ami": "/infinstor/test/ami",
        "default_instance_type": "t3.medium",
        "allowed_instance_types": ["t3.medium", "t3.large", "g5.xlarge"],
        "subnet_id": "",
        "security_group_ids": [],
        "iam_instance_profile": PROFILE,
        "s3_bucket": BUCKET,
        "s3_prefix": "lab",
        "idle_timeout": 6.0,
        "max_instances_per_user": 3,
        "tags": {"team": "ml", "cost-center": "42"},
    }
    text = json.dumps(config)
    for secret in ("testing", "endpoint_url", aws.endpoint, "agent_environment", "aws_profile", "tracking_uri"):
        assert secret not in text, secret

    # Credentials AWS refuses: STS answers with the real error; the target is disabled with it.
    remove = inject(
        target, "GetCallerIdentity", "InvalidClientTokenId", "The security token included in the request is invalid.", 403, service="sts"
    )
    try:
        await target.refresh_availability(force=True)
        [ec2] = [t for t in json.loads((await jp_fetch("infinstor", "api", "targets")).body)["targets"] if t["name"] == "ec2"]
        assert ec2["available"] is False
        assert ec2["reason"].startswith("EC2 is not available: AWS did not accept the Jupyter server's credentials")
        assert "InvalidClientTokenId: The security token included in the request is invalid." in ec2["reason"]
        listed = json.loads((await jp_fetch("infinstor", "api", "compute", "instances")).body)
        assert listed == {"available": False, "reason": ec2["reason"], "instances": []}
        config = json.loads((await jp_fetch("infinstor", "api", "compute", "config")).body)
        assert config["available"] is False and config["reason"] == ec2["reason"] and config["identity"] is None
        with pytest.raises(HTTPClientError) as excinfo:
            await jp_fetch("infinstor", "api", "jobs", method="POST", body=json.dumps({"path": "quick", "target": "ec2"}))
        assert excinfo.value.code == 409 and "InvalidClientTokenId" in json.loads(excinfo.value.response.body)["message"]
        # A failed check is repeated at the next look (no waiting for the cache).
    finally:
        remove()
    [ec2] = [t for t in json.loads((await jp_fetch("infinstor", "api", "targets")).body)["targets"] if t["name"] == "ec2"]
    assert ec2["available"] is True and ec2["reason"] is None
    assert our_instances(aws) == [] and aws.parameters() == []
