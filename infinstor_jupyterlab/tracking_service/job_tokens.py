"""Job tokens: short-lived credentials that let one job write to one MLflow run, and nothing else.

A job that runs away from the Jupyter host (an EC2 VM) must never hold the user's long-lived
credentials nor the embedded service's install secret. The lab mints a token per job instead:

- a JWT signed with HS256 under a key *derived* from the install secret (HMAC-SHA256 of a fixed
  label), so the secret itself never leaves the host and a leaked token reveals nothing about it;
- claims: `job` (job id), `run` (MLflow run id), `exp` (expiry), `experiment` (experiment id),
  `iat`, `jti`, `typ` = "infinstor-job", audience "infinstor-job";
- scope (checked by the service on every request, see `JobScope.allows`): writes only to that run
  (log-batch, log-metric, log-parameter, set-tag, update, log-inputs, outputs), artifact uploads
  and reads under that run's artifact path, logged models whose source run is that run (create,
  finalize, tags, params, their artifacts), and reads of that run and its experiment. Everything
  else, including every delete, experiment creation and reads of other runs or experiments, is
  refused with 403.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt

TOKEN_TYPE = "infinstor-job"
AUDIENCE = "infinstor-job"
_KEY_LABEL = b"infinstor job token signing key v1"
_LEEWAY = 5  # seconds of clock skew tolerated between the service's replicas (the service signs and checks them)
MAX_BODY = 32 * 1024 * 1024  # JSON request bodies a job token may send (log-batch is far smaller)

FORBIDDEN_BODY = json.dumps(
    {
        "error_code": "PERMISSION_DENIED",
        "message": "This job token may only write to its own MLflow run and read that run and its experiment.",
    }
).encode()


class InvalidJobToken(Exception):
    pass


def derive_key(secret: str | bytes) -> bytes:
    """The signing key for job tokens, derived from (never equal to) the install secret."""
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("a job token key needs a non-empty secret")
    return hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()


def looks_like_job_token(token: str) -> bool:
    return token.count(".") == 2 and len(token) < 8192


@dataclass(frozen=True)
class JobClaims:
    job_id: str
    run_id: str
    experiment_id: str
    expires_at: float
    token_id: str
    # The organisation (MLflow workspace) of the run, for the company service; None in single-user mode.
    workspace: str | None = None


def issue(key: bytes, *, job_id: str, run_id: str, experiment_id: str, ttl: float = 3600.0, workspace: str | None = None) -> str:
    now = int(time.time())
    claims = {
        "typ": TOKEN_TYPE,
        "aud": AUDIENCE,
        "job": job_id,
        "run": run_id,
        "experiment": str(experiment_id),
        "iat": now,
        "exp": now + int(ttl),
        "jti": uuid.uuid4().hex,
    }
    if workspace:
        claims["ws"] = workspace
    return jwt.encode(claims, key, algorithm="HS256")


def verify(key: bytes, token: str) -> JobClaims:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=AUDIENCE,
            leeway=_LEEWAY,
            options={"require": ["exp", "iat", "aud", "run", "experiment", "job", "typ"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidJobToken(str(exc)) from None
    if claims.get("typ") != TOKEN_TYPE:
        raise InvalidJobToken("not a job token")
    run, experiment = claims.get("run"), claims.get("experiment")
    if not (isinstance(run, str) and run and isinstance(experiment, str) and experiment):
        raise InvalidJobToken("the token names no run")
    return JobClaims(
        job_id=str(claims["job"]),
        run_id=run,
        experiment_id=experiment,
        expires_at=float(claims["exp"]),
        token_id=str(claims.get("jti", "")),
        workspace=str(claims["ws"]) if claims.get("ws") else None,
    )


# -- scope ----------------------------------------------------------------------------------------
_API = re.compile(r"^/(?:api|ajax-api)/(?:2\.0|3\.0)/(mlflow|mlflow-artifacts)/(.*)$")
_RUN_WRITES = {
    "runs/log-batch",
    "runs/log-metric",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/update",
    "runs/log-inputs",
    "runs/outputs",
    "runs/log-model",
}
_RUN_READS = {"runs/get", "metrics/get-history", "metrics/get-history-bulk-interval", "artifacts/list"}
_MODEL_PATH = re.compile(r"^logged-models/([^/]+)(/tags|/params|/artifacts/directories)?$")
_ARTIFACT_ROUTES = re.compile(r"^(artifacts|mpu/create|mpu/complete|mpu/abort)(?:/(.*))?$")
_SAFE_SEGMENT = re.compile(r"^[^/]+$")

ModelOwner = Callable[[str], "str | None"]  # model id -> its source run id (None: unknown model)


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values and len(values) == 1 else None


class JobScope:
    """What a job token may do. `model_owner` looks up a logged model's source run."""

    def __init__(self, claims: JobClaims, model_owner: ModelOwner | None = None):
        self.claims = claims
        self.model_owner = model_owner

    def needs_body(self, method: str, path: str) -> bool:
        match = _API.match(path)
        return bool(match and match.group(1) == "mlflow" and method in ("POST", "PATCH"))

    def allows(self, method: str, path: str, query_string: str = "", body: bytes | None = None) -> bool:
        try:
            return self._allows(method.upper(), unquote(path), parse_qs(query_string, keep_blank_values=True), body)
        except Exception:  # anything unexpected is a refusal, never a pass
            return False

    def _allows(self, method: str, path: str, query: dict[str, Any], body: bytes | None) -> bool:
        if ".." in path.split("/"):
            return False
        match = _API.match(path)
        if not match:
            return False
        api, endpoint = match.group(1), match.group(2).rstrip("/")
        if api == "mlflow-artifacts":
            return self._artifact_allowed(method, endpoint, query)
        claims = self.claims
        if method == "GET":
            if endpoint in _RUN_READS:
                return _single(query, "run_id") == claims.run_id or (
                    endpoint == "artifacts/list" and _single(query, "run_uuid") == claims.run_id and "run_id" not in query
                )
            if endpoint == "experiments/get":
                return _single(query, "experiment_id") == claims.experiment_id
            model = _MODEL_PATH.match(endpoint)
            if model and model.group(2) in (None, "/artifacts/directories"):
                return self._owns_model(model.group(1))
            return False
        if method not in ("POST", "PATCH"):
            return False  # DELETE and anything else
        payload = json.loads(body or b"{}")
        if not isinstance(payload, dict):
            return False
        if method == "POST" and endpoint in _RUN_WRITES:
            run_ids = {payload.get("run_id"), payload.get("run_uuid")} - {None}
            return run_ids == {claims.run_id}
        if method == "POST" and endpoint == "logged-models":
            return str(payload.get("experiment_id")) == claims.experiment_id and payload.get("source_run_id") == claims.run_id
        if method == "POST" and endpoint == "logged-models/search":
            ids = payload.get("experiment_ids")
            return isinstance(ids, list) and bool(ids) and all(str(i) == claims.experiment_id for i in ids)
        model = _MODEL_PATH.match(endpoint)
        if model and model.group(1) != "search":
            suffix = model.group(2)
            if (method, suffix) in (("PATCH", None), ("PATCH", "/tags"), ("POST", "/params")):
                return self._owns_model(model.group(1))
        return False

    def _owns_model(self, model_id: str) -> bool:
        if not _SAFE_SEGMENT.match(model_id) or self.model_owner is None:
            return False
        return self.model_owner(model_id) == self.claims.run_id

    def _artifact_allowed(self, method: str, endpoint: str, query: dict[str, Any]) -> bool:
        match = _ARTIFACT_ROUTES.match(endpoint)
        if not match:
            return False
        route, artifact_path = match.group(1), match.group(2)
        if route == "artifacts" and artifact_path is None:
            if method != "GET":
                return False
            artifact_path = _single(query, "path") or ""
        if method == "DELETE":
            return False
        if route == "artifacts" and method not in ("GET", "PUT"):
            return False
        if route != "artifacts" and method != "POST":
            return False
        return self._artifact_path_allowed(artifact_path or "")

    def _artifact_path_allowed(self, artifact_path: str) -> bool:
        parts = [p for p in artifact_path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return False
        if self.claims.workspace:
            # Workspace-aware servers keep artifacts under workspaces/<workspace>/<experiment>/...
            if parts[:2] != ["workspaces", self.claims.workspace]:
                return False
            parts = parts[2:]
        if len(parts) < 3:
            return False
        experiment = self.claims.experiment_id
        # mlflow-artifacts:/<experiment>/<run>/artifacts/... : the run's own artifacts
        if parts[:3] == [experiment, self.claims.run_id, "artifacts"]:
            return True
        # mlflow-artifacts:/<experiment>/models/<model>/artifacts/... : a model this run logged
        if len(parts) >= 4 and parts[0] == experiment and parts[1] == "models" and parts[3] == "artifacts":
            return self._owns_model(parts[2])
        return False


def store_model_owner(model_id: str) -> str | None:
    """The source run of a logged model, read from the MLflow server's own tracking store."""
    from mlflow.server.handlers import _get_tracking_store

    try:
        model = _get_tracking_store().get_logged_model(model_id)
    except Exception:
        return None
    return getattr(model, "source_run_id", None)


class JobTokenGuard:
    """Verifies job tokens and checks their scope; used by the single-user middleware."""

    def __init__(self, key: bytes, model_owner: ModelOwner | None = store_model_owner):
        self.key = key
        self.model_owner = model_owner

    @classmethod
    def for_secret(cls, secret: str, model_owner: ModelOwner | None = store_model_owner) -> JobTokenGuard:
        return cls(derive_key(secret), model_owner)

    def scope_for(self, authorization: bytes | str | None) -> JobScope | None:
        """The scope of a valid job token in an Authorization header; None if it holds none."""
        if not authorization:
            return None
        if isinstance(authorization, bytes):
            authorization = authorization.decode("latin-1", "replace")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not looks_like_job_token(token):
            return None
        try:
            return JobScope(verify(self.key, token), self.model_owner)
        except InvalidJobToken:
            return None
