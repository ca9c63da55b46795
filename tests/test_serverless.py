"""The company service as a Lambda function (issue 16), with no AWS: the handler called in its own
process (tests/lambda_local.py) with real event shapes, on a real PostgreSQL cluster, with moto's
S3, SSM and Secrets Manager (its request recorder shows what reached "S3"), users signed in at the
real test IdP. The migration runs as the deploy runs it (a CloudFormation custom resource answered
on a presigned S3 URL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
import yaml

from idp_fixture import AUDIENCE, free_port
from lambda_local import (
    ALLOWED_HOSTS,
    LambdaProcess,
    LocalHttpApi,
    http_api_event,
    response_body,
    response_headers,
    response_json,
    rest_api_event,
)
from servers import stop_process_group, wait_until_healthy
from service_fixture import ADMIN_GROUP, user_token

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "acme-mlflow-artifacts"
JOB_SECRET = "job-token-secret-from-secrets-manager-0123456789"
POLL_SECONDS = 1.0


class RecordedAws:
    """moto's server (S3, Secrets Manager) as its own process, with its request recorder on: what
    every client sent to "AWS" (method, URL, headers) can be read back."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.s3_url = f"http://localhost:{self.port}"  # another host name than the function's: as S3 is
        self.recording = root / "moto-recording.jsonl"
        self._log = open(root / "moto.log", "wb")
        env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(self.recording)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until_healthy(self.proc, f"{self.url}/moto-api/", timeout=60):
            self.stop()
            raise RuntimeError("moto_server did not start")

    def record(self) -> None:
        requests.post(f"{self.url}/moto-api/recorder/reset-recording", timeout=30).raise_for_status()
        requests.post(f"{self.url}/moto-api/recorder/start-recording", timeout=30).raise_for_status()

    def recorded(self) -> tuple[list[dict], str]:
        """(each request's method, URL and headers; the whole recording as text). Concurrent
        requests with large bodies may interleave their lines, so each entry's head is found by
        its shape (moto writes headers, method, url, then the body)."""
        requests.post(f"{self.url}/moto-api/recorder/stop-recording", timeout=30).raise_for_status()
        text = self.recording.read_text()
        entries = [
            {"headers": json.loads(m.group(1)), "method": m.group(2), "url": json.loads(m.group(3))}
            for m in re.finditer(r'\{"headers": (\{[^{}]*\}), "method": "(\w+)", "url": ("(?:[^"\\]|\\.)*")', text)
        ]
        return entries, text

    def stop(self) -> None:
        stop_process_group(self.proc)
        self._log.close()


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    recorded = RecordedAws(tmp_path_factory.mktemp("moto"))
    yield recorded
    recorded.stop()


def _boto(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture(scope="module")
def stack(aws, idp, restartable_postgres, tmp_path_factory):
    """What the template creates, locally: the bucket, the secrets, the database; the function's environment."""
    moto_url = aws.url
    root = tmp_path_factory.mktemp("serverless")
    s3 = _boto("s3", moto_url)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="cfn-responses")
    secrets = _boto("secretsmanager", moto_url)
    db_secret = secrets.create_secret(Name="infinstor/db", SecretString=json.dumps({"username": "postgres", "password": "p@ss:w/rd"}))[
        "ARN"
    ]
    app_secret = secrets.create_secret(Name="infinstor/app", SecretString=json.dumps({"INFINSTOR_JOB_TOKEN_SECRET": JOB_SECRET}))["ARN"]
    restartable_postgres.create_database("mlflow")
    config = {
        "oidc": {"issuer": idp.issuer, "audience": AUDIENCE, "leeway": 0},
        "org_admin_groups": [ADMIN_GROUP],
        "defaults": {"registered_models_org_readable": False},
        "change_poll_seconds": POLL_SECONDS,
    }
    _boto("ssm", moto_url).put_parameter(Name="/infinstor/service-config", Type="String", Value=yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW", "AWS_"))}
    env.update(
        {
            "PYTHONPATH": str(Path(__file__).parent),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url,
            "MLFLOW_S3_ENDPOINT_URL": aws.s3_url,
            "AWS_ENDPOINT_URL_SSM": moto_url,
            "INFINSTOR_SERVICE_CONFIG_SSM": "/infinstor/service-config",
            "INFINSTOR_SECRETS_ARN": app_secret,
            "INFINSTOR_DATABASE_SECRET_ARN": db_secret,
            "INFINSTOR_DATABASE_HOST": "127.0.0.1",
            "INFINSTOR_DATABASE_PORT": str(restartable_postgres.port),
            "INFINSTOR_DATABASE_NAME": "mlflow",
            "INFINSTOR_ARTIFACTS_DESTINATION": f"s3://{BUCKET}/artifacts",
            "MLFLOW_SERVER_ALLOWED_HOSTS": ALLOWED_HOSTS,
        }
    )
    functions: list[LambdaProcess] = []

    def start(name: str, **overrides: str) -> LambdaProcess:
        functions.append(LambdaProcess({**env, **overrides}, root / f"{name}.log"))
        return functions[-1]

    yield {"env": env, "start": start, "s3": s3, "aws": aws, "root": root, "db": restartable_postgres}
    for function in functions:
        function.stop()


@pytest.fixture(scope="module")
def tokens(idp, stack):
    return {user: user_token(idp, user) for user in ("alice", "bob", "carol", "dave")}


def call(function, method, path, token=None, body=None, *, function_url=False, base64_body=True, headers=None):
    headers = dict(headers or {})
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    path, _, query = path.partition("?")
    return function.invoke(
        http_api_event(method, path, query=query, headers=headers, body=data, function_url=function_url, base64_body=base64_body)
    )


def ok(response: dict) -> dict:
    assert response["statusCode"] == 200, (response["statusCode"], response_body(response)[:500])
    return response_json(response) or {}


def test_handler_is_named_once_in_template_docs_and_image():
    from infinstor_jupyterlab.tracking_service import serverless

    module, function = serverless.HANDLER.split(":")
    assert getattr(__import__(module, fromlist=[function]), function) is serverless.handler
    for template in ("infinstor-serverless.yaml", "infinstor-serverless-dr.yaml"):
        text = (ROOT / "deploy/aws" / template).read_text()
        commands = re.findall(r"Command:\s*\[\s*['\"]?([\w.:]+)['\"]?\s*\]", text)
        assert serverless.HANDLER in commands and serverless.MIGRATE_HANDLER in commands, (template, commands)
        assert set(commands) <= {serverless.HANDLER, serverless.MIGRATE_HANDLER}
    docs = (ROOT / "docs/serverless.md").read_text()
    assert f"`{serverless.HANDLER}`" in docs
    named = set(re.findall(r"infinstor_jupyterlab\.[\w.]+\.serverless:\w+", docs + (ROOT / "deploy/aws/Dockerfile").read_text()))
    assert named <= {serverless.HANDLER, serverless.MIGRATE_HANDLER}, named
    assert f'CMD ["{serverless.HANDLER}"]' in (ROOT / "deploy/aws/Dockerfile").read_text()


def deploy_migrations(stack, name: str, **overrides: str) -> tuple[dict, dict]:
    """What the deploy does: CloudFormation invokes the migration function with a custom resource
    event, and reads its answer from the presigned response URL. (outcome, what CloudFormation heard)"""
    response_key = f"responses/{name}"
    url = stack["s3"].generate_presigned_url("put_object", Params={"Bucket": "cfn-responses", "Key": response_key}, ExpiresIn=600)
    event = {
        "RequestType": "Create",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/infinstor/1",
        "RequestId": f"req-{name}",
        "LogicalResourceId": "Migrations",
        "ResourceType": "Custom::InfinStorMigrations",
        "ResourceProperties": {"Release": "test"},
    }
    outcome = stack["start"](name, **overrides).invoke(event, handler="migrate_handler")
    told = json.loads(stack["s3"].get_object(Bucket="cfn-responses", Key=response_key)["Body"].read())
    return outcome, told


def test_unmigrated_database_answers_503_then_the_deploy_migrates(stack, tokens):
    """No migration in the request path: until the migration function ran, 503 + Retry-After.
    (Its own database, so the test does not depend on which tests ran before it.)"""
    stack["db"].create_database("mlflow_unmigrated")
    function = stack["start"]("unmigrated", INFINSTOR_DATABASE_NAME="mlflow_unmigrated")
    started = time.monotonic()
    response = call(function, "GET", "/api/2.0/mlflow/experiments/search?max_results=5", tokens["alice"])
    assert response["statusCode"] == 503 and int(response_headers(response)["retry-after"]) > 0, response
    assert "not migrated" in response_json(response)["message"]
    assert time.monotonic() - started < 60
    outcome, told = deploy_migrations(stack, "migrate-unmigrated", INFINSTOR_DATABASE_NAME="mlflow_unmigrated")
    assert outcome["Status"] == "SUCCESS", outcome
    assert told["Status"] == "SUCCESS" and told["LogicalResourceId"] == "Migrations" and "InfinStor tables" in told["Data"]["Done"]
    # The same instance now serves (it checks the schema again, once).
    assert ok(call(function, "GET", "/api/2.0/mlflow/experiments/search?max_results=5", tokens["alice"])) is not None


@pytest.fixture(scope="module")
def first(stack, tokens):
    """The function's first instance, on the database the deploy migrated."""
    outcome, told = deploy_migrations(stack, "migrate")
    assert outcome["Status"] == told["Status"] == "SUCCESS", told
    function = stack["start"]("first")
    ok(call(function, "GET", "/api/2.0/mlflow/experiments/search?max_results=5", tokens["alice"]))
    return function


def test_event_shapes_http_api_function_url_rest_base64_cookies(first, tokens):
    alice = tokens["alice"]
    # HTTP API v2, JSON body base64-encoded (as API Gateway sends any body it deems binary).
    created = ok(call(first, "POST", "/api/2.0/mlflow/experiments/create", alice, {"name": "shapes-b64"}))
    # The same through a function URL, body as plain text.
    got = ok(call(first, "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={created['experiment_id']}", alice, function_url=True))
    assert got["experiment"]["name"] == "shapes-b64"
    ok(call(first, "POST", "/api/2.0/mlflow/experiments/create", alice, {"name": "shapes-text"}, function_url=True, base64_body=False))
    # REST API v1: multi-value headers and query parameters (two experiment ids for a search filter).
    event = rest_api_event(
        "GET",
        "/api/2.0/mlflow/experiments/get",
        query={"experiment_id": [created["experiment_id"]]},
        headers={"authorization": [f"Bearer {alice}"], "accept": ["text/html", "application/json"]},
    )
    assert response_json(first.invoke(event))["experiment"]["name"] == "shapes-b64"
    # Cookies: an event's `cookies` reach the app (a stale session cookie does not replace the bearer token).
    response = first.invoke(
        http_api_event("GET", "/api/2.0/infinstor/whoami", headers={"authorization": f"Bearer {alice}"}, cookies=["a=1", "b=2"])
    )
    assert response_json(response)["username"] == "alice"
    # No credential, or a wrong one: 401 with the challenge.
    response = call(first, "GET", "/api/2.0/mlflow/experiments/search?max_results=5", "not-a-token")
    assert response["statusCode"] == 401 and "bearer" in response_headers(response)["www-authenticate"].lower()
    # The web UI's page and its static files come from the same function (CloudFront caches them).
    page = call(first, "GET", "/", alice)
    assert page["statusCode"] == 200 and b"<html" in response_body(page).lower()
    asset = re.search(rb'(?:src|href)="(?:\./|/)?(static-files/[^"]+\.js)"', response_body(page))
    assert asset, response_body(page)[:800]
    js = call(first, "GET", "/" + asset.group(1).decode(), alice)  # (CloudFront serves these from S3, docs/serverless.md)
    assert js["statusCode"] == 200 and len(response_body(js)) > 1000, js["statusCode"]


def test_company_scenario_through_the_handler(first, tokens):
    alice, bob, carol, dave = (tokens[u] for u in ("alice", "bob", "carol", "dave"))
    exp = ok(call(first, "POST", "/api/2.0/mlflow/experiments/create", alice, {"name": "vision-serverless"}))["experiment_id"]
    # Roles: bob (alice's group) edits; carol (another group) cannot see it; dave (another org) neither.
    ok(call(first, "POST", "/api/2.0/mlflow/runs/create", bob, {"experiment_id": exp}))
    assert call(first, "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={exp}", carol)["statusCode"] == 404

    # Private views: searches list only what the caller may read.
    def names(tok):
        return {
            e["name"]
            for e in ok(call(first, "POST", "/api/2.0/mlflow/experiments/search", tok, {"max_results": 1000})).get("experiments", [])
        }

    assert "vision-serverless" in names(alice) and "vision-serverless" not in names(carol) and "vision-serverless" not in names(dave)
    # Model sharing: a model alice registers is hers and her group's; shared with carol as reader.
    run = ok(call(first, "POST", "/api/2.0/mlflow/runs/create", alice, {"experiment_id": exp}))["run"]["info"]["run_id"]
    ok(call(first, "POST", "/api/2.0/mlflow/registered-models/create", alice, {"name": "detector-sls"}))
    assert call(first, "GET", "/api/2.0/mlflow/registered-models/get?name=detector-sls", carol)["statusCode"] == 404
    ok(
        call(
            first,
            "POST",
            "/api/2.0/infinstor/permissions",
            alice,
            {
                "resource_type": "registered_model",
                "resource_id": "detector-sls",
                "principal_type": "user",
                "principal": "carol",
                "role": "reader",
            },
        )
    )
    ok(call(first, "GET", "/api/2.0/mlflow/registered-models/get?name=detector-sls", carol))
    assert (
        call(first, "PATCH", "/api/2.0/mlflow/registered-models/update", carol, {"name": "detector-sls", "description": "x"})["statusCode"]
        == 403
    )
    # Job tokens (their secret came from Secrets Manager): one run, nothing else.
    job = ok(call(first, "POST", "/api/2.0/infinstor/tokens", alice, {"kind": "job", "run_id": run, "ttl_seconds": 600}))["token"]
    ok(call(first, "POST", "/api/2.0/mlflow/runs/log-metric", job, {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0}))
    other = ok(call(first, "POST", "/api/2.0/mlflow/runs/create", alice, {"experiment_id": exp}))["run"]["info"]["run_id"]
    refused = call(
        first, "POST", "/api/2.0/mlflow/runs/log-metric", job, {"run_id": other, "key": "loss", "value": 1, "timestamp": 1, "step": 0}
    )
    assert refused["statusCode"] in (403, 404)


@pytest.fixture(scope="module")
def second(first, stack):
    """Another instance of the function on the same database."""
    return stack["start"]("second")


def test_audit_written_before_the_response_returns(first, second, idp, tokens):
    """Lambda freezes an instance as soon as it has answered: the audit record of a write must be
    in the database by then, not in a background writer's queue."""
    frank = user_token(idp, "frank")  # an organisation admin
    created = ok(call(first, "POST", "/api/2.0/mlflow/experiments/create", tokens["alice"], {"name": "audited-serverless"}))
    first.freeze()
    try:
        events = ok(call(second, "GET", "/api/2.0/infinstor/audit?limit=100", frank))["events"]
    finally:
        first.thaw()
    assert any(created["experiment_id"] in json.dumps(e) and "alice" in json.dumps(e) for e in events), events[:3]


def test_artifacts_through_presigned_urls_with_the_mlflow_client(first, tokens, stack, tmp_path):
    """Uploads (small: streamed; large: MLflow's presigned multipart) and downloads (307 to a
    presigned S3 URL) with the MLflow client; no credential of the caller ever reaches S3."""
    gateway = LocalHttpApi(first)
    aws = stack["aws"]
    aws.record()
    try:
        script = textwrap.dedent("""
            import os, sys, mlflow
            from mlflow import MlflowClient
            out = sys.argv[1]
            small = os.path.join(out, "small.txt"); open(small, "w").write("hello " * 100)
            large = os.path.join(out, "large.bin"); open(large, "wb").write(os.urandom(11 * 1024 * 1024))
            mlflow.set_tracking_uri(os.environ["GATEWAY"])
            exp = mlflow.create_experiment("artifacts-serverless")
            with mlflow.start_run(experiment_id=exp) as run:
                mlflow.log_artifact(small, "docs")
                mlflow.log_artifact(large, "data")
            client = MlflowClient()
            print("RUN", run.info.run_id, client.get_run(run.info.run_id).info.artifact_uri)
            back = client.download_artifacts(run.info.run_id, "", os.path.join(out, "back"))
            assert open(os.path.join(back, "docs", "small.txt")).read() == open(small).read()
            assert open(os.path.join(back, "data", "large.bin"), "rb").read() == open(large, "rb").read()
            print("OK")
        """)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
        env.update(
            GATEWAY=gateway.url,
            MLFLOW_TRACKING_TOKEN=tokens["alice"],
            MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD="true",
            MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=str(6 * 1024 * 1024),
            MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=str(5 * 1024 * 1024),
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        )
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr[-4000:]
        run_id = re.search(r"RUN (\w+)", result.stdout).group(1)
    finally:
        gateway.stop()
    # Downloads: MLflow 3's client asks the service for a presigned URL (mlflow-artifacts/presigned,
    # after the same access check) and fetches from S3 itself; nothing large came through the function.
    asked = [p for m, p, s in gateway.requests if m == "GET" and p.startswith("/api/2.0/mlflow-artifacts/presigned/") and s == 200]
    assert any(p.endswith("large.bin") for p in asked), "\n".join(map(str, gateway.requests))
    streamed = [p for m, p, s in gateway.requests if m == "GET" and p.startswith("/api/2.0/mlflow-artifacts/artifacts/") and s == 200]
    assert not streamed, streamed
    # The large upload went to S3 in presigned parts, not through the function.
    assert any(p.startswith("/api/2.0/mlflow-artifacts/mpu/create") for _, p, _ in gateway.requests), gateway.requests
    assert not any(m == "PUT" and "large.bin" in p for m, p, _ in gateway.requests)
    seen, everything = aws.recorded()
    seen = [r for r in seen if "/moto-api/" not in r["url"]]
    presigned = [r for r in seen if "X-Amz-Signature=" in r["url"]]
    assert any(r["method"] == "PUT" and "partNumber=" in r["url"] for r in presigned), [r["url"] for r in seen]
    assert any(r["method"] == "GET" and "large.bin" in r["url"] for r in presigned), [r["url"] for r in seen]
    for token in tokens.values():  # nowhere: no header, URL or body that reached S3 holds a user's credential
        assert token not in everything
    for request in presigned:  # what the client sent: no Authorization header at all, no cookies
        headers = {k.lower() for k in request["headers"]}
        assert "authorization" not in headers and "cookie" not in headers, request["headers"]
    # Other clients (older MLflow clients, the lab's proxy, curl) download with GET: a 307 to a
    # presigned URL, which requests follows without the caller's Authorization header.
    exp = ok(call(first, "GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}", tokens["alice"]))["run"]["info"]["experiment_id"]
    artifact = f"/api/2.0/mlflow-artifacts/artifacts/workspaces/acme/{exp}/{run_id}/artifacts/data/large.bin"
    gateway = LocalHttpApi(first)
    aws.record()
    try:
        fetched = requests.get(f"{gateway.url}{artifact}", headers={"Authorization": f"Bearer {tokens['alice']}"}, timeout=120)
    finally:
        gateway.stop()
    assert fetched.status_code == 200 and fetched.history and fetched.history[0].status_code == 307
    assert fetched.content == (tmp_path / "large.bin").read_bytes()
    location = fetched.history[0].headers["location"]
    assert location.startswith(stack["env"]["MLFLOW_S3_ENDPOINT_URL"]) and "X-Amz-Expires=300" in location
    seen, everything = aws.recorded()
    s3_gets = [r for r in seen if r["method"] == "GET" and "large.bin" in r["url"]]
    assert s3_gets and all("authorization" not in {k.lower() for k in r["headers"]} for r in s3_gets), s3_gets
    assert tokens["alice"] not in everything
    # The web UI's artifact view (get-artifact) is redirected the same way.
    ui_view = call(first, "GET", f"/get-artifact?path=docs/small.txt&run_uuid={run_id}", tokens["alice"])
    assert ui_view["statusCode"] == 307, (ui_view["statusCode"], response_body(ui_view)[:300])
    assert requests.get(response_headers(ui_view)["location"], timeout=30).text == "hello " * 100
    assert call(first, "GET", f"/get-artifact?path=docs/small.txt&run_uuid={run_id}", tokens["carol"])["statusCode"] == 404
    # Someone without a role on the experiment gets no URL: 404, not a redirect.
    for path in (artifact, artifact.replace("/artifacts/workspaces/", "/presigned/workspaces/")):
        denied = call(first, "GET", path, tokens["carol"])
        assert denied["statusCode"] == 404 and "location" not in response_headers(denied), denied
        assert b"X-Amz" not in response_body(denied)


def test_two_instances_share_grants_within_the_bound(first, second, tokens):
    """A grant revoked on one instance is enforced on another within about 2 x change_poll_seconds
    (the bound docs/serverless.md states), though the other had the decision cached."""
    alice, carol = tokens["alice"], tokens["carol"]
    exp = ok(call(first, "POST", "/api/2.0/mlflow/experiments/create", alice, {"name": "shared-across-instances"}))["experiment_id"]
    get = f"/api/2.0/mlflow/experiments/get?experiment_id={exp}"
    assert call(second, "GET", get, carol)["statusCode"] == 404
    grant = {"resource_type": "experiment", "resource_id": exp, "principal_type": "user", "principal": "carol", "role": "reader"}
    ok(call(first, "POST", "/api/2.0/infinstor/permissions", alice, grant))
    granted = time.monotonic()
    while call(second, "GET", get, carol)["statusCode"] != 200:
        assert time.monotonic() - granted < 2 * POLL_SECONDS + 1.5, "the grant did not reach the second instance in time"
        time.sleep(0.1)
    ok(call(second, "GET", get, carol))  # the decision is now cached there
    ok(call(first, "DELETE", "/api/2.0/infinstor/permissions", alice, {k: v for k, v in grant.items() if k != "role"}))
    revoked = time.monotonic()
    while call(second, "GET", get, carol)["statusCode"] == 200:
        assert time.monotonic() - revoked < 2 * POLL_SECONDS + 1.5, "the revocation was not enforced on the second instance in time"
        time.sleep(0.1)
    assert call(second, "GET", get, carol)["statusCode"] == 404


def test_database_down_then_back(first, stack, tokens):
    """Aurora pausing, resuming or failing over looks like this: 503 + Retry-After, then service."""
    db = stack["db"]
    db.stop_server()
    try:
        response = call(first, "POST", "/api/2.0/mlflow/experiments/search", tokens["alice"], {"max_results": 5})
        assert response["statusCode"] == 503, (response["statusCode"], response_body(response)[:300])
        assert int(response_headers(response)["retry-after"]) > 0
        assert response_json(response)["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert str(db.port) not in response_body(response).decode()  # nothing about the database's address
    finally:
        db.start_server()
    db.wait_accepting()
    deadline = time.monotonic() + 30
    while (response := call(first, "POST", "/api/2.0/mlflow/experiments/search", tokens["alice"], {"max_results": 5}))["statusCode"] != 200:
        assert time.monotonic() < deadline, response
        time.sleep(0.5)
    # A fresh instance (a cold start) while the database is down answers 503 too, not a crash.
    db.stop_server()
    try:
        cold = stack["start"]("cold-while-down")
        response = call(cold, "POST", "/api/2.0/mlflow/experiments/search", tokens["alice"], {"max_results": 5})
        assert response["statusCode"] == 503 and int(response_headers(response)["retry-after"]) > 0, response
    finally:
        db.start_server()
    db.wait_accepting()
    ok(call(cold, "POST", "/api/2.0/mlflow/experiments/search", tokens["alice"], {"max_results": 5}))


def test_a_failed_migration_fails_the_deploy(stack, tmp_path):
    """CloudFormation hears FAILED with the reason (and no password), so the stack stops before
    the service function is updated."""
    key = "responses/migrate-failed"
    url = stack["s3"].generate_presigned_url("put_object", Params={"Bucket": "cfn-responses", "Key": key}, ExpiresIn=600)
    event = {
        "RequestType": "Update",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/infinstor/1",
        "RequestId": "req-2",
        "LogicalResourceId": "Migrations",
        "PhysicalResourceId": "infinstor-migrations",
        "ResourceType": "Custom::InfinStorMigrations",
        "ResourceProperties": {"Image": "new"},
    }
    # The database secret is missing (a database that does not answer fails the same way, after
    # MLflow's own retries for about 100 s, which suit a resuming Aurora but not a test).
    env = {**stack["env"], "INFINSTOR_DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"}
    migrator = LambdaProcess(env, tmp_path / "migrate-failed.log")
    try:
        outcome = migrator.invoke(event, handler="migrate_handler")
    finally:
        migrator.stop()
    told = json.loads(stack["s3"].get_object(Bucket="cfn-responses", Key=key)["Body"].read())
    assert outcome["Status"] == told["Status"] == "FAILED" and "ResourceNotFoundException" in told["Reason"], told
    assert "p@ss" not in told["Reason"] and "p%40ss" not in told["Reason"]
    assert told["PhysicalResourceId"] == "infinstor-migrations"
