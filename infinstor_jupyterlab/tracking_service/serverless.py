"""The company tracking service as an AWS Lambda function (docs/serverless.md).

`handler` is the function Lambda calls: the same ASGI app `mlflow server --app-name infinstor`
serves in company mode (MLflow's server behind the company middleware; `app.company_asgi_app`),
adapted to Lambda's events by Mangum. Mangum is a maintained adapter that runs in the function's
own process: no extension or extra binary in the image, and the handler can be called as a plain
function (the tests call it with real event shapes). It understands API Gateway HTTP API (v2),
function URL, REST API (v1) and ALB events, base64 bodies and cookies. AWS's Lambda Web Adapter
would run the unchanged uvicorn server instead, but adds a proxy hop per request and a layer
binary that cannot be run or tested here.

What is different from a replica:
- **No migrations in the request path**: `migrate_handler` (the same image, another function,
  invoked by the deploy as a CloudFormation custom resource) applies MLflow's and our migrations.
  The request handler only checks, once per instance, that our tables are at this release's step;
  until they are, it answers 503 with Retry-After (MLflow's own store would otherwise create or
  upgrade tables inside a request).
- **Artifact downloads** (`GET .../mlflow-artifacts/artifacts/<path>`) answer 307 to a short-lived
  presigned S3 URL once the company middleware has checked the caller may read the artifact; a
  Lambda response is limited to 6 MB. Uploads stream through (small ones) or use MLflow's
  presigned multipart upload (`mlflow-artifacts/mpu/*`), which S3 artifact stores already offer.
- **Bounded pools**: an instance serves one request at a time, so MLflow's pool is 2 + 2.
- **Secrets** come from Secrets Manager at the first request (never the image or the template).
- **Audit records** are written before the response returns: Lambda freezes an instance between
  requests, and may discard it without warning.

Imports are lazy: importing this module costs nothing; the app is built on first use, or during
Lambda's init phase (where provisioned concurrency pre-warms it) when running inside Lambda.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import threading
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict
from urllib.parse import quote

from . import asgi

if TYPE_CHECKING:
    from mangum.types import LambdaContext

log = logging.getLogger(__name__)

# A Lambda event and an HTTP front's response: JSON objects whose shape depends on the front.
LambdaEvent = dict[str, Any]
LambdaResponse = dict[str, Any]


class MigrationOutcome(TypedDict):
    """What the migration function returns, and reports to CloudFormation (a custom resource's answer)."""

    Status: str  # SUCCESS | FAILED
    Data: dict[str, str]
    Reason: NotRequired[str]


# The function's handler setting (the image's CMD, the template's ImageConfig): exactly this.
HANDLER = "infinstor_jupyterlab.tracking_service.serverless:handler"
MIGRATE_HANDLER = "infinstor_jupyterlab.tracking_service.serverless:migrate_handler"

SECRETS_ENV = "INFINSTOR_SECRETS_ARN"  # a JSON object of INFINSTOR_* settings (job token secret, ...)
DATABASE_SECRET_ENV = "INFINSTOR_DATABASE_SECRET_ARN"  # RDS's managed secret: {"username", "password"}
DATABASE_HOST_ENV, DATABASE_PORT_ENV, DATABASE_NAME_ENV = "INFINSTOR_DATABASE_HOST", "INFINSTOR_DATABASE_PORT", "INFINSTOR_DATABASE_NAME"
CONNECT_TIMEOUT_ENV = "INFINSTOR_DATABASE_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 10
CONFIG_SSM_ENV = "INFINSTOR_SERVICE_CONFIG_SSM"  # an SSM parameter holding the service's YAML configuration
ARTIFACTS_ENV = "INFINSTOR_ARTIFACTS_DESTINATION"  # s3://bucket/prefix
REDIRECT_SECONDS_ENV = "INFINSTOR_ARTIFACT_URL_SECONDS"
DEFAULT_REDIRECT_SECONDS = 300
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts/artifacts/", "/ajax-api/2.0/mlflow-artifacts/artifacts/")
RUN_ARTIFACT_PATH = "/get-artifact"  # the web UI's run artifact view (?run_uuid=&path=)
OPEN_PATHS = ("/health", "/version")


# -- configuration --------------------------------------------------------------------------
def _secret_json(arn: str) -> dict[str, Any]:
    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    data = json.loads(value)
    if not isinstance(data, dict):
        raise RuntimeError(f"the secret {arn} is not a JSON object")
    return data


def configure(environ: MutableMapping[str, str] = os.environ) -> None:
    """Turn the function's environment (and its secrets) into what MLflow's server and the company
    service read, as `mlflow server --app-name infinstor` would have set it."""
    from mlflow.server import constants as c

    if SECRETS_ENV in environ:
        for name, value in _secret_json(environ[SECRETS_ENV]).items():
            if not str(name).startswith("INFINSTOR_"):
                raise RuntimeError(f"the secret {SECRETS_ENV} may hold INFINSTOR_* settings only, not {name!r}")
            environ.setdefault(str(name), str(value))
    if DATABASE_SECRET_ENV in environ and "MLFLOW_BACKEND_STORE_URI" not in environ:
        secret = _secret_json(environ[DATABASE_SECRET_ENV])
        user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
        host = environ.get(DATABASE_HOST_ENV) or secret.get("host")
        port = environ.get(DATABASE_PORT_ENV) or secret.get("port") or 5432
        name = environ.get(DATABASE_NAME_ENV) or secret.get("dbname") or "mlflow"
        # A bounded connect: while Aurora resumes from a pause (about 15 s) the request answers 503
        # + Retry-After in time, instead of Lambda's time-out (a bare 503 from the API, no Retry-After).
        timeout = int(environ.get(CONNECT_TIMEOUT_ENV) or DEFAULT_CONNECT_TIMEOUT)
        environ["MLFLOW_BACKEND_STORE_URI"] = f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{name}?connect_timeout={timeout}"
    if environ.get(CONFIG_SSM_ENV) and "INFINSTOR_SERVICE_CONFIG" not in environ:
        import tempfile

        import boto3

        text = boto3.client("ssm").get_parameter(Name=environ[CONFIG_SSM_ENV])["Parameter"]["Value"]
        fd, path = tempfile.mkstemp(prefix="infinstor-service-", suffix=".yaml")  # /tmp: the only writable place
        with os.fdopen(fd, "w") as file:
            file.write(text)
        environ["INFINSTOR_SERVICE_CONFIG"] = path
    environ.setdefault("INFINSTOR_SERVICE_MODE", "company")
    environ.setdefault("MLFLOW_ENABLE_WORKSPACES", "true")
    environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # One request at a time per instance: a small pool, so thousands of instances stay within
    # the database's connection limit (see concurrency.py for why 2 + 2).
    environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "2")
    environ.setdefault("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "2")
    environ["_MLFLOW_SGI_NAME"] = "uvicorn"  # an ASGI app, as under uvicorn
    if "MLFLOW_BACKEND_STORE_URI" in environ:
        environ.setdefault(c.BACKEND_STORE_URI_ENV_VAR, environ["MLFLOW_BACKEND_STORE_URI"])
    if ARTIFACTS_ENV in environ:
        environ.setdefault(c.SERVE_ARTIFACTS_ENV_VAR, "true")
        environ.setdefault(c.ARTIFACTS_DESTINATION_ENV_VAR, environ[ARTIFACTS_ENV])
        environ.setdefault(c.ARTIFACT_ROOT_ENV_VAR, "mlflow-artifacts:/")


# -- artifact downloads as presigned redirects ------------------------------------------------
class PresignedArtifactDownloads:
    """ASGI: answer artifact downloads with a 307 to a presigned URL of the artifact store.

    Sits inside the company middleware, so only requests it has authorized (and given the
    caller's workspace header) get here. Stores that cannot presign (a local directory) and paths
    that are not one object (a directory) go on to MLflow, which streams or answers 404."""

    def __init__(self, app: asgi.ASGIApp, expires: int | None = None):
        self.app = app
        self.expires = expires or int(os.environ.get(REDIRECT_SECONDS_ENV) or DEFAULT_REDIRECT_SECONDS)

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope.get("path", "")
            prefix = next((p for p in ARTIFACT_PREFIXES if path.startswith(p)), None)
            if prefix is not None or path == RUN_ARTIFACT_PATH:
                import anyio.to_thread

                workspace = next((v.decode() for k, v in scope.get("headers") or [] if k == b"x-mlflow-workspace"), None)
                if prefix is not None:
                    url = await anyio.to_thread.run_sync(self._presign, path[len(prefix) :], workspace)
                else:
                    query = (scope.get("query_string") or b"").decode("latin-1")
                    url = await anyio.to_thread.run_sync(self._presign_run_artifact, query, workspace)
                if url is not None:
                    headers = [(b"location", url.encode()), (b"cache-control", b"no-store"), (b"content-length", b"0")]
                    await send({"type": "http.response.start", "status": 307, "headers": headers})
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)

    def _presign_run_artifact(self, query: str, workspace: str | None) -> str | None:
        """The web UI's `get-artifact?run_uuid=&path=`, resolved as MLflow's handler resolves it."""
        from urllib.parse import parse_qs

        from mlflow.exceptions import MlflowException
        from mlflow.server import handlers
        from mlflow.utils.workspace_context import set_server_request_workspace

        params = {k: v[-1] for k, v in parse_qs(query).items()}
        run_id, path = params.get("run_id") or params.get("run_uuid"), params.get("path")
        if not run_id or not path:
            return None
        if workspace:
            set_server_request_workspace(workspace)
        try:
            run = handlers._get_tracking_store().get_run(run_id)
            if not handlers._is_servable_proxied_run_artifact_root(run.info.artifact_uri):
                return None
            relative = handlers._get_proxied_run_artifact_destination_path(run.info.artifact_uri, handlers.validate_path_is_safe(path))
        except MlflowException:
            return None
        return self._presign(relative, workspace)

    def _presign(self, artifact_path: str, workspace: str | None) -> str | None:
        from mlflow.exceptions import MlflowException
        from mlflow.server import handlers
        from mlflow.utils.workspace_context import set_server_request_workspace

        repo = handlers._get_artifact_repo_mlflow_artifacts()
        if not hasattr(repo, "get_download_presigned_url"):
            return None
        if workspace:
            set_server_request_workspace(workspace)  # this worker thread's context only
        try:
            # The same path checks and workspace scoping as MLflow's own download handler.
            scoped = handlers._get_workspace_scoped_repo_path_if_enabled(handlers.validate_path_is_safe(artifact_path))
            url: str = repo.get_download_presigned_url(scoped, expiration=self.expires).url
            return url
        except MlflowException:
            return None  # not one object (missing, a directory): MLflow answers it


# -- the instance: built once per Lambda execution environment --------------------------------
class _Instance:
    def __init__(self) -> None:
        configure()
        from mangum import Mangum
        from mlflow.server import app as flask_app

        from .app import company_asgi_app
        from .db import make_engine
        from .startup import StartupRefusal, check_mode, prepare_company

        try:
            if check_mode() != "company":
                raise StartupRefusal(
                    "the serverless handler serves company mode only", "INFINSTOR_SERVICE_MODE", "unset it or set it to company"
                )
            prepared = prepare_company()
        except StartupRefusal as refusal:
            raise RuntimeError(refusal.paragraph()) from None
        self.engine = make_engine(prepared.database_uri)
        self.app, self.service = company_asgi_app(flask_app, prepared, self.engine, wrap_mlflow=PresignedArtifactDownloads)
        self.mangum = Mangum(self.app, lifespan="off")
        self.schema_ready = False

    def schema_problem(self) -> LambdaResponse | None:
        """None once our tables are at this release's step; else the 503 to answer (retried)."""
        if self.schema_ready:
            return None
        from .db import SCHEMA_VERSION, current_version
        from .outage import OUTAGE_CODE, OUTAGE_MESSAGE, RETRY_AFTER_SECONDS, is_connection_error

        try:
            with self.engine.connect() as connection:
                version = current_version(connection)
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            return _answer(503, {"error_code": OUTAGE_CODE, "message": OUTAGE_MESSAGE}, RETRY_AFTER_SECONDS)
        if version != SCHEMA_VERSION:
            log.error(
                "InfinStor serverless: the database is at step %s, this release needs %s: run %s", version, SCHEMA_VERSION, MIGRATE_HANDLER
            )
            message = "The tracking database is not migrated to this release yet (the deploy runs the migration function); retry shortly."
            return _answer(503, {"error_code": OUTAGE_CODE, "message": message}, 10)
        self.schema_ready = True
        return None


def _answer(status: int, body: dict[str, str], retry_after: int) -> LambdaResponse:
    """A response in the shape every Lambda HTTP front (HTTP API, function URL, REST API) takes."""
    return {
        "statusCode": status,
        "isBase64Encoded": False,
        "body": json.dumps(body),
        "headers": {"content-type": "application/json", "retry-after": str(retry_after)},
    }


_instance: _Instance | None = None
_instance_lock = threading.Lock()


@contextlib.contextmanager
def _initialising() -> Iterator[None]:
    """Build the instance without Python's cyclic garbage collector, then freeze what was built.

    Importing MLflow's server creates about half a million objects that live as long as the
    instance, and the collector would traverse them again and again while they are created: a
    fifth of the cold start's CPU time, for a few thousand objects of garbage. Frozen
    (`gc.freeze`), they are also skipped by every later collection while requests are served.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def instance() -> _Instance:
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                with _initialising():
                    _instance = _Instance()
    return _instance


def _path_of(event: LambdaEvent) -> str:
    path: str = event.get("rawPath") or event.get("path") or ""
    return path


def handler(event: LambdaEvent, context: LambdaContext | None = None) -> LambdaResponse:
    """Lambda's entry point for HTTP events."""
    current = instance()
    if _path_of(event) not in OPEN_PATHS and (problem := current.schema_problem()) is not None:
        return problem
    try:
        # Mangum only hands the context on (scope["aws.context"]); a direct call has none.
        return current.mangum(event, context)  # type: ignore[arg-type]
    finally:
        current.service.audit.flush()  # before the instance is frozen (or discarded)


# -- the migration function --------------------------------------------------------------------
def migrate_handler(event: LambdaEvent, context: LambdaContext | None = None) -> MigrationOutcome:
    """Apply MLflow's and our migrations (`infinstor service migrate`). Invoked directly, or as a
    CloudFormation custom resource on every deploy (then it reports to the stack's ResponseURL)."""
    outcome: MigrationOutcome = {"Status": "SUCCESS", "Data": {}}
    try:
        if event.get("RequestType") != "Delete":  # deleting the stack keeps the database's tables
            configure()
            from .startup import databases, migrate_all

            done = migrate_all(*databases())
            outcome["Data"] = {"Done": "; ".join(done)}
            log.warning("InfinStor serverless: migrations: %s", "; ".join(done))
    except BaseException as exc:
        reason = exc.paragraph() if hasattr(exc, "paragraph") else f"{type(exc).__name__}: {exc}"
        outcome = {"Status": "FAILED", "Reason": reason[:3000], "Data": {}}
        log.error("InfinStor serverless: migration failed: %s", reason)
    if "ResponseURL" in event:
        _tell_cloudformation(event, context, outcome)
    if outcome["Status"] != "SUCCESS" and "ResponseURL" not in event:
        raise RuntimeError(outcome["Reason"])
    return outcome


def _tell_cloudformation(event: LambdaEvent, context: LambdaContext | None, outcome: MigrationOutcome) -> None:
    import urllib.request

    body = json.dumps(
        {
            **outcome,
            "PhysicalResourceId": event.get("PhysicalResourceId") or "infinstor-migrations",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"content-type": ""})
    with urllib.request.urlopen(request, timeout=30) as response:  # a presigned S3 URL
        response.read()


if os.environ.get("_HANDLER") == HANDLER and os.environ.get("AWS_LAMBDA_RUNTIME_API"):
    # Inside Lambda: build the app in the init phase (full CPU, and done ahead of time under
    # provisioned concurrency). No database I/O happens here.
    instance()
