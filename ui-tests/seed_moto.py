"""Emulated AWS for the Galata lab's EC2 target: wait for moto_server, reset it, create what the
platform admin's CloudFormation stack would (staging bucket, runner role and instance profile)
and an SSM parameter naming an AMI, as tests/ec2_fixture.py does for pytest.

Usage: python seed_moto.py http://127.0.0.1:PORT   (playwright.config.js starts moto_server;
jupyter_server_test_config.py runs this before the lab starts). No instance ever boots: jobs on
EC2 wait for an agent that never checks in, until their instance is stopped or terminated.
"""

from __future__ import annotations

import json
import os
import sys
import time

import boto3
import requests

REGION = "us-east-1"
BUCKET = "infinstor-ui-test-staging"
PROFILE = "infinstor-ui-test-runner"
AMI_PARAMETER = "/infinstor/ui-test/ami"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def wait(endpoint: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise SystemExit(f"moto_server did not answer at {endpoint} within {timeout:.0f} s")
            time.sleep(0.3)


def seed(endpoint: str) -> None:
    wait(endpoint)
    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing", region_name=REGION
    )
    s3 = session.client("s3", endpoint_url=endpoint)
    iam = session.client("iam", endpoint_url=endpoint)
    ssm = session.client("ssm", endpoint_url=endpoint)
    ec2 = session.client("ec2", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    iam.create_role(RoleName=PROFILE, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.create_instance_profile(InstanceProfileName=PROFILE)
    iam.add_role_to_instance_profile(InstanceProfileName=PROFILE, RoleName=PROFILE)
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    ssm.put_parameter(Name=AMI_PARAMETER, Value=ami, Type="String")


if __name__ == "__main__":
    os.environ.update(AWS_ENV)
    seed(sys.argv[1])
