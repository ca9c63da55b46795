"""Failed sign-ins are audited: a real `mlflow server --app-name infinstor` (SQLite and PostgreSQL)
refuses bad credentials from the real test IdP, a second IdP and its own API tokens, and its audit
table and log then say who claimed to be whom, from where, why and when: once per kind of failure
however often it is repeated, and never with any of the credentials' text."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from idp_fixture import SHORT_CLIENT
from infinstor_jupyterlab.tracking_service.db import make_engine
from service_fixture import CompanyServer, company_server_on_each_backend, user_token

pytestmark = pytest.mark.slow

FLOOD = 25  # requests per bad credential


audit_server = company_server_on_each_backend("signin_audit")


def _ok(response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def _api_token(server: CompanyServer, token: str, **body) -> dict:
    return _ok(server.infinstor("POST", "tokens", token, json={"name": f"t-{time.monotonic_ns()}", **body}))


def _failed_sign_ins(server: CompanyServer, expected: int, timeout: float = 15.0) -> list[dict]:
    """The signin_failed rows of the audit table, once `expected` are there (rows are batched)."""
    engine = make_engine(server.backend_uri)
    query = sa.text(
        "SELECT org, username, action, status, resource_type, resource_id, detail FROM infinstor_audit "
        "WHERE action = 'signin_failed' ORDER BY id"
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                rows = [dict(row) for row in connection.execute(query).mappings()]
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)
    finally:
        engine.dispose()


def test_failed_sign_ins_are_audited_without_credentials(audit_server, idp, other_issuer):
    server = audit_server
    expired = user_token(idp, "alice", SHORT_CLIENT)  # lives 4 s
    issued = time.monotonic()
    alice, frank = user_token(idp, "alice"), user_token(idp, "frank")  # frank is an acme admin
    revoked = _api_token(server, alice)
    _ok(server.infinstor("DELETE", f"tokens/{revoked['id']}", alice))
    expired_api = _api_token(server, alice, expires_in_days=0.00002)  # 1.7 s
    valid_api = _api_token(server, alice)["token"]
    wrong_secret = valid_api[:-4] + ("AAAA" if not valid_api.endswith("AAAA") else "BBBB")
    credentials = {
        "expired": expired,
        "bad_signature": alice.rsplit(".", 1)[0] + ".c2lnbmF0dXJl",
        "unknown_key": user_token(other_issuer, "alice"),  # same user, another issuer
        "malformed": "not-a-jwt",
        "revoked_api_token": revoked["token"],
        "expired_api_token": expired_api["token"],
        "wrong_secret_api_token": wrong_secret,
        "unknown_api_token": "inf_0000000000000000_" + "x" * 43,
    }
    time.sleep(max(0.0, 5.5 - (time.monotonic() - issued)))
    for credential in credentials.values():
        for _ in range(FLOOD):
            assert server.mlflow("GET", "experiments/get", credential, params={"experiment_id": "0"}).status_code == 401
    assert server.mlflow("GET", "experiments/get", None, params={"experiment_id": "0"}).status_code == 401  # no sign-in at all

    rows = _failed_sign_ins(server, len(credentials))
    time.sleep(1.0)  # a straggler would show now
    rows = _failed_sign_ins(server, len(credentials))
    details = [json.loads(row["detail"]) for row in rows]
    # One row per kind of failure, however often it was repeated; none for the anonymous request.
    assert sorted(d["reason"] for d in details) == sorted(credentials), rows
    by_reason = {d["reason"]: (row, d) for row, d in zip(rows, details)}
    who = {reason: (row["org"], row["username"], d["verified"]) for reason, (row, d) in by_reason.items()}
    assert who == {
        "expired": ("acme", "alice", True),  # genuine but expired: the identity is proven
        "bad_signature": ("", "alice", False),  # claimed only: no organisation's log
        "unknown_key": ("", "alice", False),
        "malformed": ("", "", False),
        "revoked_api_token": ("acme", "alice", True),  # the secret matched a revoked token
        "expired_api_token": ("acme", "alice", True),
        "wrong_secret_api_token": ("acme", "alice", False),  # someone tried alice's token id
        "unknown_api_token": ("", "", False),
    }
    assert by_reason["unknown_key"][1]["issuer"] == other_issuer.issuer and by_reason["expired"][1]["subject"]
    assert by_reason["revoked_api_token"][0]["resource_id"] == revoked["id"][:8]
    assert by_reason["unknown_api_token"][0]["resource_id"] == "00000000"
    for row, detail in zip(rows, details):
        assert row["status"] == 401 and row["resource_type"] == "credential"
        assert detail["source"] == "127.0.0.1" and detail["count"] == 1 and detail["first_at"] > 0

    # Organisation admins read their organisation's failures; the unattributed ones are not theirs.
    events = _ok(server.infinstor("GET", "audit", frank, params={"limit": 1000}))["events"]
    assert {e["detail"]["reason"] for e in events if e["action"] == "signin_failed"} == {
        "expired",
        "revoked_api_token",
        "expired_api_token",
        "wrong_secret_api_token",
    }

    # No credential's text, nor any secret part of one, is in the audit table or the service log.
    engine = make_engine(server.backend_uri)
    with engine.connect() as connection:
        table = json.dumps([list(map(str, row)) for row in connection.execute(sa.text("SELECT * FROM infinstor_audit"))])
    engine.dispose()
    log = server.log_path.read_text(errors="replace")
    assert "failed sign-in" in log
    secrets = [*credentials.values(), alice, frank, valid_api]
    secrets += [c.rsplit(".", 1)[1] for c in (expired, alice, credentials["unknown_key"])]  # JWT signatures
    # API token secrets: `inf_<16-char id>_<secret>`, and the secret itself may hold "_".
    secrets += [t.split("_", 2)[2] for t in (revoked["token"], expired_api["token"], valid_api, wrong_secret)]
    for secret in secrets:
        assert secret not in table and secret not in log
