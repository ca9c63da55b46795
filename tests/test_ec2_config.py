"""The EC2 target before the platform admin configured it, and its option checks."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from test_ec2 import quick_project


async def test_ec2_unavailable_until_configured(jp_fetch, jp_root_dir):
    """Without configuration the target is listed, disabled, with what is missing; submits are refused."""
    quick_project(jp_root_dir)
    targets = json.loads((await jp_fetch("infinstor", "api", "targets")).body)["targets"]
    ec2 = next(t for t in targets if t["name"] == "ec2")
    assert not ec2["available"]
    assert "c.EC2Target.region" in ec2["reason"] and "c.EC2Target.s3_bucket" in ec2["reason"]
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "jobs", method="POST", body=json.dumps({"path": "quick", "target": "ec2"}))
    assert excinfo.value.code == 409
    listed = json.loads((await jp_fetch("infinstor", "api", "compute", "instances")).body)
    assert listed == {"available": False, "reason": ec2["reason"], "instances": []}
    config = json.loads((await jp_fetch("infinstor", "api", "compute", "config")).body)
    assert config["enabled"] is True and config["available"] is False and config["reason"] == ec2["reason"]
    assert config["missing"] == ["region", "ami", "s3_bucket", "iam_instance_profile"]
    assert config["identity"] is None  # no AWS call before the configuration is complete
    assert config["config"]["default_instance_type"] == "t3.medium" and config["config"]["idle_timeout"] == 900.0


def test_ec2_options_are_checked(jp_fetch):
    from infinstor_jupyterlab.errors import BadRequest
    from infinstor_jupyterlab.jobs.targets.ec2 import EC2Target

    target = EC2Target(allowed_instance_types=["t3.medium", "g5.xlarge"], default_instance_type="t3.medium")
    assert target.validate_options({}) == {"instance_type": "t3.medium", "env_manager": "local"}
    assert target.validate_options({"instance_type": "g5.xlarge", "env_manager": "uv"})["instance_type"] == "g5.xlarge"
    for options, message in [
        ({"instance_type": "p5.48xlarge"}, "instance_type 'p5.48xlarge' is not allowed; choose one of t3.medium, g5.xlarge"),
        ({"env_manager": "conda"}, "env_manager 'conda' is not one of"),
        ({"disk": 100}, "no option(s) disk"),
    ]:
        with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
            target.validate_options(options)


def test_user_data_holds_the_agent_config_and_no_secret():
    from infinstor_jupyterlab.ec2 import layout, pool

    config = {"bucket": "b", "prefix": "p", "region": "eu-west-1", "idle_timeout": 900}
    script = pool.user_data(config, "infinstor_jupyterlab[ec2]==1.2.3")
    assert pool.agent_config_from_user_data(script) == config
    assert "pip install 'infinstor_jupyterlab[ec2]==1.2.3'" in script
    assert "Bearer" not in script and "token" not in script.lower().replace("job-token", "")
    assert layout.token_parameter("/infinstor/jobs", "ann@example.com", "0123") == "/infinstor/jobs/ann@example.com/0123/token"
    assert layout.job_prefix("lab", "../evil user", "j") == "lab/users/.._evil_user/jobs/j/"


def _cfn_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}

    Loader.add_multi_constructor("!", construct)
    return Loader


def test_cloudformation_template_is_valid_and_least_privilege():
    import shutil
    import subprocess
    from pathlib import Path

    import yaml

    path = Path(__file__).parents[1] / "deploy" / "aws" / "infinstor-ec2.yaml"
    template = yaml.load(path.read_text(), Loader=_cfn_loader())
    resources = template["Resources"]
    kinds = {name: r["Type"] for name, r in resources.items()}
    assert kinds["StagingBucket"] == "AWS::S3::Bucket"
    assert kinds["RunnerRole"] == "AWS::IAM::Role" and kinds["RunnerInstanceProfile"] == "AWS::IAM::InstanceProfile"
    assert kinds["RunnerSecurityGroup"] == "AWS::EC2::SecurityGroup"
    bucket = resources["StagingBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    group = resources["RunnerSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group and group["SecurityGroupEgress"]
    statements = resources["RunnerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "ssm:GetParameter",
        "ssm:DeleteParameter",
        "kms:Decrypt",
        "ec2:StopInstances",
    }
    assert not any("*" in a for a in actions)
    stop = next(s for s in statements if s["Action"] == "ec2:StopInstances")
    assert stop["Condition"]["StringEquals"]["ec2:ResourceTag/infinstor:purpose"] == "infinstor-job-runner"
    assert set(template["Outputs"]) >= {"BucketName", "InstanceProfileArn", "SecurityGroupId", "LabPolicyArn"}
    if shutil.which("cfn-lint"):
        result = subprocess.run(["cfn-lint", str(path)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


async def test_compute_api_without_the_ec2_target(jp_fetch, infinstor, monkeypatch):
    """A server whose job targets leave EC2 out: the Compute view says so; actions are 404."""
    monkeypatch.delitem(infinstor.jobs.targets, "ec2")
    listed = json.loads((await jp_fetch("infinstor", "api", "compute", "instances")).body)
    assert listed["available"] is False and listed["instances"] == []
    assert listed["reason"].startswith("EC2 is not configured: the EC2 target is not enabled on this server")
    config = json.loads((await jp_fetch("infinstor", "api", "compute", "config")).body)
    assert config == {"enabled": False, "available": False, "reason": listed["reason"], "missing": [], "config": None, "identity": None}
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "compute", "instances", "i-0123456789abcdef0", "stop", method="POST", body=b"")
    assert excinfo.value.code == 404
