"""`infinstor service check` against the real test IdP and a real database (SQLite, PostgreSQL):
a good configuration passes; each kind of broken configuration fails with the fix; tokens missing
each claim are explained. The check is run as the CLI (exit code, readable output, --json) and, for
the many token cases, as the same function the CLI calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from idp_fixture import AUDIENCE, SHORT_CLIENT, IdPBrowser, callback_params, free_port
from service_fixture import JOB_SECRET, REDIRECT_URI, company_server_on_each_backend, user_token

pytestmark = pytest.mark.slow

checked_server = company_server_on_each_backend("check")


def environ_of(server, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
    env.update(
        {
            "INFINSTOR_SERVICE_CONFIG": str(server.config_path),
            "MLFLOW_BACKEND_STORE_URI": server.backend_uri,
            "INFINSTOR_JOB_TOKEN_SECRET": JOB_SECRET,
            "MLFLOW_SERVER_ALLOWED_HOSTS": "mlflow.example.com",
            **extra,
        }
    )
    return env


def run_cli(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infinstor_jupyterlab.cli", "service", "check", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def statuses(report, section: str) -> list[str]:
    return [f.status for f in report.findings if f.section == section]


def failure(report, section: str = "token") -> str:
    found = [f for f in report.findings if f.section == section and f.status == "fail"]
    assert found, [(f.section, f.status, f.message) for f in report.findings]
    return " ".join(f"{f.message} FIX {f.fix}" for f in found)


def test_a_good_configuration_passes(checked_server, idp):
    env = environ_of(checked_server)
    token = user_token(idp, "alice")
    result = run_cli(env, "--token", "-", "--lab-url", "https://lab.example.com/user/alice", stdin=token + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Result: PASS" in out and "FAIL " not in out
    assert "InfinStor tables at schema step 3" in out and "MLflow's tables at this MLflow's schema" in out
    assert f"discovery document of {idp.issuer}" in out
    for expected in (
        "user          alice  (claim preferred_username)",
        "organisation  acme",
        "groups        1: vision",
        f"audience      '{AUDIENCE}'",
        "https://lab.example.com/user/alice/infinstor/api/auth/callback",
        "MLFLOW_SERVER_ALLOWED_HOSTS: mlflow.example.com",
    ):
        assert expected in out, out
    assert token not in out  # the token itself is never printed
    as_json = json.loads(run_cli(env, "--token", token, "--json").stdout)
    assert as_json["ok"] is True and as_json["token"]["organisation"]["workspace"] == "acme"
    assert as_json["token"]["groups"]["value"] == ["vision"] and 0 < as_json["token"]["expires_in"] <= 300
    assert {c["section"] for c in as_json["checks"]} >= {"configuration", "policy", "database", "identity provider", "token", "origins"}


def test_tokens_missing_each_claim(checked_server, idp, other_issuer, tmp_path):
    from infinstor_jupyterlab.tracking_service import check

    env = environ_of(checked_server)
    report = check.run(env, token=user_token(idp, "nora"))  # no organisation claim
    assert not report.ok and "no organisation" in failure(report) and "organisation claim" in failure(report)
    report = check.run(env, token=user_token(idp, "gus"))  # no groups
    assert report.ok and any("no groups" in f.message and f.fix for f in report.findings if f.status == "warn")
    report = check.run(env, token=user_token(idp, "alice", "layout-opaque"))
    assert not report.ok and "not a JWT" in failure(report) and report.token == {"format": "opaque"}
    report = check.run(env, token=user_token(idp, "alice", "layout-entra"))  # Entra layout under a generic configuration
    assert not report.ok and "no organisation" in failure(report)
    report = check.run(env, token=user_token(idp, "olivia", "layout-entra"))
    assert any("group overage" in f.message and "SCIM" in f.fix for f in report.findings)
    report = check.run(env, token=user_token(other_issuer, "alice"))  # another issuer
    assert not report.ok and "refuses it" in failure(report)
    expiring = user_token(idp, "alice", SHORT_CLIENT)
    time.sleep(5.5)  # the short client's tokens live 4 s; the check's leeway is the configuration's (0 here)
    report = check.run(env, token=expiring)
    assert not report.ok and "expired" in failure(report) and report.token["expires_in"] < 0
    # An ID token given instead of the access token.
    report = check.run(env, token=id_token(idp, "alice"))
    assert not report.ok and any("ID token" in f.message for f in report.findings)
    # Another audience than the configured one: the fix for the provider at hand.
    other_audience = tmp_path / "audience.yaml"
    data = yaml.safe_load(checked_server.config_path.read_text())
    data["oidc"]["audience"] = "urn:something:else"
    other_audience.write_text(yaml.safe_dump(data))
    report = check.run({**env, "INFINSTOR_SERVICE_CONFIG": str(other_audience)}, token=user_token(idp, "alice"))
    assert not report.ok and "audience" in failure(report) and "aud" in failure(report)


def id_token(idp, username: str) -> str:
    import base64
    import hashlib
    import secrets
    from urllib.parse import urlencode

    import requests

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "client_id": "infinstor-lab",
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email",
            "state": "s",
            "nonce": "n",
            "resource": AUDIENCE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    params = callback_params(IdPBrowser(idp.issuer, username).authorize(f"{idp.metadata['authorization_endpoint']}?{query}"))
    response = requests.post(
        idp.metadata["token_endpoint"],
        timeout=15,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": "infinstor-lab",
            "code_verifier": verifier,
            "resource": AUDIENCE,
        },
    )
    return response.json()["id_token"]


@pytest.mark.parametrize(
    "kind, change, section, expected",
    [
        ("not YAML", "oidc: [", "configuration", "not valid YAML"),
        ("unknown setting", {"oidc": {"issuer": "ISSUER", "audience": AUDIENCE, "claimz": {}}}, "configuration", "claimz"),
        ("issuer unreachable", {"oidc": {"issuer": "http://127.0.0.1:PORT", "audience": AUDIENCE}}, "identity provider", "cannot read"),
        ("issuer mismatch", {"oidc": {"issuer": "ISSUER/", "audience": AUDIENCE, "jwks_uri": None}}, None, None),
        ("invalid policy", {"oidc": {"issuer": "ISSUER", "audience": AUDIENCE}, "policy_file": "POLICY"}, "policy", "Nope"),
        (
            "database unreachable",
            {"oidc": {"issuer": "ISSUER", "audience": AUDIENCE}, "database_uri": "postgresql+psycopg2://u:secretpw@127.0.0.1:PORT/x"},
            "database",
            "cannot connect",
        ),
        ("CORS open", {"oidc": {"issuer": "ISSUER", "audience": AUDIENCE}}, "origins", "'*'"),
    ],
)
def test_each_kind_of_broken_configuration_fails_with_a_fix(checked_server, idp, tmp_path, kind, change, section, expected):
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"operations": {"Nope": "reader"}}))
    text = change if isinstance(change, str) else yaml.safe_dump(change)
    text = text.replace("ISSUER", idp.issuer).replace("PORT", str(free_port())).replace("POLICY", str(policy))
    config = tmp_path / "service.yaml"
    config.write_text(text)
    env = environ_of(checked_server, INFINSTOR_SERVICE_CONFIG=str(config))
    if kind == "CORS open":
        env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"] = "*"
    from infinstor_jupyterlab.tracking_service import check

    # The function the CLI runs (the CLI itself: below and in the good case), then what it prints.
    report = check.run(env)
    out = check.render(report)
    if kind == "issuer mismatch":  # a trailing slash is the same issuer: this one passes
        assert report.ok, out
        return
    assert not report.ok and "Result: FAIL" in out
    line = next(line for line in out.splitlines() if line.strip().startswith("FAIL") and section in line)
    assert expected in line, out
    assert "fix:" in out and "secretpw" not in out and "secretpw" not in json.dumps(report.to_json())
    if kind == "not YAML":
        result = run_cli(env)
        assert result.returncode == 1 and "Result: FAIL" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_schema_newer_than_this_release_and_migrations_due(checked_server, tmp_path):
    from infinstor_jupyterlab.tracking_service import check
    from infinstor_jupyterlab.tracking_service.db import SCHEMA_VERSION, make_engine, migrate, revision_of, version_table

    env = environ_of(checked_server)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = make_engine(fresh)
    migrate(engine)
    with engine.begin() as c:
        c.execute(version_table.update().values(version_num=revision_of(SCHEMA_VERSION - 1)))
    report = check.run(env, database_uri=fresh)
    assert report.ok and any(f.status == "warn" and f"step {SCHEMA_VERSION - 1}" in f.message for f in report.findings)
    with engine.begin() as c:
        c.execute(version_table.update().values(version_num=revision_of(SCHEMA_VERSION + 1)))
    engine.dispose()
    report = check.run(env, database_uri=fresh)
    assert not report.ok and "newer than this release" in failure(report, "database")


def test_fixes_name_the_provider_from_the_issuer():
    from infinstor_jupyterlab.tracking_service.provider_fixes import fix_for, provider_of

    cases = {
        "https://login.microsoftonline.com/8eaef023-2b34-4da1-9baa-8bc8c9d6a490/v2.0": ("entra", "tid"),
        "https://acme.okta.com/oauth2/default": ("okta", "custom claim"),
        "https://accounts.google.com": ("google", "hd"),
        "https://sso.acme.com/realms/acme": ("keycloak", "organization"),
        "https://acme.eu.auth0.com/": ("auth0", "org_id"),
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC": ("cognito", "pre-token-generation"),
        "https://idp.example.com": ("generic", "oidc.claims.org"),
    }
    for issuer, (provider, words) in cases.items():
        assert provider_of(issuer) == provider
        assert words in fix_for("org", provider), (issuer, fix_for("org", provider))
    assert "client_id" in fix_for("audience", "cognito") and "audience=" in fix_for("opaque", "auth0")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_service_migrate_is_the_migration_job_and_its_wait(tmp_path, request, backend, idp):
    """What the Kubernetes migration Job runs (`infinstor service migrate`) and what each new
    replica's init container waits for (`--check --wait`)."""
    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        uri = request.getfixturevalue("postgres_cluster").create_database("migrate_job")
    config = tmp_path / "service.yaml"
    config.write_text(yaml.safe_dump({"oidc": {"issuer": idp.issuer, "audience": AUDIENCE}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
    env.update(INFINSTOR_SERVICE_CONFIG=str(config), MLFLOW_BACKEND_STORE_URI=uri)

    def migrate(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "infinstor_jupyterlab.cli", "service", "migrate", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    due = migrate("--check")
    out, err = due.communicate(timeout=180)
    assert due.returncode == 3 and "MLflow's tables do not exist yet" in err and "step 0" in err, out + err
    waiting = migrate("--check", "--wait", "150")  # a new replica's init container
    time.sleep(2)
    assert waiting.poll() is None  # still waiting: nothing is migrated yet
    job = migrate()
    out, err = job.communicate(timeout=180)
    assert job.returncode == 0 and "created MLflow's tables" in out and "step 3" in out, out + err
    out, err = waiting.communicate(timeout=180)
    assert waiting.returncode == 0 and "No migration is due" in out, out + err
    again = migrate()
    assert again.communicate(timeout=180) and again.returncode == 0  # idempotent
