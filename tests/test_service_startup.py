"""Every start-up refusal of the company service is one clear paragraph (what is wrong, where, how
to fix it), a non-zero exit of `mlflow server` and no Python traceback: each kind of broken
configuration is given to the real `mlflow server --app-name infinstor`."""

from __future__ import annotations

import os
import subprocess

import pytest
import sqlalchemy as sa
import yaml

from idp_fixture import AUDIENCE, free_port
from servers import mlflow_server_command, stop_process_group

pytestmark = pytest.mark.slow

ISSUER = "https://idp.example.com"  # never contacted: every case is refused before a request


def start(
    tmp_path, config: dict | str | None, *, env: dict | None = None, args: tuple = (), backend: str | None = None, workspaces: bool = True
) -> subprocess.CompletedProcess:
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
    server_env.update(INFINSTOR_SERVICE_MODE="company", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true")
    if workspaces:
        server_env["MLFLOW_ENABLE_WORKSPACES"] = "true"
    if config is not None:
        path = tmp_path / "service.yaml"
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        server_env["INFINSTOR_SERVICE_CONFIG"] = str(path)
    server_env.update(env or {})
    # Two workers: a refusal must stop `mlflow server` itself, not leave uvicorn's supervisor
    # restarting crashed workers forever.
    proc = subprocess.Popen(
        mlflow_server_command(free_port(), backend or f"sqlite:///{tmp_path / 'mlflow.db'}", *args, workers=2),
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        stop_process_group(proc)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the server did not stop on its own: {stderr[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def assert_refused(result: subprocess.CompletedProcess, *expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("infinstor: the tracking service cannot start")]
    assert len(lines) == 1, output[-3000:]  # one paragraph, said once (not once per worker)
    paragraph = lines[0]
    for text in expected:
        assert text in paragraph, paragraph
    assert "infinstor service check" in paragraph or "docs/" in paragraph  # how to find out more
    return paragraph


GOOD = {"oidc": {"issuer": ISSUER, "audience": AUDIENCE}}


@pytest.mark.parametrize(
    "name, config, env, expected",
    [
        (
            "no such config file",
            None,
            {"INFINSTOR_SERVICE_CONFIG": "/nonexistent/service.yaml"},
            ("/nonexistent/service.yaml", "INFINSTOR_SERVICE_CONFIG"),
        ),
        ("not YAML", "oidc: [issuer\n", {}, ("service.yaml", "not valid YAML")),
        ("unknown setting", {**GOOD, "olldc": {}}, {}, ("service.yaml", "olldc")),
        ("no issuer", {"oidc": {"audience": AUDIENCE}}, {}, ("oidc.issuer", "INFINSTOR_OIDC_ISSUER")),
        ("short job secret", GOOD, {"INFINSTOR_JOB_TOKEN_SECRET": "short"}, ("INFINSTOR_JOB_TOKEN_SECRET", "32", "openssl rand")),
        ("browser without session secret", {**GOOD, "browser": {"client_id": "ui"}}, {}, ("session_secret", "INFINSTOR_SESSION_SECRET")),
        ("bad leeway", {"oidc": {**GOOD["oidc"], "leeway": 3600}}, {}, ("oidc.leeway",)),
        ("unknown mode", GOOD, {"INFINSTOR_SERVICE_MODE": "enterprise"}, ("INFINSTOR_SERVICE_MODE", "company")),
        ("unsupported database", {**GOOD, "database_uri": "mongodb://db/mlflow"}, {}, ("database_uri", "postgresql")),
    ],
)
def test_configuration_mistakes(tmp_path, name, config, env, expected):
    assert_refused(start(tmp_path, config, env=env), *expected)


def test_invalid_policy(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"operations": {"SetModelVersionTagz": "reader"}}))
    assert_refused(start(tmp_path, {**GOOD, "policy_file": str(policy)}), str(policy), "SetModelVersionTagz")


def test_missing_policy_file(tmp_path):
    assert_refused(start(tmp_path, {**GOOD, "policy_file": "/nonexistent/policy.yaml"}), "/nonexistent/policy.yaml")


def test_workspaces_not_enabled(tmp_path):
    assert_refused(start(tmp_path, GOOD, workspaces=False), "--enable-workspaces")


def test_gunicorn_is_refused(tmp_path):
    assert_refused(start(tmp_path, GOOD, args=("--gunicorn-opts", "--timeout 60")), "uvicorn", "--gunicorn-opts")


def test_database_unreachable(tmp_path):
    port = free_port()  # nothing listens there
    uri = f"postgresql+psycopg2://mlflow:hunter2secret@127.0.0.1:{port}/mlflow"
    paragraph = assert_refused(start(tmp_path, {**GOOD, "database_uri": uri}), f"127.0.0.1:{port}", "database_uri")
    assert "hunter2secret" not in paragraph  # never the password


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_schema_newer_than_this_release(tmp_path, request, backend):
    from infinstor_jupyterlab.tracking_service.db import SCHEMA_VERSION, make_engine, migrate, revision_of, version_table

    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'ours.db'}"
    else:
        uri = request.getfixturevalue("postgres_cluster").create_database("startup_newer")
    engine = make_engine(uri)
    migrate(engine)
    with engine.begin() as c:
        c.execute(version_table.update().values(version_num=revision_of(SCHEMA_VERSION + 1)))
    engine.dispose()
    assert_refused(start(tmp_path, {**GOOD, "database_uri": uri}), f"version {SCHEMA_VERSION + 1}", "upgrade")


def test_a_good_configuration_still_starts(tmp_path):
    """The checks before the workers start do not refuse a good configuration (the server is up)."""
    from servers import wait_until_healthy

    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
    env.update(
        INFINSTOR_SERVICE_MODE="company",
        INFINSTOR_SERVICE_CONFIG=str(path),
        MLFLOW_ENABLE_WORKSPACES="true",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        mlflow_server_command(port, f"sqlite:///{tmp_path / 'mlflow.db'}"),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_until_healthy(proc, f"http://127.0.0.1:{port}/health", 120), (tmp_path / "server.log").read_text()[-3000:]
        with sa.create_engine(f"sqlite:///{tmp_path / 'mlflow.db'}").connect() as c:
            assert sa.inspect(c).has_table("infinstor_alembic_version")
    finally:
        stop_process_group(proc)
        log.close()
