"""Where InfinStor keeps its per-user state, and how private files are written."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from jupyter_core.paths import jupyter_data_dir


def infinstor_data_dir() -> Path:
    """Per-user state directory (mode 0700) under the Jupyter data directory."""
    override = os.environ.get("INFINSTOR_DATA_DIR")
    path = Path(override) if override else Path(jupyter_data_dir()) / "infinstor"
    ensure_private_dir(path)
    return path


def ensure_private_dir(path: Path) -> Path:
    """`path` as a folder only this user can enter (0700), with any missing parents made 0700 too."""
    path = Path(path)
    missing = []
    for ancestor in [path, *path.parents]:
        if ancestor.exists():
            break
        missing.append(ancestor)
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    os.chmod(path, 0o700)  # an existing folder too
    return path


def open_private_append(path: Path) -> BinaryIO:
    """`path` opened to append bytes, created 0600 (and made 0600 if it was not)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def make_tree_private(root: Path) -> None:
    """Take group and others' access away from `root` and everything under it (owner bits stay,
    so an executable script stays executable)."""
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o700)
        for name in files:
            file = os.path.join(folder, name)
            if not os.path.islink(file):
                os.chmod(file, stat.S_IMODE(os.lstat(file).st_mode) & 0o700)


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
