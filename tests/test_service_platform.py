"""Issue 14 end to end, on a company service with the shipped defaults, on SQLite and PostgreSQL,
against the real test IdP: registered models are the organisation's shared space."""

from __future__ import annotations

import pytest
import requests

from service_fixture import company_server_on_each_backend, user_token

pytestmark = pytest.mark.slow

platform_server = company_server_on_each_backend("platform")


def ok(response: requests.Response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def test_new_models_are_readable_by_the_whole_organisation(platform_server, idp):
    server, M = platform_server, platform_server.mlflow
    alice, erin, dave = (user_token(idp, u) for u in ("alice", "erin", "dave"))
    # alice (acme, vision) logs a run in her experiment and registers a model from it.
    experiment_id = ok(M("POST", "experiments/create", alice, json={"name": "org-shared-exp"}))["experiment_id"]
    run = ok(M("POST", "runs/create", alice, json={"experiment_id": experiment_id}))["run"]["info"]
    ok(M("POST", "runs/log-metric", alice, json={"run_id": run["run_id"], "key": "auc", "value": 0.8, "timestamp": 1}))
    ok(M("POST", "registered-models/create", alice, json={"name": "org-shared-model"}))
    ok(
        M(
            "POST",
            "model-versions/create",
            alice,
            json={"name": "org-shared-model", "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]},
        )
    )
    grants = ok(
        server.infinstor("GET", "permissions", alice, params={"resource_type": "registered_model", "resource_id": "org-shared-model"})
    )
    assert ("org", "acme", "reader") in {(g["principal_type"], g["principal"], g["role"]) for g in grants["permissions"]}
    # erin (acme, sales: another group, no grant of her own) reads the model, its version and the
    # run that produced it; not the experiment, and she changes nothing.
    assert (
        ok(M("GET", "registered-models/get", erin, params={"name": "org-shared-model"}))["registered_model"]["name"] == "org-shared-model"
    )
    assert "org-shared-model" in M("GET", "registered-models/search", erin).text
    ok(M("GET", "model-versions/get", erin, params={"name": "org-shared-model", "version": "1"}))
    assert ok(M("GET", "runs/get", erin, params={"run_id": run["run_id"]}))["run"]["data"]["metrics"][0]["key"] == "auc"
    assert M("GET", "experiments/get", erin, params={"experiment_id": experiment_id}).status_code == 404
    assert M("POST", "registered-models/set-tag", erin, json={"name": "org-shared-model", "key": "k", "value": "v"}).status_code == 403
    # dave (globex) gets 404 for all of it, and finds no name in a search.
    assert M("GET", "registered-models/get", dave, params={"name": "org-shared-model"}).status_code == 404
    assert M("GET", "runs/get", dave, params={"run_id": run["run_id"]}).status_code == 404
    assert "org-shared-model" not in M("GET", "registered-models/search", dave).text
    # A manager may take the organisation's read access away from one model.
    ok(
        server.infinstor(
            "DELETE",
            "permissions",
            alice,
            json={"resource_type": "registered_model", "resource_id": "org-shared-model", "principal_type": "org", "principal": "acme"},
        )
    )
    assert M("GET", "registered-models/get", erin, params={"name": "org-shared-model"}).status_code == 404
    assert M("GET", "runs/get", erin, params={"run_id": run["run_id"]}).status_code == 404


def cli_env(tmp_path, name: str) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "JPY_"))}
    env.update(INFINSTOR_DATA_DIR=str(tmp_path / name), INFINSTOR_INSECURE_LOOPBACK="1", PYTHONUNBUFFERED="1")
    return env


def cli(env: dict, *args, stdin: str | None = None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "infinstor_jupyterlab.cli", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def test_existing_models_are_shared_with_the_organisation_by_an_admin_command(platform_server, idp, tmp_path):
    """The documented way to apply the org-readable default to models that existed before it."""
    server, M = platform_server, platform_server.mlflow
    alice, erin, frank = (user_token(idp, u) for u in ("alice", "erin", "frank"))
    org_grant = {"resource_type": "registered_model", "principal_type": "org", "principal": "acme"}
    for name in ("legacy-a", "legacy-b", "legacy-kept"):
        ok(M("POST", "registered-models/create", alice, json={"name": name}))
    for name in ("legacy-a", "legacy-b"):  # as if created before the default: no organisation grant
        ok(server.infinstor("DELETE", "permissions", alice, json={**org_grant, "resource_id": name}))
    ok(server.infinstor("POST", "permissions", alice, json={**org_grant, "resource_id": "legacy-kept", "role": "editor"}))
    assert M("GET", "registered-models/get", erin, params={"name": "legacy-a"}).status_code == 404
    service = ["--service", server.uri]
    # Only organisation admins may: alice is refused, clearly, and nothing changes.
    alice_env = cli_env(tmp_path, "alice")
    assert cli(alice_env, "login", *service, "--token", "-", stdin=alice + "\n").returncode == 0
    refused = cli(alice_env, "share", "org-readable", *service)
    assert refused.returncode == 1 and "organisation admins" in refused.stderr, refused.stderr
    frank_env = cli_env(tmp_path, "frank")
    assert cli(frank_env, "login", *service, "--token", "-", stdin=frank + "\n").returncode == 0
    dry = cli(frank_env, "share", "org-readable", *service, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "legacy-a" in dry.stdout and "legacy-b" in dry.stdout and "legacy-kept" not in dry.stdout
    assert M("GET", "registered-models/get", erin, params={"name": "legacy-a"}).status_code == 404  # a dry run changes nothing
    done = cli(frank_env, "share", "org-readable", *service)
    assert done.returncode == 0 and "shared: legacy-a" in done.stdout and "shared: legacy-b" in done.stdout, done.stdout + done.stderr
    assert "legacy-kept" not in done.stdout and "registered models" in done.stdout  # (other tests' models may be shared too)
    for name in ("legacy-a", "legacy-b"):
        assert ok(M("GET", "registered-models/get", erin, params={"name": name}))["registered_model"]["name"] == name
    # A model that already had an organisation grant keeps it as it was.
    kept = ok(server.infinstor("GET", "permissions", alice, params={"resource_type": "registered_model", "resource_id": "legacy-kept"}))
    assert ("org", "acme", "editor") in {(g["principal_type"], g["principal"], g["role"]) for g in kept["permissions"]}
    again = cli(frank_env, "share", "org-readable", *service, "--json")
    assert again.returncode == 0 and json_of(again.stdout)["shared"] == []


def json_of(text: str):
    import json

    return json.loads(text)


def test_job_tokens_from_the_cli(platform_server, idp, tmp_path):
    server, M = platform_server, platform_server.mlflow
    alice, carol = user_token(idp, "alice"), user_token(idp, "carol")
    experiment_id = ok(M("POST", "experiments/create", alice, json={"name": "cli-job-exp"}))["experiment_id"]
    run_id = ok(M("POST", "runs/create", alice, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    other = ok(M("POST", "runs/create", alice, json={"experiment_id": experiment_id}))["run"]["info"]["run_id"]
    service = ["--service", server.uri]
    env = cli_env(tmp_path, "alice")
    assert cli(env, "login", *service, "--token", "-", stdin=alice + "\n").returncode == 0
    created = cli(env, "token", "create", *service, "--kind", "job", "--run-id", run_id, "--ttl", "600", "--job-id", "nightly-7")
    assert created.returncode == 0, created.stderr
    job_token = created.stdout.strip()
    assert "job token" in created.stderr and "600" in created.stderr
    assert ok(server.infinstor("GET", "whoami", job_token))["username"] == "job:nightly-7"
    ok(M("POST", "runs/log-metric", job_token, json={"run_id": run_id, "key": "loss", "value": 0.1, "timestamp": 1}))
    assert M("POST", "runs/log-metric", job_token, json={"run_id": other, "key": "loss", "value": 0.1, "timestamp": 1}).status_code == 403
    as_json = json_of(cli(env, "token", "create", *service, "--kind", "job", "--run-id", run_id, "--json").stdout)
    assert as_json["run_id"] == run_id and as_json["expires_in"] == 3600 and as_json["token"].count(".") == 2
    # Usage mistakes and refusals are clear and fail the command.
    missing = cli(env, "token", "create", *service, "--kind", "job")
    assert missing.returncode == 2 and "--run-id" in missing.stderr
    no_name = cli(env, "token", "create", *service)
    assert no_name.returncode == 2 and "--name" in no_name.stderr
    too_long = cli(env, "token", "create", *service, "--kind", "job", "--run-id", run_id, "--ttl", "999999")
    assert too_long.returncode == 1 and "ttl_seconds must be" in too_long.stderr
    carol_env = cli_env(tmp_path, "carol")  # carol may not write alice's run
    assert cli(carol_env, "login", *service, "--token", "-", stdin=carol + "\n").returncode == 0
    refused = cli(carol_env, "token", "create", *service, "--kind", "job", "--run-id", run_id)
    assert refused.returncode == 1 and "refused (404)" in refused.stderr


def test_scim_tokens_from_the_cli(platform_server, idp, tmp_path):
    import requests as http

    server = platform_server
    service = ["--service", server.uri]
    env = cli_env(tmp_path, "frank")
    assert cli(env, "login", *service, "--token", "-", stdin=user_token(idp, "frank") + "\n").returncode == 0
    created = cli(env, "token", "create", *service, "--kind", "scim", "--name", "okta")
    assert created.returncode == 0 and "/scim/v2" in created.stderr, created.stderr
    token = created.stdout.strip()
    users = http.get(f"{server.uri}/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert users.status_code == 200 and "totalResults" in users.json()
    listed = json_of(cli(env, "token", "list", *service, "--kind", "scim", "--json").stdout)
    entry = next(t for t in listed if t["name"] == "okta")
    assert token not in str(listed)
    assert cli(env, "token", "revoke", *service, "--kind", "scim", entry["id"]).returncode == 0
    assert http.get(f"{server.uri}/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 401
    alice_env = cli_env(tmp_path, "alice")
    assert cli(alice_env, "login", *service, "--token", "-", stdin=user_token(idp, "alice") + "\n").returncode == 0
    refused = cli(alice_env, "token", "create", *service, "--kind", "scim", "--name", "mine")
    assert refused.returncode == 1 and "organisation admins" in refused.stderr
