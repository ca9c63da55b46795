"""Browser sign-in to the company service's MLflow web UI through the same (real) identity
provider: authorization code + PKCE run by the service, an encrypted HttpOnly session cookie,
token renewal, same-origin checks for changes, sign-out."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from idp_fixture import SHORT_CLIENT, IdPBrowser
from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow

SESSION_SECRET = "browser-session-secret-for-tests-0123456789"


@pytest.fixture(scope="module")
def ui_server(idp, tmp_path_factory):
    # The short-lived client (4 s access tokens) makes every session renew its token.
    server = CompanyServer(
        tmp_path_factory.mktemp("browser"),
        idp.issuer,
        config={
            "browser": {
                "client_id": SHORT_CLIENT,
                "redirect_path": "/infinstor/api/auth/callback",
                "scopes": "openid profile email groups org offline_access",
                "session_secret": SESSION_SECRET,
            }
        },
    )
    yield server
    server.stop()


def sign_in(server: CompanyServer, idp, username: str) -> IdPBrowser:
    browser = IdPBrowser(idp.issuer, username)
    http = browser.session
    first = http.get(f"{server.uri}/", headers={"Accept": "text/html"}, allow_redirects=False)
    # MLflow's UI page: a page that goes on to the sign-in with its fragment (run in a browser by
    # test_service_webui); other pages are redirected.
    assert first.status_code == 200 and 'encodeURIComponent("/"+location.hash)' in first.text, first.text
    assert "/infinstor/auth/login?next=%2F" in first.text
    other = http.get(f"{server.uri}/static-files/x.js", headers={"Accept": "text/html"}, allow_redirects=False)
    assert other.status_code == 302 and other.headers["Location"].startswith("/infinstor/auth/login?next=%2Fstatic-files")
    login = http.get(f"{server.uri}/infinstor/auth/login?next=%2F", allow_redirects=False)
    assert login.status_code == 302
    authorize = login.headers["Location"]
    assert authorize.startswith(idp.metadata["authorization_endpoint"])
    assert parse_qs(urlsplit(authorize).query)["code_challenge_method"] == ["S256"]
    back = browser.authorize(authorize)
    assert back.startswith(f"{server.uri}/infinstor/api/auth/callback?")
    done = http.get(back, allow_redirects=False)
    assert done.status_code == 302 and done.headers["Location"] == "/", done.text
    cookie = done.headers["Set-Cookie"]
    assert "infinstor_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return browser


def test_ui_sign_in_session_renewal_csrf_and_sign_out(ui_server, idp):
    server = ui_server
    alice_token = user_token(idp, "alice")
    secret_id = server.mlflow("POST", "experiments/create", alice_token, json={"name": "alice-only"}).json()["experiment_id"]

    carol = sign_in(server, idp, "carol")
    http = carol.session
    page = http.get(f"{server.uri}/", headers={"Accept": "text/html"}, allow_redirects=False)
    assert page.status_code == 200 and "<html" in page.text.lower()
    origin = {"Origin": server.uri}
    created = http.post(f"{server.uri}/ajax-api/2.0/mlflow/experiments/create", json={"name": "carol-ui"}, headers=origin)
    assert created.status_code == 200, created.text
    time.sleep(4.5)  # the access token in the session has expired: the service renews it
    listed = http.post(f"{server.uri}/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 50}, headers=origin)
    assert listed.status_code == 200 and "infinstor_session=" in listed.headers.get("Set-Cookie", "")
    assert [e["name"] for e in listed.json()["experiments"]] == ["carol-ui"]
    assert http.get(f"{server.uri}/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": secret_id}).status_code == 404
    whoami = http.get(f"{server.uri}/api/2.0/infinstor/whoami").json()
    assert whoami["username"] == "carol" and whoami["groups"] == ["nlp"]

    # Changes made with the cookie must come from the service's own pages.
    assert http.post(f"{server.uri}/ajax-api/2.0/mlflow/experiments/create", json={"name": "x"}).status_code == 403
    evil = {"Origin": "http://evil.example"}
    assert http.post(f"{server.uri}/ajax-api/2.0/mlflow/experiments/create", json={"name": "x"}, headers=evil).status_code == 403

    # A tampered cookie is no session; API calls without credentials get 401, pages a sign-in.
    http.cookies.set("infinstor_session", "gAAAAAtampered", domain="127.0.0.1", path="/")
    assert "Signing in" in http.get(f"{server.uri}/", headers={"Accept": "text/html"}, allow_redirects=False).text
    assert server.mlflow("POST", "experiments/search", None, json={}).status_code == 401

    carol = sign_in(server, idp, "carol")
    out = carol.session.get(f"{server.uri}/infinstor/auth/logout", allow_redirects=False)
    assert out.status_code == 302 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert "Signing in" in carol.session.get(f"{server.uri}/", headers={"Accept": "text/html"}, allow_redirects=False).text


def test_callback_refuses_a_foreign_or_replayed_state(ui_server, idp):
    server = ui_server
    browser = IdPBrowser(idp.issuer, "alice")
    login = browser.session.get(f"{server.uri}/infinstor/auth/login?next=//evil.example/", allow_redirects=False)
    back = browser.authorize(login.headers["Location"])
    forged = back.replace("state=", "state=x")
    assert browser.session.get(forged, allow_redirects=False).status_code == 400
    done = browser.session.get(back, allow_redirects=False)
    assert done.status_code == 302 and done.headers["Location"] == "/"  # never to another site
    assert browser.session.get(back, allow_redirects=False).status_code == 400  # the pending sign-in is used up
    stranger = IdPBrowser(idp.issuer, "bob").session  # no sign-in cookie: not this browser's sign-in
    assert stranger.get(back, allow_redirects=False).status_code == 400
