"""A real OpenID Connect provider (tests/idp, npm `oidc-provider`) and a token-checking MLflow
service for tests, plus `IdPBrowser`, which completes sign-ins over HTTP the way a browser would.

Fixtures (imported by conftest):
- `idp` (session): the running provider; `idp.issuer` is its URL (`idp_issuer` yields just that).
- `oidc_service` (session): `mlflow server --app-name infinstor` in oidc mode trusting `idp`.

Test users (password IDP_PASSWORD): alice, bob (acme, [vision]), carol (acme, [nlp]),
dave (globex, [research]), erin (acme, [sales]), frank (acme, [acme-admins]). Clients: `infinstor-lab` (public: auth code + PKCE, refresh, device
code; access tokens live 300 s), `infinstor-lab-short` (the same, 4 s tokens), and
`infinstor-automation` (confidential, client_credentials, secret AUTOMATION_SECRET).
"""

from __future__ import annotations

import html.parser
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from servers import mlflow_server_command, stop_process_group, wait_until_healthy

IDP_DIR = Path(__file__).parent / "idp"
IDP_PASSWORD = "wonderland"
AUDIENCE = "urn:infinstor:tracking"
LAB_CLIENT = "infinstor-lab"
SHORT_CLIENT = "infinstor-lab-short"
AUTOMATION_CLIENT = "infinstor-automation"
AUTOMATION_SECRET = "automation-secret"
TEST_SCOPES = "openid profile email groups org offline_access"
# pytest-jupyter serves under this base URL; the IdP must accept its callback (any loopback port).
EXTRA_REDIRECT_URIS = [
    "http://127.0.0.1/a%40b/infinstor/api/auth/callback",
    "http://localhost/a%40b/infinstor/api/auth/callback",
]

_install_lock = threading.Lock()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_idp_installed() -> None:
    """`npm ci` once (or `npm install` without a lock file) when node_modules is missing."""
    with _install_lock:
        if (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: the test identity provider cannot run")
        command = "ci" if (IDP_DIR / "package-lock.json").exists() else "install"
        subprocess.run(
            [npm, command, "--no-audit", "--no-fund", "--loglevel=error"], cwd=IDP_DIR, check=True, timeout=300, stdout=subprocess.DEVNULL
        )


class IdP:
    """The provider process (one per test session unless a test starts its own)."""

    def __init__(self, log_path: Path, *, env: dict[str, str] | None = None):
        ensure_idp_installed()
        self.log_path = log_path
        full_env = {
            **os.environ,
            "IDP_PASSWORD": IDP_PASSWORD,
            "IDP_REDIRECT_URIS": ",".join(EXTRA_REDIRECT_URIS),
            "IDP_AUDIENCE": AUDIENCE,
            "IDP_AUTOMATION_SECRET": AUTOMATION_SECRET,
            **(env or {}),
        }
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            ["node", str(IDP_DIR / "idp.mjs"), "--port", "0"],
            cwd=IDP_DIR,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("IDP_ISSUER="):
            self.stop()
            raise RuntimeError(f"the test IdP did not start: {line!r}; see {log_path}")
        self.issuer = line.split("=", 1)[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("the test IdP never served its discovery document")
        self.metadata = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5).json()

    def client_credentials_token(self) -> str:
        """An access token for the automation client: what an admin would hand out as an API token."""
        response = requests.post(
            self.metadata["token_endpoint"],
            data={"grant_type": "client_credentials", "resource": AUDIENCE},
            auth=(AUTOMATION_CLIENT, AUTOMATION_SECRET),
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def stop(self) -> None:
        stop_process_group(self.proc, grace=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


class _Forms(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {
                "id": attrs.get("id"),
                "action": attrs.get("action") or "",
                "method": (attrs.get("method") or "get").lower(),
                "fields": {},
            }
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attrs.get("name"):
            self._current["fields"][attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


class SignInError(AssertionError):
    pass


class IdPBrowser:
    """Drives the IdP's pages with a cookie jar, as a user in a browser would.

    It stops at the first redirect that leaves the IdP (the client's callback) and returns that
    URL, so the caller can deliver it to the Jupyter server with the Jupyter credentials.
    """

    def __init__(self, issuer: str, username: str = "alice", password: str = IDP_PASSWORD):
        self.issuer = issuer.rstrip("/")
        self.username = username
        self.password = password
        self.session = requests.Session()
        self.pages: list[str] = []

    def _is_idp(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.issuer)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _fill(self, form: dict) -> dict:
        fields = dict(form["fields"])
        if "username" in fields or "login" in fields:
            fields["username" if "username" in fields else "login"] = self.username
        if "password" in fields:
            fields["password"] = self.password
        return fields

    def _walk(self, method: str, url: str, data: dict | None = None, *, max_steps: int = 20) -> tuple[str, requests.Response | None]:
        for _ in range(max_steps):
            response = self.session.request(method, url, data=data, allow_redirects=False, timeout=15)
            if response.is_redirect or response.status_code in (301, 302, 303, 307, 308):
                url = urljoin(url, response.headers["Location"])
                if not self._is_idp(url):
                    return url, None  # left the IdP: the client's redirect URI
                method, data = "GET", None
                continue
            text = response.text
            self.pages.append(text)
            if "Sign-in Success" in text:
                return url, response
            parser = _Forms()
            parser.feed(text)
            if response.status_code >= 400 or 'class="error"' in text or not parser.forms:
                raise SignInError(f"the IdP said (HTTP {response.status_code}): {text[:600]}")
            form = parser.forms[0]
            method = "POST" if form["method"] == "post" else "GET"
            url, data = urljoin(url, form["action"] or url), self._fill(form)
        raise SignInError("too many steps at the IdP")

    def authorize(self, authorization_url: str) -> str:
        """Sign in at the IdP and return the redirect back to the client (with code and state)."""
        final, _ = self._walk("GET", authorization_url)
        if self._is_idp(final):
            raise SignInError(f"the sign-in ended at the IdP: {final}")
        return final

    def deny(self, authorization_url: str) -> str:
        """Open the sign-in page and press Cancel; returns the redirect back (error=access_denied)."""
        response = self.session.get(authorization_url, allow_redirects=True, timeout=15)
        uid = urlsplit(response.url).path.rstrip("/").rsplit("/", 1)[-1]
        final, _ = self._walk("GET", f"{self.issuer}/interaction/{uid}/abort")
        return final

    def verify_device(self, user_code: str) -> None:
        """Complete a device sign-in: enter the code, confirm, sign in."""
        _, response = self._walk("GET", f"{self.issuer}/device?user_code={user_code}")
        if response is None or "Sign-in Success" not in response.text:
            raise SignInError("the device sign-in did not succeed")


def callback_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class OIDCService:
    """`mlflow server --app-name infinstor` in oidc mode, trusting `issuer`."""

    def __init__(self, root: Path, issuer: str):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "INFINSTOR_"))}
        env.update(
            INFINSTOR_SERVICE_MODE="oidc",
            INFINSTOR_OIDC_ISSUER=issuer,
            INFINSTOR_OIDC_AUDIENCE=AUDIENCE,
            INFINSTOR_OIDC_LEEWAY="0",
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            PYTHONUNBUFFERED="1",
        )
        self.log_path = root / "service.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            mlflow_server_command(
                self.port,
                f"sqlite:///{root / 'mlflow.db'}",
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
        if wait_until_healthy(self.proc, f"{self.uri}/health", 120):
            return
        exited = self.proc.poll() is not None
        self.stop()
        raise RuntimeError(f"the oidc service {'exited' if exited else 'did not start'}: {self.log_path.read_text()[-2000:]}")

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, f"{self.uri}/api/2.0/mlflow/{path}", headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        stop_process_group(self.proc)
        self._log.close()


@pytest.fixture(scope="session")
def idp(tmp_path_factory):
    server = IdP(tmp_path_factory.mktemp("idp") / "idp.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def other_issuer(tmp_path_factory):
    """A second, real IdP: same users and audience, another issuer and key."""
    other = IdP(tmp_path_factory.mktemp("other-idp") / "idp.log")
    yield other
    other.stop()


@pytest.fixture(scope="session")
def idp_issuer(idp) -> str:
    return idp.issuer


@pytest.fixture(scope="session")
def oidc_service(idp, tmp_path_factory):
    service = OIDCService(tmp_path_factory.mktemp("oidc-service"), idp.issuer)
    yield service
    service.stop()
