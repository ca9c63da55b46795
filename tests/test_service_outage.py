"""The company service while its PostgreSQL is down: `503 TEMPORARILY_UNAVAILABLE` with one clear
message (never a 500, never the database's address), and by itself back to normal once the
database is back, with no restart of the service (same process)."""

from __future__ import annotations

import time

import pytest

from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow

OUTAGE = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "The tracking database is unavailable; retry shortly."}


@pytest.fixture(scope="module")
def server(restartable_postgres, idp, tmp_path_factory):
    server = CompanyServer(tmp_path_factory.mktemp("outage"), idp.issuer, backend_uri=restartable_postgres.create_database("mlflow"))
    yield server
    server.stop()


def ok(response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def test_database_restart_answers_503_then_recovers(restartable_postgres, server, idp):
    token = user_token(idp, "alice")
    experiment_id = ok(server.mlflow("POST", "experiments/create", token, json={"name": "outage"}))["experiment_id"]
    run_id = ok(server.mlflow("POST", "runs/create", token, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    ok(
        server.mlflow(
            "POST", "runs/log-batch", token, json={"run_id": run_id, "metrics": [{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}]}
        )
    )
    api_token = ok(server.infinstor("POST", "tokens", token, json={"name": "outage-ci", "expires_in_days": 1}))["token"]
    # A run this replica has never looked up (no cached experiment): during the outage its lookup
    # fails, which must be a 503, not "not found".
    unseen_run = ok(server.mlflow("POST", "runs/create", token, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    pid = server.proc.pid

    calls = {
        "get experiment (authorization reads grants)": lambda t: server.mlflow(
            "GET", "experiments/get", t, params={"experiment_id": experiment_id}
        ),
        "search runs": lambda t: server.mlflow("POST", "runs/search", t, json={"experiment_ids": [experiment_id]}),
        "search experiments (filtered view)": lambda t: server.mlflow("POST", "experiments/search", t, json={"max_results": 10}),
        "log a batch": lambda t: server.mlflow(
            "POST", "runs/log-batch", t, json={"run_id": run_id, "metrics": [{"key": "loss", "value": 0.5, "timestamp": 2, "step": 1}]}
        ),
        "registered models": lambda t: server.mlflow("GET", "registered-models/search", t),
        "sharing list": lambda t: server.infinstor(
            "GET", "permissions", t, params={"resource_type": "experiment", "resource_id": experiment_id}
        ),
    }
    for call in calls.values():
        ok(call(token))
    ok(calls["get experiment (authorization reads grants)"](api_token))

    restartable_postgres.stop_server("fast")
    try:
        for what, call in calls.items():
            for credential in (token, api_token):
                response = call(credential)
                assert response.status_code == 503, f"{what}: {response.status_code} {response.text[:500]}"
                assert response.json() == OUTAGE, what
                assert response.headers.get("Retry-After") == "2", what
                assert str(restartable_postgres.port) not in response.text and "psycopg" not in response.text, what
        unseen = server.mlflow("GET", "runs/get", token, params={"run_id": unseen_run})
        assert (unseen.status_code, unseen.json()) == (503, OUTAGE)
        # Liveness needs no database (no replica is drained or restarted for the database's sake);
        # readiness says the database is away.
        assert (server.call("GET", "health").status_code, server.call("GET", "health").text) == (200, "OK")
        ready = server.call("GET", "health/ready")
        assert (ready.status_code, ready.json()) == (503, OUTAGE)
    finally:
        restartable_postgres.start_server()

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
    ok(
        server.mlflow(
            "POST",
            "runs/log-batch",
            api_token,
            json={"run_id": run_id, "metrics": [{"key": "loss", "value": 0.25, "timestamp": 3, "step": 2}]},
        )
    )
    history = ok(server.mlflow("GET", "metrics/get-history", token, params={"run_id": run_id, "metric_key": "loss"}))
    assert sorted((m["step"], m["value"]) for m in history["metrics"]) == [(0, 1.0), (1, 0.5), (2, 0.25)]
    # The outage was not taken for a refusal: the audit log shows the writes made after it.
    admin = user_token(idp, "frank")
    audit = ok(server.infinstor("GET", "audit", admin, params={"limit": 20}))
    assert any(row.get("action") == "LogBatch" and row.get("status") == 200 for row in audit["events"]), audit


# -- the middleware's verdicts, on real SQLAlchemy errors and MLflow's real answers to them -------
def _asgi_answer(app, path="/api/2.0/mlflow/runs/get"):
    import asyncio

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "GET", "path": path, "headers": []}, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _mlflow_answer_to(exc: Exception):
    """An ASGI app that answers the way MLflow's handlers answer an exception raised in a store
    session (ManagedSessionMaker maps it to an MlflowException; the handler serializes that)."""
    import sqlalchemy as sa
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST, TEMPORARILY_UNAVAILABLE

    code = TEMPORARILY_UNAVAILABLE if isinstance(exc, sa.exc.OperationalError) else BAD_REQUEST
    error = MlflowException(message=exc, error_code=code)

    async def app(scope, receive, send):
        body = error.serialize_as_json().encode()
        await send({"type": "http.response.start", "status": error.get_http_status_code(), "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def _pool_timeout(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    held = engine.connect()
    try:
        engine.connect()
    except sa.exc.TimeoutError as exc:
        return exc, engine
    finally:
        held.close()
    raise AssertionError("no pool timeout")


def test_pool_timeout_and_lost_connections_are_503_not_400_or_500(tmp_path):
    import json

    import sqlalchemy as sa

    from infinstor_jupyterlab.tracking_service.outage import BUSY_MESSAGE, DatabaseOutageASGIMiddleware, classify_exception

    timeout, engine = _pool_timeout(tmp_path)  # a live database: the probe finds it reachable
    # MLflow answers a pool timeout 400 BAD_REQUEST (clients never retry a 400): we answer 503.
    status, body = _asgi_answer(DatabaseOutageASGIMiddleware(_mlflow_answer_to(timeout), engine))
    assert (status, json.loads(body)) == (503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": BUSY_MESSAGE})
    assert classify_exception(RuntimeError("wrapped")) is None
    try:
        raise RuntimeError("authorization failed") from timeout
    except RuntimeError as wrapped:
        assert classify_exception(wrapped) == "busy"
    # A pool invalidated by a lost database (not an OperationalError: MLflow says 400 for it).
    invalidated = sa.exc.InvalidatePoolError()
    assert classify_exception(invalidated) == "outage"

    # Genuine client errors and genuine server errors go out as they were, with a live database.
    integrity = sa.exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))
    status, body = _asgi_answer(DatabaseOutageASGIMiddleware(_mlflow_answer_to(integrity), engine))
    assert status == 400 and json.loads(body)["error_code"] == "BAD_REQUEST"

    async def broken(scope, receive, send):
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b'{"error_code": "INTERNAL_ERROR", "message": "a bug"}'})

    assert _asgi_answer(DatabaseOutageASGIMiddleware(broken, engine)) == (500, b'{"error_code": "INTERNAL_ERROR", "message": "a bug"}')
    # The same 500 while the database is unreachable is an outage.
    gone = sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    status, body = _asgi_answer(DatabaseOutageASGIMiddleware(broken, gone))
    assert (status, json.loads(body)) == (503, OUTAGE)
    engine.dispose()
