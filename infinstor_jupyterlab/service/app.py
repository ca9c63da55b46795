"""`mlflow server --app-name infinstor`: the entry point MLflow loads (group `mlflow.app`).

Modes, chosen by INFINSTOR_SERVICE_MODE:
- `single-user` (the embedded default): one owner, authenticated by the per-install secret.
- `oidc`: bearer JWTs from an OpenID Connect provider (see `oidc_auth`); authentication only.
- `company`: the company service (see `company`): OIDC and API tokens, organisations as MLflow
  workspaces, groups, roles from a policy file, private views, sharing and an audit log.
  Configured by the YAML file named by INFINSTOR_SERVICE_CONFIG plus environment variables;
  needs MLflow's workspaces (`--enable-workspaces` or MLFLOW_ENABLE_WORKSPACES=true).
"""

from __future__ import annotations

import os

from .concurrency import HandlerThreadLimit
from .single_user import SecretASGIMiddleware, SecretChecker, install_flask_guard

MODE_ENV = "INFINSTOR_SERVICE_MODE"
SUPPORTED_MODES = ("single-user", "oidc", "company")


def create_app():
    mode = os.environ.get(MODE_ENV, "single-user")
    if mode not in SUPPORTED_MODES:
        raise RuntimeError(f"{MODE_ENV}={mode!r} is not one of {', '.join(SUPPORTED_MODES)}")

    from mlflow.server import app as flask_app

    if mode == "oidc":
        return _create_oidc_app(flask_app)
    if mode == "company":
        return _create_company_app(flask_app)

    checker = SecretChecker.from_environment()
    # MLflow picks uvicorn (an ASGI app) unless gunicorn or waitress options were given.
    if os.environ.get("_MLFLOW_SGI_NAME", "uvicorn") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return HandlerThreadLimit(SecretASGIMiddleware(create_fastapi_app(flask_app), checker))
    install_flask_guard(flask_app, checker)
    return flask_app


def _create_oidc_app(flask_app):
    from .oidc_auth import OIDCASGIMiddleware, OIDCWSGIMiddleware, TokenVerifier

    verifier = TokenVerifier.from_environment()
    if os.environ.get("_MLFLOW_SGI_NAME", "uvicorn") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return HandlerThreadLimit(OIDCASGIMiddleware(create_fastapi_app(flask_app), verifier))
    flask_app.wsgi_app = OIDCWSGIMiddleware(flask_app.wsgi_app, verifier)
    return flask_app


def _create_company_app(flask_app):
    from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    from .company import CompanyASGIMiddleware, CompanyService
    from .config import load_config
    from .db import ServiceStore, make_engine, migrate
    from .policy import load_policy

    config = load_config()
    policy = load_policy(config.policy_file)  # an invalid policy stops the server here
    if not MLFLOW_ENABLE_WORKSPACES.get():
        raise RuntimeError(
            "company mode keeps organisations apart with MLflow workspaces: start the server with "
            "--enable-workspaces (or MLFLOW_ENABLE_WORKSPACES=true)"
        )
    if os.environ.get("_MLFLOW_SGI_NAME", "uvicorn") != "uvicorn":
        raise RuntimeError("company mode runs under uvicorn (MLflow's default server); drop --gunicorn-opts/--waitress-opts")
    database_uri = config.database_uri or os.environ.get(BACKEND_STORE_URI_ENV_VAR)
    if not database_uri or not database_uri.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql", "mssql"):
        raise RuntimeError("company mode needs a database for its tables: a SQL --backend-store-uri or database_uri in the configuration")
    engine = make_engine(database_uri)
    migrate(engine)
    from mlflow.server.fastapi_app import create_fastapi_app

    from .outage import DatabaseOutageASGIMiddleware

    service = CompanyService(config, policy, ServiceStore(engine))
    from .graphql_authz import install as authorize_graphql

    authorize_graphql()  # MLflow's GraphQL executor checks each field with the service
    return HandlerThreadLimit(DatabaseOutageASGIMiddleware(CompanyASGIMiddleware(create_fastapi_app(flask_app), service), engine))
