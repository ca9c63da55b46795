"""`mlflow server --app-name infinstor`: the entry point MLflow loads (group `mlflow.app`).

Modes, chosen by INFINSTOR_SERVICE_MODE:
- `single-user` (the embedded default): one owner, authenticated by the per-install secret.
- `oidc`: bearer JWTs from an OpenID Connect provider (see `oidc_auth`); the seed of the
  company service.
"""

from __future__ import annotations

import os

from .single_user import SecretASGIMiddleware, SecretChecker, install_flask_guard

MODE_ENV = "INFINSTOR_SERVICE_MODE"
SUPPORTED_MODES = ("single-user", "oidc")


def create_app():
    mode = os.environ.get(MODE_ENV, "single-user")
    if mode not in SUPPORTED_MODES:
        raise RuntimeError(f"{MODE_ENV}={mode!r} is not one of {', '.join(SUPPORTED_MODES)}")

    from mlflow.server import app as flask_app

    if mode == "oidc":
        return _create_oidc_app(flask_app)

    checker = SecretChecker.from_environment()
    # MLflow picks uvicorn (an ASGI app) unless gunicorn or waitress options were given.
    if os.environ.get("_MLFLOW_SGI_NAME", "uvicorn") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return SecretASGIMiddleware(create_fastapi_app(flask_app), checker)
    install_flask_guard(flask_app, checker)
    return flask_app


def _create_oidc_app(flask_app):
    from .oidc_auth import OIDCASGIMiddleware, OIDCWSGIMiddleware, TokenVerifier

    verifier = TokenVerifier.from_environment()
    if os.environ.get("_MLFLOW_SGI_NAME", "uvicorn") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return OIDCASGIMiddleware(create_fastapi_app(flask_app), verifier)
    flask_app.wsgi_app = OIDCWSGIMiddleware(flask_app.wsgi_app, verifier)
    return flask_app
