"""Who is calling: a bearer credential becomes a `Principal`.

Three credentials: an OIDC access token (JWT, checked by `TokenVerifier`), an API token
(`inf_...`, stored hashed) or a job-scoped token (HS256, one run). Users are provisioned on first
sight; their organisation comes from a token claim and their groups from the token or, where
SCIM provisions the organisation, from the directory (directory.py). A checked API token is reused
under the "tokens" change counter (cache.py). Refused credentials leave a coalesced failed
sign-in record (signin_audit.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

import jwt

from .. import job_tokens
from ..config import ServiceConfig
from ..directory import Directory
from ..oidc_auth import Identity, InvalidToken, TokenVerifier, _bearer
from ..service_store import TOKEN_PREFIX, ServiceStore, TokenRecord, split_api_token
from ..signin_audit import TOKEN_ID_CHARS, FailedSignIns, describe
from .cache import ReusedDecisions
from .lookups import with_workspace
from .principals import Principal, organisation_or_nothing, workspace_name

log = logging.getLogger(__name__)


def is_job_token(token: str) -> bool:
    if not job_tokens.looks_like_job_token(token):
        return False
    try:
        return jwt.get_unverified_header(token).get("alg") == "HS256"
    except jwt.PyJWTError:
        return False


def token_identity(token: str, record: TokenRecord | None, state: str) -> Identity:
    """What a refused API token says about its holder: its id's first characters, and the owner of
    the real token it names (proven when its secret matched, i.e. it was revoked or expired)."""
    identity: Identity = {"token_id": token[len(TOKEN_PREFIX) :][:TOKEN_ID_CHARS]}
    if record is not None:
        identity.update({"username": record.username, "org": record.org, "verified": state in ("revoked", "expired")})
    return identity


class Authenticator:
    """Blocking (runs in worker threads)."""

    def __init__(
        self,
        config: ServiceConfig,
        store: ServiceStore,
        verifier: TokenVerifier,
        directory: Directory,
        api_tokens: ReusedDecisions,
        failed_sign_ins: FailedSignIns,
    ):
        self.config, self.store, self.verifier, self.directory = config, store, verifier, directory
        self.job_key = job_tokens.derive_key(config.job_token_secret) if config.job_token_secret else None
        self.api_tokens = api_tokens  # sha256(token) -> (record, groups)
        self.failed_sign_ins = failed_sign_ins
        self._workspaces: set[str] = set()
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()
        self._workspace_lock = threading.Lock()

    def authenticate(self, authorization: bytes | str | None) -> Principal:
        token = _bearer(authorization)
        if token is None:
            raise InvalidToken("no bearer token", "no_credential")
        if split_api_token(token) is not None:
            record, groups = self._api_token(token)
            self.touch(record.token_id)
            return self._principal(record.username, record.org, groups, None, "api_token", token_id=record.token_id)
        if self.job_key is not None and is_job_token(token):
            try:
                claims = job_tokens.verify(self.job_key, token)
            except job_tokens.InvalidJobToken:
                raise InvalidToken("the job token is not valid or has expired", "invalid_job_token") from None
            if not claims.workspace:
                raise InvalidToken("the job token names no organisation", "no_organisation")
            self.ensure_workspace(claims.workspace)
            scope = job_tokens.JobScope(claims, self._job_model_owner(claims.workspace))
            return Principal(f"job:{claims.job_id}", claims.workspace, (), None, "job", job_scope=scope, token_id=claims.token_id)
        caller = self.verifier.verify(token)
        org = caller.org
        if not org:
            identity: Identity = {"username": caller.username, "subject": caller.subject, "issuer": self.verifier.issuer, "verified": True}
            raise InvalidToken(f"the token names no organisation (claim {self.config.claims.org!r})", "no_organisation", identity)
        org = workspace_name(org)
        groups = self.directory.groups_for(org, caller.username, caller.groups, caller.groups_overage)
        self.ensure_workspace(org)
        self.store.see_user(org, caller.username, caller.email, list(caller.groups))  # the token's own groups
        return self._principal(caller.username, org, groups, caller.email, "oidc")

    def _api_token(self, token: str) -> tuple[TokenRecord, tuple[str, ...]]:
        """(record, groups) of a valid API token. A token checked here is reused until a token or
        a user's groups change anywhere (see changes.py), for at most `grant_cache_seconds`:
        automation calls every few seconds, and two queries per call were the largest share of
        the service's own database time under load."""
        key = hashlib.sha256(token.encode()).digest()
        cached: tuple[TokenRecord, tuple[str, ...]] | None = self.api_tokens.get(key)
        if cached is not None and cached[0].expires_at > time.time():
            return cached
        counter = self.api_tokens.counter()  # read before the database: a change after it shows
        record, state = self.store.inspect_token(token)
        if state != "valid" or record is None:
            raise InvalidToken("the API token is unknown, revoked or expired", f"{state}_api_token", token_identity(token, record, state))
        last_seen = tuple(self.store.user_groups(record.org, record.username) or ())
        # The groups its user's last token had, as SCIM has them now; refused if deprovisioned.
        groups = tuple(self.directory.groups_for(record.org, record.username, last_seen, overage=not last_seen))
        self.api_tokens.put(key, (record, groups), counter)
        return record, groups

    def sign_in_failed(self, authorization: bytes | None, error: InvalidToken, source: str) -> None:
        """Audit a refused credential (coalesced; see signin_audit). No credential is no sign-in."""
        token = _bearer(authorization)
        if token is None or error.reason == "no_credential":
            return
        self.failed_sign_ins.failed(describe(token, error, source, self.config.claims, organisation_or_nothing))

    def touch(self, token_id: str, write: Callable[[], object] | None = None) -> None:
        """Record a token's last use, at most once a minute (not a database write per request)."""
        now = time.monotonic()
        with self._touch_lock:
            if now - self._touched.get(token_id, -3600.0) < 60:
                return
            self._touched[token_id] = now
        (write or (lambda: self.store.touch_token(token_id)))()

    def _principal(
        self, username: str, org: str, groups: tuple[str, ...] | list[str], email: str | None, kind: str, token_id: str | None = None
    ) -> Principal:
        is_admin = any(g in self.config.org_admin_groups for g in groups)
        return Principal(username, org, tuple(groups), email, kind, is_admin=is_admin, token_id=token_id)

    @staticmethod
    def _job_model_owner(org: str) -> Callable[[str], str | None]:
        def owner(model_id: str) -> str | None:
            with_workspace(org)
            return job_tokens.store_model_owner(model_id)

        return owner

    def ensure_workspace(self, org: str) -> None:
        if org in self._workspaces:
            return
        with self._workspace_lock:
            if org in self._workspaces:
                return
            from mlflow.entities import Workspace
            from mlflow.exceptions import MlflowException
            from mlflow.server.workspace_helpers import _get_workspace_store

            store = _get_workspace_store()
            try:
                store.get_workspace(org)
            except MlflowException:
                try:
                    store.create_workspace(Workspace(name=org, description="InfinStor organisation"))
                    log.info("InfinStor: created the workspace of organisation %s", org)
                except MlflowException:
                    store.get_workspace(org)  # created by another replica meanwhile
            self._workspaces.add(org)
