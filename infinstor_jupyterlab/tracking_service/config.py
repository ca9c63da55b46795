"""Configuration of the company service: one YAML file (INFINSTOR_SERVICE_CONFIG) plus environment.

Environment variables win over the file, so secrets and per-deployment values need not be
written into it. Everything is checked at start-up; a mistake stops the server with a message
that names the setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .browser import DEFAULT_REDIRECT_PATH, BrowserConfig
from .oidc_auth import ClaimNames

CONFIG_ENV = "INFINSTOR_SERVICE_CONFIG"

EXPERIMENT_DEFAULTS = ("shared", "private")
GROUP_SOURCES = ("token", "scim", "both")
SCIM_GROUP_NAMES = ("displayName", "externalId")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ServiceConfig:
    issuer: str
    audience: str
    jwks_uri: str | None = None
    # Seconds of clock skew tolerated on exp/nbf/iat: small, since an expired token is accepted this long.
    leeway: float = 5.0
    claims: ClaimNames = field(default_factory=ClaimNames)
    # The claim that carries the audience: `aud`, or `client_id` for Amazon Cognito's access tokens.
    audience_claim: str = "aud"
    database_uri: str | None = None  # default: MLflow's backend store
    policy_file: str | None = None
    org_admin_groups: tuple[str, ...] = ()
    # Defaults on create.
    experiment_default: str = "shared"  # shared: creator's groups become editors; private: only the creator
    experiment_group_role: str = "editor"
    model_group_role: str = "reader"
    # Registered models are a shared space of the organisation: every member may read a new one
    # (a manager may revoke that per model).
    models_org_readable: bool = True
    # API tokens.
    token_default_days: float = 90.0
    token_max_days: float = 365.0
    # Job-scoped tokens (for VMs): the signing secret; without it the service mints none.
    job_token_secret: str | None = field(default=None, repr=False)
    job_token_max_seconds: float = 24 * 3600.0
    # How long a replica may reuse a role or an API token it checked, at most. Changes made through
    # the service end the reuse at once on their replica and within about 2 x change_poll_seconds
    # on the others (service/changes.py); this bound covers changes made around it. 0: never.
    grant_cache_seconds: float = 300.0
    change_poll_seconds: float = 1.0
    # Browser sign-in to the MLflow web UI (None: the UI needs a bearer token, e.g. via the lab's proxy).
    browser: BrowserConfig | None = None
    # Where a user's groups come from (see directory.py): "token" (the groups claim; SCIM only when
    # the token's groups overflowed), "scim" (SCIM membership only) or "both"; and which SCIM
    # attribute names a group in grants.
    groups_from: str = "both"
    scim_group_name: str = "displayName"


_ENV = {
    "INFINSTOR_OIDC_ISSUER": ("oidc", "issuer"),
    "INFINSTOR_OIDC_AUDIENCE": ("oidc", "audience"),
    "INFINSTOR_OIDC_JWKS_URI": ("oidc", "jwks_uri"),
    "INFINSTOR_OIDC_LEEWAY": ("oidc", "leeway"),
    "INFINSTOR_SERVICE_DATABASE_URI": ("database_uri",),
    "INFINSTOR_SERVICE_POLICY": ("policy_file",),
    "INFINSTOR_JOB_TOKEN_SECRET": ("job_tokens", "secret"),
    "INFINSTOR_SESSION_SECRET": ("browser", "session_secret"),
    "INFINSTOR_BROWSER_CLIENT_SECRET": ("browser", "client_secret"),
}


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a mapping")
    return value


def _check_keys(section: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(section) - allowed
    if unknown:
        raise ConfigError(f"unknown setting(s) in {where}: {sorted(unknown)}; expected some of {sorted(allowed)}")


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_ENV)
    data: dict[str, Any] = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read {CONFIG_ENV}={path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    _check_keys(
        data,
        {
            "oidc",
            "database_uri",
            "policy_file",
            "org_admin_groups",
            "defaults",
            "tokens",
            "job_tokens",
            "grant_cache_seconds",
            "change_poll_seconds",
            "browser",
            "scim",
        },
        "the configuration",
    )
    for name, where in _ENV.items():
        if environ.get(name):
            target = data
            for key in where[:-1]:
                target = target.setdefault(key, {})
            target[where[-1]] = environ[name]
    oidc = _section(data, "oidc")
    _check_keys(oidc, {"issuer", "audience", "jwks_uri", "leeway", "claims", "audience_claim", "organisations"}, "oidc")
    claims = _section(oidc, "claims")
    _check_keys(claims, {"username", "email", "groups", "org"}, "oidc.claims")
    if not all(isinstance(v, str) and v for v in claims.values()):
        raise ConfigError("oidc.claims: each claim name must be a non-empty string (a claim, or a dotted path such as realm_access.roles)")
    organisations = _section(oidc, "organisations")
    if not all(isinstance(k, (str, int)) and isinstance(v, str) and v for k, v in organisations.items()):
        raise ConfigError("oidc.organisations must map org claim values to organisation names, e.g. {<Entra tenant id>: acme}")
    audience_claim = str(oidc.get("audience_claim") or "aud")
    scim = _section(data, "scim")
    _check_keys(scim, {"groups", "group_name"}, "scim")
    groups_from = scim.get("groups", "both")
    if groups_from not in GROUP_SOURCES:
        raise ConfigError(f"scim.groups must be one of {GROUP_SOURCES} (where a user's groups come from), not {groups_from!r}")
    scim_group_name = scim.get("group_name", "displayName")
    if scim_group_name not in SCIM_GROUP_NAMES:
        raise ConfigError(f"scim.group_name must be one of {SCIM_GROUP_NAMES}, not {scim_group_name!r}")
    defaults = _section(data, "defaults")
    _check_keys(
        defaults, {"experiment", "experiment_group_role", "registered_model_group_role", "registered_models_org_readable"}, "defaults"
    )
    tokens = _section(data, "tokens")
    _check_keys(tokens, {"default_days", "max_days"}, "tokens")
    job_tokens = _section(data, "job_tokens")
    _check_keys(job_tokens, {"secret", "max_seconds"}, "job_tokens")

    browser = _section(data, "browser")
    _check_keys(
        browser,
        {"client_id", "client_secret", "scopes", "redirect_path", "session_secret", "session_hours", "public_url", "resource_parameter"},
        "browser",
    )
    browser_config = None
    if browser.get("client_id"):
        secret = str(browser.get("session_secret") or "")
        if len(secret) < 32:
            raise ConfigError("browser sign-in needs browser.session_secret (or INFINSTOR_SESSION_SECRET) of at least 32 characters")
        redirect_path = str(browser.get("redirect_path") or DEFAULT_REDIRECT_PATH)
        if not redirect_path.startswith("/"):
            raise ConfigError("browser.redirect_path must be a path starting with '/'")
        try:
            hours = float(browser.get("session_hours", 12))
        except (TypeError, ValueError):
            raise ConfigError("browser.session_hours must be a number") from None
        browser_config = BrowserConfig(
            client_id=str(browser["client_id"]),
            client_secret=browser.get("client_secret") or None,
            scopes=str(browser.get("scopes") or "openid profile email"),
            redirect_path=redirect_path,
            session_secret=secret,
            session_hours=hours,
            public_url=browser.get("public_url") or None,
            resource_parameter=bool(browser.get("resource_parameter", True)),
        )
    elif set(browser) - {"session_secret", "client_secret"}:
        raise ConfigError("browser sign-in needs browser.client_id")
    issuer, audience = str(oidc.get("issuer") or "").strip(), str(oidc.get("audience") or "").strip()
    if not issuer or not audience:
        raise ConfigError("company mode needs oidc.issuer and oidc.audience (or INFINSTOR_OIDC_ISSUER / INFINSTOR_OIDC_AUDIENCE)")
    experiment_default = defaults.get("experiment", "shared")
    if experiment_default not in EXPERIMENT_DEFAULTS:
        raise ConfigError(f"defaults.experiment must be one of {EXPERIMENT_DEFAULTS}, not {experiment_default!r}")
    group_roles = {}
    for key, fallback in (("experiment_group_role", "editor"), ("registered_model_group_role", "reader")):
        role = defaults.get(key, fallback)
        if role not in ("reader", "editor", "manager"):
            raise ConfigError(f"defaults.{key} must be reader, editor or manager, not {role!r}")
        group_roles[key] = role
    admin_groups = data.get("org_admin_groups") or []
    if not isinstance(admin_groups, list) or not all(isinstance(g, str) and g for g in admin_groups):
        raise ConfigError("org_admin_groups must be a list of group names")
    try:
        leeway = float(oidc.get("leeway", 5))
        default_days, max_days = float(tokens.get("default_days", 90)), float(tokens.get("max_days", 365))
        job_max = float(job_tokens.get("max_seconds", 24 * 3600))
        grant_cache = float(data.get("grant_cache_seconds", 300))
        change_poll = float(data.get("change_poll_seconds", 1))
    except (TypeError, ValueError):
        raise ConfigError(
            "oidc.leeway, tokens.default_days, tokens.max_days, job_tokens.max_seconds, grant_cache_seconds "
            "and change_poll_seconds must be numbers"
        ) from None
    if not 0 <= leeway <= 300:
        raise ConfigError("oidc.leeway must be between 0 and 300 seconds (a few seconds is enough for clock skew)")
    if not 0 <= grant_cache <= 3600:
        raise ConfigError("grant_cache_seconds must be between 0 and 3600")
    if not 0.1 <= change_poll <= 60:
        raise ConfigError("change_poll_seconds must be between 0.1 and 60")
    if not 0 < default_days <= max_days:
        raise ConfigError("tokens: need 0 < default_days <= max_days")
    job_secret = job_tokens.get("secret") or None
    if job_secret is not None and len(str(job_secret)) < 32:
        raise ConfigError(
            "job_tokens.secret (INFINSTOR_JOB_TOKEN_SECRET) must be at least 32 characters "
            "(make one with `openssl rand -hex 32`, the same on every replica)"
        )
    return ServiceConfig(
        issuer=issuer,
        audience=audience,
        jwks_uri=oidc.get("jwks_uri") or None,
        leeway=leeway,
        claims=ClaimNames(
            **{k: str(v) for k, v in claims.items()}, organisations=tuple((str(k), str(v)) for k, v in organisations.items())
        ),
        audience_claim=audience_claim,
        groups_from=groups_from,
        scim_group_name=scim_group_name,
        database_uri=data.get("database_uri") or None,
        policy_file=data.get("policy_file") or None,
        org_admin_groups=tuple(admin_groups),
        experiment_default=experiment_default,
        experiment_group_role=group_roles["experiment_group_role"],
        model_group_role=group_roles["registered_model_group_role"],
        models_org_readable=bool(defaults.get("registered_models_org_readable", True)),
        token_default_days=default_days,
        token_max_days=max_days,
        job_token_secret=None if job_secret is None else str(job_secret),
        job_token_max_seconds=job_max,
        grant_cache_seconds=grant_cache,
        change_poll_seconds=change_poll,
        browser=browser_config,
    )
