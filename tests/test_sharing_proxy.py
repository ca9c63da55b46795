"""Sharing through the lab's MLflow proxy, end to end: a lab signed in (real IdP, authorization
code + PKCE) to a real company service, calling `api/2.0/infinstor/permissions` and `whoami`
through `/infinstor/api/mlflow/` exactly as the sidebar's Share dialog does.

alice creates a private experiment through the proxy; bob (her group `vision`) cannot see it;
alice grants `vision` reader, lists it, bob sees it, alice changes it, revokes it, bob no longer
sees it; the server's refusals come back with its own message; `api/2.0/infinstor/tokens` is
refused by the proxy and never reaches the service (a POST would have minted a token).
"""

from __future__ import annotations

import json

import pytest

from service_fixture import CompanyServer, user_token
from test_signin import browser_sign_in, lab_config, response_text, stored_secrets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def company(idp, tmp_path_factory):
    # Private experiments: only a grant lets bob in, so the test sees sharing do something.
    server = CompanyServer(tmp_path_factory.mktemp("sharing-company"), idp.issuer, config={"defaults": {"experiment": "private"}})
    yield server
    server.stop()


@pytest.fixture
def jp_server_config(company, idp):
    return lab_config(company, idp)


def body(response) -> dict:
    return json.loads(response.body) if response.body else {}


async def test_share_an_experiment_through_the_proxy(jp_fetch, idp, company, jp_data_dir):
    callback, _ = await browser_sign_in(jp_fetch, idp, "alice")
    assert callback.code == 200, callback.body
    responses = []

    async def proxied(*path, method="GET", params=None, payload=None):
        kwargs = {"method": method, "raise_error": False, "params": params or {}}
        if payload is not None:
            kwargs["body"] = json.dumps(payload)
            kwargs["headers"] = {"Content-Type": "application/json"}
            kwargs["allow_nonstandard_methods"] = True  # DELETE with a body
        response = await jp_fetch("infinstor", "api", "mlflow", *path, **kwargs)
        responses.append(response)
        return response

    def permissions(method="GET", params=None, payload=None):
        return proxied("api", "2.0", "infinstor", "permissions", method=method, params=params, payload=payload)

    # The Share dialog's capability check.
    who = await proxied("api", "2.0", "infinstor", "whoami")
    assert who.code == 200, who.body
    assert {k: body(who)[k] for k in ("username", "org", "groups")} == {"username": "alice", "org": "acme", "groups": ["vision"]}

    created = await proxied("api", "2.0", "mlflow", "experiments", "create", method="POST", payload={"name": "shared-through-the-lab"})
    assert created.code == 200, created.body
    experiment_id = body(created)["experiment_id"]
    resource = {"resource_type": "experiment", "resource_id": experiment_id}

    bob = user_token(idp, "bob")

    def bob_sees_it() -> bool:
        response = company.mlflow("GET", "experiments/get", bob, params={"experiment_id": experiment_id})
        assert response.status_code in (200, 404), response.text
        return response.status_code == 200

    listed = await permissions(params=resource)
    assert listed.code == 200, listed.body
    assert [(p["principal_type"], p["principal"], p["role"]) for p in body(listed)["permissions"]] == [("user", "alice", "manager")]
    assert not bob_sees_it()

    # alice grants bob's group reader, and the list shows it with who granted it and when.
    granted = await permissions("POST", payload={**resource, "principal_type": "group", "principal": "vision", "role": "reader"})
    assert granted.code == 200, granted.body
    assert body(granted)["granted"] == {"principal_type": "group", "principal": "vision", "role": "reader"}
    grants = {(p["principal_type"], p["principal"]): p for p in body(await permissions(params=resource))["permissions"]}
    assert set(grants) == {("user", "alice"), ("group", "vision")}
    assert grants[("group", "vision")]["role"] == "reader" and grants[("group", "vision")]["granted_by"] == "alice"
    assert grants[("group", "vision")]["granted_at"]
    assert bob_sees_it()
    # bob's own view of the list (any role may list) shows the same grants.
    bobs_list = company.infinstor("GET", "permissions", bob, params=resource)
    assert bobs_list.status_code == 200, bobs_list.text
    assert {(p["principal_type"], p["principal"], p["role"]) for p in bobs_list.json()["permissions"]} == {
        ("user", "alice", "manager"),
        ("group", "vision", "reader"),
    }
    # ...but only a manager may change it: the service refuses bob, with its own message.
    assert (
        company.infinstor(
            "POST", "permissions", bob, json={**resource, "principal_type": "user", "principal": "bob", "role": "manager"}
        ).status_code
        == 403
    )

    # Changing a role is granting again.
    changed = await permissions("POST", payload={**resource, "principal_type": "group", "principal": "vision", "role": "editor"})
    assert changed.code == 200, changed.body
    roles = {(p["principal_type"], p["principal"]): p["role"] for p in body(await permissions(params=resource))["permissions"]}
    assert roles[("group", "vision")] == "editor"

    # The service's refusals reach the lab with the service's message (shown inline by the dialog).
    other_org = await permissions("POST", payload={**resource, "principal_type": "org", "principal": "globex", "role": "reader"})
    assert other_org.code == 400 and "Only your own organisation" in body(other_org)["message"], other_org.body
    bad_role = await permissions("POST", payload={**resource, "principal_type": "user", "principal": "carol", "role": "owner"})
    assert bad_role.code == 400 and "role must be one of" in body(bad_role)["message"], bad_role.body

    # Revoke: the list no longer has it and bob no longer sees the experiment.
    revoked = await permissions("DELETE", payload={**resource, "principal_type": "group", "principal": "vision"})
    assert revoked.code == 200, revoked.body
    assert body(revoked)["revoked"] == {"principal_type": "group", "principal": "vision"}
    assert [(p["principal_type"], p["principal"]) for p in body(await permissions(params=resource))["permissions"]] == [("user", "alice")]
    assert not bob_sees_it()
    again = await permissions("DELETE", payload={**resource, "principal_type": "group", "principal": "vision"})
    assert again.code == 404 and "holds no role" in body(again)["message"], again.body

    # Tokens never go through the proxy: refused by its policy, never forwarded. A POST that
    # reached the service would have minted a token for alice (she is signed in with the IdP).
    alice = user_token(idp, "alice")
    for method, payload in (("GET", None), ("POST", {"name": "leaked-through-the-proxy", "expires_in_days": 1})):
        for path in (("api", "2.0", "infinstor", "tokens"), ("ajax-api", "2.0", "infinstor", "tokens")):
            refused = await proxied(*path, method=method, payload=payload)
            assert refused.code == 403, (path, method, refused.code, refused.body)
            assert body(refused)["reason"] == "proxy_path_refused"
    tokens = company.infinstor("GET", "tokens", alice)
    assert tokens.status_code == 200, tokens.text
    assert [t for t in tokens.json()["tokens"] if t["name"] == "leaked-through-the-proxy"] == []

    # Nothing the browser got through the proxy carries the lab's credentials.
    secrets = stored_secrets(jp_data_dir / "infinstor" / "credentials" / "tokens.json")
    assert secrets and len(responses) > 15
    for response in responses:
        text = response_text(response)
        assert not any(secret in text for secret in secrets), response.request.url
