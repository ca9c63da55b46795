"""What the service reads from an access token (user, email, organisation, groups), by configuration.

Identity providers lay their tokens out differently (docs/identity-providers.md): Entra ID puts
group object ids in `groups` and the tenant in `tid`; Cognito uses `cognito:groups`; Auth0 wants
custom claims namespaced (`https://example.com/org`); Keycloak nests roles (`realm_access.roles`)
and its organizations feature sends `organization` as a list or a map. So a configured claim
name is looked up as given first, and only if absent as a dotted path into nested objects. No
provider is special-cased: the layouts differ only in configuration (`oidc.claims`,
`oidc.organisations`, `oidc.audience_claim`).

Entra ID's **group overage**: a user in more groups than fit in a token (200 in a JWT) gets no
`groups` claim but `_claim_names: {"groups": "src1"}` pointing at Microsoft Graph. `groups_overage`
says so; the service then takes the user's groups from SCIM (see `directory.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim `name`: the key as given (it may contain ':', '/' or '.'), else a dotted path."""
    if name in claims:
        return claims[name]
    if "." not in name:
        return None
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def org_value(value: Any) -> str | None:
    """An organisation claim's value: a string; or a list of one (Keycloak's `organization`); or a
    map of one alias to its attributes (Keycloak with attributes). More than one: None (ambiguous)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    elif isinstance(value, Mapping) and len(value) == 1:
        value = next(iter(value))
    return text(value)


def groups_value(value: Any) -> list[str]:
    if isinstance(value, str):  # some providers send one group as a plain string
        value = [value]
    if not isinstance(value, list):
        return []
    return [g for g in (text(item) for item in value) if g]


def groups_overage(claims: Mapping[str, Any], name: str) -> bool:
    """Did the provider leave the groups out because there were too many (Entra ID)?"""
    pointers = claims.get("_claim_names")
    if isinstance(pointers, Mapping) and (name in pointers or "groups" in pointers):
        return True
    return claims.get("hasgroups") is True  # Entra ID's implicit-flow form of the same


def organisation(raw: str | None, names: Mapping[str, str]) -> str | None:
    """The organisation an org claim value stands for (`oidc.organisations` maps provider ids,
    e.g. an Entra tenant id or an Auth0 org_id, to a name; other values stand for themselves)."""
    if raw is None:
        return None
    return names.get(raw, raw)


def audience_matches(claims: Mapping[str, Any], audience_claim: str, audience: str) -> bool:
    value = claim(claims, audience_claim)
    return value == audience or (isinstance(value, list) and audience in value)
