"""Sign-in and credentials against a real identity provider (tests/idp) and a token-checking
MLflow service: the CLI's device flow, the lab's authorization code + PKCE flow, refresh on
expiry, a kernel logging as the signed-in user, API tokens, and no token ever leaking."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import KernelSession
from idp_fixture import (
    AUDIENCE,
    LAB_CLIENT,
    SHORT_CLIENT,
    TEST_SCOPES,
    IdPBrowser,
    callback_params,
)
from infinstor_jupyterlab.credentials.manager import CredentialManager
from infinstor_jupyterlab.credentials.oidc import OIDCSettings
from infinstor_jupyterlab.credentials.tokens import Identity, TokenSet, TokenStore
from infinstor_jupyterlab.credentials.urls import service_http_url, service_origin
from infinstor_jupyterlab.errors import BadRequest, SignInRequired

pytestmark = pytest.mark.slow


# -- helpers -----------------------------------------------------------------------------------------
def cli_env(tmp_path: Path, idp, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINSTOR_", "MLFLOW_", "JPY_"))}
    env.update(
        INFINSTOR_DATA_DIR=str(tmp_path / "cli-data"),
        INFINSTOR_OIDC_ISSUER=idp.issuer,
        INFINSTOR_OIDC_CLIENT_ID=LAB_CLIENT,
        INFINSTOR_OIDC_SCOPES=TEST_SCOPES,
        INFINSTOR_OIDC_AUDIENCE=AUDIENCE,
        INFINSTOR_INSECURE_LOOPBACK="1",
        INFINSTOR_DEVICE_POLL_INTERVAL="0.5",
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run(args, env, *, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


def infinstor_uri(service) -> str:
    return f"infinstor://127.0.0.1:{service.port}/"


def stored_secrets(store_path: Path) -> list[str]:
    data = json.loads(store_path.read_text())
    values = []
    for entry in data["services"].values():
        values += [entry[k] for k in ("access_token", "refresh_token", "id_token") if entry.get(k)]
    return values


class Recorder(logging.Handler):
    """Every log record of the process, formatted, at DEBUG level."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(str(record.msg))


@pytest.fixture
def log_recorder():
    recorder = Recorder()
    loggers = [
        logging.getLogger(),
        logging.getLogger("ServerApp"),
        logging.getLogger("tornado"),
        logging.getLogger("infinstor_jupyterlab"),
        logging.getLogger("urllib3"),
        logging.getLogger("authlib"),
    ]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(recorder)
        lg.setLevel(logging.DEBUG)
    yield recorder
    for lg, level in saved:
        lg.removeHandler(recorder)
        lg.setLevel(level)


# -- units ---------------------------------------------------------------------------------------------
def test_token_set_repr_and_str_never_show_tokens():
    tokens = TokenSet(
        access_token="AT-secret-value",
        refresh_token="RT-secret-value",
        id_token="ID-secret-value",
        expires_at=time.time() + 100,
        identity=Identity(name="alice"),
    )
    for text in (repr(tokens), str(tokens), f"{tokens}", "%s" % tokens, repr([tokens]), repr({"t": tokens})):
        assert "secret-value" not in text, text
        assert "alice" in text and "<redacted>" in text


def test_token_store_is_private_and_atomic(tmp_path):
    store = TokenStore(tmp_path / "creds" / "tokens.json")
    store.put("https://a.example", TokenSet(access_token="x", identity=Identity(name="alice")))
    store.put("https://b.example", TokenSet(access_token="y", identity=Identity(name="bob")))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.get("https://a.example").identity.name == "alice"
    assert store.services() == ["https://a.example", "https://b.example"]
    assert store.delete("https://a.example").access_token == "x"
    assert store.get("https://a.example") is None and store.get("https://b.example").access_token == "y"
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_service_urls():
    assert service_http_url("https://Mlflow.Example.com/") == "https://mlflow.example.com"
    assert service_http_url("infinstor://mlflow.example.com/team") == "https://mlflow.example.com/team"
    assert service_origin("https://mlflow.example.com:443/x") == "https://mlflow.example.com"
    assert service_http_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    with pytest.raises(BadRequest, match="plain http"):
        service_http_url("http://mlflow.example.com")
    with pytest.raises(BadRequest):
        service_http_url("ftp://x")


def test_header_provider_sends_credentials_only_to_the_configured_service(tmp_path, monkeypatch):
    from infinstor_jupyterlab.mlflow_plugin import credentials as plugin
    from infinstor_jupyterlab.mlflow_plugin.request_header import InfinStorRequestHeaderProvider

    store = TokenStore(tmp_path / "tokens.json")
    store.put("https://mlflow.example.com", TokenSet(access_token="tok-1", expires_at=time.time() + 3600))
    monkeypatch.setenv("INFINSTOR_TOKEN_STORE", str(store.path))
    monkeypatch.setenv("INFINSTOR_SERVICE_URI", "https://mlflow.example.com")
    monkeypatch.delenv("INFINSTOR_EMBEDDED_URI", raising=False)
    plugin._managers.clear()
    assert plugin.authorization_for("https://mlflow.example.com/api/2.0/mlflow") == "Bearer tok-1"
    assert plugin.authorization_for("https://other.example.com") is None
    assert plugin.authorization_for("http://mlflow.example.com") is None  # not over plain http

    def http_request(host_creds):  # what MLflow's rest_utils looks like to the provider
        provider = InfinStorRequestHeaderProvider()
        return provider.in_context(), provider.request_headers()

    import mlflow
    from mlflow.utils.rest_utils import MlflowHostCreds

    mlflow.set_tracking_uri("https://mlflow.example.com")
    try:
        assert http_request(MlflowHostCreds("https://mlflow.example.com")) == (True, {"Authorization": "Bearer tok-1"})
        # The tracking URI is ours, but this request goes to another host: nothing for it.
        assert http_request(MlflowHostCreds("https://artifacts.other.example")) == (False, {})
    finally:
        mlflow.set_tracking_uri(None)


def test_service_verifier_refetches_keys_on_unknown_kid():
    import http.server

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from infinstor_jupyterlab.tracking_service.oidc_auth import InvalidToken, TokenVerifier

    keys = {}

    def new_key(kid):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        keys["jwks"] = {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}
        return private

    class JWKS(http.server.BaseHTTPRequestHandler):
        fetches = 0

        def do_GET(self):
            JWKS.fetches += 1
            body = json.dumps(keys["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), JWKS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        verifier = TokenVerifier(
            "https://issuer.example", "urn:aud", jwks_uri=f"http://127.0.0.1:{server.server_port}/jwks", leeway=0, min_refetch_interval=0
        )

        def token(private, kid, **claims):
            payload = {
                "iss": "https://issuer.example",
                "aud": "urn:aud",
                "exp": time.time() + 60,
                "sub": "u1",
                "preferred_username": "alice",
                **claims,
            }
            return jwt.encode(payload, private, algorithm="RS256", headers={"kid": kid})

        first = new_key("k1")
        assert verifier.verify(token(first, "k1")).username == "alice"
        second = new_key("k2")  # the provider rotates its key
        assert verifier.verify(token(second, "k2")).username == "alice"
        assert JWKS.fetches == 2
        with pytest.raises(InvalidToken, match="audience"):
            verifier.verify(token(second, "k2", aud="urn:other"))
        with pytest.raises(InvalidToken, match="expired"):
            verifier.verify(token(second, "k2", exp=time.time() - 5))
        with pytest.raises(InvalidToken, match="issuer"):
            verifier.verify(token(second, "k2", iss="https://evil.example"))
        with pytest.raises(InvalidToken, match="unknown key"):
            verifier.verify(token(first, "k1"))
    finally:
        server.shutdown()


# -- the CLI -----------------------------------------------------------------------------------------------
def test_cli_device_login_then_mlflow_as_that_user_then_logout(tmp_path, idp, oidc_service):
    env = cli_env(tmp_path, idp)
    service = infinstor_uri(oidc_service)
    proc = subprocess.Popen(
        ["infinstor", "login", "--service", service], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    printed = []
    code = None
    while code is None:
        line = proc.stdout.readline()
        assert line, f"infinstor login ended early: {printed} {proc.stderr.read()}"
        printed.append(line)
        match = re.search(r"Code:\s+(\S+)", line)
        code = match.group(1) if match else None
    assert any(f"{idp.issuer}/device" in line for line in printed), printed
    IdPBrowser(idp.issuer, "alice").verify_device(code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (out, err)
    assert "Signed in to http://127.0.0.1" in out and "alice" in out

    store = tmp_path / "cli-data" / "credentials" / "tokens.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    secrets = stored_secrets(store)
    assert all(s not in "".join(printed) + out + err for s in secrets)

    whoami = run(["infinstor", "whoami", "--service", service], env)
    assert whoami.returncode == 0, whoami.stderr
    assert "alice" in whoami.stdout and "alice@acme.example" in whoami.stdout
    assert "acme" in whoami.stdout and "vision" in whoami.stdout and "expires" in whoami.stdout
    info = json.loads(run(["infinstor", "whoami", "--json", "--service", service], env).stdout)
    assert (info["user"], info["org"], info["groups"], info["refreshable"]) == ("alice", "acme", ["vision"], True)

    mlflow_env = {**env, "MLFLOW_TRACKING_URI": service}
    search = run([sys.executable, "-m", "mlflow", "experiments", "search"], mlflow_env)
    assert search.returncode == 0, search.stderr
    assert "Default" in search.stdout

    # The Python SDK, runs and artifacts (mlflow-artifacts: through the infinstor:// URI) as alice.
    script = (
        "import mlflow, tempfile, os\n"
        "mlflow.set_experiment('cli-device')\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_metric('m', 1.0)\n"
        "    d = tempfile.mkdtemp(); p = os.path.join(d, 'a.txt'); open(p, 'w').write('hello')\n"
        "    mlflow.log_artifact(p)\n"
        "path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path='a.txt')\n"
        "print('RUN', run.info.run_id, open(path).read())\n"
    )
    sdk = run([sys.executable, "-c", script], mlflow_env)
    assert sdk.returncode == 0, sdk.stderr
    run_id = re.search(r"RUN (\w+) hello", sdk.stdout).group(1)
    fetched = oidc_service.api("GET", f"runs/get?run_id={run_id}", idp.client_credentials_token()).json()["run"]
    assert fetched["info"]["user_id"] == "alice"
    assert {t["key"]: t["value"] for t in fetched["data"]["tags"]}["mlflow.user"] == "alice"

    logout = run(["infinstor", "logout", "--service", service], env)
    assert logout.returncode == 0 and "Signed out" in logout.stdout, logout
    assert json.loads(store.read_text())["services"] == {}
    refused = run([sys.executable, "-m", "mlflow", "experiments", "search"], mlflow_env)
    assert refused.returncode != 0
    assert "401" in refused.stderr or "UNAUTHENTICATED" in refused.stderr, refused.stderr[-2000:]
    assert "infinstor login" in refused.stderr
    whoami = run(["infinstor", "whoami", "--service", service], env)
    assert whoami.returncode == 1 and "Not signed in" in whoami.stderr and whoami.stdout == ""


def test_cli_api_token_and_bad_input(tmp_path, idp, oidc_service):
    env = cli_env(tmp_path, idp)
    service = infinstor_uri(oidc_service)
    api_token = idp.client_credentials_token()

    stored = run(["infinstor", "login", "--service", service, "--token", "-"], env, stdin=api_token + "\n")
    assert stored.returncode == 0, stored.stderr
    assert api_token not in stored.stdout + stored.stderr
    whoami = run(["infinstor", "whoami", "--service", service], env)
    assert whoami.returncode == 0 and "infinstor-automation" in whoami.stdout and "API token" in whoami.stdout
    search = run([sys.executable, "-m", "mlflow", "experiments", "search"], {**env, "MLFLOW_TRACKING_URI": service})
    assert search.returncode == 0, search.stderr

    bad = run(["infinstor", "login", "--service", service, "--token", "not-a-real-token"], env)
    assert bad.returncode == 1 and "refused this token" in bad.stderr
    empty = run(["infinstor", "login", "--service", service, "--token", "-"], env, stdin="\n")
    assert empty.returncode == 2 and "No token given" in empty.stderr
    plain = run(["infinstor", "whoami", "--service", "http://mlflow.example.com"], env)
    assert plain.returncode == 2 and "plain http" in plain.stderr
    no_service = run(["infinstor", "whoami"], env)
    assert no_service.returncode == 2 and "No tracking service" in no_service.stderr
    no_idp = run(["infinstor", "login", "--service", service], {**env, "INFINSTOR_OIDC_ISSUER": ""})
    assert no_idp.returncode == 2 and "No identity provider configured" in no_idp.stderr
    usage = run(["infinstor", "frobnicate"], env)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


# -- the server extension -------------------------------------------------------------------------------------
def lab_config(service, idp, client_id=LAB_CLIENT, **extra):
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jupyterlab": True}},
        "InfinStor": {
            "tracking_uri": service.uri,
            "oidc_issuer": idp.issuer,
            "oidc_client_id": client_id,
            "oidc_scopes": TEST_SCOPES.split(),
            "oidc_audience": AUDIENCE,
            **extra,
        },
    }


async def browser_sign_in(jp_fetch, idp, username="alice", responses=None):
    """The sidebar opens auth/login in a window; the user signs in; the IdP sends the window back."""
    login = await jp_fetch("infinstor", "api", "auth", "login", follow_redirects=False, raise_error=False)
    assert login.code == 302, login.body
    location = login.headers["Location"]
    assert location.startswith(idp.issuer + "/auth?")
    query = callback_params(location)
    assert query["code_challenge_method"] == "S256" and query["code_challenge"] and query["state"] and query["nonce"]
    assert query["resource"] == AUDIENCE and "code_verifier" not in query
    back = IdPBrowser(idp.issuer, username).authorize(location)
    params = callback_params(back)
    assert urlsplit(back).path.endswith("/infinstor/api/auth/callback") and params["state"] == query["state"]
    callback = await jp_fetch("infinstor", "api", "auth", "callback", params=params, raise_error=False)
    if responses is not None:
        responses += [login, callback]
    return callback, params


def response_text(response) -> str:
    return "\n".join([f"{k}: {v}" for k, v in response.headers.get_all()] + [response.body.decode("utf-8", "replace")])


class TestSignInConfiguredFromLabSettings:
    """No provider in the server's configuration: the lab's settings may set one."""

    @pytest.fixture
    def jp_server_config(self, oidc_service, idp):
        config = lab_config(oidc_service, idp)
        for key in ("oidc_issuer", "oidc_client_id"):
            del config["InfinStor"][key]
        return config

    async def test_settings_provider_checked_then_used_for_sign_in(self, jp_fetch, idp, monkeypatch):
        monkeypatch.delenv("INFINSTOR_OIDC_ISSUER", raising=False)
        monkeypatch.delenv("INFINSTOR_OIDC_CLIENT_ID", raising=False)

        async def put(body):
            return await jp_fetch("infinstor", "api", "auth", "config", method="PUT", body=json.dumps(body), raise_error=False)

        status = json.loads((await jp_fetch("infinstor", "api", "status")).body)
        assert status["auth"]["configured"] is False and status["auth"]["source"] is None
        login = await jp_fetch("infinstor", "api", "auth", "login", follow_redirects=False, raise_error=False)
        assert login.code == 400 and "not configured" in json.loads(login.body)["message"]

        # Bad input: clear 4xx, nothing changes.
        for body, reason in (
            ({"issuer": "http://idp.example.com", "client_id": LAB_CLIENT}, "invalid_issuer"),
            ({"issuer": "ftp://x", "client_id": LAB_CLIENT}, "invalid_issuer"),
            ({"issuer": idp.issuer}, "incomplete_sign_in_config"),
            ({"issuer": idp.issuer, "client_id": "a b<c>"}, "invalid_client_id"),
            ({"issuer": 5, "client_id": LAB_CLIENT}, "invalid_sign_in_config"),
        ):
            refused = await put(body)
            assert refused.code == 400 and json.loads(refused.body)["reason"] == reason, (body, refused.body)
        # A URL that is no identity provider: refused after discovery fails.
        not_idp = await put({"issuer": idp.issuer + "/nothing-here", "client_id": LAB_CLIENT})
        assert 400 <= not_idp.code < 600 and not_idp.code != 200
        assert "openid-configuration" in json.loads(not_idp.body)["message"]
        assert json.loads((await jp_fetch("infinstor", "api", "status")).body)["auth"]["configured"] is False

        ok = await put({"issuer": idp.issuer + "/", "client_id": LAB_CLIENT})
        assert ok.code == 200
        auth = json.loads(ok.body)["auth"]
        assert auth["configured"] is True and auth["issuer"] == idp.issuer and auth["source"] == "settings"

        callback, _ = await browser_sign_in(jp_fetch, idp, "carol")
        assert callback.code == 200 and "Signed in as" in callback.body.decode()
        user = json.loads((await jp_fetch("infinstor", "api", "status")).body)["user"]
        assert user["signed_in"] is True and user["name"] == "carol" and user["org"] == "acme"

        # Cleared from the settings: no provider again (the signed-in user stays signed in).
        cleared = await put({"issuer": "", "client_id": ""})
        assert json.loads(cleared.body)["auth"] == {**auth, "configured": False, "issuer": None, "client_id": None, "source": None}
        await jp_fetch("infinstor", "api", "auth", "logout", method="POST", body=b"{}")

    async def test_server_configuration_wins(self, jp_fetch, idp, oidc_service, jp_serverapp):
        # Same server, but with the provider set by the admin: the lab cannot change it.
        auth = jp_serverapp.web_app.settings["infinstor"].auth
        auth.source = "server"
        refused = await jp_fetch(
            "infinstor",
            "api",
            "auth",
            "config",
            method="PUT",
            raise_error=False,
            body=json.dumps({"issuer": idp.issuer, "client_id": "someone-else"}),
        )
        assert refused.code == 409 and json.loads(refused.body)["reason"] == "sign_in_config_locked"


class TestLabSignIn:
    @pytest.fixture
    def jp_server_config(self, oidc_service, idp):
        return lab_config(oidc_service, idp)

    async def test_auth_code_pkce_flow_status_logout_and_no_leaks(
        self, jp_fetch, infinstor, idp, oidc_service, jp_data_dir, log_recorder, capfd
    ):
        status = json.loads((await jp_fetch("infinstor", "api", "status")).body)
        assert status["user"]["signed_in"] is False
        assert status["auth"]["configured"] is True and status["auth"]["issuer"] == idp.issuer
        with pytest.raises(SignInRequired):
            await infinstor.tracking.request_headers()

        responses = []
        callback, params = await browser_sign_in(jp_fetch, idp, "alice", responses)
        page = callback.body.decode()
        assert callback.code == 200, page
        assert callback.headers["Content-Type"].startswith("text/html")
        assert "Signed in as Alice Liddell (alice)" in page and "you can close this window" in page
        nonce = re.search(r"'nonce-([^']+)'", callback.headers["Content-Security-Policy"]).group(1)
        assert f'<script nonce="{nonce}">' in page
        origin = re.search(r"postMessage\((.*?), (\"[^\"]+\")\)", page)
        assert json.loads(origin.group(1)) == {"type": "infinstor:signed-in"}
        assert json.loads(origin.group(2)) == f"http://{callback.request.url.split('/')[2]}"

        status_response = await jp_fetch("infinstor", "api", "status")
        responses.append(status_response)
        user = json.loads(status_response.body)["user"]
        assert user == {
            "signed_in": True,
            "name": "alice",
            "display_name": "Alice Liddell",
            "email": "alice@acme.example",
            "groups": ["vision"],
            "org": "acme",
        }

        store = jp_data_dir / "infinstor" / "credentials" / "tokens.json"
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
        secrets = stored_secrets(store) + [params["code"]]
        assert len(secrets) == 4

        headers = await infinstor.tracking.request_headers()
        assert headers["Authorization"] == f"Bearer {secrets[0]}"
        assert oidc_service.api("GET", "experiments/search?max_results=1", secrets[0]).status_code == 200

        env = infinstor.tracking.kernel_environment()
        assert env["MLFLOW_TRACKING_URI"] == oidc_service.uri and env["INFINSTOR_TOKEN_STORE"] == str(store)
        assert not any(s in json.dumps(env) for s in secrets)

        logout = await jp_fetch("infinstor", "api", "auth", "logout", method="POST", body=b"{}")
        responses.append(logout)
        assert json.loads(logout.body)["user"]["signed_in"] is False
        after = await jp_fetch("infinstor", "api", "status")
        responses.append(after)
        assert json.loads(after.body)["user"]["signed_in"] is False
        assert json.loads(store.read_text())["services"] == {}
        with pytest.raises(SignInRequired):
            await infinstor.tracking.request_headers()
        # Revoked at the IdP: the refresh token no longer works there.
        import requests as _requests

        refused = _requests.post(
            idp.metadata["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": secrets[1], "client_id": LAB_CLIENT},
            timeout=10,
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

        for response in responses:
            text = response_text(response)
            assert not any(s in text for s in secrets), response.request.url
        out, err = capfd.readouterr()
        logged = "\n".join(log_recorder.lines) + out + err
        assert log_recorder.lines, "nothing was logged at all?"
        assert not any(s in logged for s in secrets)

    async def test_callback_errors_render_clear_pages(self, jp_fetch, idp):
        async def callback(**params):
            response = await jp_fetch("infinstor", "api", "auth", "callback", params=params, raise_error=False)
            return response.code, response.body.decode()

        code, page = await callback(state="forged", code="whatever")
        assert code == 400 and "unknown or has expired" in page and "Sign-in failed" in page
        code, page = await callback(error="access_denied", error_description="The user cancelled the sign-in")
        assert code == 400 and "cancelled" in page.lower() and "<script" not in page
        code, page = await callback(error="<script>alert(1)</script>")
        assert code == 400 and "<script>alert" not in page and "&lt;script&gt;" in page

        # A real state with a wrong code: the IdP refuses it.
        login = await jp_fetch("infinstor", "api", "auth", "login", follow_redirects=False, raise_error=False)
        state = callback_params(login.headers["Location"])["state"]
        code, page = await callback(state=state, code="not-the-code")
        assert code == 401 and "Sign-in failed" in page and "invalid_grant" in page
        # ... and the state is spent.
        code, page = await callback(state=state, code="not-the-code")
        assert code == 400 and "unknown or has expired" in page

        # The user presses Cancel at the IdP.
        login = await jp_fetch("infinstor", "api", "auth", "login", follow_redirects=False, raise_error=False)
        back = IdPBrowser(idp.issuer).deny(login.headers["Location"])
        code, page = await callback(**callback_params(back))
        assert code == 400 and "Sign-in cancelled" in page

        code, page = await callback(state="", code="")
        assert code == 400

        # RFC 9207: a response naming another issuer is refused (and spends the state).
        login = await jp_fetch("infinstor", "api", "auth", "login", follow_redirects=False, raise_error=False)
        back = callback_params(IdPBrowser(idp.issuer).authorize(login.headers["Location"]))
        code, page = await callback(**{**back, "iss": "https://evil.example"})
        assert code == 400 and "unexpected identity provider" in page

    async def test_wrong_password_keeps_the_user_at_the_idp(self, jp_fetch, idp):
        login = await jp_fetch("infinstor", "api", "auth", "login", follow_redirects=False, raise_error=False)
        with pytest.raises(AssertionError, match="wrong password"):
            IdPBrowser(idp.issuer, "alice", password="nope").authorize(login.headers["Location"])


class TestRefresh:
    @pytest.fixture
    def jp_server_config(self, oidc_service, idp):
        return lab_config(oidc_service, idp, client_id=SHORT_CLIENT, token_refresh_margin=1.0)

    async def test_expired_access_token_is_refreshed_and_rotation_persisted(self, jp_fetch, infinstor, idp, oidc_service, jp_data_dir):
        callback, _ = await browser_sign_in(jp_fetch, idp, "carol")
        assert callback.code == 200
        store = TokenStore(jp_data_dir / "infinstor" / "credentials" / "tokens.json")
        key = service_origin(oidc_service.uri)
        first = store.get(key)
        assert 0 < first.expires_in() <= 4.5

        headers = await infinstor.tracking.request_headers()
        assert headers["Authorization"] == f"Bearer {first.access_token}"  # not yet near expiry
        assert oidc_service.api("GET", "experiments/search?max_results=5", first.access_token).status_code == 200

        time.sleep(max(first.expires_in(), 0) + 1.2)
        assert oidc_service.api("GET", "experiments/search?max_results=5", first.access_token).status_code == 401

        headers = await infinstor.tracking.request_headers()
        second = store.get(key)
        assert headers["Authorization"] == f"Bearer {second.access_token}" != f"Bearer {first.access_token}"
        assert second.refresh_token != first.refresh_token  # rotated, and the new one persisted
        assert second.identity.name == "carol" and second.identity.groups == ["nlp"]
        assert oidc_service.api("GET", "experiments/search?max_results=5", second.access_token).status_code == 200

        # After a 401 the proxy asks for fresh credentials: a forced refresh.
        assert await infinstor.tracking.refresh_credentials() is True
        third = store.get(key)
        assert third.access_token != second.access_token and third.refresh_token != second.refresh_token
        assert (await infinstor.tracking.request_headers())["Authorization"] == f"Bearer {third.access_token}"

    async def test_processes_sharing_the_store_refresh_once(self, jp_fetch, idp, oidc_service, jp_data_dir):
        """Several holders of the store (server, kernels, CLI) find the token expiring at once:
        the lock makes one of them refresh; the rest use its result, so the rotated refresh
        token is never replayed (the IdP would revoke the whole grant)."""
        callback, _ = await browser_sign_in(jp_fetch, idp, "bob")
        assert callback.code == 200
        path = jp_data_dir / "infinstor" / "credentials" / "tokens.json"
        before = TokenStore(path).get(service_origin(oidc_service.uri))
        settings = OIDCSettings(idp.issuer, SHORT_CLIENT, tuple(TEST_SCOPES.split()), AUDIENCE)
        managers = [CredentialManager(oidc_service.uri, store=TokenStore(path), settings=settings, refresh_margin=10) for _ in range(4)]
        results, errors = [], []

        def use(manager):
            try:
                results.append(manager.access_token())
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=use, args=(m,)) for m in managers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert len(set(results)) == 1 and results[0] != before.access_token
        after = TokenStore(path).get(service_origin(oidc_service.uri))
        assert after.access_token == results[0]
        assert oidc_service.api("GET", "experiments/search?max_results=5", after.access_token).status_code == 200
        # The grant is alive: the persisted refresh token still works.
        assert managers[0].refresh_after_rejection() is True

    async def test_two_processes_refresh_once(self, jp_fetch, idp, oidc_service, jp_data_dir, tmp_path):
        """Two separate processes (a kernel and the CLI, say) find the token expiring at once:
        the store's file lock lets one refresh; the other reads its result instead of replaying
        the rotated refresh token."""
        callback, _ = await browser_sign_in(jp_fetch, idp, "dave")
        assert callback.code == 200
        path = jp_data_dir / "infinstor" / "credentials" / "tokens.json"
        before = TokenStore(path).get(service_origin(oidc_service.uri))
        go = tmp_path / "go"
        script = (
            "import pathlib, sys, time\n"
            "from infinstor_jupyterlab.credentials.manager import CredentialManager\n"
            "from infinstor_jupyterlab.credentials.oidc import OIDCSettings\n"
            "from infinstor_jupyterlab.credentials.tokens import TokenStore\n"
            "path, uri, issuer, client, scopes, audience, go = sys.argv[1:8]\n"
            "settings = OIDCSettings(issuer, client, tuple(scopes.split()), audience)\n"
            "manager = CredentialManager(uri, store=TokenStore(path), settings=settings, refresh_margin=10)\n"
            "while not pathlib.Path(go).exists():\n"
            "    time.sleep(0.005)\n"
            "print(manager.access_token())\n"
        )
        args = [str(path), oidc_service.uri, idp.issuer, SHORT_CLIENT, TEST_SCOPES, AUDIENCE, str(go)]
        procs = [
            subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        time.sleep(3)  # both imported and waiting
        go.write_text("")
        outputs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        tokens = {out.strip() for out, _err in outputs}
        assert len(tokens) == 1 and before.access_token not in tokens, "each process must end with the one refreshed token"
        after = TokenStore(path).get(service_origin(oidc_service.uri))
        assert {after.access_token} == tokens
        # Had a process replayed the rotated refresh token, the IdP would have revoked the grant.
        settings = OIDCSettings(idp.issuer, SHORT_CLIENT, tuple(TEST_SCOPES.split()), AUDIENCE)
        manager = CredentialManager(oidc_service.uri, store=TokenStore(path), settings=settings, refresh_margin=10)
        assert manager.refresh_after_rejection() is True


class TestKernelAsSignedInUser:
    @pytest.fixture
    def jp_server_config(self, oidc_service, idp):
        return lab_config(oidc_service, idp)

    async def test_kernel_logs_a_metric_as_alice(self, jp_fetch, jp_ws_fetch, jp_root_dir, jp_data_dir, idp, oidc_service):
        callback, _ = await browser_sign_in(jp_fetch, idp, "alice")
        assert callback.code == 200
        secrets = stored_secrets(jp_data_dir / "infinstor" / "credentials" / "tokens.json")

        import nbformat

        nbformat.write(nbformat.v4.new_notebook(), jp_root_dir / "signed.ipynb")
        session = await jp_fetch(
            "api",
            "sessions",
            method="POST",
            body=json.dumps({"path": "signed.ipynb", "name": "signed.ipynb", "type": "notebook", "kernel": {"name": "python3"}}),
        )
        kernel_id = json.loads(session.body)["kernel"]["id"]
        ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
        try:
            result = await KernelSession(ws).execute(
                "import mlflow, os, json\n"
                "mlflow.set_experiment('kernel-signed-in')\n"
                "with mlflow.start_run() as run:\n"
                "    mlflow.log_metric('loss', 0.5)\n"
                "print('RUN', run.info.run_id)\n"
                "print('URI', mlflow.get_tracking_uri())\n"
                "print('ENV', json.dumps(dict(os.environ)))\n"
            )
        finally:
            ws.close()
        assert result["error"] is None, result["error"]
        lines = dict(line.split(" ", 1) for line in result["stdout"].strip().splitlines())
        assert lines["URI"].strip() == oidc_service.uri
        env = json.loads(lines["ENV"])
        assert env["INFINSTOR_TOKEN_STORE"].endswith("tokens.json")
        assert not any(s in lines["ENV"] for s in secrets)  # the path, never a token

        run = oidc_service.api("GET", f"runs/get?run_id={lines['RUN'].strip()}", secrets[0]).json()["run"]
        assert run["info"]["user_id"] == "alice"
        assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.user"] == "alice"
        assert [(m["key"], m["value"]) for m in run["data"]["metrics"]] == [("loss", 0.5)]
