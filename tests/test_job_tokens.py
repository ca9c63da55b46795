"""Job tokens: the scope check as a unit, and against the real embedded tracking service."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from tornado.httpclient import AsyncHTTPClient

from conftest import mlflow_api, wait_for_state
from infinstor_jupyterlab.credentials.secret import read_secret
from infinstor_jupyterlab.tracking_service.job_tokens import (
    InvalidJobToken,
    JobScope,
    JobTokenGuard,
    derive_key,
    issue,
    verify,
)

RUN, OTHER_RUN, EXP, OTHER_EXP = "a" * 32, "b" * 32, "7", "8"
KEY = derive_key("the install secret")


def scope(models=None) -> JobScope:
    claims = verify(KEY, issue(KEY, job_id="j1", run_id=RUN, experiment_id=EXP, ttl=60))
    return JobScope(claims, (models or {}).get)


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def job_token(key: bytes | None, *, expires_in: int, run: str = RUN, experiment: str = EXP, algorithm: str = "HS256") -> str:
    """A job token made by hand (not `issue`), to forge what `issue` never makes."""
    claims = {"typ": "infinstor-job", "aud": "infinstor-job", "job": "j", "run": run, "experiment": experiment}
    return jwt.encode({**claims, "iat": 1, "exp": int(time.time()) + expires_in}, key, algorithm=algorithm)


def test_key_is_derived_not_the_secret_and_tokens_verify_only_under_it():
    assert KEY != b"the install secret" and len(KEY) == 32
    token = issue(KEY, job_id="j1", run_id=RUN, experiment_id=EXP, ttl=60)
    claims = verify(KEY, token)
    assert (claims.job_id, claims.run_id, claims.experiment_id) == ("j1", RUN, EXP)
    assert claims.expires_at - time.time() <= 61
    with pytest.raises(InvalidJobToken):
        verify(derive_key("another install"), token)
    with pytest.raises(InvalidJobToken):  # expired (beyond the leeway)
        verify(KEY, job_token(KEY, expires_in=-120))
    with pytest.raises(InvalidJobToken):  # the skew tolerated is a few seconds (issue 14), not 30
        verify(KEY, job_token(KEY, expires_in=-10))
    with pytest.raises(InvalidJobToken):  # the install secret's own key type cannot be forged into one
        verify(KEY, jwt.encode({"run": RUN}, KEY, algorithm="HS256"))
    with pytest.raises(InvalidJobToken):  # alg none is refused
        verify(KEY, job_token(None, expires_in=60, algorithm="none"))
    guard = JobTokenGuard(KEY, None)
    assert guard.scope_for(f"Bearer {token}") is not None
    assert guard.scope_for(b"Bearer " + token.encode()) is not None
    assert guard.scope_for("Bearer the-install-secret") is None
    assert guard.scope_for(f"Basic {token}") is None
    assert guard.scope_for(None) is None


@pytest.mark.parametrize(
    "method,path,query,payload",
    [
        ("POST", "/api/2.0/mlflow/runs/log-batch", "", body(run_id=RUN, metrics=[])),
        ("POST", "/api/2.0/mlflow/runs/log-metric", "", body(run_id=RUN, key="m", value=1, timestamp=1)),
        ("POST", "/api/2.0/mlflow/runs/log-parameter", "", body(run_id=RUN, key="p", value="1")),
        ("POST", "/api/2.0/mlflow/runs/set-tag", "", body(run_id=RUN, key="t", value="v")),
        ("POST", "/api/2.0/mlflow/runs/update", "", body(run_id=RUN, status="FINISHED")),
        ("POST", "/api/2.0/mlflow/runs/log-inputs", "", body(run_id=RUN, datasets=[])),
        ("POST", "/api/2.0/mlflow/runs/outputs", "", body(run_id=RUN, models=[])),
        ("POST", "/ajax-api/2.0/mlflow/runs/log-batch", "", body(run_id=RUN)),
        ("GET", "/api/2.0/mlflow/runs/get", f"run_id={RUN}", None),
        ("GET", "/api/2.0/mlflow/metrics/get-history", f"run_id={RUN}&metric_key=m", None),
        ("GET", "/api/2.0/mlflow/artifacts/list", f"run_id={RUN}&path=x", None),
        ("GET", "/api/2.0/mlflow/experiments/get", f"experiment_id={EXP}", None),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/{RUN}/artifacts/notebook/x.ipynb", "", None),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/{RUN}/artifacts/notebook/x.ipynb", "", None),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", f"path={EXP}/{RUN}/artifacts", None),
        ("POST", f"/api/2.0/mlflow-artifacts/mpu/create/{EXP}/{RUN}/artifacts/big.bin", "", None),
        ("POST", "/api/2.0/mlflow/logged-models", "", body(experiment_id=EXP, source_run_id=RUN, name="model")),
        ("POST", "/api/2.0/mlflow/logged-models/search", "", body(experiment_ids=[EXP])),
        ("GET", "/api/2.0/mlflow/logged-models/m-mine", "", None),
        ("PATCH", "/api/2.0/mlflow/logged-models/m-mine", "", body(model_id="m-mine", status="READY")),
        ("PATCH", "/api/2.0/mlflow/logged-models/m-mine/tags", "", body(tags=[])),
        ("POST", "/api/2.0/mlflow/logged-models/m-mine/params", "", body(params=[])),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/models/m-mine/artifacts/MLmodel", "", None),
    ],
)
def test_the_job_may_write_and_read_its_own_run(method, path, query, payload):
    assert scope({"m-mine": RUN, "m-theirs": OTHER_RUN}).allows(method, path, query, payload), (method, path)


@pytest.mark.parametrize(
    "method,path,query,payload",
    [
        # another run's writes and reads
        ("POST", "/api/2.0/mlflow/runs/log-batch", "", body(run_id=OTHER_RUN, metrics=[])),
        ("POST", "/api/2.0/mlflow/runs/log-batch", "", body(run_id=OTHER_RUN, run_uuid=RUN)),
        ("POST", "/api/2.0/mlflow/runs/set-tag", "", body(run_uuid=OTHER_RUN, key="t", value="v")),
        ("POST", "/api/2.0/mlflow/runs/update", "", body(run_id=OTHER_RUN, status="FAILED")),
        ("POST", "/api/2.0/mlflow/runs/log-metric", "", body(key="m", value=1)),  # no run named
        ("GET", "/api/2.0/mlflow/runs/get", f"run_id={OTHER_RUN}", None),
        ("GET", "/api/2.0/mlflow/runs/get", f"run_id={RUN}&run_id={OTHER_RUN}", None),
        ("GET", "/api/2.0/mlflow/metrics/get-history", f"run_id={OTHER_RUN}&metric_key=m", None),
        # creating and listing things
        ("POST", "/api/2.0/mlflow/experiments/create", "", body(name="mine now")),
        ("POST", "/api/2.0/mlflow/runs/create", "", body(experiment_id=EXP)),
        ("POST", "/api/2.0/mlflow/runs/search", "", body(experiment_ids=[EXP])),
        ("GET", "/api/2.0/mlflow/experiments/search", "", None),
        ("POST", "/api/2.0/mlflow/registered-models/create", "", body(name="m")),
        # other experiments
        ("GET", "/api/2.0/mlflow/experiments/get", f"experiment_id={OTHER_EXP}", None),
        ("GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default", None),
        ("POST", "/api/2.0/mlflow/logged-models/search", "", body(experiment_ids=[EXP, OTHER_EXP])),
        ("POST", "/api/2.0/mlflow/logged-models", "", body(experiment_id=OTHER_EXP, source_run_id=RUN)),
        ("POST", "/api/2.0/mlflow/logged-models", "", body(experiment_id=EXP, source_run_id=OTHER_RUN)),
        # deletes, even of its own things
        ("POST", "/api/2.0/mlflow/runs/delete", "", body(run_id=RUN)),
        ("POST", "/api/2.0/mlflow/runs/delete-tag", "", body(run_id=RUN, key="t")),
        ("POST", "/api/2.0/mlflow/experiments/delete", "", body(experiment_id=EXP)),
        ("DELETE", "/api/2.0/mlflow/logged-models/m-mine", "", None),
        ("DELETE", "/api/2.0/mlflow/logged-models/m-mine/tags/t", "", None),
        ("DELETE", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/{RUN}/artifacts/x", "", None),
        # other models and artifact paths
        ("PATCH", "/api/2.0/mlflow/logged-models/m-theirs", "", body(status="READY")),
        ("GET", "/api/2.0/mlflow/logged-models/m-theirs", "", None),
        ("POST", "/api/2.0/mlflow/logged-models/m-unknown/params", "", body(params=[])),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/{OTHER_RUN}/artifacts/x", "", None),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/{RUN}/artifacts/../../{OTHER_RUN}/artifacts/x", "", None),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/{RUN}/artifacts%2F..%2F..%2F{OTHER_RUN}/artifacts/x", "", None),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{OTHER_EXP}/{RUN}/artifacts/x", "", None),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/models/m-theirs/artifacts/MLmodel", "", None),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", f"path={EXP}", None),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{EXP}/{OTHER_RUN}/artifacts/secret.txt", "", None),
        # the UI, the registry, anything else; malformed bodies
        ("GET", "/", "", None),
        ("GET", "/static-files/index.html", "", None),
        ("GET", "/api/2.0/mlflow/registered-models/search", "", None),
        ("POST", "/api/2.0/mlflow/runs/log-batch", "", b"not json"),
        ("POST", "/api/2.0/mlflow/runs/log-batch", "", b"[1, 2]"),
    ],
)
def test_everything_else_is_refused(method, path, query, payload):
    assert not scope({"m-mine": RUN, "m-theirs": OTHER_RUN}).allows(method, path, query, payload), (method, path)


@pytest.mark.slow
async def test_the_embedded_service_enforces_the_scope(jp_fetch, infinstor):
    """Real requests against the embedded MLflow service: secret, job token, forged and expired tokens."""
    await wait_for_state(jp_fetch, "running")
    tracking = infinstor.tracking
    uri, owner = tracking.uri, tracking.auth_headers()
    _, exp = await mlflow_api(uri, "experiments/create", headers=owner, body={"name": "scoped"})
    _, other_exp = await mlflow_api(uri, "experiments/create", headers=owner, body={"name": "elsewhere"})
    exp, other_exp = exp["experiment_id"], other_exp["experiment_id"]
    _, run = await mlflow_api(uri, "runs/create", headers=owner, body={"experiment_id": exp})
    _, other = await mlflow_api(uri, "runs/create", headers=owner, body={"experiment_id": exp})
    run_id, other_id = run["run"]["info"]["run_id"], other["run"]["info"]["run_id"]

    key = derive_key(read_secret(tracking.secret_path))
    job = {"Authorization": f"Bearer {issue(key, job_id='j', run_id=run_id, experiment_id=exp, ttl=60)}"}

    async def call(path, body=None, headers=job, method=None):
        return (await mlflow_api(uri, path, headers=headers, body=body, method=method))[0]

    # allowed: its own run's writes and reads, its experiment
    assert (
        await call(
            "runs/log-batch",
            {"run_id": run_id, "metrics": [{"key": "m", "value": 1.5, "timestamp": 1, "step": 0}], "params": [{"key": "p", "value": "1"}]},
        )
        == 200
    )
    assert await call("runs/log-metric", {"run_id": run_id, "key": "n", "value": 2, "timestamp": 1}) == 200
    assert await call("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"}) == 200
    assert await call(f"runs/get?run_id={run_id}") == 200
    assert await call(f"experiments/get?experiment_id={exp}") == 200
    # refused: another run, creating experiments or runs, other experiments, deletes, searches
    assert await call("runs/log-batch", {"run_id": other_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}]}) == 403
    assert await call("runs/update", {"run_id": other_id, "status": "FAILED"}) == 403
    assert await call(f"runs/get?run_id={other_id}") == 403
    assert await call("experiments/create", {"name": "nope"}) == 403
    assert await call("runs/create", {"experiment_id": exp}) == 403
    assert await call(f"experiments/get?experiment_id={other_exp}") == 403
    assert await call("experiments/search", {"max_results": 10}) == 403
    assert await call("runs/delete", {"run_id": run_id}) == 403
    assert await call("runs/delete-tag", {"run_id": run_id, "key": "t"}) == 403
    assert await call("experiments/delete", {"experiment_id": exp}) == 403
    # artifacts: its own path only
    client = AsyncHTTPClient()

    async def put(path):
        response = await client.fetch(
            f"{uri}/api/2.0/mlflow-artifacts/artifacts/{path}", method="PUT", body=b"data", headers=job, raise_error=False
        )
        return response.code

    assert await put(f"{exp}/{run_id}/artifacts/out/result.txt") == 200
    assert await put(f"{exp}/{other_id}/artifacts/out/result.txt") == 403
    # nothing of the refused requests happened
    _, other_run = await mlflow_api(uri, f"runs/get?run_id={other_id}", headers=owner)
    assert other_run["run"]["info"]["status"] == "RUNNING" and not other_run["run"]["data"].get("metrics")
    _, found = await mlflow_api(uri, "experiments/get-by-name?experiment_name=nope", headers=owner)
    assert found.get("error_code") == "RESOURCE_DOES_NOT_EXIST"
    # forged, expired and wrong-key tokens are not credentials at all; the owner's secret still is
    forged = {"Authorization": f"Bearer {issue(derive_key('guess'), job_id='j', run_id=run_id, experiment_id=exp)}"}
    assert await call(f"runs/get?run_id={run_id}", headers=forged) == 401
    expired = job_token(key, expires_in=-300, run=run_id, experiment=exp)
    assert await call(f"runs/get?run_id={run_id}", headers={"Authorization": f"Bearer {expired}"}) == 401
    assert await call(f"runs/get?run_id={other_id}", headers=owner) == 200
