"""Where InfinStor keeps its per-user state, and how private files are written."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir


def infinstor_data_dir() -> Path:
    """Per-user state directory (mode 0700) under the Jupyter data directory."""
    override = os.environ.get("INFINSTOR_DATA_DIR")
    path = Path(override) if override else Path(jupyter_data_dir()) / "infinstor"
    ensure_private_dir(path)
    return path


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkdir's mode is filtered by the umask and ignored for existing directories.
    os.chmod(path, 0o700)
    return path


def write_private_file(path: Path, data: str) -> None:
    """Atomically write `data` to `path` readable by this user only (0600)."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
