"""The company service end to end: a real IdP, real `mlflow server --app-name infinstor` processes,
on SQLite and on a real PostgreSQL cluster.

The scenario of issue 7: alice (acme, vision) creates an experiment; bob (vision) adds runs;
carol (acme, nlp) cannot see it; alice registers a model from a run; carol can read the model and
its source run but not change it; dave (globex) sees none of it and cannot learn its names; a
policy override lets readers tag model versions; a job-scoped token can write its own run and
nothing else. Plus tokens, sharing, paging of private views, org admins and the audit log.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import requests

from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "sqlite":
        return request.param, None
    return request.param, request.getfixturevalue("postgres_cluster")


# Client-side behaviour the store cannot change (the CLI, the EC2 target's token requests) is
# checked once, on SQLite: these tests narrow the module's backends instead of skipping.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def deployment(backend, idp, tmp_path_factory):
    """Two replicas on one database: `main` with the shipped policy and defaults except that models
    are not readable organisation-wide (the scenario shares them by hand), `tagging` with an
    override that lets readers tag model versions, private experiments and org-readable models."""
    name, cluster = backend
    root = tmp_path_factory.mktemp(f"company-{name}")
    uri = cluster.create_database("company") if cluster else f"sqlite:///{root / 'mlflow.db'}"
    main = CompanyServer(root / "main", idp.issuer, backend_uri=uri, config={"defaults": {"registered_models_org_readable": False}})
    try:
        tagging = CompanyServer(
            root / "tagging",
            idp.issuer,
            backend_uri=uri,
            policy={"operations": {"SetModelVersionTag": "reader"}},
            config={"defaults": {"experiment": "private", "registered_models_org_readable": True}},
        )
    except Exception:
        main.stop()
        raise
    yield main, tagging
    tagging.stop()
    main.stop()


@pytest.fixture(scope="module")
def tokens(idp, deployment):
    return {user: user_token(idp, user) for user in USERS}


@pytest.fixture(scope="module")
def world(deployment, tokens):
    """What the scenario builds (an experiment, two runs, a shared model, a job token's writes),
    built once for the module by whichever test asks first: every test passes alone and in any
    order (`-p randomly`)."""
    return run_scenario(deployment, tokens)


def ok(response: requests.Response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def status(response: requests.Response) -> int:
    return response.status_code


def upload(server: CompanyServer, token: str, artifact_uri: str, name: str, data: bytes) -> requests.Response:
    path = artifact_uri[len("mlflow-artifacts:/") :]
    return server.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{path}/{name}", token, data=data)


def test_scenario(world):
    assert set(world) == {"experiment_id", "run_id", "second"}


def run_scenario(deployment, tokens) -> dict:
    main, tagging = deployment
    alice, bob, carol, dave, erin, frank = (tokens[u] for u in USERS)
    M = main.mlflow

    # alice (acme, vision) creates an experiment: she manages it, vision may edit it.
    experiment_id = ok(M("POST", "experiments/create", alice, json={"name": "vision-exp"}))["experiment_id"]
    grants = ok(main.infinstor("GET", "permissions", alice, params={"resource_type": "experiment", "resource_id": experiment_id}))
    assert {(g["principal_type"], g["principal"], g["role"]) for g in grants["permissions"]} == {
        ("user", "alice", "manager"),
        ("group", "vision", "editor"),
    }

    # bob (vision) adds runs, with metrics and an artifact; the service records him as the user.
    run = ok(M("POST", "runs/create", bob, json={"experiment_id": experiment_id, "user_id": "mallory"}))["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["user_id"] == "bob"
    ok(
        M(
            "POST",
            "runs/log-batch",
            bob,
            json={
                "run_id": run_id,
                "metrics": [{"key": "acc", "value": 0.9, "timestamp": 1, "step": 0}],
                "params": [{"key": "lr", "value": "0.1"}],
            },
        )
    )
    assert status(upload(main, bob, run["info"]["artifact_uri"], "model/MLmodel", b"flavors: {}\n")) == 200
    second = ok(M("POST", "runs/create", bob, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    found = ok(M("POST", "runs/search", alice, json={"experiment_ids": [experiment_id]}))
    assert {r["info"]["run_id"] for r in found["runs"]} == {run_id, second}

    # carol (acme, nlp) cannot see it: not by id, not by name, not in any search.
    assert status(M("GET", "experiments/get", carol, params={"experiment_id": experiment_id})) == 404
    assert status(M("GET", "experiments/get-by-name", carol, params={"experiment_name": "vision-exp"})) == 404
    assert "vision-exp" not in M("POST", "experiments/search", carol, json={"max_results": 100}).text
    assert ok(M("POST", "runs/search", carol, json={"experiment_ids": [experiment_id]})) == {}
    assert status(M("GET", "runs/get", carol, params={"run_id": run_id})) == 404
    assert status(M("POST", "runs/create", carol, json={"experiment_id": experiment_id})) == 404

    # alice registers a model from bob's run and shares it (read) with her organisation.
    ok(M("POST", "registered-models/create", alice, json={"name": "vision-model"}))
    version = ok(
        M(
            "POST",
            "model-versions/create",
            alice,
            json={"name": "vision-model", "source": f"{run['info']['artifact_uri']}/model", "run_id": run_id},
        )
    )["model_version"]
    assert version["version"] == "1"
    ok(
        main.infinstor(
            "POST",
            "permissions",
            alice,
            json={
                "resource_type": "registered_model",
                "resource_id": "vision-model",
                "principal_type": "org",
                "principal": "acme",
                "role": "reader",
            },
        )
    )

    # carol can read the model and its source run (and the run's artifacts), but not change them.
    assert ok(M("GET", "registered-models/get", carol, params={"name": "vision-model"}))["registered_model"]["name"] == "vision-model"
    assert [
        v["version"] for v in ok(M("GET", "model-versions/search", carol, params={"filter": "name='vision-model'"}))["model_versions"]
    ] == ["1"]
    assert ok(M("GET", "runs/get", carol, params={"run_id": run_id}))["run"]["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert ok(M("GET", "metrics/get-history", carol, params={"run_id": run_id, "metric_key": "acc"}))["metrics"][0]["value"] == 0.9
    artifact_path = run["info"]["artifact_uri"][len("mlflow-artifacts:/") :]
    download = main.call("GET", f"api/2.0/mlflow-artifacts/artifacts/{artifact_path}/model/MLmodel", carol)
    assert download.status_code == 200 and download.content == b"flavors: {}\n"
    assert status(M("GET", "runs/get", carol, params={"run_id": second})) == 404  # not a model's source
    assert status(M("POST", "registered-models/set-tag", carol, json={"name": "vision-model", "key": "k", "value": "v"})) == 403
    assert (
        status(M("POST", "model-versions/set-tag", carol, json={"name": "vision-model", "version": "1", "key": "k", "value": "v"})) == 403
    )
    assert status(M("DELETE", "registered-models/delete", carol, json={"name": "vision-model"})) == 403
    assert status(M("POST", "runs/log-metric", carol, json={"run_id": run_id, "key": "x", "value": 1, "timestamp": 1})) == 403
    assert status(upload(main, carol, run["info"]["artifact_uri"], "evil.txt", b"x")) == 403
    assert status(M("GET", "experiments/get", carol, params={"experiment_id": experiment_id})) == 404

    # A policy override (on another replica of the same database) lets readers tag model versions;
    # the rest of carol's limits stay.
    ok(
        tagging.mlflow(
            "POST", "model-versions/set-tag", carol, json={"name": "vision-model", "version": "1", "key": "reviewed", "value": "carol"}
        )
    )
    assert ok(M("GET", "model-versions/get", alice, params={"name": "vision-model", "version": "1"}))["model_version"]["tags"] == [
        {"key": "reviewed", "value": "carol"}
    ]
    assert (
        status(tagging.mlflow("POST", "registered-models/set-tag", carol, json={"name": "vision-model", "key": "k", "value": "v"})) == 403
    )

    # dave (globex) sees none of it and cannot learn its names.
    for endpoint, params in (
        ("experiments/get", {"experiment_id": experiment_id}),
        ("experiments/get-by-name", {"experiment_name": "vision-exp"}),
        ("runs/get", {"run_id": run_id}),
        ("registered-models/get", {"name": "vision-model"}),
        ("model-versions/get", {"name": "vision-model", "version": "1"}),
    ):
        assert status(M("GET", endpoint, dave, params=params)) == 404, endpoint
    listings = [
        M("POST", "experiments/search", dave, json={"max_results": 100}).text,
        M("GET", "registered-models/search", dave).text,
        M("GET", "model-versions/search", dave).text,
        M("POST", "runs/search", dave, json={"experiment_ids": [experiment_id]}).text,
    ]
    for text in listings:
        assert "vision" not in text and run_id not in text
    assert status(main.call("GET", f"api/2.0/mlflow-artifacts/artifacts/{artifact_path}/model/MLmodel", dave)) == 404
    # globex has its own namespace: the same name is free there, and invisible to acme.
    globex_experiment = ok(M("POST", "experiments/create", dave, json={"name": "vision-exp"}))["experiment_id"]
    assert status(M("GET", "experiments/get", alice, params={"experiment_id": globex_experiment})) == 404
    assert (
        status(
            main.infinstor(
                "POST",
                "permissions",
                dave,
                json={
                    "resource_type": "experiment",
                    "resource_id": experiment_id,
                    "principal_type": "user",
                    "principal": "dave",
                    "role": "reader",
                },
            )
        )
        == 404
    )

    # A job-scoped token writes its own run and nothing else.
    job = ok(main.infinstor("POST", "tokens", alice, json={"kind": "job", "run_id": run_id, "ttl_seconds": 600}))
    job_token = job["token"]
    ok(M("POST", "runs/log-metric", job_token, json={"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 2}))
    ok(M("GET", "runs/get", job_token, params={"run_id": run_id}))
    ok(M("GET", "experiments/get", job_token, params={"experiment_id": experiment_id}))
    assert status(upload(main, job_token, run["info"]["artifact_uri"], "job.log", b"done")) == 200
    assert status(M("POST", "runs/log-metric", job_token, json={"run_id": second, "key": "loss", "value": 0.5, "timestamp": 2})) == 403
    assert status(M("GET", "runs/get", job_token, params={"run_id": second})) == 403
    assert status(M("POST", "experiments/create", job_token, json={"name": "job-made"})) == 403
    assert status(M("POST", "runs/delete", job_token, json={"run_id": run_id})) == 403
    assert status(M("GET", "registered-models/get", job_token, params={"name": "vision-model"})) == 403
    assert status(main.infinstor("POST", "tokens", job_token, json={"name": "escalate"})) == 403
    # Only an editor of the run may mint one: carol reads the run but may not write it.
    assert status(main.infinstor("POST", "tokens", carol, json={"kind": "job", "run_id": run_id})) == 403

    return {"experiment_id": experiment_id, "run_id": run_id, "second": second}


def reaches_peer_soon(check, what: str) -> None:
    """A change made on one replica ends the peer's reuse within about two change polls (1 s each,
    the default), although the peer may reuse a check for 300 s (grant_cache_seconds' default)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < 2 * 1.0 + 2, what
        time.sleep(0.1)


def test_api_tokens_create_use_list_revoke(deployment, tokens, world):
    main, peer = deployment
    alice = tokens["alice"]
    created = ok(main.infinstor("POST", "tokens", alice, json={"name": "ci", "expires_in_days": 1}))
    token = created["token"]
    assert token.startswith("inf_") and created["name"] == "ci"
    assert created["expires_at"] - created["created_at"] == pytest.approx(86400_000, abs=2000)
    # It acts as alice, with her groups.
    assert ok(main.infinstor("GET", "whoami", token))["username"] == "alice"
    ok(main.mlflow("GET", "experiments/get", token, params={"experiment_id": world["experiment_id"]}))
    listed = ok(main.infinstor("GET", "tokens", alice))["tokens"]
    # Hers, without secrets (the CLI test may have made one too: tests run in any order).
    assert [t["name"] for t in listed].count("ci") == 1 and all("token" not in t for t in listed)
    assert token not in main.infinstor("GET", "tokens", alice).text
    # A token cannot mint tokens; other users cannot see or revoke it.
    assert status(main.infinstor("POST", "tokens", token, json={"name": "more"})) == 403
    assert ok(main.infinstor("GET", "tokens", tokens["bob"]))["tokens"] == []
    assert status(main.infinstor("DELETE", f"tokens/{created['id']}", tokens["bob"])) == 404
    assert ok(peer.infinstor("GET", "whoami", token))["username"] == "alice"  # the peer reuses it now
    ok(main.infinstor("DELETE", f"tokens/{created['id']}", alice))
    assert status(main.mlflow("GET", "experiments/get", token, params={"experiment_id": world["experiment_id"]})) == 401
    # The peer replica reused the checked token; it stops there too, soon.
    reaches_peer_soon(
        lambda: status(peer.infinstor("GET", "whoami", token)) == 401, "a token revoked on one replica still works on its peer"
    )
    # Bad input is refused clearly.
    assert status(main.infinstor("POST", "tokens", alice, json={"name": "x", "expires_in_days": 10000})) == 400
    assert status(main.infinstor("POST", "tokens", alice, json={})) == 400
    # The secret is never stored: only its hash.
    assert status(main.mlflow("GET", "experiments/get", token[:-2] + "zz", params={"experiment_id": "0"})) == 401


def test_configurable_defaults_on_create(deployment, tokens):
    _, other = deployment  # private experiments, registered models readable organisation-wide
    alice = tokens["alice"]
    experiment_id = ok(other.mlflow("POST", "experiments/create", alice, json={"name": "alice-private"}))["experiment_id"]
    grants = ok(other.infinstor("GET", "permissions", alice, params={"resource_type": "experiment", "resource_id": experiment_id}))
    assert [(g["principal_type"], g["principal"], g["role"]) for g in grants["permissions"]] == [("user", "alice", "manager")]
    assert status(other.mlflow("GET", "experiments/get", tokens["bob"], params={"experiment_id": experiment_id})) == 404
    ok(other.mlflow("POST", "registered-models/create", alice, json={"name": "org-wide-model"}))
    assert ok(other.mlflow("GET", "registered-models/get", tokens["erin"], params={"name": "org-wide-model"}))
    assert status(other.mlflow("GET", "registered-models/get", tokens["dave"], params={"name": "org-wide-model"})) == 404
    refused = other.mlflow("PATCH", "registered-models/update", tokens["bob"], json={"name": "org-wide-model", "description": "x"})
    assert refused.status_code == 403
    # The refusal says what it takes (the sidebar shows it as it is).
    assert refused.json()["message"] == "This needs the editor role on registered model org-wide-model; you hold reader."


def test_sharing_with_a_user_and_revoking(deployment, tokens, world):
    main, peer = deployment
    alice, erin = tokens["alice"], tokens["erin"]
    experiment_id = world["experiment_id"]
    share = {"resource_type": "experiment", "resource_id": experiment_id, "principal_type": "user", "principal": "erin"}
    # Only a manager may share: bob edits the experiment but does not manage it.
    assert status(main.infinstor("POST", "permissions", tokens["bob"], json={**share, "role": "reader"})) == 403
    assert status(main.mlflow("GET", "experiments/get", erin, params={"experiment_id": experiment_id})) == 404
    ok(main.infinstor("POST", "permissions", alice, json={**share, "role": "reader"}))
    ok(main.mlflow("GET", "experiments/get", erin, params={"experiment_id": experiment_id}))
    assert experiment_id in {e["experiment_id"] for e in ok(main.mlflow("POST", "experiments/search", erin, json={}))["experiments"]}
    assert status(main.mlflow("POST", "runs/create", erin, json={"experiment_id": experiment_id})) == 403
    ok(peer.mlflow("GET", "experiments/get", erin, params={"experiment_id": experiment_id}))  # the peer reuses her role now
    ok(main.infinstor("DELETE", "permissions", alice, json=share))
    assert status(main.mlflow("GET", "experiments/get", erin, params={"experiment_id": experiment_id})) == 404
    experiment = {"experiment_id": experiment_id}
    reaches_peer_soon(
        lambda: status(peer.mlflow("GET", "experiments/get", erin, params=experiment)) == 404,
        "a grant revoked on one replica still works on its peer",
    )
    assert status(main.infinstor("POST", "permissions", alice, json={**share, "role": "owner"})) == 400
    assert (
        status(
            main.infinstor("POST", "permissions", alice, json={**share, "principal_type": "org", "principal": "globex", "role": "reader"})
        )
        == 400
    )


def test_private_views_page_exactly(deployment, tokens):
    main, _ = deployment
    bob, carol = tokens["bob"], tokens["carol"]
    mine = []
    for index in range(7):
        # Interleave experiments carol may not see with hers, so filtering happens inside pages.
        ok(main.mlflow("POST", "experiments/create", bob, json={"name": f"paging-bob-{index}"}))
        mine.append(ok(main.mlflow("POST", "experiments/create", carol, json={"name": f"paging-carol-{index}"}))["experiment_id"])
        ok(main.mlflow("POST", "registered-models/create", bob, json={"name": f"paging-bob-model-{index}"}))
        ok(main.mlflow("POST", "registered-models/create", carol, json={"name": f"paging-carol-model-{index}"}))
    seen, token, pages = [], None, []
    while True:
        body = {"max_results": 2, "filter": "name LIKE 'paging-%'", "order_by": ["name ASC"], **({"page_token": token} if token else {})}
        page = ok(main.mlflow("POST", "experiments/search", carol, json=body))
        pages.append(len(page.get("experiments", [])))
        seen += [e["experiment_id"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert pages == [2, 2, 2, 1]
    assert sorted(seen) == sorted(mine)
    names, token, pages = [], None, []
    while True:
        params = {"max_results": 3, "filter": "name LIKE 'paging-%'", **({"page_token": token} if token else {})}
        page = ok(main.mlflow("GET", "registered-models/search", carol, params=params))
        pages.append(len(page.get("registered_models", [])))
        names += [m["name"] for m in page.get("registered_models", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert pages == [3, 3, 1]
    assert sorted(names) == [f"paging-carol-model-{i}" for i in range(7)]


def test_org_admin_manages_everything_in_the_org_and_reads_the_audit_log(deployment, tokens, world):
    main, _ = deployment
    frank = tokens["frank"]
    assert ok(main.infinstor("GET", "whoami", frank))["admin"] is True
    ok(main.mlflow("GET", "experiments/get", frank, params={"experiment_id": world["experiment_id"]}))
    ok(
        main.mlflow(
            "POST",
            "experiments/set-experiment-tag",
            frank,
            json={"experiment_id": world["experiment_id"], "key": "owner", "value": "vision"},
        )
    )
    assert "vision-exp" in main.mlflow("POST", "experiments/search", frank, json={"max_results": 1000}).text
    # ... but only in acme.
    globex = ok(main.mlflow("POST", "experiments/create", tokens["dave"], json={"name": "globex-private"}))["experiment_id"]
    assert status(main.mlflow("GET", "experiments/get", frank, params={"experiment_id": globex})) == 404
    assert "globex-private" not in main.mlflow("POST", "experiments/search", frank, json={"max_results": 1000}).text
    # The audit log: writes, denials and permission changes, who and when; admins only.
    assert status(main.infinstor("GET", "audit", tokens["alice"])) == 403
    events = ok(main.infinstor("GET", "audit", frank, params={"limit": 1000}))["events"]
    actions = {(e["username"], e["action"], e["status"]) for e in events}
    assert ("alice", "CreateExperiment", 200) in actions
    assert ("bob", "LogBatch", 200) in actions
    assert ("carol", "SetRegisteredModelTag", 403) in actions
    assert ("alice", "infinstor:POST permissions", 200) in actions
    assert any(e["username"].startswith("job:") and e["action"] == "LogMetric" and e["resource_id"] == world["run_id"] for e in events)
    assert any(e["username"].startswith("job:") and e["action"] == "DeleteRun" and e["status"] == 403 for e in events)
    assert all(e["at"] > 0 for e in events)
    assert not any(e["username"] == "dave" for e in events)  # globex's log is globex's
    # Reads (gets, and searches sent as POST) change nothing and are not audited.
    assert not {"GetExperiment", "SearchExperiments", "SearchRuns", "GetRun"} & {e["action"] for e in events}


def test_refusals_and_lookalike_requests(deployment, idp, tokens, world):
    main, _ = deployment
    experiment = {"experiment_id": world["experiment_id"]}
    assert status(main.mlflow("GET", "experiments/get", None, params=experiment)) == 401
    assert status(main.mlflow("GET", "experiments/get", "not-a-jwt", params=experiment)) == 401
    forged = tokens["alice"].rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    assert status(main.mlflow("GET", "experiments/get", forged, params=experiment)) == 401
    # A client cannot pick another organisation's workspace with MLflow's own header.
    response = main.mlflow("GET", "experiments/get", tokens["dave"], params=experiment, headers={"X-MLflow-Workspace": "acme"})
    assert response.status_code == 404
    # Workspaces: each caller sees their own organisation's, and no other name.
    assert ok(main.call("GET", "api/3.0/mlflow/workspaces", tokens["dave"])) == {"workspaces": [{"name": "globex"}]}
    assert status(main.call("GET", "api/3.0/mlflow/workspaces/acme", tokens["dave"])) == 404
    assert ok(main.call("GET", "api/3.0/mlflow/workspaces/acme", tokens["frank"]))["workspace"]["name"] == "acme"
    # Operations this service does not authorize are refused, not passed through, even to admins.
    assert status(main.call("POST", "api/3.0/mlflow/workspaces", tokens["frank"], json={"name": "evil"})) == 403
    assert status(main.call("DELETE", "api/3.0/mlflow/workspaces/globex", tokens["frank"])) == 403
    # (GraphQL is authorized field by field, test_service_matrix; a field mirroring no operation is refused)
    assert status(main.call("POST", "graphql", tokens["frank"], json={"query": '{ test(inputString: "x") { output } }'})) == 403
    assert main.call("GET", "health").status_code == 200
    # The JSON (camelCase) spelling of a field is read like MLflow reads it, never skipped.
    dave, erin = tokens["dave"], tokens["erin"]
    own = ok(main.mlflow("POST", "experiments/create", erin, json={"name": "erin-models"}))["experiment_id"]
    erin_run = ok(main.mlflow("POST", "runs/create", erin, json={"experiment_id": own}))["run"]["info"]["run_id"]
    sneaky = {"run_uuid": erin_run, "runId": world["second"], "key": "x", "value": 1, "timestamp": 1}
    assert status(main.mlflow("POST", "runs/log-metric", erin, json=sneaky)) == 404
    assert ok(main.mlflow("POST", "runs/search", dave, json={"experimentIds": [world["experiment_id"]]})) == {}
    mixed = ok(main.mlflow("POST", "runs/search", erin, json={"experimentIds": [world["experiment_id"], own]}))
    assert [r["info"]["run_id"] for r in mixed["runs"]] == [erin_run]
    # A body naming another logged model than the path is refused (MLflow acts on the body's).
    model_id = ok(main.mlflow("POST", "logged-models", erin, json={"experiment_id": own, "name": "m"}))["model"]["info"]["model_id"]
    lookalike = main.call(
        "PATCH", f"api/2.0/mlflow/logged-models/{model_id}", erin, json={"model_id": "m-someone-else", "status": "LOGGED_MODEL_READY"}
    )
    assert lookalike.status_code == 400
    ok(main.call("PATCH", f"api/2.0/mlflow/logged-models/{model_id}", erin, json={"model_id": model_id, "status": "LOGGED_MODEL_READY"}))


@sqlite_only
def test_cli_tokens_and_sharing(backend, deployment, tokens, world, tmp_path):
    main, _ = deployment
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "JPY_"))}
    env.update(INFINSTOR_DATA_DIR=str(tmp_path / "cli-data"), INFINSTOR_INSECURE_LOOPBACK="1", PYTHONUNBUFFERED="1")
    service = ["--service", main.uri]

    def cli(*args, stdin=None):
        return subprocess.run(
            [sys.executable, "-m", "infinstor_jupyterlab.cli", *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
        )

    signed_in = cli("login", *service, "--token", "-", stdin=tokens["alice"] + "\n")
    assert signed_in.returncode == 0, signed_in.stderr
    created = cli("token", "create", *service, "--name", "nightly", "--days", "2")
    assert created.returncode == 0, created.stderr
    api_token = created.stdout.strip()
    assert api_token.startswith("inf_") and "shown once" in created.stderr
    listed = cli("token", "list", *service, "--json")
    entry = next(t for t in json.loads(listed.stdout) if t["name"] == "nightly")
    assert api_token not in listed.stdout
    experiment = world["experiment_id"]
    granted = cli("share", "grant", *service, "--experiment", experiment, "--group", "sales", "--role", "reader")
    assert granted.returncode == 0 and "group sales is now reader" in granted.stdout, granted.stderr
    ok(main.mlflow("GET", "experiments/get", tokens["erin"], params={"experiment_id": experiment}))
    shown = json.loads(cli("share", "list", *service, "--experiment", experiment, "--json").stdout)
    assert {"principal_type": "group", "principal": "sales", "role": "reader"}.items() <= next(
        g for g in shown if g["principal"] == "sales"
    ).items()
    revoked = cli("share", "revoke", *service, "--experiment", experiment, "--group", "sales")
    assert revoked.returncode == 0, revoked.stderr
    assert status(main.mlflow("GET", "experiments/get", tokens["erin"], params={"experiment_id": experiment})) == 404
    assert cli("token", "revoke", *service, entry["id"]).returncode == 0
    assert status(main.mlflow("GET", "experiments/get", api_token, params={"experiment_id": experiment})) == 401
    # Refusals are clear and fail the command.
    env["INFINSTOR_DATA_DIR"] = str(tmp_path / "bob-data")
    assert cli("login", *service, "--token", "-", stdin=tokens["bob"] + "\n").returncode == 0
    refused = cli("share", "grant", *service, "--experiment", experiment, "--user", "erin", "--role", "manager")
    assert refused.returncode == 1 and "refused (403)" in refused.stderr


@sqlite_only
def test_ec2_target_gets_job_tokens_from_the_company_service(backend, deployment, tokens, world, tmp_path, monkeypatch):
    """The lab's EC2 target, signed in to a company service, asks it for the VM's job token."""
    from infinstor_jupyterlab.credentials.manager import CredentialManager
    from infinstor_jupyterlab.credentials.tokens import TokenStore
    from infinstor_jupyterlab.errors import InfinStorError
    from infinstor_jupyterlab.jobs.targets.ec2 import EC2Target
    from infinstor_jupyterlab.lab.tracking.remote import RemoteTrackingServer

    monkeypatch.setenv("INFINSTOR_INSECURE_LOOPBACK", "1")
    main, _ = deployment
    job = SimpleNamespace(id="job-7", run_id=world["run_id"], experiment_id=world["experiment_id"])

    def target_for(user: str) -> EC2Target:
        credentials = CredentialManager(main.uri, store=TokenStore(tmp_path / f"{user}.json"))
        credentials.save_api_token(tokens[user])
        target = EC2Target()
        target.bind(SimpleNamespace(tracking=RemoteTrackingServer(main.uri, credentials=credentials), user=user))
        return target

    token = asyncio.run(target_for("bob")._issue_token(job))  # bob edits the run's experiment
    ok(main.mlflow("POST", "runs/log-metric", token, json={"run_id": world["run_id"], "key": "vm", "value": 1, "timestamp": 3}))
    assert (
        status(main.mlflow("POST", "runs/log-metric", token, json={"run_id": world["second"], "key": "vm", "value": 1, "timestamp": 3}))
        == 403
    )
    assert ok(main.infinstor("GET", "whoami", token))["username"] == "job:job-7"
    with pytest.raises(InfinStorError, match="would not issue a job token.*403"):
        asyncio.run(target_for("carol")._issue_token(job))  # carol only reads that run
