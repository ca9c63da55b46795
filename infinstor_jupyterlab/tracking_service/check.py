"""`infinstor service check`: what an admin runs before going live (and what support asks for).

It reads the service's configuration and policy as a replica would (the same environment), connects
to the database and says whether migrations are due, fetches the issuer's discovery document and
JWKS, and, given a real access token, shows what the service reads from it (user, email,
organisation, groups, audience, expiry) and what is missing or wrong, with the fix for the
provider at hand (docs/identity-providers.md). It lists the redirect URIs to register and the
origin settings. The verdict is the exit code (0: no failure; warnings allowed); `--json` prints
the same for automation. Nothing is changed anywhere.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

import requests

from . import claims as claim_reading
from .provider_fixes import PROVIDERS, fix_for, provider_of

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .config import ServiceConfig

LAB_CALLBACK = "/infinstor/api/auth/callback"


@dataclass
class Finding:
    section: str
    status: str  # pass | warn | fail | info
    message: str
    fix: str | None = None


class RedirectURI(TypedDict):
    surface: str
    redirect_uri: str | None  # None: a flow without a redirect (the device code flow)
    client: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    token: dict[str, Any] | None = None  # what the service reads from the token given (JSON)
    redirect_uris: list[RedirectURI] = field(default_factory=list)
    origins: dict[str, str | None] = field(default_factory=dict)
    provider: str = "generic"

    @property
    def ok(self) -> bool:
        return not any(f.status == "fail" for f in self.findings)

    def add(self, section: str, status: str, message: str, fix: str | None = None) -> None:
        self.findings.append(Finding(section, status, message, fix))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "provider": PROVIDERS[self.provider],
            "checks": [asdict(f) for f in self.findings],
            "token": self.token,
            "redirect_uris": self.redirect_uris,
            "origins": self.origins,
        }


def run(
    environ: dict[str, str] | None = None,
    *,
    token: str | None = None,
    lab_url: str | None = None,
    service_url: str | None = None,
    database_uri: str | None = None,
    timeout: float = 10.0,
) -> Report:
    environ = dict(os.environ if environ is None else environ)
    report = Report()
    config = _configuration(report, environ)
    if config is None:
        return report
    report.provider = provider_of(config.issuer)
    _policy(report, config)
    _database(report, config, environ, database_uri)
    metadata = _identity_provider(report, config, timeout)
    if token is not None:
        _token(report, config, token, metadata is not None)
    _sign_in(report, config, lab_url, service_url)
    _origins(report, config, environ, service_url)
    if config.job_token_secret:
        report.add(
            "job tokens", "pass", "INFINSTOR_JOB_TOKEN_SECRET is set: the service mints job tokens (EC2 jobs, token create --kind job)"
        )
    else:
        report.add(
            "job tokens",
            "warn",
            "no job token secret: the service mints no job tokens, and the lab's EC2 jobs cannot start",
            "set INFINSTOR_JOB_TOKEN_SECRET (openssl rand -hex 32), the same on every replica",
        )
    return report


def _configuration(report: Report, environ: dict[str, str]) -> ServiceConfig | None:
    from .config import CONFIG_ENV, ConfigError, load_config
    from .startup import config_where

    try:
        config = load_config(environ=environ)
    except ConfigError as exc:
        report.add("configuration", "fail", f"{exc} ({config_where(environ)})", "correct that setting (docs/service.md)")
        return None
    where = environ.get(CONFIG_ENV)
    report.add(
        "configuration", "pass", f"read {where} and the INFINSTOR_* environment" if where else "read the INFINSTOR_* environment (no file)"
    )
    if config.leeway > 30:
        report.add(
            "configuration",
            "warn",
            f"oidc.leeway is {config.leeway:g} s: an expired token is accepted that long",
            "keep it at a few seconds (5 by default) and the clocks in sync (NTP)",
        )
    return config


def _policy(report: Report, config: ServiceConfig) -> None:
    from .policy import PolicyError, load_policy

    try:
        policy = load_policy(config.policy_file)
    except PolicyError as exc:
        report.add("policy", "fail", str(exc), "correct the policy file (docs/service.md, 'Roles and the policy file')")
        return
    source = f"the shipped policy with {config.policy_file}" if config.policy_file else "the shipped policy"
    report.add("policy", "pass", f"{source}: {len(policy.roles)} operations have a role")


def _database(report: Report, config: ServiceConfig, environ: dict[str, str], override: str | None) -> None:
    import sqlalchemy as sa

    from .db import SCHEMA_VERSION, current_version, make_engine, scim_tokens
    from .startup import SQL_SCHEMES, redact

    uri = override or config.database_uri or environ.get("MLFLOW_BACKEND_STORE_URI")
    if not uri or uri.split(":", 1)[0].split("+", 1)[0] not in SQL_SCHEMES:
        report.add(
            "database",
            "fail",
            f"no SQL database to check ({redact(uri) if uri else 'none given'})",
            "give database_uri, MLFLOW_BACKEND_STORE_URI or --database-uri (postgresql://... or sqlite:///...)",
        )
        return
    if uri.startswith("sqlite:///") and not os.path.exists(uri[len("sqlite:///") :]):
        report.add(
            "database",
            "warn",
            f"{uri} does not exist yet: the service creates it at its first start",
            "if it should exist, correct the path",
        )
        return
    try:
        engine = make_engine(uri)
        with engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
            version = current_version(c)
            mlflow_state = _mlflow_schema(c)
            tokens = {}
            if version >= 3:
                for org, count in c.execute(
                    sa.select(scim_tokens.c.org, sa.func.count()).where(scim_tokens.c.revoked_at.is_(None)).group_by(scim_tokens.c.org)
                ):
                    tokens[org] = count
        engine.dispose()
    except Exception as exc:  # the driver's words, without the password
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        report.add(
            "database",
            "fail",
            f"cannot connect to {redact(uri)}: {type(exc).__name__}: {reason}",
            "check the URI, that the server runs and accepts connections from here, the user and password",
        )
        return
    report.add("database", "pass", f"connected to {redact(uri)}")
    if version == SCHEMA_VERSION:
        report.add("database", "pass", f"InfinStor tables at schema step {version} (this release's)")
    elif version < SCHEMA_VERSION:
        report.add(
            "database",
            "warn",
            f"InfinStor tables at step {version}; this release migrates them to step {SCHEMA_VERSION}",
            "nothing to do by hand: the next start (or `infinstor service migrate`) applies the steps",
        )
    else:
        report.add(
            "database",
            "fail",
            f"InfinStor tables at step {version}, newer than this release ({SCHEMA_VERSION})",
            "upgrade this installation to the release that migrated the database",
        )
    if mlflow_state:
        report.add("database", *mlflow_state)
    report.add(
        "scim",
        "info",
        "SCIM tokens: "
        + (", ".join(f"{org}: {n}" for org, n in sorted(tokens.items())) or "none yet")
        + f"; groups from: {config.groups_from} (scim.groups), named by {config.scim_group_name}",
    )


def _mlflow_schema(connection: sa.Connection) -> tuple[str, str] | tuple[str, str, str] | None:
    """MLflow's own tables: (status, message[, fix]) when the database has them or should."""
    import sqlalchemy as sa

    if not sa.inspect(connection).has_table("alembic_version"):
        return ("info", "no MLflow tables yet: MLflow creates them at its first start")
    current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    try:
        from mlflow.store.db.utils import _get_latest_schema_revision

        head = _get_latest_schema_revision()
    except Exception:
        return ("info", f"MLflow's schema is at {current}")
    if current == head:
        return ("pass", f"MLflow's tables at this MLflow's schema ({head})")
    return (
        "warn",
        f"MLflow's tables at {current}, this MLflow expects {head}",
        "run `infinstor service migrate` (MLflow's and the service's migrations) before the new version serves",
    )


def _identity_provider(report: Report, config: ServiceConfig, timeout: float) -> dict[str, Any] | None:
    issuer = config.issuer.rstrip("/")
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        metadata: dict[str, Any] = response.json()
    except (requests.RequestException, ValueError) as exc:
        report.add(
            "identity provider",
            "fail",
            f"cannot read the discovery document {url}: {type(exc).__name__}",
            "check oidc.issuer (exactly the iss of the tokens) and that this host reaches it (firewall, proxy, DNS)",
        )
        return None
    if str(metadata.get("issuer", "")).rstrip("/") != issuer:
        report.add(
            "identity provider",
            "fail",
            f"the discovery document names issuer {metadata.get('issuer')!r}, not {config.issuer!r}",
            "set oidc.issuer to the provider's issuer exactly (it is also the tokens' iss)",
        )
        return None
    report.add("identity provider", "pass", f"discovery document of {issuer}")
    jwks_uri = config.jwks_uri or metadata.get("jwks_uri")
    try:
        # A document without jwks_uri fails here too: "None" is not a URL.
        keys = requests.get(str(jwks_uri), timeout=timeout).json()["keys"]
    except Exception as exc:
        report.add(
            "identity provider",
            "fail",
            f"cannot read the signing keys at {jwks_uri}: {type(exc).__name__}",
            "check oidc.jwks_uri (or the discovery document's) and that this host reaches it",
        )
        return None
    algs = sorted({k.get("alg") or k.get("kty") for k in keys if k.get("use", "sig") == "sig"})
    report.add("identity provider", "pass" if keys else "fail", f"{len(keys)} signing keys at {jwks_uri} ({', '.join(algs) or 'none'})")
    if "urn:ietf:params:oauth:grant-type:device_code" not in (metadata.get("grant_types_supported") or []) and not metadata.get(
        "device_authorization_endpoint"
    ):
        report.add(
            "identity provider",
            "info",
            "no device authorization endpoint: `infinstor login` (device code) is not available; "
            "users sign in from the lab's sidebar, automation uses API tokens",
        )
    return metadata


def _token(report: Report, config: ServiceConfig, token: str, provider_reachable: bool) -> None:
    import jwt

    from .oidc_auth import InvalidToken, TokenVerifier, VerifierUnavailable

    provider = report.provider
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        found = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        report.token = {"format": "opaque"}
        report.add(
            "token", "fail", "the token is not a JWT (an opaque access token): the service cannot check it", fix_for("opaque", provider)
        )
        return
    names = config.claims
    shown: dict[str, Any] = {"format": "JWT", "alg": header.get("alg"), "kid": header.get("kid"), "typ": header.get("typ")}
    report.token = shown
    verifier = TokenVerifier(
        config.issuer,
        config.audience,
        jwks_uri=config.jwks_uri,
        leeway=config.leeway,
        claim_names=names,
        audience_claim=config.audience_claim,
    )
    caller = None
    if provider_reachable:
        try:
            caller = verifier.verify(token)
            report.add("token", "pass", "signature, issuer, audience and expiry are valid")
        except InvalidToken as exc:
            problem = {"wrong_audience": "audience", "malformed": "opaque"}.get(exc.reason)
            report.add(
                "token",
                "fail",
                f"the service refuses it: {exc}",
                fix_for(problem, provider)
                if problem
                else {
                    "expired": "get a fresh token (and keep the clocks of the provider and the replicas in sync)",
                    "wrong_issuer": f"the token's iss must be oidc.issuer ({config.issuer}): a token of another tenant or realm?",
                    "unknown_key": "it was signed by a key the issuer does not publish: a token of another issuer, tenant or realm?",
                    "bad_signature": "it was not signed by the issuer's key: a token of another issuer, or altered",
                }.get(exc.reason, "see the message"),
            )
        except VerifierUnavailable as exc:
            report.add("token", "fail", f"cannot check it: {exc}", "make the issuer's keys reachable from here")
    audience = claim_reading.claim(found, config.audience_claim)
    expires = found.get("exp")
    shown.update(
        issuer=found.get("iss"),
        audience=audience,
        audience_claim=config.audience_claim,
        expires_at=expires,
        expires_in=None if not isinstance(expires, (int, float)) else int(expires - time.time()),
    )
    if audience is not None and not claim_reading.audience_matches(found, config.audience_claim, config.audience):
        if caller is None and not any(f.section == "token" and "audience" in f.message for f in report.findings):
            report.add(
                "token",
                "fail",
                f"its {config.audience_claim} is {audience!r}, not oidc.audience ({config.audience!r})",
                fix_for("audience", provider),
            )
    if found.get("nonce") is not None or found.get("at_hash") is not None or found.get("token_use") == "id":
        report.add("token", "warn", "it looks like an ID token (nonce, at_hash or token_use: id)", fix_for("id_token", provider))
    username = verifier._username(found)
    shown["user"] = {"value": username, "claim": names.username}
    if not username:
        report.add(
            "token",
            "fail",
            f"no user: no {names.username} claim (nor preferred_username, email, sub)",
            "name the user's claim in oidc.claims.username",
        )
    elif claim_reading.claim(found, names.username) is None:
        report.add(
            "token",
            "warn",
            f"no {names.username} claim: the user is read from another claim ({username})",
            "set oidc.claims.username to the claim that names users (and that SCIM's userName matches)",
        )
    email = claim_reading.claim(found, names.email)
    shown["email"] = {"value": email if isinstance(email, str) else None, "claim": names.email}
    raw_org = claim_reading.claim(found, names.org)
    org = claim_reading.organisation(claim_reading.org_value(raw_org), dict(names.organisations))
    shown["organisation"] = {"value": org, "claim": names.org, "raw": raw_org}
    if raw_org is None:
        report.add("token", "fail", f"no organisation: the access token has no {names.org} claim", fix_for("org", provider))
    elif org is None:
        report.add(
            "token",
            "fail",
            f"the {names.org} claim names no single organisation: {raw_org!r}",
            "make it one value, or name another claim in oidc.claims.org",
        )
    else:
        from .company.principals import workspace_name

        try:
            shown["organisation"]["workspace"] = workspace_name(org)
            report.add("token", "pass", f"organisation {org!r} (claim {names.org})")
        except InvalidToken:
            report.add(
                "token",
                "fail",
                f"the organisation {org!r} cannot name an MLflow workspace (lowercase letters, digits and '-')",
                f"map it to a name with oidc.organisations, e.g. {{{json.dumps(org)}: acme}}",
            )
    groups = claim_reading.groups_value(claim_reading.claim(found, names.groups))
    overage = claim_reading.groups_overage(found, names.groups)
    shown["groups"] = {"value": groups, "claim": names.groups, "count": len(groups), "overage": overage}
    if overage:
        report.add("token", "warn", "the groups were left out of the token (group overage)", fix_for("overage", provider))
    elif not groups and config.groups_from != "scim":
        report.add(
            "token",
            "warn",
            f"no groups: the access token has no {names.groups} claim (or it is empty): grants to groups "
            "will not apply to this user unless SCIM provides their groups",
            fix_for("groups", provider),
        )
    elif groups:
        report.add("token", "pass", f"{len(groups)} groups (claim {names.groups})")
    if isinstance(expires, (int, float)) and expires - time.time() > 24 * 3600:
        report.add(
            "token",
            "warn",
            f"it lives {int((expires - time.time()) / 3600)} more hours",
            "short-lived access tokens (minutes to an hour) bound what a leaked token can do",
        )


def _sign_in(report: Report, config: ServiceConfig, lab_url: str | None, service_url: str | None) -> None:
    lab = (lab_url.rstrip("/") if lab_url else "https://<your JupyterLab host><base_url>") + LAB_CALLBACK
    report.redirect_uris.append(
        {"surface": "JupyterLab (sidebar sign-in)", "redirect_uri": lab, "client": "the lab's OAuth client (public, PKCE)"}
    )
    if config.browser is not None and config.browser.resource_parameter and report.provider == "entra":
        report.add(
            "sign-in",
            "fail",
            "the web UI's sign-in sends the resource parameter, which Entra ID's v2 endpoints refuse (AADSTS901002)",
            "set browser.resource_parameter: false and put the API's scope (api://<app id>/access) in browser.scopes",
        )
    if config.browser is not None:
        origin = (config.browser.public_url or service_url or "").rstrip("/")
        if not origin:
            report.add(
                "sign-in",
                "warn",
                "browser sign-in is configured without browser.public_url: the redirect URI follows the Host header",
                "set browser.public_url to the service's public URL (https://mlflow.example.com)",
            )
            origin = "https://<the service's public host>"
        report.redirect_uris.append(
            {
                "surface": "the MLflow web UI of the service",
                "redirect_uri": origin + config.browser.redirect_path,
                "client": config.browser.client_id,
            }
        )
    report.redirect_uris.append(
        {
            "surface": "`infinstor login` (terminal)",
            "redirect_uri": None,
            "client": "the lab's client, with the device authorization grant enabled",
        }
    )
    report.add(
        "sign-in",
        "info",
        "register these redirect URIs: "
        + "; ".join(f"{r['surface']}: {r['redirect_uri']}" for r in report.redirect_uris if r["redirect_uri"]),
    )


def _origins(report: Report, config: ServiceConfig, environ: dict[str, str], service_url: str | None) -> None:
    hosts = environ.get("MLFLOW_SERVER_ALLOWED_HOSTS")
    cors = environ.get("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS")
    public = config.browser.public_url if config.browser else None
    report.origins = {
        "MLFLOW_SERVER_ALLOWED_HOSTS": hosts,
        "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": cors,
        "browser.public_url": public,
        "cookie_writes_from": public or "the request's own Host",
    }
    if not hosts:
        report.add(
            "origins",
            "warn",
            "MLFLOW_SERVER_ALLOWED_HOSTS is not set: MLflow answers 403 to any Host but localhost and private addresses",
            "start the service with --allowed-hosts <the host clients use> (or MLFLOW_SERVER_ALLOWED_HOSTS)",
        )
    elif hosts.strip() == "*":
        report.add(
            "origins", "warn", "MLFLOW_SERVER_ALLOWED_HOSTS is '*': any Host is accepted (DNS rebinding)", "list the service's host names"
        )
    else:
        report.add("origins", "pass", f"allowed hosts: {hosts}")
    if cors and cors.strip() == "*":
        report.add(
            "origins",
            "fail",
            "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS is '*': any web site may call the service from a signed-in browser",
            "unset it (the lab calls the service from its server, not from the browser) or list your own origins",
        )
    else:
        report.add("origins", "info", f"CORS origins: {cors or 'none beyond the service itself'} (the lab's proxy needs none)")


def render(report: Report) -> str:
    lines = ["InfinStor tracking service check", ""]
    width = max((len(f.section) for f in report.findings), default=10)
    for f in report.findings:
        lines.append(f"  {f.status.upper():5} {f.section:<{width}}  {f.message}")
        if f.fix and f.status in ("fail", "warn"):
            lines.append(f"        {'':<{width}}  fix: {f.fix}")
    if report.token is not None:
        lines += ["", "What the service reads from the token:"]
        t = report.token
        if t.get("format") == "opaque":
            lines.append("  an opaque token (not a JWT)")
        else:
            user, email = t.get("user") or {}, t.get("email") or {}
            org, groups = t.get("organisation") or {}, t.get("groups") or {}
            group_list = ", ".join(groups.get("value", [])[:10]) + (" ..." if groups.get("count", 0) > 10 else "")
            overage = " (overage: left out by the provider)" if groups.get("overage") else ""
            expires = "-"
            if t.get("expires_at") is not None:
                expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t["expires_at"])) + f"  (in {t.get('expires_in')} s)"
            rows = [
                ("user", f"{user.get('value')}  (claim {user.get('claim')})"),
                ("email", f"{email.get('value')}  (claim {email.get('claim')})"),
                ("organisation", f"{org.get('value')}  (claim {org.get('claim')}: {org.get('raw')!r})"),
                ("groups", f"{groups.get('count')}: {group_list}{overage}  (claim {groups.get('claim')})"),
                ("audience", f"{t.get('audience')!r}  (claim {t.get('audience_claim')})"),
                ("issuer", str(t.get("issuer"))),
                ("expires", expires),
            ]
            lines += [f"  {k:<13} {v}" for k, v in rows]
    lines += ["", "Redirect URIs to register at the identity provider:"]
    for r in report.redirect_uris:
        lines.append(f"  {r['surface']}: {r['redirect_uri'] or '(none: device code flow)'}  [{r['client']}]")
    lines += ["", "Origins:"] + [f"  {k}: {v if v else '-'}" for k, v in report.origins.items()]
    failures = sum(f.status == "fail" for f in report.findings)
    warnings = sum(f.status == "warn" for f in report.findings)
    lines += ["", f"Result: {'PASS' if report.ok else 'FAIL'} ({failures} failures, {warnings} warnings)"]
    return "\n".join(lines)
