"""The generated authorization matrix: every MLflow REST operation the company service authorizes
x {creator, group editor, group reader, other group in the same organisation, other organisation,
anonymous, expired token, token from another issuer}, checked against the shipped policy, on
SQLite and on a real PostgreSQL, through a real `mlflow server --app-name infinstor`.

Expected answers come from the policy file, not from this test: allowed -> the operation runs
(200); no role at all -> 404 (the resource does not exist for the caller); too small a role -> 403;
no valid credential -> 401.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from idp_fixture import SHORT_CLIENT, IdP
from infinstor_jupyterlab.service.db import ROLE_RANK
from infinstor_jupyterlab.service.policy import KINDS, load_policy
from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow

POLICY = load_policy()

# principal -> (user, rank on every target resource); rank None: not signed in validly.
PRINCIPALS = {
    "creator": ("alice", 3),
    "group editor": ("bob", 2),
    "group reader": ("carol", 1),
    "other group, same org": ("erin", 0),
    "other org": ("dave", 0),
    "anonymous": (None, None),
    "expired token": ("alice", None),
    "token from another issuer": ("alice", None),
}

# Operations MLflow itself cannot complete on a local artifact store (no multipart uploads): an
# allowed caller must get past us (no 401/403/404), whatever MLflow then answers.
MLFLOW_LIMITED = {"CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload"}
# Operations that use up their target (deletes, renames, restores): each caller gets a fresh one.
CONSUMING = {
    "UpdateExperiment", "DeleteExperiment", "RestoreExperiment", "DeleteExperimentTag", "DeleteRun", "RestoreRun", "DeleteTag", "LogOutputs",
    "DeleteLoggedModel", "DeleteLoggedModelTag", "DeleteArtifact", "RenameRegisteredModel", "DeleteRegisteredModel",
    "DeleteRegisteredModelTag", "DeleteRegisteredModelAlias", "DeleteModelVersion", "DeleteModelVersionTag",
}  # fmt: skip


@dataclass
class Target:
    experiment_id: str
    deleted_experiment_id: str
    experiment_name: str
    run_id: str
    deleted_run_id: str
    artifact_path: str  # the run's artifact root, relative to mlflow-artifacts:/
    logged_model_id: str
    model: str


def _ok(response: requests.Response) -> dict:
    assert response.status_code == 200, f"setup {response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else {}


def make_target(server: CompanyServer, alice: str) -> Target:
    """Everything an operation can be about, created by alice; vision edits it, nlp reads it."""
    M = server.mlflow
    suffix = uuid.uuid4().hex[:10]
    name = f"matrix-{suffix}"
    experiment_id = _ok(M("POST", "experiments/create", alice, json={"name": name}))["experiment_id"]
    _ok(M("POST", "experiments/set-experiment-tag", alice, json={"experiment_id": experiment_id, "key": "t", "value": "v"}))
    deleted_experiment = _ok(M("POST", "experiments/create", alice, json={"name": f"{name}-deleted"}))["experiment_id"]
    _ok(M("POST", "experiments/delete", alice, json={"experiment_id": deleted_experiment}))
    run = _ok(M("POST", "runs/create", alice, json={"experiment_id": experiment_id, "tags": [{"key": "t", "value": "v"}]}))["run"]["info"]
    run_id = run["run_id"]
    _ok(M("POST", "runs/log-batch", alice, json={"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}))
    deleted_run = _ok(M("POST", "runs/create", alice, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    _ok(M("POST", "runs/delete", alice, json={"run_id": deleted_run}))
    artifact_path = run["artifact_uri"][len("mlflow-artifacts:/"):]
    _ok(server.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{artifact_path}/a.txt", alice, data=b"a"))
    logged = _ok(M("POST", "logged-models", alice, json={"experiment_id": experiment_id, "name": "lm", "source_run_id": run_id,
                                                          "tags": [{"key": "t", "value": "v"}]}))["model"]["info"]  # fmt: skip
    model = f"matrix-model-{suffix}"
    _ok(M("POST", "registered-models/create", alice, json={"name": model, "tags": [{"key": "t", "value": "v"}]}))
    _ok(M("POST", "model-versions/create", alice, json={"name": model, "source": f"{run['artifact_uri']}/model", "run_id": run_id,
                                                       "tags": [{"key": "t", "value": "v"}]}))  # fmt: skip
    _ok(M("POST", "registered-models/alias", alice, json={"name": model, "alias": "champion", "version": "1"}))
    share = server.infinstor
    for resource_type, resource_id in (("experiment", experiment_id), ("experiment", deleted_experiment), ("registered_model", model)):
        for group, role in (("vision", "editor"), ("nlp", "reader")):
            _ok(share("POST", "permissions", alice, json={"resource_type": resource_type, "resource_id": resource_id,
                                                          "principal_type": "group", "principal": group, "role": role}))  # fmt: skip
    return Target(experiment_id, deleted_experiment, name, run_id, deleted_run, artifact_path, logged["model_id"], model)


def request_for(operation: str, t: Target, who: str) -> tuple[str, str, dict]:
    """(method, path, requests kwargs) of a valid call of `operation` on target `t` by `who`."""
    unique = f"{who}-{uuid.uuid4().hex[:8]}"
    art = f"api/2.0/mlflow-artifacts/artifacts/{t.artifact_path}"
    mpu = {"path": f"{t.artifact_path}/big.bin", "num_parts": 1}
    version = {"name": t.model, "version": "1"}
    lm = f"api/2.0/mlflow/logged-models/{t.logged_model_id}"
    table = {
        "CreateExperiment": ("POST", "experiments/create", {"json": {"name": f"new-{unique}"}}),
        "SearchExperiments": ("POST", "experiments/search", {"json": {"max_results": 10}}),
        "SearchRuns": ("POST", "runs/search", {"json": {"experiment_ids": [t.experiment_id]}}),
        "SearchLoggedModels": ("POST", "logged-models/search", {"json": {"experiment_ids": [t.experiment_id]}}),
        "SearchDatasets": ("POST", "@ajax-api/2.0/mlflow/experiments/search-datasets", {"json": {"experiment_ids": [t.experiment_id]}}),
        "CreateRegisteredModel": ("POST", "registered-models/create", {"json": {"name": f"new-{unique}"}}),
        "SearchRegisteredModels": ("GET", "registered-models/search", {}),
        "SearchModelVersions": ("GET", "model-versions/search", {}),
        "GetServerInfo": ("GET", "@api/3.0/mlflow/server-info", {}),
        "ListWorkspaces": ("GET", "@api/3.0/mlflow/workspaces", {}),
        "GetWorkspace": ("GET", f"@api/3.0/mlflow/workspaces/{'globex' if who == 'other-org' else 'acme'}", {}),
        "GetExperiment": ("GET", "experiments/get", {"params": {"experiment_id": t.experiment_id}}),
        "GetExperimentByName": ("GET", "experiments/get-by-name", {"params": {"experiment_name": t.experiment_name}}),
        "UpdateExperiment": ("POST", "experiments/update", {"json": {"experiment_id": t.experiment_id, "new_name": f"renamed-{unique}"}}),
        "DeleteExperiment": ("POST", "experiments/delete", {"json": {"experiment_id": t.experiment_id}}),
        "RestoreExperiment": ("POST", "experiments/restore", {"json": {"experiment_id": t.deleted_experiment_id}}),
        "SetExperimentTag": ("POST", "experiments/set-experiment-tag", {"json": {"experiment_id": t.experiment_id, "key": "k", "value": who}}),
        "DeleteExperimentTag": ("POST", "experiments/delete-experiment-tag", {"json": {"experiment_id": t.experiment_id, "key": "t"}}),
        "CreateRun": ("POST", "runs/create", {"json": {"experiment_id": t.experiment_id}}),
        "CreateLoggedModel": ("POST", "logged-models", {"json": {"experiment_id": t.experiment_id, "name": "lm2"}}),
        "GetRun": ("GET", "runs/get", {"params": {"run_id": t.run_id}}),
        "UpdateRun": ("POST", "runs/update", {"json": {"run_id": t.run_id, "status": "RUNNING"}}),
        "DeleteRun": ("POST", "runs/delete", {"json": {"run_id": t.run_id}}),
        "RestoreRun": ("POST", "runs/restore", {"json": {"run_id": t.deleted_run_id}}),
        "LogMetric": ("POST", "runs/log-metric", {"json": {"run_id": t.run_id, "key": "m", "value": 2.0, "timestamp": 2, "step": 1}}),
        "LogParam": ("POST", "runs/log-parameter", {"json": {"run_id": t.run_id, "key": f"p-{unique}", "value": "1"}}),
        "SetTag": ("POST", "runs/set-tag", {"json": {"run_id": t.run_id, "key": "k", "value": who}}),
        "DeleteTag": ("POST", "runs/delete-tag", {"json": {"run_id": t.run_id, "key": "t"}}),
        "LogBatch": ("POST", "runs/log-batch", {"json": {"run_id": t.run_id, "params": [{"key": f"b-{unique}", "value": "1"}]}}),
        "LogModel": ("POST", "runs/log-model", {"json": {"run_id": t.run_id, "model_json": json.dumps({
            "artifact_path": "model", "run_id": t.run_id, "utc_time_created": "2026-01-01 00:00:00.000000", "flavors": {}})}}),
        "LogInputs": ("POST", "runs/log-inputs", {"json": {"run_id": t.run_id, "datasets": []}}),
        "LogOutputs": ("POST", "runs/outputs", {"json": {"run_id": t.run_id, "models": [{"model_id": t.logged_model_id, "step": 0}]}}),
        "GetMetricHistory": ("GET", "metrics/get-history", {"params": {"run_id": t.run_id, "metric_key": "m"}}),
        "ListArtifacts": ("GET", "artifacts/list", {"params": {"run_id": t.run_id}}),
        "GetMetricHistoryBulkInterval": ("GET", "metrics/get-history-bulk-interval",
                                         {"params": {"run_ids": [t.run_id], "metric_key": "m", "max_results": 10}}),
        "GetLoggedModel": ("GET", f"@{lm}", {}),
        "FinalizeLoggedModel": ("PATCH", f"@{lm}", {"json": {"model_id": t.logged_model_id, "status": "LOGGED_MODEL_READY"}}),
        "DeleteLoggedModel": ("DELETE", f"@{lm}", {}),
        "SetLoggedModelTags": ("PATCH", f"@{lm}/tags", {"json": {"tags": [{"key": "k", "value": who}]}}),
        "DeleteLoggedModelTag": ("DELETE", f"@{lm}/tags/t", {}),
        "ListLoggedModelArtifacts": ("GET", f"@{lm}/artifacts/directories", {}),
        "LogLoggedModelParamsRequest": ("POST", f"@{lm}/params", {"json": {"model_id": t.logged_model_id,
                                                                                "params": [{"key": f"p-{unique}", "value": "1"}]}}),
        "DownloadArtifact": ("GET", f"@{art}/a.txt", {}),
        "UploadArtifact": ("PUT", f"@{art}/up-{unique}.txt", {"data": b"x"}),
        "ListProxiedArtifacts": ("GET", "@api/2.0/mlflow-artifacts/artifacts", {"params": {"path": t.artifact_path}}),
        "DeleteArtifact": ("DELETE", f"@{art}/a.txt", {}),
        "CreateMultipartUpload": ("POST", f"@api/2.0/mlflow-artifacts/mpu/create/{t.artifact_path}/big.bin", {"json": mpu}),
        "CompleteMultipartUpload": ("POST", f"@api/2.0/mlflow-artifacts/mpu/complete/{t.artifact_path}/big.bin",
                                    {"json": {**mpu, "upload_id": "u", "parts": []}}),
        "AbortMultipartUpload": ("POST", f"@api/2.0/mlflow-artifacts/mpu/abort/{t.artifact_path}/big.bin", {"json": {**mpu, "upload_id": "u"}}),
        "GetRegisteredModel": ("GET", "registered-models/get", {"params": {"name": t.model}}),
        "UpdateRegisteredModel": ("PATCH", "registered-models/update", {"json": {"name": t.model, "description": who}}),
        "RenameRegisteredModel": ("POST", "registered-models/rename", {"json": {"name": t.model, "new_name": f"renamed-{unique}"}}),
        "DeleteRegisteredModel": ("DELETE", "registered-models/delete", {"json": {"name": t.model}}),
        "GetLatestVersions": ("POST", "registered-models/get-latest-versions", {"json": {"name": t.model}}),
        "SetRegisteredModelTag": ("POST", "registered-models/set-tag", {"json": {"name": t.model, "key": "k", "value": who}}),
        "DeleteRegisteredModelTag": ("DELETE", "registered-models/delete-tag", {"json": {"name": t.model, "key": "t"}}),
        "SetRegisteredModelAlias": ("POST", "registered-models/alias", {"json": {"name": t.model, "alias": f"a-{who}", "version": "1"}}),
        "DeleteRegisteredModelAlias": ("DELETE", "registered-models/alias", {"json": {"name": t.model, "alias": "champion"}}),
        "GetModelVersionByAlias": ("GET", "registered-models/alias", {"params": {"name": t.model, "alias": "champion"}}),
        "CreateModelVersion": ("POST", "model-versions/create", {"json": {
            "name": t.model, "source": f"mlflow-artifacts:/{t.artifact_path}/model", "run_id": t.run_id}}),
        "UpdateModelVersion": ("PATCH", "model-versions/update", {"json": {**version, "description": who}}),
        "TransitionModelVersionStage": ("POST", "model-versions/transition-stage", {"json": {**version, "stage": "Staging",
                                                                                           "archive_existing_versions": False}}),
        "DeleteModelVersion": ("DELETE", "model-versions/delete", {"json": version}),
        "GetModelVersion": ("GET", "model-versions/get", {"params": version}),
        "GetModelVersionDownloadUri": ("GET", "model-versions/get-download-uri", {"params": version}),
        "SetModelVersionTag": ("POST", "model-versions/set-tag", {"json": {**version, "key": "k", "value": who}}),
        "DeleteModelVersionTag": ("DELETE", "model-versions/delete-tag", {"json": {**version, "key": "t"}}),
    }  # fmt: skip
    method, path, kwargs = table[operation]
    path = path[1:] if path.startswith("@") else f"api/2.0/mlflow/{path}"
    return method, path, kwargs


def expected(operation: str, rank: int | None) -> str:
    """'allowed', 'not found', 'forbidden' or 'unauthenticated', from the policy."""
    if rank is None:
        return "unauthenticated"
    need = POLICY.role_for(operation)
    if need == "member":
        return "allowed"
    if need == "admin":
        return "forbidden"
    if rank >= ROLE_RANK[need]:
        return "allowed"
    return "not found" if rank == 0 else "forbidden"


def outcome(response: requests.Response, operation: str) -> str:
    code = response.status_code
    if code == 401:
        return "unauthenticated"
    if code == 403:
        return "forbidden"
    if code == 404:
        return "not found"
    if code == 200 or (operation in MLFLOW_LIMITED and code not in (401, 403, 404)):
        return "allowed"
    return f"HTTP {code}: {response.text[:300]}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def matrix_server(request, idp, tmp_path_factory):
    cluster = request.getfixturevalue("postgres_cluster") if request.param == "postgresql" else None
    root = tmp_path_factory.mktemp(f"matrix-{request.param}")
    server = CompanyServer(root, idp.issuer, backend_uri=cluster.create_database("matrix") if cluster else None)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_issuer(tmp_path_factory):
    """A second, real IdP: same users and audience, another issuer and key."""
    other = IdP(tmp_path_factory.mktemp("other-idp") / "idp.log")
    yield other
    other.stop()


def test_every_operation_the_policy_names_has_a_case():
    assert set(POLICY.roles) <= set(KINDS)
    target = Target("1", "2", "n", "r", "d", "workspaces/acme/1/r/artifacts", "m-1", "m")
    for operation in KINDS:
        request_for(operation, target, "x")  # raises KeyError for an operation without a case


def test_matrix(matrix_server, idp, other_issuer):
    server = matrix_server
    expired_from = time.monotonic()
    credentials = {
        "creator": user_token(idp, "alice"), "group editor": user_token(idp, "bob"), "group reader": user_token(idp, "carol"),
        "other group, same org": user_token(idp, "erin"), "other org": user_token(idp, "dave"), "anonymous": None,
        "expired token": user_token(idp, "alice", SHORT_CLIENT), "token from another issuer": user_token(other_issuer, "alice"),
    }  # fmt: skip
    alice = credentials["creator"]
    shared = make_target(server, alice)
    time.sleep(max(0.0, 5.5 - (time.monotonic() - expired_from)))  # the short client's tokens live 4 s
    assert server.mlflow("GET", "experiments/get", credentials["expired token"], params={"experiment_id": "0"}).status_code == 401
    failures, cells = [], 0
    # Callers that will be refused go first, so that allowed consuming calls come last.
    order = sorted(PRINCIPALS, key=lambda p: (PRINCIPALS[p][1] is not None, PRINCIPALS[p][1] or 0))
    for operation in sorted(KINDS):
        for principal in order:
            rank = PRINCIPALS[principal][1]
            want = expected(operation, rank)
            fresh = operation in CONSUMING and want == "allowed"
            target = make_target(server, alice) if fresh else shared
            method, path, kwargs = request_for(operation, target, principal.replace(" ", "-").replace(",", ""))
            response = server.call(method, path, credentials[principal], **kwargs)
            got = outcome(response, operation)
            cells += 1
            if got != want:
                failures.append(f"{operation} as {principal}: expected {want}, got {got}")
    assert not failures, f"{len(failures)} of {cells} cells differ from the policy:\n" + "\n".join(failures)
    assert cells == len(KINDS) * len(PRINCIPALS)
