"""Why the tracking service will not start, said once, in one paragraph, before any worker starts.

`mlflow server --app-name infinstor` imports `service.app` in its own process (to learn whether
`create_app` is a factory) before it starts uvicorn. There, `preflight` checks everything a
worker would check at start-up (mode, configuration, policy, workspaces, server kind, database and
our schema) and applies our migrations once. A mistake stops `mlflow server` itself with one
paragraph on stderr (what is wrong, where, how to fix it) and exit code 2, instead of a traceback
in every uvicorn worker and uvicorn's supervisor restarting crashed workers forever. A worker that
still meets a refusal (started some other way) says the same paragraph and exits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

if TYPE_CHECKING:  # imported when needed: the checks must not import the whole service
    import sqlalchemy as sa

    from .config import ServiceConfig
    from .policy import Policy

EXIT_REFUSED = 2
MORE = "`infinstor service check` checks the configuration, the database and the identity provider without starting the service (docs/service.md)."
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
MODE_ENV = "INFINSTOR_SERVICE_MODE"
SUPPORTED_MODES = ("single-user", "oidc", "company")


class StartupRefusal(Exception):
    """What is wrong, where, and how to fix it."""

    def __init__(self, what: str, where: str, fix: str):
        super().__init__(what)
        # One paragraph: a multi-line message (a YAML parser's, a driver's) becomes one line.
        self.what, self.where, self.fix = (" ".join(text.split()).rstrip(".") for text in (what, where, fix))

    def paragraph(self) -> str:
        fix = self.fix[:1].upper() + self.fix[1:]
        return f"infinstor: the tracking service cannot start: {self.what}. Where: {self.where}. Fix: {fix}. {MORE}"


def refuse(refusal: StartupRefusal) -> NoReturn:
    """Say why and stop this process (no traceback)."""
    print(refusal.paragraph(), file=sys.stderr, flush=True)
    raise SystemExit(EXIT_REFUSED)


def redact(uri: str) -> str:
    """A database URI without its password, fit for a message or a log."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(uri).render_as_string(hide_password=True)
    except Exception:
        parts = urlsplit(uri)
        return f"{parts.scheme}://{parts.hostname or ''}{':%d' % parts.port if parts.port else ''}{parts.path}"


def config_where(environ: Mapping[str, str] = os.environ) -> str:
    from .config import CONFIG_ENV

    path = environ.get(CONFIG_ENV)
    return (
        f"the configuration file {path} ({CONFIG_ENV}) and the INFINSTOR_* environment"
        if path
        else (f"the INFINSTOR_* environment; no configuration file is named by {CONFIG_ENV}")
    )


@dataclass
class Prepared:
    config: ServiceConfig
    policy: Policy
    database_uri: str


def check_mode(environ: Mapping[str, str] = os.environ) -> str:
    mode: str = environ.get(MODE_ENV, "single-user")
    if mode not in SUPPORTED_MODES:
        raise StartupRefusal(
            f"{MODE_ENV}={mode!r} is not a mode of this service",
            "the environment",
            f"set {MODE_ENV} to one of {', '.join(SUPPORTED_MODES)} (company: the company tracking service)",
        )
    return mode


def prepare_company(environ: Mapping[str, str] = os.environ) -> Prepared:
    """The configuration and policy of company mode and its database URI, checked; StartupRefusal if not."""
    from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    from .config import ConfigError, load_config
    from .policy import PolicyError, load_policy

    try:
        config = load_config(environ=environ)
    except ConfigError as exc:
        raise StartupRefusal(str(exc), config_where(environ), "correct that setting and start the service again") from None
    try:
        policy = load_policy(config.policy_file)
    except PolicyError as exc:
        where = (
            f"the policy file {config.policy_file} (policy_file / INFINSTOR_SERVICE_POLICY)" if config.policy_file else "the shipped policy"
        )
        raise StartupRefusal(
            str(exc), where, "correct the policy file (docs/service.md, 'Roles and the policy file') and start again"
        ) from None
    if str(environ.get(MLFLOW_ENABLE_WORKSPACES.name, "")).strip().lower() not in ("true", "1"):
        raise StartupRefusal(
            "company mode keeps organisations apart with MLflow workspaces, which are not enabled",
            "the mlflow server command line",
            "start it with --enable-workspaces (or MLFLOW_ENABLE_WORKSPACES=true)",
        )
    if environ.get("_MLFLOW_SGI_NAME", "uvicorn") != "uvicorn":
        raise StartupRefusal(
            "company mode runs under uvicorn (MLflow's default server) only",
            "the mlflow server command line",
            "drop --gunicorn-opts / --waitress-opts (use --workers for more processes)",
        )
    database_uri = config.database_uri or environ.get(BACKEND_STORE_URI_ENV_VAR)
    scheme = (database_uri or "").split(":", 1)[0].split("+", 1)[0]
    if not database_uri or scheme not in SQL_SCHEMES:
        shown = redact(database_uri) if database_uri else "none"
        raise StartupRefusal(
            f"company mode keeps its tables in a SQL database, and the database given is {shown}",
            "database_uri in the configuration, or else mlflow server --backend-store-uri",
            "give a postgresql:// (or sqlite:///) URI in either",
        )
    return Prepared(config, policy, database_uri)


def migrate_database(database_uri: str) -> sa.Engine:
    """Connect to our database and bring our tables to this release's schema; the engine."""
    import sqlalchemy as sa

    from .db import SchemaTooNew, make_engine, migrate

    where = f"the database {redact(database_uri)} (database_uri, or else --backend-store-uri)"
    try:
        engine = make_engine(database_uri)
        migrate(engine)
    except SchemaTooNew as exc:
        raise StartupRefusal(
            str(exc),
            where,
            "upgrade this replica to the release that migrated the database (never roll back "
            "past a migration; restore a backup taken before it instead)",
        ) from None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise StartupRefusal(
            f"cannot reach or prepare the database: {type(exc).__name__}: {reason}",
            where,
            "check the URI, that the database server runs and accepts connections from this host, and the "
            "user's rights (it creates the infinstor_* tables)",
        ) from None
    except ImportError as exc:
        raise StartupRefusal(
            f"the database driver is not installed: {exc}", where, 'install it (PostgreSQL: pip install "infinstor-jupyterlab[postgres]")'
        ) from None
    return engine


def preflight(environ: Mapping[str, str] = os.environ) -> None:
    """Everything a worker checks at start-up, once, in `mlflow server`'s own process."""
    try:
        mode = check_mode(environ)
        if mode == "company":
            prepared = prepare_company(environ)
            migrate_database(prepared.database_uri).dispose()
        elif mode == "oidc":
            from .oidc_auth import AUDIENCE_ENV, ISSUER_ENV

            if not environ.get(ISSUER_ENV, "").strip() or not environ.get(AUDIENCE_ENV, "").strip():
                raise StartupRefusal(
                    "oidc mode needs the identity provider's issuer and the tokens' audience",
                    "the environment",
                    f"set {ISSUER_ENV} and {AUDIENCE_ENV}",
                )
    except StartupRefusal as refusal:
        refuse(refusal)


def mlflow_server_environment() -> dict[str, str] | None:
    """When `mlflow server` is importing this module before it starts uvicorn: the environment its
    workers will get (ours plus what it adds: the backend store URI, the server kind, ...)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_run_server" and frame.f_globals.get("__name__") == "mlflow.server":
            added = frame.f_locals.get("env_map") or {}
            return {**os.environ, **{str(k): str(v) for k, v in added.items()}}
        frame = frame.f_back
    return None


# -- `infinstor service migrate`: the migration Job of a deployment, and its wait ---------------
def databases(environ: Mapping[str, str] = os.environ, database_uri: str | None = None) -> tuple[str | None, str]:
    """(MLflow's backend store URI, our tables' URI) as the service would use them."""
    from .config import ConfigError, load_config

    mlflow_uri = database_uri or environ.get("MLFLOW_BACKEND_STORE_URI")
    try:
        ours = load_config(environ=environ).database_uri
    except ConfigError as exc:
        raise StartupRefusal(str(exc), config_where(environ), "correct that setting") from None
    ours = ours or mlflow_uri
    if not ours or ours.split(":", 1)[0].split("+", 1)[0] not in SQL_SCHEMES:
        raise StartupRefusal(
            "no SQL database to migrate",
            "MLFLOW_BACKEND_STORE_URI, --database-uri or database_uri",
            "give a postgresql:// (or sqlite:///) URI",
        )
    return mlflow_uri, ours


def due(mlflow_uri: str | None, ours: str) -> list[str]:
    """The migrations the databases still need (empty: this release may serve)."""
    import mlflow.store.db.utils as mlflow_db

    from .db import SCHEMA_VERSION, current_version, make_engine

    needed = []
    if mlflow_uri and mlflow_uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES:
        engine = mlflow_db.create_sqlalchemy_engine(mlflow_uri)
        try:
            if mlflow_db._is_empty_database(engine):
                needed.append("MLflow's tables do not exist yet")
            else:
                current, head = mlflow_db._get_schema_version(engine), mlflow_db._get_latest_schema_revision()
                if current != head:
                    needed.append(f"MLflow's schema is {current}, this MLflow needs {head}")
        finally:
            engine.dispose()
    engine = make_engine(ours)
    try:
        with engine.connect() as c:
            version = current_version(c)
    finally:
        engine.dispose()
    if version < SCHEMA_VERSION:
        needed.append(f"the InfinStor tables are at step {version}, this release needs {SCHEMA_VERSION}")
    elif version > SCHEMA_VERSION:
        raise StartupRefusal(
            f"the InfinStor tables are at step {version}, newer than this release ({SCHEMA_VERSION})",
            redact(ours),
            "run the release that migrated the database",
        )
    return needed


def migrate_all(mlflow_uri: str | None, ours: str) -> list[str]:
    """Apply MLflow's migrations (as `mlflow db upgrade` does) and ours; what was done."""
    import mlflow.store.db.utils as mlflow_db

    done = []
    if mlflow_uri and mlflow_uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES:
        engine = mlflow_db.create_sqlalchemy_engine_with_retry(mlflow_uri)
        try:
            if mlflow_db._is_empty_database(engine):
                mlflow_db._initialize_tables(engine)
                done.append("created MLflow's tables")
            elif mlflow_db._get_schema_version(engine) != mlflow_db._get_latest_schema_revision():
                mlflow_db._upgrade_db(engine)
                done.append(f"upgraded MLflow's schema to {mlflow_db._get_latest_schema_revision()}")
        finally:
            engine.dispose()
    from .db import SCHEMA_VERSION

    engine = migrate_database(ours)
    engine.dispose()
    done.append(f"InfinStor tables at step {SCHEMA_VERSION}")
    return done
