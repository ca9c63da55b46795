"""MLflow's own Python SDK against the company service, as a notebook would use it: set an
experiment, log params, metrics, a text artifact and a scikit-learn model registered in the same
call; then another member of the organisation, given read access to the model, loads it by its
`models:/` URI (which reads the logged model's artifacts through the model-version rule)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow

ALICE = r"""
import mlflow, numpy as np
from sklearn.linear_model import LogisticRegression
mlflow.set_experiment("sdk-exp")
with mlflow.start_run() as run:
    mlflow.log_param("lr", 0.1)
    mlflow.log_metric("acc", 0.9)
    mlflow.log_text("hello", "notes/hello.txt")
    model = LogisticRegression().fit(np.array([[0], [1], [2], [3]]), np.array([0, 0, 1, 1]))
    mlflow.sklearn.log_model(model, name="model", registered_model_name="sdk-model")
assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt") == "hello"
assert len(mlflow.search_runs(experiment_names=["sdk-exp"])) == 1
print(run.info.run_id)
"""

CAROL = r"""
import sys, mlflow, numpy as np
from mlflow.exceptions import MlflowException
model = mlflow.pyfunc.load_model("models:/sdk-model/1")
assert list(model.predict(np.array([[3]]))) == [1]
run = mlflow.get_run(sys.argv[1])
assert run.data.params == {"lr": "0.1"}
assert mlflow.get_experiment_by_name("sdk-exp") is None  # the experiment stays private to alice's group
try:
    mlflow.MlflowClient().set_registered_model_tag("sdk-model", "k", "v")
except MlflowException as exc:
    assert exc.get_http_status_code() == 403, exc
else:
    raise AssertionError("carol changed the model")
print("carol ok")
"""


@pytest.fixture(scope="module")
def sdk_server(idp, tmp_path_factory):
    # Models not readable organisation-wide: the test shares the model by hand.
    server = CompanyServer(tmp_path_factory.mktemp("sdk"), idp.issuer, config={"defaults": {"registered_models_org_readable": False}})
    yield server
    server.stop()


def run_as(server: CompanyServer, token: str, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_"))}
    env.update(
        MLFLOW_TRACKING_URI=server.uri,
        MLFLOW_TRACKING_TOKEN=token,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_DISABLE_TELEMETRY="true",
        PYTHONWARNINGS="ignore",
    )
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)


def test_mlflow_sdk_log_register_and_load_across_users(sdk_server, idp):
    alice, carol = user_token(idp, "alice"), user_token(idp, "carol")
    logged = run_as(sdk_server, alice, ALICE)
    assert logged.returncode == 0, logged.stderr[-3000:]
    run_id = logged.stdout.strip().splitlines()[-1]
    # Before sharing, carol cannot load it.
    denied = run_as(sdk_server, carol, "import mlflow; mlflow.pyfunc.load_model('models:/sdk-model/1')")
    assert denied.returncode != 0 and "RESOURCE_DOES_NOT_EXIST" in denied.stderr
    response = sdk_server.infinstor(
        "POST",
        "permissions",
        alice,
        json={
            "resource_type": "registered_model",
            "resource_id": "sdk-model",
            "principal_type": "group",
            "principal": "nlp",
            "role": "reader",
        },
    )
    assert response.status_code == 200, response.text
    loaded = run_as(sdk_server, carol, CAROL, run_id)
    assert loaded.returncode == 0 and "carol ok" in loaded.stdout, loaded.stderr[-3000:]
