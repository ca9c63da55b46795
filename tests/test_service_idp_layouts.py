"""The service reads each identity provider's token layout through configuration only.

The test IdP's clients `layout-<provider>` issue access tokens laid out like that provider's
(tests/idp/idp.mjs): Entra ID's group object ids and tenant id, Okta's claim-rule groups and a
custom organisation claim, Keycloak's nested realm roles and organizations list, Auth0's
namespaced claims and org_id, Cognito's `cognito:groups` with its audience in `client_id`, and
Google Workspace behind a broker (hosted domain, no groups). For each, a real company service
configured as docs/identity-providers.md says must see the right user, organisation and groups,
and give access by them. (Claim reading does not touch the database: SQLite only.)"""

from __future__ import annotations

import hashlib

import pytest
import requests

from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow


def object_id(kind: str, name: str) -> str:
    """The UUID-shaped id the test IdP gives a name (Entra ID's object and tenant ids)."""
    h = hashlib.sha1(f"{kind}:{name}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def auth0_org(org: str) -> str:
    return "org_" + object_id("org", org).replace("-", "")[:16]


# provider -> (service configuration, expected (username, org, groups) of alice and dave)
LAYOUTS = {
    "entra": (
        {
            "oidc": {
                "claims": {"username": "preferred_username", "groups": "groups", "org": "tid"},
                "organisations": {object_id("tenant", "acme"): "acme", object_id("tenant", "globex"): "globex"},
            }
        },
        ("alice@acme.example", "acme", [object_id("group", "vision")]),
        ("dave@globex.example", "globex", [object_id("group", "research")]),
    ),
    "okta": (
        {"oidc": {"claims": {"username": "sub", "groups": "groups", "org": "company"}}},
        ("alice", "acme", ["vision"]),
        ("dave", "globex", ["research"]),
    ),
    "keycloak": (
        {"oidc": {"claims": {"groups": "groups", "org": "organization"}}},
        ("alice", "acme", ["/vision"]),
        ("dave", "globex", ["/research"]),
    ),
    "auth0": (
        {
            "oidc": {
                "claims": {
                    "username": "https://infinstor.example/email",
                    "email": "https://infinstor.example/email",
                    "groups": "https://infinstor.example/groups",
                    "org": "org_id",
                },
                "organisations": {auth0_org("acme"): "acme", auth0_org("globex"): "globex"},
            }
        },
        ("alice@acme.example", "acme", ["vision"]),
        ("dave@globex.example", "globex", ["research"]),
    ),
    "cognito": (
        {
            "oidc": {
                "audience": "layout-cognito",
                "audience_claim": "client_id",
                "claims": {"username": "username", "groups": "cognito:groups", "org": "custom:org"},
            }
        },
        ("alice", "acme", ["vision"]),
        ("dave", "globex", ["research"]),
    ),
    "google": (
        {
            "oidc": {"claims": {"username": "email", "org": "hd"}, "organisations": {"acme.example": "acme", "globex.example": "globex"}},
            "scim": {"groups": "scim"},
        },
        ("alice@acme.example", "acme", []),
        ("dave@globex.example", "globex", []),
    ),
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def layout_server(request, idp, tmp_path_factory):
    provider = request.param
    config = LAYOUTS[provider][0]
    oidc = {"issuer": idp.issuer, "audience": "urn:infinstor:tracking", "leeway": 0, **config["oidc"]}
    server = CompanyServer(tmp_path_factory.mktemp(f"layout-{provider}"), idp.issuer, config={**config, "oidc": oidc})
    yield provider, server
    server.stop()


def test_the_service_reads_each_providers_layout(layout_server, idp):
    provider, server = layout_server
    _, alice_expected, dave_expected = LAYOUTS[provider]
    tokens = {u: user_token(idp, u, f"layout-{provider}") for u in ("alice", "bob", "carol", "dave")}
    for user, (username, org, groups) in (("alice", alice_expected), ("dave", dave_expected)):
        me = server.infinstor("GET", "whoami", tokens[user])
        assert me.status_code == 200, me.text
        assert (me.json()["username"], me.json()["org"], me.json()["groups"]) == (username, org, groups), provider
    # Access follows what was read: bob shares alice's group (where the token has groups), carol
    # does not, dave is another organisation.
    M = server.mlflow
    experiment_id = M("POST", "experiments/create", tokens["alice"], json={"name": f"{provider}-exp"}).json()["experiment_id"]
    seen = lambda user: M("GET", "experiments/get", tokens[user], params={"experiment_id": experiment_id}).status_code  # noqa: E731
    assert seen("alice") == 200
    assert seen("bob") == (404 if provider == "google" else 200)
    assert (seen("carol"), seen("dave")) == (404, 404)


def test_a_token_for_another_client_is_refused_where_the_audience_is_the_client(idp, tmp_path):
    """Cognito's audience is the app client (client_id): another client's token is not for us."""
    config, _, _ = LAYOUTS["cognito"]
    oidc = {"issuer": idp.issuer, "leeway": 0, **config["oidc"]}
    server = CompanyServer(tmp_path / "cognito-aud", idp.issuer, config={**config, "oidc": oidc})
    try:
        other = user_token(idp, "alice", "layout-okta")
        refused = server.infinstor("GET", "whoami", other)
        assert refused.status_code == 401 and "audience" in refused.json()["message"]
        assert server.infinstor("GET", "whoami", user_token(idp, "alice", "layout-cognito")).status_code == 200
    finally:
        server.stop()


def test_an_opaque_access_token_is_refused_clearly(idp, tmp_path):
    server = CompanyServer(tmp_path / "opaque", idp.issuer)
    try:
        refused = requests.get(
            f"{server.uri}/api/2.0/infinstor/whoami",
            timeout=30,
            headers={"Authorization": f"Bearer {user_token(idp, 'alice', 'layout-opaque')}"},
        )
        assert refused.status_code == 401 and "not a JWT" in refused.json()["message"]
    finally:
        server.stop()


def test_entra_group_overage_falls_back_to_scim_groups(idp, tmp_path):
    """A user in more than 200 groups gets no groups claim from Entra ID (`_claim_names` points at
    Microsoft Graph instead): the service takes that user's groups from SCIM, named by externalId
    (Entra's group object id, as in everyone else's groups claim)."""
    from infinstor_jupyterlab.tracking_service.db import make_engine
    from infinstor_jupyterlab.tracking_service.directory import DirectoryStore
    from infinstor_jupyterlab.tracking_service.service_store import ServiceStore

    config, _, _ = LAYOUTS["entra"]
    oidc = {"issuer": idp.issuer, "audience": "urn:infinstor:tracking", "leeway": 0, **config["oidc"]}
    server = CompanyServer(tmp_path / "entra-overage", idp.issuer, config={**config, "oidc": oidc, "scim": {"group_name": "externalId"}})
    try:
        alice, olivia = (user_token(idp, u, "layout-entra") for u in ("alice", "olivia"))
        M = server.mlflow
        experiment_id = M("POST", "experiments/create", alice, json={"name": "entra-vision"}).json()["experiment_id"]
        sees = lambda: M("GET", "experiments/get", olivia, params={"experiment_id": experiment_id}).status_code  # noqa: E731
        assert server.infinstor("GET", "whoami", olivia).json()["groups"] == [] and sees() == 404  # no claim, nothing provisioned
        engine = make_engine(server.backend_uri)
        try:
            scim_token, _ = DirectoryStore(ServiceStore(engine)).create_token("acme", "entra", "setup")
        finally:
            engine.dispose()
        headers = {"Authorization": f"Bearer {scim_token}", "Content-Type": "application/scim+json"}
        user = requests.post(
            f"{server.uri}/scim/v2/Users",
            headers=headers,
            timeout=30,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "olivia@acme.example",
                "externalId": object_id("user", "olivia"),
            },
        ).json()
        group = requests.post(
            f"{server.uri}/scim/v2/Groups",
            headers=headers,
            timeout=30,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Vision",
                "externalId": object_id("group", "vision"),
                "members": [{"value": user["id"]}],
            },
        )
        assert group.status_code == 201, group.text
        assert server.infinstor("GET", "whoami", olivia).json()["groups"] == [object_id("group", "vision")]
        assert sees() == 200
    finally:
        server.stop()
