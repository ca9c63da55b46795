"""The company service while its PostgreSQL is down: `503 TEMPORARILY_UNAVAILABLE` with one clear
message (never a 500, never the database's address), and by itself back to normal once the
database is back, with no restart of the service (same process)."""

from __future__ import annotations

import time

import pytest

from pg_tools import RestartablePostgres
from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow

OUTAGE = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "The tracking database is unavailable; retry shortly."}


@pytest.fixture(scope="module")
def cluster():
    cluster = RestartablePostgres()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def server(cluster, idp, tmp_path_factory):
    server = CompanyServer(tmp_path_factory.mktemp("outage"), idp.issuer, backend_uri=cluster.create_database("mlflow"))
    yield server
    server.stop()


def ok(response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def test_database_restart_answers_503_then_recovers(cluster, server, idp):
    token = user_token(idp, "alice")
    experiment_id = ok(server.mlflow("POST", "experiments/create", token, json={"name": "outage"}))["experiment_id"]
    run_id = ok(server.mlflow("POST", "runs/create", token, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    ok(server.mlflow("POST", "runs/log-batch", token, json={"run_id": run_id, "metrics": [
        {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}]}))  # fmt: skip
    api_token = ok(server.infinstor("POST", "tokens", token, json={"name": "outage-ci", "expires_in_days": 1}))["token"]
    pid = server.proc.pid

    calls = {
        "get experiment (authorization reads grants)": lambda t: server.mlflow("GET", "experiments/get", t, params={"experiment_id": experiment_id}),
        "search runs": lambda t: server.mlflow("POST", "runs/search", t, json={"experiment_ids": [experiment_id]}),
        "search experiments (filtered view)": lambda t: server.mlflow("POST", "experiments/search", t, json={"max_results": 10}),
        "log a batch": lambda t: server.mlflow("POST", "runs/log-batch", t, json={"run_id": run_id, "metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 2, "step": 1}]}),
        "registered models": lambda t: server.mlflow("GET", "registered-models/search", t),
        "sharing list": lambda t: server.infinstor("GET", "permissions", t, params={"resource_type": "experiment", "resource_id": experiment_id}),
    }  # fmt: skip
    for call in calls.values():
        ok(call(token))
    ok(calls["get experiment (authorization reads grants)"](api_token))

    cluster.stop_server("fast")
    try:
        for what, call in calls.items():
            for credential in (token, api_token):
                response = call(credential)
                assert response.status_code == 503, f"{what}: {response.status_code} {response.text[:500]}"
                assert response.json() == OUTAGE, what
                assert response.headers.get("Retry-After") == "2", what
                assert str(cluster.port) not in response.text and "psycopg" not in response.text, what
        # Liveness needs no database (no replica is drained or restarted for the database's sake);
        # readiness says the database is away.
        assert (server.call("GET", "health").status_code, server.call("GET", "health").text) == (200, "OK")
        ready = server.call("GET", "health/ready")
        assert (ready.status_code, ready.json()) == (503, OUTAGE)
    finally:
        cluster.start_server()

    # Back by itself: the same process, old pooled connections replaced.
    deadline = time.monotonic() + 30
    while calls["search runs"](token).status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover after the database came back"
        time.sleep(0.5)
    assert server.proc.pid == pid and server.proc.poll() is None
    assert server.call("GET", "health/ready").status_code == 200
    for call in calls.values():
        ok(call(token))
        ok(call(api_token))
    ok(server.mlflow("POST", "runs/log-batch", api_token, json={"run_id": run_id, "metrics": [
        {"key": "loss", "value": 0.25, "timestamp": 3, "step": 2}]}))  # fmt: skip
    history = ok(server.mlflow("GET", "metrics/get-history", token, params={"run_id": run_id, "metric_key": "loss"}))
    assert sorted((m["step"], m["value"]) for m in history["metrics"]) == [(0, 1.0), (1, 0.5), (2, 0.25)]
    # The outage was not taken for a refusal: the audit log shows the writes made after it.
    admin = user_token(idp, "frank")
    audit = ok(server.infinstor("GET", "audit", admin, params={"limit": 20}))
    assert any(row.get("action") == "LogBatch" and row.get("status") == 200 for row in audit["events"]), audit
