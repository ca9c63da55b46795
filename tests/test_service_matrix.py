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
import re
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from idp_fixture import SHORT_CLIENT
from infinstor_jupyterlab.tracking_service.policy import KINDS, REFUSED, load_policy
from infinstor_jupyterlab.tracking_service.service_store import ROLE_RANK
from service_fixture import CompanyServer, company_server_on_each_backend, user_token

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

# Operations MLflow itself cannot complete on a local artifact store (no multipart uploads, no
# presigned URLs): an allowed caller must get past us (no 401/403/404), whatever MLflow then answers.
MLFLOW_LIMITED = {
    "CreateMultipartUpload",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "CreatePresignedUploadUrl",
    "CreatePresignedDownloadUrl",
    "GetPresignedDownloadUrl",
}
# Operations that use up their target (deletes, renames, restores): each caller gets a fresh one.
CONSUMING = {
    "UpdateExperiment",
    "DeleteExperiment",
    "RestoreExperiment",
    "DeleteExperimentTag",
    "DeleteRun",
    "RestoreRun",
    "DeleteTag",
    "LogOutputs",
    "DeleteLoggedModel",
    "DeleteLoggedModelTag",
    "DeleteArtifact",
    "RenameRegisteredModel",
    "DeleteRegisteredModel",
    "DeleteRegisteredModelTag",
    "DeleteRegisteredModelAlias",
    "DeleteModelVersion",
    "DeleteModelVersionTag",
    "DeleteTraces",
    "DeleteTracesV3",
    "DeleteTraceTag",
    "DeleteTraceTagV3",
    "DeleteAssessment",
    "DeleteDataset",
    "DeleteDatasetTag",
    "DeleteDatasetRecords",
    "RemoveDatasetFromExperiments",
    "DeleteScorer",
    "DeleteLabelSchema",
}
# The MLmodel file of the run's model (the registered version's source) and of the logged model.
MLMODEL = b"artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
# A scorer MLflow accepts (a built-in LLM judge; nothing runs when it is registered).
SCORER = json.dumps(
    {
        "name": "polite",
        "aggregations": None,
        "description": None,
        "is_session_level_scorer": False,
        "mlflow_version": "3.17.0",
        "serialization_version": 1,
        "builtin_scorer_class": "Guidelines",
        "builtin_scorer_pydantic_data": {
            "name": "polite",
            "aggregations": None,
            "required_columns": ["inputs", "outputs"],
            "guidelines": "Be polite",
            "model": None,
        },
        "call_source": None,
        "call_signature": None,
        "original_func_name": None,
    }
)


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
    # MLflow 3 tracing and GenAI evaluation, all in experiment_id (other_experiment_id: shared alike)
    other_experiment_id: str = ""
    trace_id: str = ""
    assessment_id: str = ""
    dataset_id: str = ""
    dataset_record_id: str = ""
    scorer: str = ""
    issue_id: str = ""
    label_schema_id: str = ""
    label_schema: str = ""


def _ok(response: requests.Response) -> dict:
    assert response.status_code == 200, f"setup {response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else {}


def otlp_export(trace_hex: str, name: str = "root") -> dict:
    """An OTLP/JSON trace export of one finished root span (what MLflow's client sends to /v1/traces)."""
    now = time.time_ns()
    span = {
        "traceId": trace_hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(now - 1_000_000),
        "endTimeUnixNano": str(now),
        "status": {"code": 1},
    }
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "matrix"}, "spans": [span]}]}]}


def trace_info(trace_id: str, experiment_id: str) -> dict:
    return {
        "trace": {
            "trace_info": {
                "trace_id": trace_id,
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
                "request_time": "2026-01-01T00:00:00Z",
                "execution_duration": "0.001s",
                "state": "OK",
                "trace_metadata": {"mlflow.trace_schema.version": "3"},
                "tags": {"t": "v"},
            }
        }
    }


def make_trace(server: CompanyServer, token: str, experiment_id: str) -> str:
    """A real trace: its span exported over OTLP, then its info started, as MLflow's client does."""
    trace_hex = uuid.uuid4().hex
    headers = {"x-mlflow-experiment-id": experiment_id, "Content-Type": "application/json"}
    _ok(server.call("POST", "v1/traces", token, data=json.dumps(otlp_export(trace_hex)), headers=headers))
    return _ok(server.call("POST", "api/3.0/mlflow/traces", token, json=trace_info(f"tr-{trace_hex}", experiment_id)))["trace"][
        "trace_info"
    ]["trace_id"]


def make_target(server: CompanyServer, alice: str) -> Target:
    """Everything an operation can be about, created by alice; vision edits it, nlp reads it."""
    M = server.mlflow
    suffix = uuid.uuid4().hex[:10]
    name = f"matrix-{suffix}"
    experiment_id = _ok(M("POST", "experiments/create", alice, json={"name": name}))["experiment_id"]
    other_experiment = _ok(M("POST", "experiments/create", alice, json={"name": f"{name}-other"}))["experiment_id"]
    _ok(M("POST", "experiments/set-experiment-tag", alice, json={"experiment_id": experiment_id, "key": "t", "value": "v"}))
    deleted_experiment = _ok(M("POST", "experiments/create", alice, json={"name": f"{name}-deleted"}))["experiment_id"]
    _ok(M("POST", "experiments/delete", alice, json={"experiment_id": deleted_experiment}))
    run = _ok(M("POST", "runs/create", alice, json={"experiment_id": experiment_id, "tags": [{"key": "t", "value": "v"}]}))["run"]["info"]
    run_id = run["run_id"]
    _ok(M("POST", "runs/log-batch", alice, json={"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}))
    deleted_run = _ok(M("POST", "runs/create", alice, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    _ok(M("POST", "runs/delete", alice, json={"run_id": deleted_run}))
    artifact_path = run["artifact_uri"][len("mlflow-artifacts:/") :]
    _ok(server.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{artifact_path}/a.txt", alice, data=b"a"))
    _ok(server.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{artifact_path}/model/MLmodel", alice, data=MLMODEL))
    logged = _ok(
        M(
            "POST",
            "logged-models",
            alice,
            json={"experiment_id": experiment_id, "name": "lm", "source_run_id": run_id, "tags": [{"key": "t", "value": "v"}]},
        )
    )["model"]["info"]
    logged_root = logged["artifact_uri"][len("mlflow-artifacts:/") :]
    _ok(server.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{logged_root}/MLmodel", alice, data=MLMODEL))
    model = f"matrix-model-{suffix}"
    _ok(M("POST", "registered-models/create", alice, json={"name": model, "tags": [{"key": "t", "value": "v"}]}))
    _ok(
        M(
            "POST",
            "model-versions/create",
            alice,
            json={"name": model, "source": f"{run['artifact_uri']}/model", "run_id": run_id, "tags": [{"key": "t", "value": "v"}]},
        )
    )
    _ok(M("POST", "registered-models/alias", alice, json={"name": model, "alias": "champion", "version": "1"}))
    genai = make_genai(server, alice, experiment_id, other_experiment)
    share = server.infinstor
    experiments = (experiment_id, deleted_experiment, other_experiment)
    for resource_type, resource_id in [*(("experiment", e) for e in experiments), ("registered_model", model)]:
        for group, role in (("vision", "editor"), ("nlp", "reader")):
            _ok(
                share(
                    "POST",
                    "permissions",
                    alice,
                    json={
                        "resource_type": resource_type,
                        "resource_id": resource_id,
                        "principal_type": "group",
                        "principal": group,
                        "role": role,
                    },
                )
            )
    return Target(
        experiment_id, deleted_experiment, name, run_id, deleted_run, artifact_path, logged["model_id"], model, other_experiment, **genai
    )


def make_genai(server: CompanyServer, alice: str, experiment_id: str, other_experiment: str) -> dict:
    """A trace with an assessment, an evaluation dataset with a record, a scorer, an issue and a
    label schema in the experiment (the dataset is linked to the other experiment too)."""
    v3 = lambda method, path, **kwargs: _ok(server.call(method, f"api/3.0/mlflow/{path}", alice, **kwargs))  # noqa: E731
    trace_id = make_trace(server, alice, experiment_id)
    assessment = v3(
        "POST",
        f"traces/{trace_id}/assessments",
        json={
            "assessment": {
                "assessment_name": "quality",
                "trace_id": trace_id,
                "source": {"source_type": "HUMAN", "source_id": "alice"},
                "feedback": {"value": True},
            }
        },
    )["assessment"]
    dataset_id = v3(
        "POST",
        "datasets/create",
        json={"name": f"ds-{uuid.uuid4().hex[:8]}", "experiment_ids": [experiment_id, other_experiment], "tags": json.dumps({"t": "v"})},
    )["dataset"]["dataset_id"]
    v3("POST", f"datasets/{dataset_id}/records", json={"records": json.dumps([{"inputs": {"q": "2+2"}, "expectations": {"a": "4"}}])})
    record_id = json.loads(v3("GET", f"datasets/{dataset_id}/records")["records"])[0]["dataset_record_id"]
    scorer = f"scorer-{uuid.uuid4().hex[:8]}"
    v3("POST", "scorers/register", json={"experiment_id": experiment_id, "name": scorer, "serialized_scorer": SCORER})
    issue_id = v3("POST", "issues", json={"experiment_id": experiment_id, "name": "slow", "description": "answers are slow"})["issue"][
        "issue_id"
    ]
    label_schema = f"ls-{uuid.uuid4().hex[:8]}"
    schema_id = v3(
        "POST",
        "label-schemas/create",
        json={
            "experiment_id": experiment_id,
            "name": label_schema,
            "type": "FEEDBACK",
            "input": {"pass_fail": {"positive_label": "pass", "negative_label": "fail"}},
        },
    )["label_schema"]["schema_id"]
    return dict(
        trace_id=trace_id,
        assessment_id=assessment["assessment_id"],
        dataset_id=dataset_id,
        dataset_record_id=record_id,
        scorer=scorer,
        issue_id=issue_id,
        label_schema_id=schema_id,
        label_schema=label_schema,
    )


def request_for(operation: str, t: Target, who: str) -> tuple[str, str, dict]:
    """(method, path, requests kwargs) of a valid call of `operation` on target `t` by `who`."""
    unique = f"{who}-{uuid.uuid4().hex[:8]}"
    art = f"api/2.0/mlflow-artifacts/artifacts/{t.artifact_path}"
    mpu = {"path": f"{t.artifact_path}/big.bin", "num_parts": 1}
    version = {"name": t.model, "version": "1"}
    lm = f"api/2.0/mlflow/logged-models/{t.logged_model_id}"
    v3 = "@api/3.0/mlflow"
    tr2, tr3 = f"traces/{t.trace_id}", f"{v3}/traces/{t.trace_id}"
    ds = f"{v3}/datasets/{t.dataset_id}"
    locations = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": t.experiment_id}}]
    scorer = {"experiment_id": t.experiment_id, "name": t.scorer}
    gateway = f"{v3}/gateway"
    queue = {"queue_id": "q-1"}
    new_trace = uuid.uuid4().hex
    # fmt: skip below: one operation a line (method, path, request), read down like a table.
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
        # MLflow 3 tracing
        "LogSpans": ("POST", "@v1/traces", {"data": json.dumps(otlp_export(new_trace)),
                                            "headers": {"x-mlflow-experiment-id": t.experiment_id, "Content-Type": "application/json"}}),
        "StartTraceV3": ("POST", f"{v3}/traces", {"json": trace_info(f"tr-{new_trace}", t.experiment_id)}),
        "StartTrace": ("POST", "traces", {"json": {"experiment_id": t.experiment_id, "timestamp_ms": 1, "request_metadata": [], "tags": []}}),
        "EndTrace": ("PATCH", tr2, {"json": {"timestamp_ms": 2, "status": "OK"}}),
        "GetTraceInfo": ("GET", f"{tr2}/info", {}),
        "GetTraceInfoV3": ("GET", tr3, {}),
        "GetTrace": ("GET", f"{v3}/traces/get", {"params": {"trace_id": t.trace_id, "allow_partial": "true"}}),
        "GetTraceArtifact": ("GET", "@ajax-api/3.0/mlflow/get-trace-artifact", {"params": {"request_id": t.trace_id}}),
        "BatchGetTraces": ("GET", f"{v3}/traces/batchGet", {"params": {"trace_ids": [t.trace_id]}}),
        "BatchGetTraceInfos": ("POST", f"{v3}/traces/batchGetInfos", {"json": {"trace_ids": [t.trace_id]}}),
        "SearchTraces": ("GET", "traces", {"params": {"experiment_ids": [t.experiment_id]}}),
        "SearchTracesV3": ("POST", f"{v3}/traces/search", {"json": {"locations": locations}}),
        "SetTraceTag": ("PATCH", f"{tr2}/tags", {"json": {"key": "k", "value": who}}),
        "SetTraceTagV3": ("PATCH", f"{tr3}/tags", {"json": {"key": "k", "value": who}}),
        "DeleteTraceTag": ("DELETE", f"{tr2}/tags", {"json": {"key": "t"}}),
        "DeleteTraceTagV3": ("DELETE", f"{tr3}/tags", {"json": {"key": "t"}}),
        "DeleteTraces": ("POST", "traces/delete-traces", {"json": {"experiment_id": t.experiment_id, "request_ids": [t.trace_id]}}),
        "DeleteTracesV3": ("POST", f"{v3}/traces/delete-traces", {"json": {"experiment_id": t.experiment_id, "request_ids": [t.trace_id]}}),
        "LinkTracesToRun": ("POST", "traces/link-to-run", {"json": {"trace_ids": [t.trace_id], "run_id": t.run_id}}),
        "LinkPromptsToTrace": ("POST", "traces/link-prompts", {"json": {"trace_id": t.trace_id, "prompt_versions": [{"name": t.model, "version": "1"}]}}),
        "QueryTraceMetrics": ("POST", f"{v3}/traces/metrics", {"json": {"experiment_ids": [t.experiment_id], "view_type": "TRACES",
                                                                        "metric_name": "trace_count", "aggregations": [{"aggregation_type": "COUNT"}]}}),
        "CalculateTraceFilterCorrelation": ("POST", f"{v3}/traces/calculate-filter-correlation", {"json": {
            "experiment_ids": [t.experiment_id], "filter_string1": "trace.status = 'OK'", "filter_string2": "trace.status = 'ERROR'"}}),
        # assessments
        "CreateAssessment": ("POST", f"{tr3}/assessments", {"json": {"assessment": {
            "assessment_name": f"a-{unique}", "trace_id": t.trace_id, "source": {"source_type": "HUMAN", "source_id": who}, "feedback": {"value": 1}}}}),
        "GetAssessmentRequest": ("GET", f"{tr3}/assessments/{t.assessment_id}", {}),
        "UpdateAssessment": ("PATCH", f"{tr3}/assessments/{t.assessment_id}", {"json": {"assessment": {"rationale": who}, "update_mask": "rationale"}}),
        "DeleteAssessment": ("DELETE", f"{tr3}/assessments/{t.assessment_id}", {}),
        # evaluation datasets
        "CreateDataset": ("POST", f"{v3}/datasets/create", {"json": {"name": f"ds-{unique}", "experiment_ids": [t.experiment_id]}}),
        "GetDataset": ("GET", ds, {}),
        "DeleteDataset": ("DELETE", ds, {}),
        "SearchEvaluationDatasets": ("POST", f"{v3}/datasets/search", {"json": {"experiment_ids": [t.experiment_id]}}),
        "SetDatasetTags": ("PATCH", f"{ds}/tags", {"json": {"tags": json.dumps({"k": who})}}),
        "DeleteDatasetTag": ("DELETE", f"{ds}/tags/t", {}),
        "UpsertDatasetRecords": ("POST", f"{ds}/records", {"json": {"records": json.dumps([{"inputs": {"q": unique}}])}}),
        "GetDatasetRecords": ("GET", f"{ds}/records", {}),
        "DeleteDatasetRecords": ("DELETE", f"{ds}/records", {"json": {"dataset_record_ids": [t.dataset_record_id]}}),
        "GetDatasetExperimentIds": ("GET", f"{ds}/experiment-ids", {}),
        "AddDatasetToExperiments": ("POST", f"{ds}/add-experiments", {"json": {"experiment_ids": [t.deleted_experiment_id]}}),
        "RemoveDatasetFromExperiments": ("POST", f"{ds}/remove-experiments", {"json": {"experiment_ids": [t.other_experiment_id]}}),
        # scorers
        "RegisterScorer": ("POST", f"{v3}/scorers/register", {"json": {**scorer, "serialized_scorer": SCORER}}),
        "GetScorer": ("GET", f"{v3}/scorers/get", {"params": scorer}),
        "ListScorerVersions": ("GET", f"{v3}/scorers/versions", {"params": scorer}),
        "DeleteScorer": ("DELETE", f"{v3}/scorers/delete", {"json": scorer}),
        "ListScorers": ("GET", f"{v3}/scorers/list", {"params": {"experiment_id": t.experiment_id}}),
        # issues and label schemas
        "CreateIssue": ("POST", f"{v3}/issues", {"json": {"experiment_id": t.experiment_id, "name": f"i-{unique}", "description": "d"}}),
        "GetIssue": ("GET", f"{v3}/issues/{t.issue_id}", {}),
        "UpdateIssue": ("PATCH", f"{v3}/issues/{t.issue_id}", {"json": {"issue_id": t.issue_id, "description": who}}),
        "SearchIssues": ("POST", f"{v3}/issues/search", {"json": {"experiment_id": t.experiment_id}}),
        "CreateLabelSchema": ("POST", f"{v3}/label-schemas/create", {"json": {"experiment_id": t.experiment_id, "name": f"ls-{unique}",
                                                                               "type": "FEEDBACK", "input": {"pass_fail": {"positive_label": "pass", "negative_label": "fail"}}}}),
        "GetLabelSchema": ("GET", f"{v3}/label-schemas/get", {"params": {"schema_id": t.label_schema_id}}),
        "GetLabelSchemaByName": ("GET", f"{v3}/label-schemas/get-by-name", {"params": {"experiment_id": t.experiment_id, "name": t.label_schema}}),
        "ListLabelSchemas": ("GET", f"{v3}/label-schemas/list", {"params": {"experiment_id": t.experiment_id}}),
        "UpdateLabelSchema": ("PATCH", f"{v3}/label-schemas/update", {"json": {"schema_id": t.label_schema_id, "instruction": who}}),
        "DeleteLabelSchema": ("DELETE", f"{v3}/label-schemas/delete", {"json": {"schema_id": t.label_schema_id}}),
        # presigned URLs
        "CreatePresignedUploadUrl": ("POST", "artifacts/presigned-upload-url", {"json": {"run_id": t.run_id, "path": f"up-{unique}.txt"}}),
        "CreatePresignedDownloadUrl": ("POST", "artifacts/presigned-download-url", {"json": {"run_id": t.run_id, "path": "a.txt"}}),
        "GetPresignedDownloadUrl": ("GET", f"@api/2.0/mlflow-artifacts/presigned/{t.artifact_path}/a.txt", {}),
        # organisation admins only: the AI gateway
        "CreateGatewaySecret": ("POST", f"{gateway}/secrets/create", {"json": {"secret_name": f"s-{unique}", "secret_value": {"api_key": "k"},
                                                                                "provider": "openai"}}),
        "GetGatewaySecretInfo": ("GET", f"{gateway}/secrets/get", {"params": {"secret_id": "s-1"}}),
        "UpdateGatewaySecret": ("POST", f"{gateway}/secrets/update", {"json": {"secret_id": "s-1"}}),
        "DeleteGatewaySecret": ("DELETE", f"{gateway}/secrets/delete", {"json": {"secret_id": "s-1"}}),
        "ListGatewaySecretInfos": ("GET", f"{gateway}/secrets/list", {}),
        "CreateGatewayEndpoint": ("POST", f"{gateway}/endpoints/create", {"json": {"name": f"e-{unique}"}}),
        "GetGatewayEndpoint": ("GET", f"{gateway}/endpoints/get", {"params": {"endpoint_id": "e-1"}}),
        "UpdateGatewayEndpoint": ("POST", f"{gateway}/endpoints/update", {"json": {"endpoint_id": "e-1"}}),
        "DeleteGatewayEndpoint": ("DELETE", f"{gateway}/endpoints/delete", {"json": {"endpoint_id": "e-1"}}),
        "ListGatewayEndpoints": ("GET", f"{gateway}/endpoints/list", {}),
        "CreateGatewayModelDefinition": ("POST", f"{gateway}/model-definitions/create", {"json": {"name": f"m-{unique}"}}),
        "GetGatewayModelDefinition": ("GET", f"{gateway}/model-definitions/get", {"params": {"model_definition_id": "m-1"}}),
        "ListGatewayModelDefinitions": ("GET", f"{gateway}/model-definitions/list", {}),
        "UpdateGatewayModelDefinition": ("POST", f"{gateway}/model-definitions/update", {"json": {"model_definition_id": "m-1"}}),
        "DeleteGatewayModelDefinition": ("DELETE", f"{gateway}/model-definitions/delete", {"json": {"model_definition_id": "m-1"}}),
        "AttachModelToGatewayEndpoint": ("POST", f"{gateway}/endpoints/models/attach", {"json": {"endpoint_id": "e-1"}}),
        "DetachModelFromGatewayEndpoint": ("POST", f"{gateway}/endpoints/models/detach", {"json": {"endpoint_id": "e-1"}}),
        "CreateGatewayEndpointBinding": ("POST", f"{gateway}/endpoints/bindings/create", {"json": {"endpoint_id": "e-1"}}),
        "DeleteGatewayEndpointBinding": ("DELETE", f"{gateway}/endpoints/bindings/delete", {"json": {"endpoint_id": "e-1"}}),
        "ListGatewayEndpointBindings": ("GET", f"{gateway}/endpoints/bindings/list", {}),
        "SetGatewayEndpointTag": ("POST", f"{gateway}/endpoints/set-tag", {"json": {"endpoint_id": "e-1", "key": "k", "value": who}}),
        "DeleteGatewayEndpointTag": ("DELETE", f"{gateway}/endpoints/delete-tag", {"json": {"endpoint_id": "e-1", "key": "k"}}),
        "CreateGatewayBudgetPolicy": ("POST", f"{gateway}/budgets/create", {"json": {}}),
        "GetGatewayBudgetPolicy": ("GET", f"{gateway}/budgets/get", {"params": {"budget_policy_id": "b-1"}}),
        "UpdateGatewayBudgetPolicy": ("POST", f"{gateway}/budgets/update", {"json": {"budget_policy_id": "b-1"}}),
        "DeleteGatewayBudgetPolicy": ("DELETE", f"{gateway}/budgets/delete", {"json": {"budget_policy_id": "b-1"}}),
        "ListGatewayBudgetPolicies": ("GET", f"{gateway}/budgets/list", {}),
        "ListGatewayBudgetWindows": ("GET", f"{gateway}/budgets/windows", {}),
        "CreateGatewayGuardrail": ("POST", f"{gateway}/guardrails/create", {"json": {"name": f"g-{unique}"}}),
        "GetGatewayGuardrail": ("GET", f"{gateway}/guardrails/get", {"params": {"guardrail_id": "g-1"}}),
        "DeleteGatewayGuardrail": ("DELETE", f"{gateway}/guardrails/delete", {"json": {"guardrail_id": "g-1"}}),
        "ListGatewayGuardrails": ("GET", f"{gateway}/guardrails/list", {}),
        "AddGuardrailToEndpoint": ("POST", f"{gateway}/guardrails/add-to-endpoint", {"json": {"guardrail_id": "g-1", "endpoint_id": "e-1"}}),
        "RemoveGuardrailFromEndpoint": ("DELETE", f"{gateway}/guardrails/remove-from-endpoint", {"json": {"guardrail_id": "g-1", "endpoint_id": "e-1"}}),
        "ListEndpointGuardrailConfigs": ("GET", f"{gateway}/guardrails/list-for-endpoint", {"params": {"endpoint_id": "e-1"}}),
        "UpdateEndpointGuardrailConfig": ("PATCH", f"{gateway}/guardrails/update-config", {"json": {"guardrail_id": "g-1", "endpoint_id": "e-1"}}),
        # organisation admins only: review queues
        "CreateReviewQueue": ("POST", f"{v3}/review-queues/create", {"json": {"experiment_id": t.experiment_id, "name": f"q-{unique}",
                                                                              "queue_type": "CUSTOM"}}),
        "GetOrCreateUserQueue": ("POST", f"{v3}/review-queues/get-or-create-user", {"json": {"experiment_id": t.experiment_id, "user": who}}),
        "GetReviewQueue": ("GET", f"{v3}/review-queues/get", {"params": queue}),
        "GetReviewQueueByName": ("GET", f"{v3}/review-queues/get-by-name", {"params": {"experiment_id": t.experiment_id, "name": "q"}}),
        "ListReviewQueues": ("GET", f"{v3}/review-queues/list", {"params": {"experiment_id": t.experiment_id}}),
        "UpdateReviewQueue": ("POST", f"{v3}/review-queues/update", {"json": {**queue, "name": who}}),
        "DeleteReviewQueue": ("POST", f"{v3}/review-queues/delete", {"json": queue}),
        "AddItemsToReviewQueue": ("POST", f"{v3}/review-queues/items/add", {"json": {**queue, "item_ids": [t.trace_id]}}),
        "RemoveItemsFromReviewQueue": ("POST", f"{v3}/review-queues/items/remove", {"json": {**queue, "item_ids": [t.trace_id]}}),
        "ListReviewQueueItems": ("GET", f"{v3}/review-queues/items/list", {"params": queue}),
        "SetReviewQueueItemStatus": ("POST", f"{v3}/review-queues/items/set-status", {"json": {**queue, "item_id": "i-1", "status": "COMPLETED"}}),
        # organisation admins only: prompt optimization jobs
        "CreatePromptOptimizationJob": ("POST", f"{v3}/prompt-optimization/jobs", {"json": {
            "experiment_id": t.experiment_id, "source_prompt_uri": f"prompts:/{t.model}/1", "config": {"dataset_id": t.dataset_id}}}),
        "GetPromptOptimizationJob": ("GET", f"{v3}/prompt-optimization/jobs/j-1", {}),
        "SearchPromptOptimizationJobs": ("POST", f"{v3}/prompt-optimization/jobs/search", {"json": {"experiment_id": t.experiment_id}}),
        "CancelPromptOptimizationJob": ("POST", f"{v3}/prompt-optimization/jobs/j-1/cancel", {}),
        "DeletePromptOptimizationJob": ("DELETE", f"{v3}/prompt-optimization/jobs/j-1", {}),
        # refused to everyone, organisation admins included
        "CreateWorkspace": ("POST", f"{v3}/workspaces", {"json": {"name": f"ws-{uuid.uuid4().hex[:8]}"}}),
        "UpdateWorkspace": ("PATCH", f"{v3}/workspaces/acme", {"json": {"description": who}}),
        "DeleteWorkspace": ("DELETE", f"{v3}/workspaces/globex", {}),
        "SearchUnifiedTraces": ("GET", "unified-traces", {"params": {"experiment_ids": [t.experiment_id]}}),
        "GetOnlineTraceDetails": ("GET", "get-online-trace-details", {"params": {"trace_id": t.trace_id}}),
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


# Models are not readable organisation-wide here: the matrix's "other group, same org" holds no role.
matrix_server = company_server_on_each_backend("matrix", config={"defaults": {"registered_models_org_readable": False}})


def test_every_operation_the_policy_names_has_a_case():
    assert set(POLICY.roles) <= set(KINDS)
    target = Target("1", "2", "n", "r", "d", "workspaces/acme/1/r/artifacts", "m-1", "m")
    for operation in KINDS:
        request_for(operation, target, "x")  # raises KeyError for an operation without a case
    for operation in REFUSED:
        request_for(operation, target, "x")


def test_matrix(matrix_server, idp, other_issuer):
    server = matrix_server
    expired_from = time.monotonic()
    credentials = {
        "creator": user_token(idp, "alice"),
        "group editor": user_token(idp, "bob"),
        "group reader": user_token(idp, "carol"),
        "other group, same org": user_token(idp, "erin"),
        "other org": user_token(idp, "dave"),
        "anonymous": None,
        "expired token": user_token(idp, "alice", SHORT_CLIENT),
        "token from another issuer": user_token(other_issuer, "alice"),
    }
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


def test_refused_operations_are_refused_even_to_org_admins(matrix_server, idp):
    server = matrix_server
    frank, alice = user_token(idp, "frank"), user_token(idp, "alice")  # frank is an acme admin
    target = make_target(server, alice)
    for operation in sorted(REFUSED):
        for who, token in (("admin", frank), ("creator", alice)):
            method, path, kwargs = request_for(operation, target, who)
            response = server.call(method, path, token, **kwargs)
            assert response.status_code == 403, f"{operation} as {who}: {response.status_code} {response.text[:200]}"
            assert REFUSED[operation] in response.json()["message"]  # the reason is given
    assert ok_names(server.call("GET", "api/3.0/mlflow/workspaces", frank)) == ["acme"]  # nothing was created


def ok_names(response: requests.Response) -> list[str]:
    return [w["name"] for w in _ok(response)["workspaces"]]


def test_org_admins_manage_organisation_infrastructure(matrix_server, idp):
    """The AI gateway, review queues and prompt optimization are the organisation admins'."""
    server = matrix_server
    frank, alice = user_token(idp, "frank"), user_token(idp, "alice")
    experiment_id = _ok(server.mlflow("POST", "experiments/create", alice, json={"name": f"infra-{uuid.uuid4().hex[:8]}"}))["experiment_id"]
    for method, path, kwargs in (
        ("GET", "api/3.0/mlflow/gateway/endpoints/list", {}),
        ("GET", "api/3.0/mlflow/gateway/secrets/list", {}),
        ("GET", "api/3.0/mlflow/gateway/budgets/list", {}),
        ("GET", "api/3.0/mlflow/review-queues/list", {"params": {"experiment_id": experiment_id}}),
    ):
        assert server.call(method, path, frank, **kwargs).status_code == 200, path
        refused = server.call(method, path, alice, **kwargs)
        assert refused.status_code == 403 and "organisation admins" in refused.text, path


def test_trace_and_genai_views_stay_private(matrix_server, idp):
    """Searches over experiments the caller cannot read leak nothing; batches check every id; a
    write cannot reach a trace of another experiment by reusing its id."""
    server = matrix_server
    alice, erin, dave = (user_token(idp, u) for u in ("alice", "erin", "dave"))
    v3 = lambda method, path, token, **kwargs: server.call(method, f"api/3.0/mlflow/{path}", token, **kwargs)  # noqa: E731
    suffix = uuid.uuid4().hex[:8]
    hidden = _ok(server.mlflow("POST", "experiments/create", alice, json={"name": f"hidden-{suffix}"}))["experiment_id"]
    shared = _ok(server.mlflow("POST", "experiments/create", alice, json={"name": f"shared-{suffix}"}))["experiment_id"]
    _ok(
        server.infinstor(
            "POST",
            "permissions",
            alice,
            json={"resource_type": "experiment", "resource_id": shared, "principal_type": "user", "principal": "erin", "role": "editor"},
        )
    )
    own = _ok(server.mlflow("POST", "experiments/create", erin, json={"name": f"erin-{suffix}"}))["experiment_id"]
    hidden_trace, own_trace = make_trace(server, alice, hidden), make_trace(server, erin, own)

    # Trace searches keep the experiments erin may read, in every spelling MLflow accepts.
    location = lambda e: {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}}  # noqa: E731
    found = _ok(v3("POST", "traces/search", erin, json={"locations": [location(hidden), location(own)]}))
    assert [t["trace_id"] for t in found["traces"]] == [own_trace]
    camel = _ok(v3("POST", "traces/search", erin, json={"locations": [{"mlflowExperiment": {"experimentId": hidden}}]}))
    assert camel == {}
    legacy = _ok(server.mlflow("GET", "traces", erin, params={"experiment_ids": [hidden, own]}))
    assert [t["request_id"] for t in legacy["traces"]] == [own_trace]
    assert _ok(server.mlflow("GET", "traces", dave, params={"experiment_ids": [hidden]})) == {}
    metrics = {"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [{"aggregation_type": "COUNT"}]}
    counted = _ok(v3("POST", "traces/metrics", erin, json={"experiment_ids": [hidden, own], **metrics}))
    assert [p["values"]["COUNT"] for p in counted["data_points"]] == [1.0]  # only erin's trace counts
    assert _ok(v3("POST", "traces/metrics", erin, json={"experiment_ids": [hidden], **metrics})) == {}

    # Batches check every id; single reads and writes of the hidden trace do not exist for erin.
    assert v3("POST", "traces/batchGetInfos", erin, json={"trace_ids": [own_trace, hidden_trace]}).status_code == 404
    assert len(_ok(v3("POST", "traces/batchGetInfos", erin, json={"trace_ids": [own_trace]}))["trace_infos"]) == 1
    assert v3("GET", "traces/batchGet", erin, params={"trace_ids": [own_trace, hidden_trace]}).status_code == 404
    assert v3("GET", "traces/get", erin, params={"trace_id": hidden_trace}).status_code == 404
    assert server.call("GET", "ajax-api/3.0/mlflow/get-trace-artifact", erin, params={"request_id": hidden_trace}).status_code == 404
    assert (
        v3(
            "POST",
            f"traces/{hidden_trace}/assessments",
            erin,
            json={
                "assessment": {"assessment_name": "x", "source": {"source_type": "HUMAN", "source_id": "erin"}, "feedback": {"value": 1}}
            },
        ).status_code
        == 404
    )
    link = {
        "trace_ids": [own_trace, hidden_trace],
        "run_id": _ok(server.mlflow("POST", "runs/create", erin, json={"experiment_id": own}))["run"]["info"]["run_id"],
    }
    assert server.mlflow("POST", "traces/link-to-run", erin, json=link).status_code == 404
    # Reusing the hidden trace's id from erin's own experiment would merge into it: refused.
    assert v3("POST", "traces", erin, json=trace_info(hidden_trace, own)).status_code == 404
    export = json.dumps(otlp_export(hidden_trace[len("tr-") :], name="intruder"))
    headers = {"x-mlflow-experiment-id": own, "Content-Type": "application/json"}
    assert server.call("POST", "v1/traces", erin, data=export, headers=headers).status_code == 404
    spans = _ok(v3("GET", "traces/get", alice, params={"trace_id": hidden_trace, "allow_partial": "true"}))["trace"]["spans"]
    assert [s["name"] for s in spans] == ["root"]  # alice's trace is as she logged it
    assert (
        _ok(v3("GET", f"traces/{hidden_trace}", alice))["trace"]["trace_info"]["trace_location"]["mlflow_experiment"]["experiment_id"]
        == hidden
    )

    # Evaluation datasets: searched over what erin reads (also without naming experiments); one
    # linked to a hidden and a shared experiment may be read by erin but changed only by alice.
    create = (  # noqa: E731
        lambda token, *experiments: _ok(
            v3("POST", "datasets/create", token, json={"name": f"ds-{uuid.uuid4().hex[:8]}", "experiment_ids": list(experiments)})
        )["dataset"]["dataset_id"]
    )
    hidden_dataset, both_dataset, own_dataset = create(alice, hidden), create(alice, hidden, shared), create(erin, own)
    searched = {d["dataset_id"] for d in _ok(v3("POST", "datasets/search", erin, json={})).get("datasets", [])}
    assert searched == {both_dataset, own_dataset}
    assert _ok(v3("POST", "datasets/search", dave, json={})) == {}
    assert v3("GET", f"datasets/{hidden_dataset}", erin).status_code == 404
    _ok(v3("GET", f"datasets/{both_dataset}", erin))
    assert v3("PATCH", f"datasets/{both_dataset}/tags", erin, json={"tags": json.dumps({"k": "v"})}).status_code == 403
    _ok(v3("PATCH", f"datasets/{both_dataset}/tags", alice, json={"tags": json.dumps({"k": "v"})}))
    assert v3("POST", f"datasets/{own_dataset}/add-experiments", erin, json={"experiment_ids": [hidden]}).status_code == 404
    assert v3("POST", "datasets/create", erin, json={"name": f"ds-{suffix}"}).status_code == 400  # it must belong somewhere

    # Scorers: listed only from experiments erin may read.
    scorer = lambda token, experiment_id, name: _ok(  # noqa: E731
        v3("POST", "scorers/register", token, json={"experiment_id": experiment_id, "name": name, "serialized_scorer": SCORER})
    )
    scorer(alice, hidden, "hidden-judge")
    scorer(erin, own, "own-judge")
    names = lambda response: sorted(s["scorer_name"] for s in _ok(response).get("scorers", []))  # noqa: E731
    assert "hidden-judge" not in names(v3("GET", "scorers/list", erin))
    assert "own-judge" in names(v3("GET", "scorers/list", erin))
    assert names(v3("GET", "scorers/list", erin, params={"experiment_ids": [hidden, own]})) == ["own-judge"]
    assert names(v3("GET", "scorers/list", erin, params={"experiment_id": hidden})) == []
    assert v3("GET", "scorers/get", erin, params={"experiment_id": hidden, "name": "hidden-judge"}).status_code == 404

    # An issue is raised by the caller, whoever the client names.
    issue = _ok(v3("POST", "issues", erin, json={"experiment_id": own, "name": "slow", "description": "d", "created_by": "mallory"}))
    assert issue["issue"]["created_by"] == "erin"
    assert v3("POST", "issues", erin, json={"experiment_id": hidden, "name": "x", "description": "d"}).status_code == 404


# -- MLflow's web UI: GraphQL and the UI's own artifact and metric reads ---------------------------
# Each GraphQL root field MLflow serves mirrors one REST operation and is authorized with its
# policy: (REST operation, GraphQL document, its input). Searches (member operations) answer to
# everyone but hold only what the caller may read.
GRAPHQL_FIELDS = {
    "mlflowGetExperiment": (
        "GetExperiment",
        "query Q($i: MlflowGetExperimentInput!) { mlflowGetExperiment(input: $i) { experiment { experimentId name } } }",
        lambda t: {"experimentId": t.experiment_id},
    ),
    "mlflowGetRun": (
        "GetRun",
        "query Q($i: MlflowGetRunInput!) { mlflowGetRun(input: $i) { run { info { runUuid experimentId } "
        "data { metrics { key value } } } } }",
        lambda t: {"runId": t.run_id},
    ),
    "mlflowListArtifacts": (
        "ListArtifacts",
        "query Q($i: MlflowListArtifactsInput!) { mlflowListArtifacts(input: $i) { rootUri files { path isDir } } }",
        lambda t: {"runId": t.run_id},
    ),
    "mlflowGetMetricHistoryBulkInterval": (
        "GetMetricHistoryBulkInterval",
        "query Q($i: MlflowGetMetricHistoryBulkIntervalInput!) { "
        "mlflowGetMetricHistoryBulkInterval(input: $i) { metrics { runId key value step } } }",
        lambda t: {"runIds": [t.run_id], "metricKey": "m"},
    ),
    "mlflowSearchRuns": (
        "SearchRuns",
        "query Q($i: MlflowSearchRunsInput!) { mlflowSearchRuns(input: $i) { runs { info { runUuid } } } }",
        lambda t: {"experimentIds": [t.experiment_id]},
    ),
    "mlflowSearchDatasets": (
        "SearchDatasets",
        "mutation M($i: MlflowSearchDatasetsInput!) { mlflowSearchDatasets(input: $i) { datasetSummaries { experimentId name } } }",
        lambda t: {"experimentIds": [t.experiment_id]},
    ),
    "mlflowSearchModelVersions": (
        "SearchModelVersions",
        "query Q($i: MlflowSearchModelVersionsInput!) { mlflowSearchModelVersions(input: $i) { modelVersions { name version runId } } }",
        lambda t: {"filter": f"name = '{t.model}'"},
    ),
}
# The search runs root field exists as a query (what the web UI sends) and as a mutation.
GRAPHQL_SEARCH_RUNS_MUTATION = "mutation M($i: MlflowSearchRunsInput!) { mlflowSearchRuns(input: $i) { runs { info { runUuid } } } }"

# Reads the web UI makes outside MLflow's REST API: (REST operation whose policy applies, method, path, kwargs).
UI_READS = {
    "get-artifact": ("DownloadArtifact", "GET", "get-artifact", lambda t: {"params": {"run_id": t.run_id, "path": "a.txt"}}),
    "model-versions/get-artifact": (
        "DownloadArtifact",
        "GET",
        "model-versions/get-artifact",
        lambda t: {"params": {"name": t.model, "version": "1", "path": "MLmodel"}},
    ),
    "logged-models/artifacts/files": ("DownloadArtifact", "GET", None, lambda t: {"params": {"artifact_file_path": "MLmodel"}}),
    "metrics/get-history-bulk": (
        "GetMetricHistory",
        "GET",
        "ajax-api/2.0/mlflow/metrics/get-history-bulk",
        lambda t: {"params": {"run_id": [t.run_id], "metric_key": "m"}},
    ),
}


def graphql(server: CompanyServer, token: str | None, document: str, variables: dict | None = None) -> requests.Response:
    return server.call("POST", "graphql", token, json={"query": document, "variables": variables or {}})


def graphql_outcome(response: requests.Response, field: str, target_id: str, search: bool) -> str:
    """'allowed', 'not found', 'forbidden', 'unauthenticated' or, for a search, 'empty' (nothing of
    the target in the answer)."""
    if response.status_code != 200:
        return outcome(response, field)
    body = response.json()
    errors = body.get("errors") or []
    if errors:
        message = errors[0]
        if "not found" in message or "No Experiment with id" in message:
            return "not found"
        if "needs the" in message or "organisation admins" in message:
            return "forbidden"
        return f"error: {message[:200]}"
    data = (body.get("data") or {}).get(field)
    if data is None:
        return "null"
    if search and target_id not in response.text:
        return "empty"
    return "allowed"


def expected_graphql(operation: str, rank: int | None) -> str:
    want = expected(operation, rank)
    if want == "allowed" and POLICY.role_for(operation) == "member" and rank == 0:
        return "empty"  # a private view: the search runs, over nothing the caller may read
    return want


def test_web_ui_matrix(matrix_server, idp, other_issuer):
    """GraphQL root fields and the UI's own reads x every kind of caller, expected from the policy
    of the REST operation each one mirrors."""
    server = matrix_server
    credentials = {
        "creator": user_token(idp, "alice"),
        "group editor": user_token(idp, "bob"),
        "group reader": user_token(idp, "carol"),
        "other group, same org": user_token(idp, "erin"),
        "other org": user_token(idp, "dave"),
        "anonymous": None,
        "token from another issuer": user_token(other_issuer, "alice"),
    }
    t = make_target(server, credentials["creator"])
    dataset = f"ds-{uuid.uuid4().hex[:8]}"
    _ok(
        server.mlflow(
            "POST",
            "runs/log-inputs",
            credentials["creator"],
            json={"run_id": t.run_id, "datasets": [{"dataset": {"name": dataset, "digest": "d1", "source_type": "local", "source": "{}"}}]},
        )
    )
    logged_model_files = f"ajax-api/2.0/mlflow/logged-models/{t.logged_model_id}/artifacts/files"
    failures, cells = [], 0
    for field, (operation, document, variables) in sorted(GRAPHQL_FIELDS.items()):
        search = POLICY.role_for(operation) == "member"
        target_id = {"mlflowSearchModelVersions": t.model, "mlflowSearchDatasets": dataset}.get(field, t.run_id)
        documents = [document] + ([GRAPHQL_SEARCH_RUNS_MUTATION] if field == "mlflowSearchRuns" else [])
        for principal, token in credentials.items():
            rank = PRINCIPALS[principal][1]
            for doc in documents:
                response = graphql(server, token, doc, {"i": variables(t)})
                got, want = graphql_outcome(response, field, target_id, search), expected_graphql(operation, rank)
                cells += 1
                if got != want:
                    failures.append(f"GraphQL {field} as {principal}: expected {want}, got {got} ({response.text[:200]})")
    for name, (operation, method, path, kwargs) in sorted(UI_READS.items()):
        for principal, token in credentials.items():
            response = server.call(method, path or logged_model_files, token, **kwargs(t))
            got, want = outcome(response, operation), expected(operation, PRINCIPALS[principal][1])
            cells += 1
            if got != want:
                failures.append(f"{name} as {principal}: expected {want}, got {got}")
    assert not failures, f"{len(failures)} of {cells} cells differ from the policy:\n" + "\n".join(failures)


def test_graphql_nested_fields_and_foreign_ids_leak_nothing(matrix_server, idp):
    """A run read through a shared model version hides its experiment (but its id) and the versions
    of models the caller cannot read; another organisation's ids answer exactly as ids that do not exist."""
    server = matrix_server
    alice, carol, dave, frank = (user_token(idp, u) for u in ("alice", "carol", "dave", "frank"))
    suffix = uuid.uuid4().hex[:8]
    experiment = _ok(server.mlflow("POST", "experiments/create", alice, json={"name": f"secret-exp-{suffix}"}))["experiment_id"]
    run = _ok(server.mlflow("POST", "runs/create", alice, json={"experiment_id": experiment}))["run"]["info"]
    shared, hidden = f"shared-model-{suffix}", f"hidden-model-{suffix}"
    for name in (shared, hidden):
        _ok(server.mlflow("POST", "registered-models/create", alice, json={"name": name}))
        _ok(
            server.mlflow(
                "POST",
                "model-versions/create",
                alice,
                json={"name": name, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]},
            )
        )
    _ok(
        server.infinstor(
            "POST",
            "permissions",
            alice,
            json={
                "resource_type": "registered_model",
                "resource_id": shared,
                "principal_type": "user",
                "principal": "carol",
                "role": "reader",
            },
        )
    )
    get_run = (
        "query Q($i: MlflowGetRunInput!) { mlflowGetRun(input: $i) { run { info { runUuid experimentId } "
        "experiment { experimentId name } modelVersions { name version } } } }"
    )

    # carol reads the run through the version of the shared model: not its experiment, not the hidden model.
    answer = _ok(graphql(server, carol, get_run, {"i": {"runId": run["run_id"]}}))
    assert answer.get("errors") is None, answer
    found = answer["data"]["mlflowGetRun"]["run"]
    # (its experiment's id alone, already in the run: MLflow's run page needs an experiment to render)
    assert found["info"]["runUuid"] == run["run_id"] and found["experiment"] == {"experimentId": experiment, "name": ""}
    assert [v["name"] for v in found["modelVersions"]] == [shared]
    assert f"secret-exp-{suffix}" not in json.dumps(answer) and hidden not in json.dumps(answer)
    versions = _ok(graphql(server, carol, GRAPHQL_FIELDS["mlflowSearchModelVersions"][1], {"i": {"filter": f"run_id = '{run['run_id']}'"}}))
    assert [v["name"] for v in versions["data"]["mlflowSearchModelVersions"]["modelVersions"]] == [shared]
    assert _ok(graphql(server, carol, GRAPHQL_FIELDS["mlflowGetExperiment"][1], {"i": {"experimentId": experiment}}))["errors"]
    # The creator and an organisation admin see all of it.
    for token in (alice, frank):
        full = _ok(graphql(server, token, get_run, {"i": {"runId": run["run_id"]}}))["data"]["mlflowGetRun"]["run"]
        assert full["experiment"]["name"] == f"secret-exp-{suffix}"
        assert sorted(v["name"] for v in full["modelVersions"]) == sorted([shared, hidden])

    # Another organisation: alice's ids answer word for word as ids that do not exist, and no name appears.
    missing_run, missing_experiment = uuid.uuid4().hex, "987654321"
    for field, real, missing in (
        ("mlflowGetRun", {"runId": run["run_id"]}, {"runId": missing_run}),
        ("mlflowGetExperiment", {"experimentId": experiment}, {"experimentId": missing_experiment}),
        ("mlflowListArtifacts", {"runId": run["run_id"]}, {"runId": missing_run}),
    ):
        document = get_run if field == "mlflowGetRun" else GRAPHQL_FIELDS[field][1]
        foreign, absent = _ok(graphql(server, dave, document, {"i": real})), _ok(graphql(server, alice, document, {"i": missing}))
        ids = re.compile(rf"\b({'|'.join((run['run_id'], missing_run, experiment, missing_experiment))})\b")
        assert ids.sub("ID", json.dumps(foreign)) == ids.sub("ID", json.dumps(absent)), (foreign, absent)
        assert "secret" not in json.dumps(foreign) and "model-" not in json.dumps(foreign)
    searched = _ok(graphql(server, dave, GRAPHQL_FIELDS["mlflowSearchRuns"][1], {"i": {"experimentIds": [experiment]}}))
    assert searched["data"]["mlflowSearchRuns"]["runs"] in (None, [])
    everything = _ok(graphql(server, dave, GRAPHQL_FIELDS["mlflowSearchModelVersions"][1], {"i": {"filter": ""}}))
    assert shared not in json.dumps(everything) and hidden not in json.dumps(everything)


def test_graphql_refuses_what_it_cannot_authorize(matrix_server, idp):
    """Only MLflow's own operations, each authorized: anything else is refused with a clear message."""
    server = matrix_server
    alice, frank = user_token(idp, "alice"), user_token(idp, "frank")
    newest_audit = lambda: [e["id"] for e in _ok(server.infinstor("GET", "audit", frank, params={"limit": 1}))["events"]]  # noqa: E731
    audited = newest_audit()
    echo = server.call("POST", "graphql", alice, json={"query": '{ test(inputString: "x") { output } }'})
    assert echo.status_code == 403 and "test" in echo.json()["message"] and "mlflowGetRun" in echo.json()["message"]
    introspection = server.call("POST", "graphql", alice, json={"query": "{ __schema { types { name } } }"})
    assert introspection.status_code == 403 and "__schema" in introspection.json()["message"]
    hidden = server.call(
        "POST", "graphql", alice, json={"query": 'fragment F on Query { test(inputString: "x") { output } } query { ...F }'}
    )
    assert hidden.status_code == 403  # reached through a fragment, still refused
    invalid = server.call("POST", "graphql", alice, json={"query": "{ mlflowGetRun(input: {runId: 1}) { nothing } }"})
    assert invalid.status_code == 400 and "nothing" in invalid.json()["message"]
    unparsable = server.call("POST", "graphql", alice, json={"query": "{ mlflowGetRun("})
    assert unparsable.status_code == 400 and unparsable.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert server.call("POST", "graphql", alice, json={"variables": {}}).status_code == 400  # no query at all
    assert server.call("GET", "graphql", alice, params={"query": "{ __typename }"}).status_code == 405
    assert server.call("POST", "graphql", None, json={"query": "{ __typename }"}).status_code == 401
    assert _ok(server.call("POST", "graphql", alice, json={"query": "{ __typename }"}))["data"] == {"__typename": "Query"}
    assert newest_audit() == audited  # GraphQL only reads: refused or not, it leaves no audit record
