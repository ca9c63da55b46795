"""The company tracking service for tests: a real `mlflow server --app-name infinstor` in company
mode, trusting the real test IdP (idp_fixture), on SQLite or a throwaway PostgreSQL cluster.

- `CompanyServer`: the server process (workers 1, no job runner), its config and policy files.
- `user_token(idp, "alice")`: an access token from a real sign-in (authorization code + PKCE).
- `PostgresCluster`: initdb/pg_ctl from /usr/lib/postgresql/*/bin as the `postgres` user.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
import yaml

from idp_fixture import AUDIENCE, LAB_CLIENT, IdPBrowser, callback_params, free_port
from servers import mlflow_server_command, stop_process_group, wait_until_healthy

REDIRECT_URI = "http://127.0.0.1/infinstor/api/auth/callback"
JOB_SECRET = "job-token-secret-for-tests-0123456789abcdef"
ADMIN_GROUP = "acme-admins"


def user_token(idp, username: str, client_id: str = LAB_CLIENT) -> str:
    """Sign in as `username` at the IdP (auth code + PKCE) and return the access token."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email groups org",
            "state": state,
            "resource": AUDIENCE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    back = IdPBrowser(idp.issuer, username).authorize(f"{idp.metadata['authorization_endpoint']}?{query}")
    params = callback_params(back)
    assert params.get("state") == state, params
    response = requests.post(
        idp.metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": AUDIENCE,
        },
        timeout=15,
    )
    response.raise_for_status()
    return response.json()["access_token"]


class CompanyServer:
    """`mlflow server --app-name infinstor` in company mode."""

    def __init__(
        self,
        root: Path,
        issuer: str,
        *,
        backend_uri: str | None = None,
        policy: dict | None = None,
        config: dict | None = None,
        startup_timeout: float = 300,
    ):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.backend_uri = backend_uri or f"sqlite:///{root / 'mlflow.db'}"
        settings = {
            "oidc": {"issuer": issuer, "audience": AUDIENCE, "leeway": 0},
            "org_admin_groups": [ADMIN_GROUP],
            **(config or {}),
        }
        if policy is not None:
            (root / "policy.yaml").write_text(yaml.safe_dump(policy))
            settings["policy_file"] = str(root / "policy.yaml")
        self.config_path = root / "service.yaml"
        self.config_path.write_text(yaml.safe_dump(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
        env.update(
            INFINSTOR_SERVICE_MODE="company",
            INFINSTOR_SERVICE_CONFIG=str(self.config_path),
            INFINSTOR_JOB_TOKEN_SECRET=JOB_SECRET,
            MLFLOW_ENABLE_WORKSPACES="true",
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            PYTHONUNBUFFERED="1",
        )
        self.log_path = root / "service.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            mlflow_server_command(
                self.port,
                self.backend_uri,
                "--serve-artifacts",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--default-artifact-root",
                "mlflow-artifacts:/",
            ),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_until_healthy(self.proc, f"{self.uri}/health", startup_timeout):
            return
        exited = self.proc.poll() is not None
        self.stop()
        raise RuntimeError(f"the company service {'exited' if exited else 'did not start'}: {self.log_path.read_text()[-3000:]}")

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """`path` relative to the server (e.g. 'api/2.0/mlflow/experiments/get')."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return requests.request(method, f"{self.uri}/{path}", headers=headers, timeout=30, **kwargs)

    def mlflow(self, method: str, endpoint: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.call(method, f"api/2.0/mlflow/{endpoint}", token, **kwargs)

    def infinstor(self, method: str, endpoint: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.call(method, f"api/2.0/infinstor/{endpoint}", token, **kwargs)

    def stop(self) -> None:
        stop_process_group(self.proc)
        if not self._log.closed:
            self._log.close()


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a loopback port (initdb refuses root: run as `postgres`)."""

    def __init__(self):
        bin_dir = postgres_bin()
        if bin_dir is None:
            message = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install -y postgresql"
            if os.environ.get("CI"):
                # scripts/test-all.sh installs it: in CI its absence is a failure, never a quiet skip.
                pytest.fail(message)
            pytest.skip(message)
        self.bin = bin_dir
        # Not under pytest's tmp dir: that is private to root, and the server runs as `postgres`.
        root = self.root = Path(tempfile.mkdtemp(prefix="infinstor-pg-"))
        self.data = root / "data"
        self.port = free_port()
        self.as_user = [] if os.geteuid() != 0 else [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(root / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k {root} -F -c fsync=off -c full_page_writes=off",
                "start",
            ]
        )
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}"

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(self.as_user + command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr or result.stdout}")

    def create_database(self, name: str) -> str:
        self._run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name])
        return f"{self.url}/{name}"

    def drop_database(self, name: str) -> None:
        self._run([str(self.bin / "dropdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name])

    def stop(self) -> None:
        subprocess.run(
            self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster():
    """One throwaway PostgreSQL cluster for the session; each test module makes its own database."""
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


def company_server_on_each_backend(name: str, config: dict | None = None):
    """A module-scoped fixture: a CompanyServer on SQLite, then one on a database `name` of the
    session's PostgreSQL cluster (the module's tests run once against each), with `config`."""

    @pytest.fixture(scope="module", params=["sqlite", "postgresql"])
    def company_server(request, idp, tmp_path_factory):
        cluster = request.getfixturevalue("postgres_cluster") if request.param == "postgresql" else None
        root = tmp_path_factory.mktemp(f"{name}-{request.param}")
        server = CompanyServer(root, idp.issuer, backend_uri=cluster.create_database(name) if cluster else None, config=config)
        yield server
        server.stop()

    return company_server


@pytest.fixture(scope="module")
def restartable_postgres():
    """A PostgreSQL cluster of the test module's own, which its tests may stop and start."""
    from pg_tools import RestartablePostgres

    cluster = RestartablePostgres()
    try:
        yield cluster
    finally:
        cluster.stop()
