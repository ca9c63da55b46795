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
from collections.abc import Callable
from typing import TYPE_CHECKING

from .asgi import ASGIApp
from .concurrency import HandlerThreadLimit
from .single_user import SecretASGIMiddleware, SecretChecker, install_flask_guard
from .startup import MODE_ENV, SUPPORTED_MODES  # noqa: F401 (where they were)

if TYPE_CHECKING:
    import sqlalchemy as sa
    from flask import Flask

    from .company.service import CompanyService
    from .startup import Prepared


def create_app() -> ASGIApp | Flask:
    """The app MLflow serves: ASGI under uvicorn (the default), else the Flask app, guarded."""
    from .startup import StartupRefusal, check_mode, refuse

    try:
        mode = check_mode()
    except StartupRefusal as refusal:
        refuse(refusal)

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


def _create_oidc_app(flask_app: Flask) -> ASGIApp | Flask:
    from .oidc_auth import OIDCASGIMiddleware, OIDCWSGIMiddleware, TokenVerifier

    verifier = TokenVerifier.from_environment()
    if os.environ.get("_MLFLOW_SGI_NAME", "uvicorn") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return HandlerThreadLimit(OIDCASGIMiddleware(create_fastapi_app(flask_app), verifier))
    # Flask's documented way to put WSGI middleware in front of an app (Flask declares wsgi_app a method).
    flask_app.wsgi_app = OIDCWSGIMiddleware(flask_app.wsgi_app, verifier)  # type: ignore[method-assign]
    return flask_app


def _create_company_app(flask_app: Flask) -> ASGIApp:
    from .startup import StartupRefusal, migrate_database, prepare_company, refuse

    try:  # an invalid configuration or policy, or an unusable database, stops the server here
        prepared = prepare_company()
        engine = migrate_database(prepared.database_uri)
    except StartupRefusal as refusal:
        refuse(refusal)
    return company_asgi_app(flask_app, prepared, engine)[0]


def company_asgi_app(
    flask_app: Flask, prepared: Prepared, engine: sa.Engine, wrap_mlflow: Callable[[ASGIApp], ASGIApp] | None = None
) -> tuple[HandlerThreadLimit, CompanyService]:
    """(the ASGI app, its CompanyService): MLflow's app behind the company middleware. The
    serverless handler (tracking_service/serverless.py) builds the same app; `wrap_mlflow` wraps MLflow's
    own app inside the access checks (there: artifact downloads answered with presigned URLs)."""
    from .company.middleware import CompanyASGIMiddleware
    from .company.service import CompanyService
    from .service_store import ServiceStore

    config, policy = prepared.config, prepared.policy
    from mlflow.server.fastapi_app import create_fastapi_app

    from .outage import DatabaseOutageASGIMiddleware

    service = CompanyService(config, policy, ServiceStore(engine))
    from .graphql_authz import install as authorize_graphql

    authorize_graphql()  # MLflow's GraphQL executor checks each field with the service
    mlflow_app: ASGIApp = create_fastapi_app(flask_app)
    if wrap_mlflow is not None:
        mlflow_app = wrap_mlflow(mlflow_app)
    app = HandlerThreadLimit(DatabaseOutageASGIMiddleware(CompanyASGIMiddleware(mlflow_app, service), engine))
    return app, service


def _preflight_when_imported_by_mlflow_server() -> None:
    from . import startup

    environ = startup.mlflow_server_environment()
    if environ is not None:
        startup.preflight(environ)


_preflight_when_imported_by_mlflow_server()
