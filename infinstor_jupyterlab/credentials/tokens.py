"""The per-user token store shared by the server extension, kernels and the CLI.

One JSON file, mode 0600 in a 0700 directory (default `<InfinStor data dir>/credentials/
tokens.json`, or the path in $INFINSTOR_TOKEN_STORE), keyed by tracking service origin. Writes
are atomic (temporary file + rename); `TokenStore.lock()` is a cross-process lock (`filelock`:
flock on POSIX, msvcrt on Windows) held around read-modify-write and around a refresh, so
processes sharing the store never race with a rotating refresh token.

Where the OS has a keyring (macOS Keychain, Windows Credential Locker, the Secret Service or
KWallet on a Linux desktop), the tokens themselves go there and the file keeps only what is not
secret (who, which provider, expiry) plus a marker. $INFINSTOR_TOKEN_BACKEND chooses: `auto`
(default: the OS keyring if one is usable, else the file), `file`, or `keyring` (whatever backend
the `keyring` package is configured with, e.g. by $PYTHON_KEYRING_BACKEND; an error if none).

Token values never leave this module in a log line, an exception message or a repr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..paths import ensure_private_dir, infinstor_data_dir

log = logging.getLogger(__name__)

TOKEN_STORE_ENV = "INFINSTOR_TOKEN_STORE"
TOKEN_BACKEND_ENV = "INFINSTOR_TOKEN_BACKEND"
TOKEN_BACKENDS = ("auto", "file", "keyring")
KEYRING_SERVICE = "infinstor-jupyterlab"
IN_KEYRING = "keyring"  # the file entry's `secrets` value when the tokens are in the keyring
STORE_VERSION = 1


def default_store_path() -> Path:
    override = os.environ.get(TOKEN_STORE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return infinstor_data_dir() / "credentials" / "tokens.json"


@dataclass
class Identity:
    """Who a token belongs to, as the identity provider says (never secret)."""

    subject: str = ""
    name: str = ""
    display_name: str = ""
    email: str | None = None
    groups: list[str] = field(default_factory=list)
    org: str | None = None

    @classmethod
    def from_claims(
        cls,
        claims: dict[str, Any],
        *,
        username_claim: str = "preferred_username",
        groups_claim: str = "groups",
        org_claim: str = "org",
    ) -> Identity:
        subject = str(claims.get("sub") or claims.get("client_id") or "")
        name = str(claims.get(username_claim) or claims.get("preferred_username") or claims.get("email") or subject or "")
        groups = claims.get(groups_claim) or []
        if isinstance(groups, str):
            groups = [g for g in groups.replace(",", " ").split() if g]
        org = claims.get(org_claim)
        return cls(
            subject=subject,
            name=name,
            display_name=str(claims.get("name") or name),
            email=claims.get("email") or None,
            groups=[str(g) for g in groups] if isinstance(groups, list) else [],
            org=str(org) if org else None,
        )

    def merged(self, other: Identity) -> Identity:
        """This identity with the blanks filled from `other` (e.g. userinfo after the id_token)."""
        return Identity(
            subject=self.subject or other.subject,
            name=self.name or other.name,
            display_name=self.display_name or other.display_name,
            email=self.email or other.email,
            groups=self.groups or other.groups,
            org=self.org or other.org,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


_SECRET_FIELDS = ("access_token", "refresh_token", "id_token")


@dataclass(repr=False)
class TokenSet:
    """The credentials for one tracking service. Its repr and str never show a token."""

    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    id_token: str | None = None
    expires_at: float | None = None
    scope: str | None = None
    issuer: str | None = None
    client_id: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None
    kind: str = "oidc"  # "oidc" (signed in) or "api_token" (given by the user)
    identity: Identity = field(default_factory=Identity)
    obtained_at: float = field(default_factory=time.time)

    def __repr__(self) -> str:
        parts = [f"kind={self.kind!r}", f"user={self.identity.name!r}"]
        if self.expires_at is not None:
            parts.append(f"expires_in={self.expires_in():.0f}s")
        for name in _SECRET_FIELDS:
            parts.append(f"{name}={'<redacted>' if getattr(self, name) else None}")
        return f"TokenSet({', '.join(parts)})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def expires_in(self, now: float | None = None) -> float:
        if self.expires_at is None:
            return float("inf")
        return self.expires_at - (time.time() if now is None else now)

    def expires_within(self, seconds: float) -> bool:
        return self.expires_in() <= seconds

    @property
    def expired(self) -> bool:
        return self.expires_in() <= 0

    @property
    def refreshable(self) -> bool:
        return bool(self.refresh_token and self.token_endpoint and self.client_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["identity"] = asdict(self.identity)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["identity"] = Identity.from_dict(data.get("identity") or {})
        if not values.get("access_token"):
            raise ValueError("stored credentials without an access token")
        return cls(**values)


class TokenStoreError(Exception):
    pass


def _is_os_keyring(backend) -> bool:
    """A keyring the OS provides (not keyring's fail/null backends, not keyrings.alt's files)."""
    module = type(backend).__module__
    if not module.startswith("keyring.backends.") or module.rsplit(".", 1)[-1] in ("fail", "null"):
        return False
    try:
        return float(backend.priority) >= 1
    except Exception:  # a backend whose priority check fails is not usable here
        return False


class KeyringVault:
    """The secret fields of each TokenSet, one keyring entry per (store file, service)."""

    def __init__(self, backend, store_path: Path):
        self.backend = backend
        self._prefix = f"{store_path}|"

    def __repr__(self) -> str:
        return f"KeyringVault({type(self.backend).__module__}.{type(self.backend).__name__})"

    @classmethod
    def select(cls, mode: str, store_path: Path) -> KeyringVault | None:
        if mode not in TOKEN_BACKENDS:
            raise TokenStoreError(f"{TOKEN_BACKEND_ENV}={mode!r} is not one of {', '.join(TOKEN_BACKENDS)}")
        if mode == "file":
            return None
        try:
            import keyring
        except ImportError:
            if mode == "keyring":
                raise TokenStoreError(f"{TOKEN_BACKEND_ENV}=keyring needs the `keyring` package (pip install keyring)") from None
            return None
        backend = keyring.get_keyring()
        if mode == "keyring":
            if type(backend).__module__.rsplit(".", 1)[-1] in ("fail", "null"):
                raise TokenStoreError(f"{TOKEN_BACKEND_ENV}=keyring, but no keyring backend is available here")
            return cls(backend, store_path)
        # auto: only a real OS keyring; a chainer wraps the usable ones, best first.
        candidates = list(getattr(backend, "backends", None) or [backend])
        for candidate in candidates:
            if _is_os_keyring(candidate):
                return cls(candidate, store_path)
        return None

    def get(self, service: str) -> dict[str, Any] | None:
        try:
            raw = self.backend.get_password(KEYRING_SERVICE, self._prefix + service)
        except Exception as exc:  # a locked or unreachable keyring
            raise TokenStoreError(f"Cannot read the keyring: {exc.__class__.__name__}") from None
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def put(self, service: str, secrets: dict[str, Any]) -> None:
        try:
            self.backend.set_password(KEYRING_SERVICE, self._prefix + service, json.dumps(secrets))
        except Exception as exc:
            raise TokenStoreError(f"Cannot write to the keyring: {exc.__class__.__name__}") from None

    def delete(self, service: str) -> None:
        with contextlib.suppress(Exception):  # already gone (or never there)
            self.backend.delete_password(KEYRING_SERVICE, self._prefix + service)


class TokenStore:
    """A JSON file of TokenSets keyed by service origin, private to this user."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        lock_timeout: float = 60.0,
        backend: str | None = None,
    ):
        self.path = Path(path) if path else default_store_path()
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        # Per thread (filelock's default): each thread takes the OS lock on its own handle, so
        # threads of one process exclude each other too; re-entrant within a thread.
        self._file_lock = FileLock(self.lock_path, timeout=lock_timeout, mode=0o600)
        mode = (backend or os.environ.get(TOKEN_BACKEND_ENV, "") or "auto").strip().lower()
        self.vault = KeyringVault.select(mode, self.path)
        self._local = threading.local()
        self._cache: tuple[tuple[int, int, int], dict] | None = None
        self._cache_lock = threading.Lock()
        # Secrets read from the keyring, per service, valid while the file entry is unchanged
        # (every write rewrites the file, so a peer's refresh shows up as a new entry).
        self._vault_cache: dict[str, tuple[str, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    # -- locking ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes (and threads); re-entrant within one thread."""
        ensure_private_dir(self.path.parent)
        try:
            self._file_lock.acquire()
        except Timeout:
            raise TokenStoreError(f"Timed out waiting for the credentials lock {self.lock_path}") from None
        try:
            yield
        finally:
            self._file_lock.release()

    # -- file ------------------------------------------------------------------------------------
    def _read_all(self) -> dict[str, Any]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._cache_lock:
            if self._cache and self._cache[0] == stamp:
                return json.loads(json.dumps(self._cache[1]))  # a copy
        if st.st_mode & 0o077:
            os.chmod(self.path, 0o600)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("InfinStor: the credentials file %s is not valid JSON; ignoring it", self.path)
            return {}
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, dict):
            return {}
        with self._cache_lock:
            self._cache = (stamp, services)
        return json.loads(json.dumps(services))

    def _write_all(self, services: dict[str, Any]) -> None:
        ensure_private_dir(self.path.parent)
        payload = json.dumps({"version": STORE_VERSION, "services": services}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with self._cache_lock:
            self._cache = None

    # -- API -------------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        """Where the tokens are kept, for messages (never a secret)."""
        if self.vault is not None:
            return f"the OS keyring ({type(self.vault.backend).__name__}), indexed in {self.path}"
        return str(self.path)

    def _with_secrets(self, service: str, entry: dict[str, Any]) -> dict[str, Any] | None:
        if entry.get("secrets") != IN_KEYRING:
            return entry
        if self.vault is None:
            log.warning(
                "InfinStor: the credentials for %s are in a keyring that is not available to this process; sign in again",
                service,
            )
            return None
        revision = json.dumps(entry, sort_keys=True)
        cached = self._vault_cache.get(service)
        if cached is not None and cached[0] == revision:
            secrets = cached[1]
        else:
            found = self.vault.get(service)
            if found is None:
                log.warning("InfinStor: the keyring holds no credentials for %s", service)
                return None
            secrets = found
            self._vault_cache[service] = (revision, secrets)
        merged = dict(entry)
        for name in _SECRET_FIELDS:
            merged[name] = secrets.get(name)
        return merged

    def get(self, service: str) -> TokenSet | None:
        entry = self._read_all().get(service)
        if not entry:
            return None
        try:
            entry = self._with_secrets(service, entry)
            return TokenSet.from_dict(entry) if entry else None
        except (TypeError, ValueError):
            log.warning("InfinStor: ignoring unreadable credentials for %s", service)
            return None

    def put(self, service: str, tokens: TokenSet) -> None:
        data = tokens.to_dict()
        with self.lock():
            services = self._read_all()
            if self.vault is not None:
                self.vault.put(service, {name: data[name] for name in _SECRET_FIELDS})
                for name in _SECRET_FIELDS:
                    data[name] = None
                data["secrets"] = IN_KEYRING
            services[service] = data
            self._write_all(services)

    def delete(self, service: str) -> TokenSet | None:
        with self.lock():
            services = self._read_all()
            entry = services.pop(service, None)
            if entry is None:
                return None
            try:
                entry = self._with_secrets(service, entry)
            except TokenStoreError:
                entry = None
            if self.vault is not None:
                self.vault.delete(service)
            self._vault_cache.pop(service, None)
            self._write_all(services)
        if not entry:
            return None
        try:
            return TokenSet.from_dict(entry)
        except (TypeError, ValueError):
            return None

    def services(self) -> list[str]:
        return sorted(self._read_all())
