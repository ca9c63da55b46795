"""Staging to S3, job specs, job credentials in SSM, and the per-user instance pool.

Blocking boto3 code: the EC2 target calls every function here through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .aws import AwsError, Clients, describe, error_code, is_not_found

_EXCLUDE_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", "mlruns", ".venv", "venv", "node_modules"}
MAX_PROJECT_BYTES = 512 * 1024 * 1024
AGENT_CONFIG_MARKER = "INFINSTOR_AGENT_CONFIG"


@dataclass
class PoolSettings:
    bucket: str
    prefix: str
    ssm_prefix: str
    ami: str
    subnet_id: str
    security_group_ids: list[str]
    iam_instance_profile: str
    tags: dict[str, str]
    max_instances_per_user: int
    agent_config: dict[str, Any]
    package_spec: str
    heartbeat_timeout: float
    extra_run_args: dict[str, Any] = field(default_factory=dict)


# -- staging ---------------------------------------------------------------------------------------
def project_archive(project_dir: Path) -> bytes:
    """The project folder as a tar.gz (without VCS folders, caches, local runs or virtualenvs)."""
    project_dir = Path(project_dir)
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(project_dir.rglob("*")):
            relative = path.relative_to(project_dir)
            if any(part in _EXCLUDE_DIRS for part in relative.parts) or path.is_symlink():
                continue
            if path.is_file():
                total += path.stat().st_size
                if total > MAX_PROJECT_BYTES:
                    raise AwsError(
                        f"The project is larger than {MAX_PROJECT_BYTES // (1024 * 1024)} MB; move data to S3 and read it from there.",
                        status=400,
                    )
                tar.add(path, arcname=relative.as_posix(), recursive=False)
    return buffer.getvalue()


def stage(clients: Clients, settings: PoolSettings, project_dir: Path, spec: dict) -> None:
    s3 = clients("s3")
    user, job_id = spec["user"], spec["job_id"]
    s3.put_object(
        Bucket=settings.bucket,
        Key=layout.project_key(settings.prefix, user, job_id),
        Body=project_archive(project_dir),
        ServerSideEncryption="AES256",
    )
    s3.put_object(
        Bucket=settings.bucket,
        Key=layout.spec_key(settings.prefix, user, job_id),
        Body=json.dumps(spec).encode(),
        ContentType="application/json",
        ServerSideEncryption="AES256",
    )


def put_token(clients: Clients, name: str, token: str, *, overwrite: bool = False) -> None:
    clients("ssm").put_parameter(
        Name=name,
        Value=token,
        Type="SecureString",
        Overwrite=overwrite,
        Description="InfinStor job token (short-lived, scoped to one MLflow run)",
    )


def delete_token(clients: Clients, name: str) -> None:
    try:
        clients("ssm").delete_parameter(Name=name)
    except Exception as exc:
        if not is_not_found(exc):
            raise


def delete_prefix(clients: Clients, bucket: str, prefix: str) -> None:
    s3 = clients("s3")
    token = None
    while True:
        kwargs = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        listed = s3.list_objects_v2(**kwargs)
        keys = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
        if not listed.get("IsTruncated"):
            return
        token = listed.get("NextContinuationToken")


def get_json(clients: Clients, bucket: str, key: str) -> tuple[dict | None, str | None]:
    """(body, etag) of a JSON object; (None, None) when it does not exist."""
    try:
        response = clients("s3").get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if is_not_found(exc):
            return None, None
        raise
    return json.loads(response["Body"].read()), response.get("ETag")


# -- user data -------------------------------------------------------------------------------------
def user_data(agent_config: dict, package_spec: str) -> str:
    """The instance's first-boot script: install this package, write the agent config, start it.

    It holds no secret: the agent reads each job's token from SSM with the instance role.
    """
    config = json.dumps(agent_config, indent=2, sort_keys=True)
    return f"""#!/bin/bash
# InfinStor job runner (written by the InfinStor EC2 target; holds no credentials)
set -euxo pipefail
mkdir -p /etc/infinstor /var/lib/infinstor
chmod 700 /var/lib/infinstor
cat > /etc/infinstor/agent.json <<'{AGENT_CONFIG_MARKER}'
{config}
{AGENT_CONFIG_MARKER}
if [ ! -x /opt/infinstor/bin/python ]; then
  python3 -m venv /opt/infinstor
  /opt/infinstor/bin/pip install --upgrade pip
  /opt/infinstor/bin/pip install {shlex.quote(package_spec)}
fi
cat > /etc/systemd/system/infinstor-agent.service <<'UNIT'
[Unit]
Description=InfinStor VM agent (runs MLflow jobs from the lab, stops the instance when idle)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/opt/infinstor/bin/python -m infinstor_jupyterlab.ec2.agent --config /etc/infinstor/agent.json --work-dir /var/lib/infinstor
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now infinstor-agent.service
"""


def agent_config_from_user_data(text: str) -> dict:
    """The agent config embedded in a user data script (what a VM would write to agent.json)."""
    start = text.index(f"<<'{AGENT_CONFIG_MARKER}'\n") + len(f"<<'{AGENT_CONFIG_MARKER}'\n")
    end = text.index(f"\n{AGENT_CONFIG_MARKER}\n", start)
    return json.loads(text[start:end])


# -- the pool ------------------------------------------------------------------------------------
def _tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def user_instances(clients: Clients, user: str, states=("pending", "running", "stopping", "stopped")) -> list[dict]:
    ec2 = clients("ec2")
    filters = [
        {"Name": f"tag:{layout.TAG_PURPOSE}", "Values": [layout.PURPOSE]},
        {"Name": f"tag:{layout.TAG_USER}", "Values": [user]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page.get("Reservations", []):
            found.extend(reservation.get("Instances", []))
    return found


def instance_state(clients: Clients, instance_id: str) -> tuple[str, str]:
    """(state name, state reason) of an instance; ("terminated", ...) when it no longer exists."""
    try:
        reservations = clients("ec2").describe_instances(InstanceIds=[instance_id]).get("Reservations", [])
    except Exception as exc:
        if error_code(exc) == "InvalidInstanceID.NotFound":
            return "terminated", "the instance no longer exists"
        raise
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            reason = (instance.get("StateReason") or {}).get("Message") or instance.get("StateTransitionReason") or ""
            return instance["State"]["Name"], reason
    return "terminated", "the instance no longer exists"


def resolve_ami(clients: Clients, ami: str) -> str:
    """An AMI id, or the value of an SSM parameter naming one (`/aws/service/...`, `resolve:ssm:/...`)."""
    name = ami[len("resolve:ssm:") :] if ami.startswith("resolve:ssm:") else ami
    if name.startswith("/"):
        try:
            return clients("ssm").get_parameter(Name=name)["Parameter"]["Value"].strip()
        except Exception as exc:
            raise AwsError(f"The AMI parameter {name} could not be read from SSM: {describe(exc)}") from None
    return ami


def check_ami(clients: Clients, image_id: str) -> None:
    try:
        images = clients("ec2").describe_images(ImageIds=[image_id]).get("Images", [])
    except Exception as exc:
        raise AwsError(f"The AMI {image_id} cannot be used: {describe(exc)}") from None
    if not images:
        raise AwsError(f"The AMI {image_id} cannot be used: InvalidAMIID.NotFound: it does not exist or is not shared with this account")
    state = images[0].get("State", "available")
    if state != "available":
        raise AwsError(f"The AMI {image_id} cannot be used: it is {state}")


def heartbeat(clients: Clients, settings: PoolSettings, instance_id: str) -> dict | None:
    body, _ = get_json(clients, settings.bucket, layout.heartbeat_key(settings.prefix, instance_id))
    return body


def acquire(clients: Clients, settings: PoolSettings, user: str, instance_type: str, job_id: str, busy: set[str]) -> tuple[str, str]:
    """An instance for this job: a warm idle one of this user and type, a stopped one, or a new one.

    Returns (instance id, how: "warm" | "restarted" | "launched"). The instance is tagged with the
    job at once, so no other submission picks it.
    """
    ec2 = clients("ec2")
    instances = user_instances(clients, user)
    free = [i for i in instances if i["InstanceId"] not in busy and not _tags(i).get(layout.TAG_JOB)]
    same_type = [i for i in free if i["InstanceType"] == instance_type]
    now = time.time()
    for instance in same_type:
        if instance["State"]["Name"] != "running":
            continue
        beat = heartbeat(clients, settings, instance["InstanceId"])
        if beat and beat.get("state") == "idle" and now - float(beat.get("time", 0)) < settings.heartbeat_timeout:
            _claim(ec2, instance["InstanceId"], job_id)
            return instance["InstanceId"], "warm"
    active = [i for i in instances if i["State"]["Name"] in ("pending", "running")]
    for instance in same_type:
        if instance["State"]["Name"] == "stopped" and len(active) < settings.max_instances_per_user:
            _claim(ec2, instance["InstanceId"], job_id)
            try:
                ec2.start_instances(InstanceIds=[instance["InstanceId"]])
            except Exception as exc:
                _release(ec2, instance["InstanceId"])
                raise AwsError(f"Could not start the stopped instance {instance['InstanceId']}: {describe(exc)}") from None
            return instance["InstanceId"], "restarted"
    if len(active) >= settings.max_instances_per_user:
        # Make room with an idle instance of another type, if there is one.
        idle_other = [i for i in free if i["State"]["Name"] == "running" and i["InstanceType"] != instance_type]
        if not idle_other:
            raise AwsError(
                f"You already have {len(active)} running instance(s), the limit per user "
                f"({settings.max_instances_per_user}); wait for a job to end or stop an instance.",
                status=409,
            )
        ec2.stop_instances(InstanceIds=[idle_other[0]["InstanceId"]])
    return launch(clients, settings, user, instance_type, job_id), "launched"


def _claim(ec2, instance_id: str, job_id: str) -> None:
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": layout.TAG_JOB, "Value": job_id}])


def _release(ec2, instance_id: str) -> None:
    ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": layout.TAG_JOB}])


def release(clients: Clients, instance_id: str) -> None:
    try:
        _release(clients("ec2"), instance_id)
    except Exception as exc:
        if error_code(exc) != "InvalidInstanceID.NotFound":
            raise


def launch(clients: Clients, settings: PoolSettings, user: str, instance_type: str, job_id: str) -> str:
    ec2 = clients("ec2")
    image_id = resolve_ami(clients, settings.ami)
    check_ami(clients, image_id)
    tags = {
        **settings.tags,
        "Name": f"infinstor-{layout.safe(user)}-{instance_type}",
        layout.TAG_PURPOSE: layout.PURPOSE,
        layout.TAG_USER: user,
        layout.TAG_TYPE: instance_type,
        layout.TAG_JOB: job_id,
    }
    profile = settings.iam_instance_profile
    kwargs: dict[str, Any] = {
        "ImageId": image_id,
        "InstanceType": instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": user_data(settings.agent_config, settings.package_spec),
        "IamInstanceProfile": {"Arn": profile} if profile.startswith("arn:") else {"Name": profile},
        "InstanceInitiatedShutdownBehavior": "stop",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": str(v)} for k, v in tags.items()]},
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": str(v)} for k, v in tags.items() if k != layout.TAG_JOB]},
        ],
        **settings.extra_run_args,
    }
    if settings.subnet_id:
        kwargs["SubnetId"] = settings.subnet_id
    if settings.security_group_ids:
        kwargs["SecurityGroupIds"] = list(settings.security_group_ids)
    try:
        response = ec2.run_instances(**kwargs)
    except Exception as exc:
        raise AwsError(f"EC2 could not launch a {instance_type} instance: {_explain(exc)}") from None
    return response["Instances"][0]["InstanceId"]


_HINTS = {
    "InsufficientInstanceCapacity": "AWS has no capacity for this type in the zone right now; try another instance type or subnet, or later.",
    "InstanceLimitExceeded": "the account's instance quota is reached; ask the platform admin to raise it (Service Quotas).",
    "VcpuLimitExceeded": "the account's vCPU quota for this instance family is reached; ask the platform admin to raise it (Service Quotas).",
    "UnauthorizedOperation": "the Jupyter server's AWS credentials may not do this; see the permissions in docs/ec2.md.",
    "InvalidSubnetID.NotFound": "check c.EC2Target.subnet_id.",
    "InvalidAMIID.NotFound": "check c.EC2Target.ami.",
    "InvalidAMIID.Malformed": "check c.EC2Target.ami.",
    "InvalidGroup.NotFound": "check c.EC2Target.security_group_ids.",
}


def _explain(exc: BaseException) -> str:
    text = describe(exc)
    hint = _HINTS.get(error_code(exc))
    return f"{text} ({hint})" if hint else text


def terminate(clients: Clients, instance_id: str) -> None:
    try:
        clients("ec2").terminate_instances(InstanceIds=[instance_id])
    except Exception as exc:
        if error_code(exc) != "InvalidInstanceID.NotFound":
            raise


def assign(clients: Clients, settings: PoolSettings, instance_id: str, spec: dict) -> None:
    clients("s3").put_object(
        Bucket=settings.bucket,
        Key=layout.inbox_key(settings.prefix, instance_id, spec["job_id"]),
        Body=json.dumps({"job_id": spec["job_id"], "spec_key": layout.spec_key(settings.prefix, spec["user"], spec["job_id"])}).encode(),
        ContentType="application/json",
    )
