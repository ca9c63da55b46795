"""The per-install secret that guards the embedded tracking service.

Only this user can read the file (0600 in a 0700 directory), so only the Jupyter server extension
and this user's kernels can present it; other local users reach the port but get 401.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..paths import infinstor_data_dir, write_private_file

SECRET_FILE_ENV = "INFINSTOR_SECRET_FILE"


def default_secret_path() -> Path:
    return infinstor_data_dir() / "embedded" / "secret"


def load_or_create_secret(path: Path | None = None) -> str:
    path = path or default_secret_path()
    try:
        value = read_secret(path)
        if value:
            # Repair permissions if someone loosened them.
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32)
    write_private_file(path, value + "\n")
    return value


def read_secret(path: Path | str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def bearer_header(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
