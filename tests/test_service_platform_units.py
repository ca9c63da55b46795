"""Issue 14's parts of the company service on their own: the defaults a platform admin gets, claim
reading per identity provider, the SCIM tables' schema step and store (on a real SQLite file)."""

from __future__ import annotations

import pytest
import yaml

from infinstor_jupyterlab.service.config import ConfigError, load_config

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
    off = load_config(write(tmp_path, {**BASE, "defaults": {"registered_models_org_readable": False}, "oidc": {**BASE["oidc"], "leeway": 0}}), {})
    assert off.models_org_readable is False and off.leeway == 0


def test_oidc_mode_and_verifier_default_leeway_is_small():
    from infinstor_jupyterlab.service.oidc_auth import TokenVerifier

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
    from infinstor_jupyterlab.service import claims

    token = {"cognito:groups": ["a"], "https://x.example/org": "acme", "realm_access": {"roles": ["r1", "r2"]},
             "organization": {"acme": {"id": "1"}}, "two": ["a", "b"], "n": 7, "flag": True}  # fmt: skip
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
