"""Issue 14's parts of the company service on their own: the defaults a platform admin gets, claim
reading per identity provider, the SCIM tables' schema step and store (on a real SQLite file)."""

from __future__ import annotations

import pytest
import yaml

from infinstor_jupyterlab.tracking_service.config import ConfigError, load_config

BASE = {"oidc": {"issuer": "https://idp.example", "audience": "urn:infinstor:tracking"}}


def write(tmp_path, data, name="service.yaml") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


# -- defaults -----------------------------------------------------------------------------------------
def test_defaults_a_platform_admin_gets(tmp_path):
    config = load_config(write(tmp_path, {**BASE, "browser": {"client_id": "ui", "session_secret": "s" * 40}}), {})
    # Registered models are a shared space of the organisation unless configured otherwise.
    assert config.models_org_readable is True
    # An expired token is accepted for a few seconds of clock skew, not 30.
    assert config.leeway == 5
    # The service UI's sign-in comes back to the same path as the lab's: one redirect per surface.
    assert config.browser.redirect_path == "/infinstor/api/auth/callback"
    off = load_config(
        write(tmp_path, {**BASE, "defaults": {"registered_models_org_readable": False}, "oidc": {**BASE["oidc"], "leeway": 0}}), {}
    )
    assert off.models_org_readable is False and off.leeway == 0


def test_oidc_mode_and_verifier_default_leeway_is_small():
    from infinstor_jupyterlab.tracking_service.oidc_auth import TokenVerifier

    assert TokenVerifier("https://idp.example", "aud").leeway == 5
    assert TokenVerifier.from_environment.__func__  # the environment's default is the same (below)
    import os

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("INFINSTOR_OIDC_")}
    try:
        os.environ.update(INFINSTOR_OIDC_ISSUER="https://idp.example", INFINSTOR_OIDC_AUDIENCE="aud")
        assert TokenVerifier.from_environment().leeway == 5
    finally:
        for k in ("INFINSTOR_OIDC_ISSUER", "INFINSTOR_OIDC_AUDIENCE"):
            os.environ.pop(k, None)
        os.environ.update(saved)


@pytest.mark.parametrize("leeway", [-1, 301])
def test_leeway_is_bounded(tmp_path, leeway):
    with pytest.raises(ConfigError, match="oidc.leeway"):
        load_config(write(tmp_path, {"oidc": {**BASE["oidc"], "leeway": leeway}}), {})


# -- claims -------------------------------------------------------------------------------------------
def test_claim_names_are_keys_first_then_dotted_paths():
    from infinstor_jupyterlab.tracking_service import claims

    token = {
        "cognito:groups": ["a"],
        "https://x.example/org": "acme",
        "realm_access": {"roles": ["r1", "r2"]},
        "organization": {"acme": {"id": "1"}},
        "two": ["a", "b"],
        "n": 7,
        "flag": True,
    }
    assert claims.claim(token, "cognito:groups") == ["a"]
    assert claims.claim(token, "https://x.example/org") == "acme"  # a key with dots is read as a key
    assert claims.claim(token, "realm_access.roles") == ["r1", "r2"]
    assert claims.claim(token, "realm_access.missing") is None and claims.claim(token, "nothing") is None
    assert claims.org_value(claims.claim(token, "organization")) == "acme"  # a map of one alias
    assert claims.org_value(["acme"]) == "acme" and claims.org_value(["a", "b"]) is None  # one of several is ambiguous
    assert claims.org_value(7) == "7" and claims.org_value(True) is None
    assert claims.groups_value("one") == ["one"] and claims.groups_value([1, "x", None, {}]) == ["1", "x"]
    assert claims.organisation("tid-1", {"tid-1": "acme"}) == "acme" and claims.organisation("globex", {}) == "globex"
    assert claims.groups_overage({"_claim_names": {"groups": "src1"}}, "groups")
    assert claims.groups_overage({"hasgroups": True}, "groups") and not claims.groups_overage({"groups": []}, "groups")


@pytest.mark.parametrize(
    "oidc, scim, message",
    [
        ({"claims": {"groups": ""}}, None, "non-empty string"),
        ({"organisations": {"tid": ""}}, None, "oidc.organisations"),
        ({}, {"groups": "ldap"}, "scim.groups"),
        ({}, {"group_name": "id"}, "scim.group_name"),
    ],
)
def test_claim_and_scim_settings_are_checked(tmp_path, oidc, scim, message):
    data = {"oidc": {**BASE["oidc"], **oidc}, **({"scim": scim} if scim else {})}
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, data), {})


# -- schema step 3 (SCIM) and the directory ------------------------------------------------------
def test_upgrade_from_schema_step_2_keeps_everything(tmp_path):
    """A database of the previous release (step 2) gets the SCIM tables; its rows stay."""
    import sqlalchemy as sa

    import legacy_service_schema
    from infinstor_jupyterlab.tracking_service import db
    from infinstor_jupyterlab.tracking_service.service_store import ServiceStore

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    legacy_service_schema.make_database(engine, 2)  # what the previous release's migrate() left
    store = ServiceStore(engine)
    store.grant("acme", "experiment", "1", "group", "vision", "editor", "alice")
    token, _ = store.create_token("acme", "alice", "ci", 3600)
    before = store.change_versions()
    assert db.migrate(engine) == 3 == db.SCHEMA_VERSION
    with engine.connect() as c:
        assert db.current_version(c) == 3
        assert {
            "infinstor_scim_users",
            "infinstor_scim_groups",
            "infinstor_scim_members",
            "infinstor_scim_tokens",
            "infinstor_scim_deprovisioned",
        } <= set(sa.inspect(c).get_table_names())
    assert store.role_on("acme", "experiment", "1", "bob", ["vision"]) == "editor"
    assert store.check_token(token) is not None and store.change_versions() == before
    assert db.migrate(engine) == 3  # idempotent


def directory(tmp_path, groups_from="both", group_name="displayName"):
    from infinstor_jupyterlab.tracking_service.changes import ChangeWatcher
    from infinstor_jupyterlab.tracking_service.db import make_engine, migrate
    from infinstor_jupyterlab.tracking_service.directory import Directory, DirectoryStore
    from infinstor_jupyterlab.tracking_service.service_store import ServiceStore

    engine = make_engine(f"sqlite:///{tmp_path / 'dir.db'}")
    migrate(engine)
    service_store = ServiceStore(engine)
    store = DirectoryStore(service_store)
    return store, Directory(store, groups_from, group_name, ChangeWatcher(service_store.change_versions, 0.1), 300)


def test_groups_from_token_scim_or_both(tmp_path):
    from infinstor_jupyterlab.tracking_service.oidc_auth import InvalidToken

    store, both = directory(tmp_path)
    # Not provisioned: the token's groups, as they are.
    assert both.groups_for("acme", "carol", ("nlp",)) == ("nlp",)
    user = store.create_user("acme", "Carol", None, True, {"userName": "Carol"})
    store.create_group("acme", "ml", "obj-ml", {"displayName": "ml"}, [(user.scim_id, "User", None)])
    store.create_group("acme", "nlp", "obj-nlp", {"displayName": "nlp"}, [])
    # both: the token's groups SCIM does not manage, plus SCIM's; nlp is managed and carol is not in it.
    assert both.groups_for("acme", "carol", ("nlp", "from-token")) == ("from-token", "ml")
    token_only = type(both)(store, "token", "displayName", both.changes, 300)
    scim_only = type(both)(store, "scim", "displayName", both.changes, 300)
    by_external = type(both)(store, "scim", "externalId", both.changes, 300)
    assert token_only.groups_for("acme", "carol", ("nlp",)) == ("nlp",)
    assert token_only.groups_for("acme", "carol", (), overage=True) == ("ml",)  # Entra overage: SCIM's
    assert scim_only.groups_for("acme", "CAROL", ("nlp",)) == ("ml",)  # userName matches whatever the case
    assert by_external.groups_for("acme", "carol", ()) == ("obj-ml",)
    assert scim_only.groups_for("globex", "carol", ()) == ()  # another organisation's directory
    # Deactivated: refused whatever the source of groups; deleted: refused until provisioned again.
    store.update_user("acme", user.scim_id, "Carol", None, False, {"userName": "Carol", "active": False})
    for d in (both, token_only, scim_only):
        with pytest.raises(InvalidToken, match="deprovisioned"):
            d.groups_for("acme", "carol", ("nlp",))
    store.update_user("acme", user.scim_id, "Carol", None, True, {"userName": "Carol"})
    assert scim_only.groups_for("acme", "carol", ()) == ("ml",)
    store.delete_user("acme", user.scim_id)
    with pytest.raises(InvalidToken):
        both.groups_for("acme", "carol", ())
    store.create_user("acme", "carol", None, True, {"userName": "carol"})
    assert both.groups_for("acme", "carol", ("x",)) == ("x",)


def test_deprovisioning_revokes_api_tokens_and_raises_the_counter(tmp_path):
    store, _ = directory(tmp_path)
    service_store = store.service_store
    token, _ = service_store.create_token("acme", "Dana", "ci", 3600)
    other, _ = service_store.create_token("globex", "dana", "ci", 3600)
    user = store.create_user("acme", "dana", None, True, {"userName": "dana"})
    before = service_store.change_versions()["tokens"]
    store.update_user("acme", user.scim_id, "dana", None, False, {"userName": "dana", "active": False})
    assert service_store.change_versions()["tokens"] == before + 1
    assert service_store.check_token(token) is None  # her API token (username in another case) is revoked
    assert service_store.check_token(other) is not None  # globex's dana is someone else
    heard = []
    service_store.listeners.append(heard.append)
    group = store.create_group("acme", "g", None, {"displayName": "g"}, [])
    store.update_group("acme", group.scim_id, "g", None, {"displayName": "g"}, [(user.scim_id, "User", "dana")])
    store.delete_group("acme", group.scim_id)
    assert heard == ["tokens", "tokens", "tokens"]


def test_scim_tokens_are_hashed_and_revocable(tmp_path):
    store, _ = directory(tmp_path)
    token, record = store.create_token("acme", "entra", "frank")
    assert token.startswith("scim_") and store.check_token(token).org == "acme"
    assert store.check_token(token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    assert store.check_token("inf_" + token[5:]) is None
    import sqlalchemy as sa

    from infinstor_jupyterlab.tracking_service.db import scim_tokens

    with store.engine.connect() as c:
        assert token.split("_", 2)[2] not in str(c.execute(sa.select(scim_tokens)).all())
    assert store.revoke_token("globex", record.token_id) is False and store.revoke_token("acme", record.token_id)
    assert store.check_token(token) is None


def test_browser_sign_in_can_leave_out_the_resource_parameter(tmp_path):
    """Entra ID's v2 endpoints refuse `resource` (AADSTS901002): the audience is in the scope there."""
    from urllib.parse import parse_qs, urlsplit

    from infinstor_jupyterlab.tracking_service.browser import BrowserSignIn
    from infinstor_jupyterlab.tracking_service.check import Report, _sign_in

    data = {**BASE, "browser": {"client_id": "ui", "session_secret": "s" * 40, "scopes": "openid api://app/access"}}
    for flag, expected in ((True, ["urn:infinstor:tracking"]), (False, None)):
        config = load_config(write(tmp_path, {**data, "browser": {**data["browser"], "resource_parameter": flag}}), {})
        sign_in = BrowserSignIn(config.browser, config.issuer, config.audience)
        sign_in._metadata = {"authorization_endpoint": "https://idp.example/authorize"}
        location, _ = sign_in.login({"headers": [(b"host", b"mlflow.example.com")], "scheme": "https"}, "/")
        assert parse_qs(urlsplit(location).query).get("resource") == expected
        report = Report(provider="entra")
        _sign_in(report, config, None, None)
        assert any("AADSTS901002" in f.message for f in report.findings) is flag
