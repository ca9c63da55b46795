"""Backup and restore of the company service (`python -m infinstor_jupyterlab.tracking_service.backup`):
seed experiments, runs, metrics, an artifact, a registered model, grants and an API token through a
real service on a real PostgreSQL; back up; wipe the database and the artifact store; restore into
a fresh database and a new artifact directory; start a new service on them and check that every
item came back, that grants still apply and that the API token still authenticates.
Plus the S3 side of the artifact copy, on moto's S3 server on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import boto3
import pytest

from ec2_fixture import AWS_ENV, moto_endpoint  # noqa: F401  (fixture)
from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow


def ok(response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def tool(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "infinstor_jupyterlab.tracking_service.backup", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshot(server: CompanyServer, tokens: dict, experiment_id: str, run_id: str, artifact_path: str) -> dict:
    """Everything the scenario created, as each user sees it."""
    alice, bob, carol, dave = (tokens[u] for u in ("alice", "bob", "carol", "dave"))
    M = server.mlflow
    view = {
        "experiments": {
            u: sorted(e["name"] for e in ok(M("POST", "experiments/search", t, json={"max_results": 100})).get("experiments", []))
            for u, t in tokens.items()
        },
        "run": ok(M("GET", "runs/get", alice, params={"run_id": run_id}))["run"],
        "runs": sorted(r["info"]["run_id"] for r in ok(M("POST", "runs/search", bob, json={"experiment_ids": [experiment_id]}))["runs"]),
        "history": ok(M("GET", "metrics/get-history", alice, params={"run_id": run_id, "metric_key": "loss"}))["metrics"],
        "model": ok(M("GET", "registered-models/get", carol, params={"name": "churn"}))["registered_model"],
        "version": ok(M("GET", "model-versions/get", carol, params={"name": "churn", "version": "1"}))["model_version"],
        "experiment_grants": sorted(
            json.dumps(g, sort_keys=True)
            for g in ok(
                server.infinstor("GET", "permissions", alice, params={"resource_type": "experiment", "resource_id": experiment_id})
            )["permissions"]
        ),
        "model_grants": sorted(
            json.dumps(g, sort_keys=True)
            for g in ok(
                server.infinstor("GET", "permissions", alice, params={"resource_type": "registered_model", "resource_id": "churn"})
            )["permissions"]
        ),
        # (last use is bookkeeping each replica refreshes; everything else must match)
        "tokens": [{k: v for k, v in t.items() if k != "last_used_at"} for t in ok(server.infinstor("GET", "tokens", bob))["tokens"]],
        "artifact": server.call("GET", f"api/2.0/mlflow-artifacts/artifacts/{artifact_path}/model/weights.bin", alice).content,
        # Grants apply: carol (nlp) reads the experiment only through her grant; dave (globex) sees nothing.
        "carol_reads_experiment": M("GET", "experiments/get", carol, params={"experiment_id": experiment_id}).status_code,
        "carol_cannot_write": M("POST", "runs/create", carol, json={"experiment_id": experiment_id}).status_code,
        "dave_reads_experiment": M("GET", "experiments/get", dave, params={"experiment_id": experiment_id}).status_code,
        "dave_reads_model": M("GET", "registered-models/get", dave, params={"name": "churn"}).status_code,
    }
    return view


def test_backup_wipe_restore(restartable_postgres, idp, tmp_path_factory):
    root = tmp_path_factory.mktemp("backup")
    tokens = {u: user_token(idp, u) for u in ("alice", "bob", "carol", "dave")}
    alice, bob = tokens["alice"], tokens["bob"]
    source_uri = restartable_postgres.create_database("mlflow")
    server = CompanyServer(root / "before", idp.issuer, backend_uri=source_uri)
    try:
        M = server.mlflow
        experiment_id = ok(M("POST", "experiments/create", alice, json={"name": "churn-exp"}))["experiment_id"]
        ok(M("POST", "experiments/create", tokens["dave"], json={"name": "globex-exp"}))
        run = ok(M("POST", "runs/create", bob, json={"experiment_id": experiment_id, "run_name": "r1"}))["run"]
        run_id = run["info"]["run_id"]
        ok(
            M(
                "POST",
                "runs/log-batch",
                bob,
                json={
                    "run_id": run_id,
                    "params": [{"key": "lr", "value": "0.01"}],
                    "tags": [{"key": "team", "value": "vision"}],
                    "metrics": [{"key": "loss", "value": 1.0 / (step + 1), "timestamp": 1000 + step, "step": step} for step in range(50)],
                },
            )
        )
        artifact_path = run["info"]["artifact_uri"][len("mlflow-artifacts:/") :]
        weights = os.urandom(4096)
        assert (
            server.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{artifact_path}/model/weights.bin", bob, data=weights).status_code
            == 200
        )
        ok(M("POST", "registered-models/create", alice, json={"name": "churn"}))
        ok(
            M(
                "POST",
                "model-versions/create",
                alice,
                json={"name": "churn", "source": f"{run['info']['artifact_uri']}/model", "run_id": run_id},
            )
        )
        for grant in (
            {"resource_type": "experiment", "resource_id": experiment_id, "principal_type": "user", "principal": "carol", "role": "reader"},
            {"resource_type": "registered_model", "resource_id": "churn", "principal_type": "org", "principal": "acme", "role": "reader"},
        ):
            ok(server.infinstor("POST", "permissions", alice, json=grant))
        api_token = ok(server.infinstor("POST", "tokens", bob, json={"name": "nightly", "expires_in_days": 30}))["token"]
        tokens["bob-api-token"] = api_token
        before = snapshot(server, tokens, experiment_id, run_id, artifact_path)
        assert before["artifact"] == weights and len(before["history"]) == 50 and before["carol_reads_experiment"] == 200
        assert (before["carol_cannot_write"], before["dave_reads_experiment"], before["dave_reads_model"]) == (403, 404, 404)
        manifest = tool(
            "backup", "--database-uri", source_uri, "--artifacts", str(server.root / "artifacts"), "--out", str(root / "backup")
        )
    finally:
        server.stop()
    assert manifest["database"]["tables"]["infinstor_api_tokens"] == 1 and manifest["artifacts"]["files"] == 1
    assert api_token not in (root / "backup" / "manifest.json").read_text()

    # Wipe: the database and the artifact store are gone.
    restartable_postgres.drop_database("mlflow")
    shutil.rmtree(server.root / "artifacts")

    # A damaged backup is refused before anything is written.
    target_uri = restartable_postgres.create_database("restored")
    damaged = root / "damaged"
    shutil.copytree(root / "backup", damaged)
    with open(damaged / "database.dump", "r+b") as f:
        f.seek(200)
        f.write(b"\0" * 16)
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "infinstor_jupyterlab.tracking_service.backup",
            "restore",
            "--database-uri",
            target_uri,
            "--artifacts",
            str(root / "nowhere"),
            "--from",
            str(damaged),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "SHA-256" in failed.stderr and not (root / "nowhere").exists()

    restored_artifacts = root / "after" / "artifacts"
    result = tool("restore", "--database-uri", target_uri, "--artifacts", str(restored_artifacts), "--from", str(root / "backup"))
    assert result["tables"] == manifest["database"]["tables"]
    # Restoring over a database that has tables is refused.
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "infinstor_jupyterlab.tracking_service.backup",
            "restore",
            "--database-uri",
            target_uri,
            "--artifacts",
            str(restored_artifacts),
            "--from",
            str(root / "backup"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1 and "already has tables" in again.stderr

    server = CompanyServer(root / "after", idp.issuer, backend_uri=target_uri)
    try:
        after = snapshot(server, tokens, experiment_id, run_id, artifact_path)
        assert after == before
        assert after["experiments"]["dave"] == ["globex-exp"] and "churn-exp" in after["experiments"]["carol"]
        # The API token still authenticates, as bob, and still writes his run.
        who = ok(server.infinstor("GET", "whoami", api_token))
        assert (who["username"], who["org"], who["auth"]) == ("bob", "acme", "api_token")
        ok(
            server.mlflow(
                "POST",
                "runs/log-batch",
                api_token,
                json={"run_id": run_id, "metrics": [{"key": "loss", "value": 0.001, "timestamp": 5000, "step": 50}]},
            )
        )
        assert len(ok(server.mlflow("GET", "metrics/get-history", alice, params={"run_id": run_id, "metric_key": "loss"}))["metrics"]) == 51
        # And a revoked token stays revoked: revoke it now, it stops working at once.
        token_id = after["tokens"][0]["id"]
        ok(server.infinstor("DELETE", f"tokens/{token_id}", bob))
        assert server.infinstor("GET", "whoami", api_token).status_code == 401
    finally:
        server.stop()


def test_s3_artifact_store_round_trip(moto_endpoint, tmp_path, monkeypatch):  # noqa: F811
    from infinstor_jupyterlab.tracking_service.backup import copy_from_store, copy_to_store

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    for bucket in ("artifacts-live", "artifacts-restored"):
        s3.create_bucket(Bucket=bucket)
    objects = {f"mlflow/1/{i:02d}/artifacts/model/part-{i}.bin": os.urandom(100 + i) for i in range(12)}
    objects["outside-prefix.txt"] = b"not part of the store"
    for key, data in objects.items():
        s3.put_object(Bucket="artifacts-live", Key=key, Body=data)

    files, size = copy_from_store("s3://artifacts-live/mlflow", tmp_path / "copy", moto_endpoint)
    inside = {k: v for k, v in objects.items() if k.startswith("mlflow/")}
    assert (files, size) == (len(inside), sum(len(v) for v in inside.values()))
    assert copy_to_store(tmp_path / "copy", "s3://artifacts-restored/mlflow", moto_endpoint)[0] == files
    restored = {
        item["Key"]: s3.get_object(Bucket="artifacts-restored", Key=item["Key"])["Body"].read()
        for item in s3.list_objects_v2(Bucket="artifacts-restored")["Contents"]
    }
    assert restored == inside
