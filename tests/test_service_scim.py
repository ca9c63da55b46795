"""SCIM 2.0 provisioning on the company service, end to end: two replicas on one database (SQLite,
then PostgreSQL), the real test IdP, SCIM tokens made by an organisation admin, scim2-tester's
conformance checks, and the effect of every provisioning change on access, through MLflow's API."""

from __future__ import annotations

import time

import pytest
import requests

from service_fixture import CompanyServer, user_token

pytestmark = pytest.mark.slow

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def replicas(request, idp, tmp_path_factory):
    cluster = request.getfixturevalue("postgres_cluster") if request.param == "postgresql" else None
    root = tmp_path_factory.mktemp(f"scim-{request.param}")
    uri = cluster.create_database("scim") if cluster else f"sqlite:///{root / 'mlflow.db'}"
    main = CompanyServer(root / "main", idp.issuer, backend_uri=uri)
    try:
        peer = CompanyServer(root / "peer", idp.issuer, backend_uri=uri)
    except Exception:
        main.stop()
        raise
    yield main, peer
    peer.stop()
    main.stop()


@pytest.fixture(scope="module")
def scim_token(replicas, idp) -> str:
    main, _ = replicas
    created = main.infinstor("POST", "scim-tokens", user_token(idp, "frank"), json={"name": "entra"})
    assert created.status_code == 200, created.text
    return created.json()["token"]


def scim(server: CompanyServer, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if "json" in kwargs:
        headers["Content-Type"] = "application/scim+json"
    return requests.request(method, f"{server.uri}/scim/v2/{path}", headers=headers, timeout=30, **kwargs)


def ok(response: requests.Response, status: int = 200) -> dict:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def patch(server: CompanyServer, path: str, token: str, *operations: dict) -> None:
    """A PATCH, which answers 204 (or 200 with the resource, RFC 7644 section 3.5.2)."""
    response = scim(server, "PATCH", path, token, json={"schemas": [PATCH], "Operations": list(operations)})
    assert response.status_code in (200, 204), f"PATCH {path}: {response.status_code} {response.text}"


def soon(check, what: str, bound: float = 2 * 1.0 + 2) -> None:
    """A change reaches every replica within about two change polls (1 s each by default)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound, what
        time.sleep(0.1)


def test_scim_tokens_are_for_organisation_admins_and_for_scim_only(replicas, idp, scim_token):
    main, _ = replicas
    alice, frank = user_token(idp, "alice"), user_token(idp, "frank")
    assert main.infinstor("POST", "scim-tokens", alice, json={"name": "mine"}).status_code == 403
    assert main.infinstor("POST", "scim-tokens", frank, json={}).status_code == 400
    listed = ok(main.infinstor("GET", "scim-tokens", frank))["tokens"]
    # The active ones (another test may have made and revoked one: tests run in any order).
    assert [t["name"] for t in listed if t["revoked_at"] is None] == ["entra"] and scim_token not in str(listed)
    # SCIM needs a SCIM token: nothing else opens it, and a SCIM token opens nothing else.
    assert scim(main, "GET", "Users", None).status_code == 401
    assert scim(main, "GET", "Users", alice).status_code == 401
    assert scim(main, "GET", "Users", scim_token[:-3] + "xyz").status_code == 401
    assert main.mlflow("POST", "experiments/search", scim_token, json={}).status_code == 401
    # The protocol's own description needs none (RFC 7643 section 5); it names no organisation.
    config = ok(scim(main, "GET", "ServiceProviderConfig", None))
    assert config["patch"]["supported"] and config["filter"]["supported"]
    for path in ("Schemas", "ResourceTypes"):
        assert ok(scim(main, "GET", path, scim_token))["totalResults"] >= 2


def test_scim2_tester_finds_no_failure(replicas, scim_token):
    """An independent checker of RFC 7643/7644 (scim2-tester): zero errors."""
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    main, _ = replicas
    client = SyncSCIMClient(Client(base_url=f"{main.uri}/scim/v2", headers={"Authorization": f"Bearer {scim_token}"}, timeout=30))
    results = check_server(client)
    failures = [f"{r.title}: {r.status.name} {r.reason}" for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert len(results) > 100 and not failures, "\n".join(failures)
    assert {"crud:create", "crud:read", "crud:update", "crud:delete", "patch:add", "patch:remove", "patch:replace", "discovery"} <= {
        tag for r in results for tag in r.tags
    }


def test_filtering_patch_and_pagination(replicas, scim_token):
    main, _ = replicas
    ids = {}
    for index in range(5):
        name = f"paged-{index}@acme.example"
        ids[name] = ok(
            scim(
                main,
                "POST",
                "Users",
                scim_token,
                json={"schemas": [SCIM_USER], "userName": name, "externalId": f"ext-{index}", "active": True},
            ),
            201,
        )["id"]
    # A userName is unique in the organisation, whatever its case.
    assert scim(main, "POST", "Users", scim_token, json={"schemas": [SCIM_USER], "userName": "PAGED-0@acme.example"}).status_code == 409
    found = ok(scim(main, "GET", "Users", scim_token, params={"filter": 'userName eq "Paged-3@ACME.example"'}))
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == ids["paged-3@acme.example"]
    assert (
        ok(scim(main, "GET", "Users", scim_token, params={"filter": 'externalId eq "ext-4"'}))["Resources"][0]["userName"]
        == "paged-4@acme.example"
    )
    starts = ok(scim(main, "GET", "Users", scim_token, params={"filter": 'userName sw "paged-"', "sortBy": "userName"}))
    assert [u["userName"] for u in starts["Resources"]] == sorted(ids)
    page = ok(
        scim(main, "GET", "Users", scim_token, params={"filter": 'userName sw "paged-"', "sortBy": "userName", "startIndex": 3, "count": 2})
    )
    assert page["totalResults"] == 5 and page["startIndex"] == 3 and page["itemsPerPage"] == 2
    assert [u["userName"] for u in page["Resources"]] == sorted(ids)[2:4]
    assert scim(main, "GET", "Users", scim_token, params={"filter": "userName eq"}).status_code == 400
    # PATCH: replace a value, add a member, remove it by a value filter.
    user = ids["paged-0@acme.example"]
    patch(main, f"Users/{user}", scim_token, {"op": "replace", "path": "displayName", "value": "Paged Zero"})
    assert ok(scim(main, "GET", f"Users/{user}", scim_token))["displayName"] == "Paged Zero"
    group = ok(scim(main, "POST", "Groups", scim_token, json={"schemas": [SCIM_GROUP], "displayName": "paged-group"}), 201)["id"]
    patch(
        main,
        f"Groups/{group}",
        scim_token,
        {"op": "add", "path": "members", "value": [{"value": user}, {"value": ids["paged-1@acme.example"]}]},
    )
    members = ok(scim(main, "GET", f"Groups/{group}", scim_token))["members"]
    assert {m["value"] for m in members} == {user, ids["paged-1@acme.example"]}
    assert [g["value"] for g in ok(scim(main, "GET", f"Users/{user}", scim_token))["groups"]] == [group]
    patch(main, f"Groups/{group}", scim_token, {"op": "remove", "path": f'members[value eq "{user}"]'})
    assert [m["value"] for m in ok(scim(main, "GET", f"Groups/{group}", scim_token))["members"]] == [ids["paged-1@acme.example"]]
    assert ok(scim(main, "GET", "Groups", scim_token, params={"filter": 'displayName eq "paged-group"'}))["totalResults"] == 1
    # A member must exist in this directory.
    bad = scim(
        main,
        "PATCH",
        f"Groups/{group}",
        scim_token,
        json={"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}]},
    )
    assert bad.status_code == 400


def test_provisioning_changes_access_on_every_replica(replicas, idp, scim_token):
    """Group membership from SCIM gives roles; removal from the group, deactivation and deletion
    take them away on every replica within the documented bound; deprovisioning revokes API tokens."""
    main, peer = replicas
    alice, erin = user_token(idp, "alice"), user_token(idp, "erin")
    M = main.mlflow
    # alice shares an experiment with a group of the directory; erin (token groups: sales) is not in it.
    experiment_id = ok(M("POST", "experiments/create", alice, json={"name": "scim-shared"}))["experiment_id"]
    ok(
        main.infinstor(
            "POST",
            "permissions",
            alice,
            json={
                "resource_type": "experiment",
                "resource_id": experiment_id,
                "principal_type": "group",
                "principal": "ml-platform",
                "role": "reader",
            },
        )
    )
    sees = lambda server, token: server.mlflow("GET", "experiments/get", token, params={"experiment_id": experiment_id}).status_code  # noqa: E731
    assert sees(main, erin) == 404
    # The directory provisions erin and puts her in ml-platform: she reads it, on both replicas.
    user = ok(
        scim(
            main,
            "POST",
            "Users",
            scim_token,
            json={"schemas": [SCIM_USER], "userName": "erin", "active": True, "emails": [{"value": "erin@acme.example", "primary": True}]},
        ),
        201,
    )
    group = ok(
        scim(
            main,
            "POST",
            "Groups",
            scim_token,
            json={"schemas": [SCIM_GROUP], "displayName": "ml-platform", "members": [{"value": user["id"]}]},
        ),
        201,
    )
    assert ok(main.infinstor("GET", "whoami", erin))["groups"] == ["sales", "ml-platform"]
    assert sees(main, erin) == 200 and sees(peer, erin) == 200
    # Removed from the group: the role goes, on both replicas (the peer reused it until now).
    patch(main, f"Groups/{group['id']}", scim_token, {"op": "remove", "path": f'members[value eq "{user["id"]}"]'})
    assert sees(main, erin) == 404
    soon(lambda: sees(peer, erin) == 404, "a SCIM group removal did not reach the peer replica")
    patch(peer, f"Groups/{group['id']}", scim_token, {"op": "add", "path": "members", "value": [{"value": user["id"]}]})
    soon(lambda: sees(main, erin) == 200, "a SCIM group addition on the peer did not reach the main replica")
    # erin makes an API token; deactivating her refuses her token and her API token everywhere.
    api_token = ok(main.infinstor("POST", "tokens", erin, json={"name": "erin-ci"}))["token"]
    assert sees(peer, api_token) == 200
    patch(main, f"Users/{user['id']}", scim_token, {"op": "replace", "value": {"active": False}})
    refused = main.infinstor("GET", "whoami", erin)
    assert refused.status_code == 401 and "deprovisioned" in refused.json()["message"]
    soon(lambda: sees(peer, erin) == 401 and sees(peer, api_token) == 401, "a deactivation did not reach the peer replica")
    erin_tokens = ok(main.infinstor("GET", "tokens", user_token(idp, "frank"), params={"all": "true"}))["tokens"]
    assert next(t for t in erin_tokens if t["name"] == "erin-ci")["revoked_at"] is not None
    # Active again: her sign-in works; the revoked API token stays revoked.
    patch(main, f"Users/{user['id']}", scim_token, {"op": "replace", "path": "active", "value": True})
    assert sees(main, erin) == 200 and sees(main, api_token) == 401
    # Deleted: refused everywhere, even with a token issued before; provisioned again: back.
    ok(scim(main, "DELETE", f"Users/{user['id']}", scim_token), 204)
    assert scim(main, "GET", f"Users/{user['id']}", scim_token).status_code == 404
    assert main.infinstor("GET", "whoami", erin).status_code == 401
    soon(lambda: sees(peer, erin) == 401, "a deletion did not reach the peer replica")
    assert ok(scim(main, "GET", f"Groups/{group['id']}", scim_token)).get("members", []) == []
    again = ok(scim(main, "POST", "Users", scim_token, json={"schemas": [SCIM_USER], "userName": "erin"}), 201)
    assert ok(main.infinstor("GET", "whoami", erin))["groups"] == ["sales"] and again["id"] != user["id"]
    # Audit: the directory's writes are the organisation's record.
    events = ok(main.infinstor("GET", "audit", user_token(idp, "frank"), params={"limit": 1000}))["events"]
    assert {("scim:entra", "scim:DELETE Users", 204), ("scim:entra", "scim:POST Groups", 201)} <= {
        (e["username"], e["action"], e["status"]) for e in events
    }


def test_a_groups_claim_of_a_group_scim_manages_counts_only_while_scim_agrees(replicas, idp, scim_token):
    """scim.groups: both (the default): SCIM decides for the groups it provisions, even against an
    older token's claim; the token's other groups stay."""
    main, _ = replicas
    bob = user_token(idp, "bob")  # token groups: vision
    user = ok(scim(main, "POST", "Users", scim_token, json={"schemas": [SCIM_USER], "userName": "bob"}), 201)
    assert ok(main.infinstor("GET", "whoami", bob))["groups"] == ["vision"]
    group = ok(scim(main, "POST", "Groups", scim_token, json={"schemas": [SCIM_GROUP], "displayName": "vision"}), 201)
    assert ok(main.infinstor("GET", "whoami", bob))["groups"] == []  # the directory manages vision, without bob
    ok(
        scim(
            main,
            "PUT",
            f"Groups/{group['id']}",
            scim_token,
            json={"schemas": [SCIM_GROUP], "displayName": "vision", "members": [{"value": user["id"]}]},
        )
    )
    assert ok(main.infinstor("GET", "whoami", bob))["groups"] == ["vision"]
    ok(scim(main, "DELETE", f"Groups/{group['id']}", scim_token), 204)
    assert ok(main.infinstor("GET", "whoami", bob))["groups"] == ["vision"]  # no longer managed: the token's claim counts


def test_organisations_directories_are_apart(replicas, idp, scim_token):
    """A SCIM token of another organisation sees nothing of this one's directory."""
    from infinstor_jupyterlab.tracking_service.db import make_engine
    from infinstor_jupyterlab.tracking_service.directory import DirectoryStore
    from infinstor_jupyterlab.tracking_service.service_store import ServiceStore

    main, _ = replicas
    acme_user = ok(scim(main, "POST", "Users", scim_token, json={"schemas": [SCIM_USER], "userName": "apart@acme.example"}), 201)
    engine = make_engine(main.backend_uri)  # globex has no admin among the test users: its token is made in the database
    try:
        globex_token, _ = DirectoryStore(ServiceStore(engine)).create_token("globex", "okta", "setup")
    finally:
        engine.dispose()
    assert ok(scim(main, "GET", "Users", globex_token))["totalResults"] == 0
    assert scim(main, "GET", f"Users/{acme_user['id']}", globex_token).status_code == 404
    assert scim(main, "DELETE", f"Users/{acme_user['id']}", globex_token).status_code == 404
    # The same userName is free in globex.
    ok(scim(main, "POST", "Users", globex_token, json={"schemas": [SCIM_USER], "userName": "apart@acme.example"}), 201)
    # A revoked SCIM token opens nothing.
    frank = user_token(idp, "frank")
    extra = ok(main.infinstor("POST", "scim-tokens", frank, json={"name": "temporary"}))
    assert scim(main, "GET", "Users", extra["token"]).status_code == 200
    ok(main.infinstor("DELETE", f"scim-tokens/{extra['id']}", frank))
    assert scim(main, "GET", "Users", extra["token"]).status_code == 401
