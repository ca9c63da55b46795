"""The environment of a job's process tree (inline and on the VM): its Python, its temp folder.

MLflow runs a project's entry point as `bash -c "python ..."`, and its uv env manager runs `uv`:
both found on PATH. A Jupyter started by absolute path with its venv off PATH, or a systemd unit
(a minimal default PATH), would give the job the system's `python` or none. So the job's PATH
starts with a folder of its own whose `python` and `python3` run the chosen interpreter (the
notebook's kernel's, or the agent's), then that interpreter's folder (its pip, uv, jupyter), then
the folder of the interpreter running `mlflow run` (its uv).

TMPDIR is a folder of the job's own (0700): what the job leaves there (a killed kernel's
connection file, which holds its HMAC key) goes when the job ends (`remove_job_scratch`).

Standard library only: the VM agent imports it too.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

BIN_DIR = "bin"
TMP_DIR = "tmp"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _shim(path: Path, python: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"#!/bin/sh\nexec {shlex.quote(python)} \"$@\"\n", encoding="utf-8")
    os.chmod(tmp, 0o700)
    os.replace(tmp, path)


def job_process_environment(env: dict[str, str], work_dir: Path, python: str) -> dict[str, str]:
    """`env` for a job's processes whose scratch folders live in `work_dir`, running `python`."""
    work_dir = Path(work_dir)
    bin_dir = _private_dir(work_dir / BIN_DIR)
    for name in ("python", "python3"):
        _shim(bin_dir / name, python)
    tmp_dir = _private_dir(work_dir / TMP_DIR)
    folders = [str(bin_dir), os.path.dirname(python), os.path.dirname(sys.executable)]
    inherited = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
    path = []
    for folder in [*folders, *inherited]:
        if folder and folder not in path:
            path.append(folder)
    return {**env, "PATH": os.pathsep.join(path), "TMPDIR": str(tmp_dir)}


def remove_job_scratch(work_dir: Path) -> None:
    for name in (BIN_DIR, TMP_DIR):
        shutil.rmtree(Path(work_dir) / name, ignore_errors=True)


def find_next_to_python(name: str, path: str | None = None) -> str | None:
    """`name` on PATH or beside this interpreter (a venv's tools when the venv is off PATH)."""
    search = os.pathsep.join([os.path.dirname(sys.executable), path if path is not None else os.environ.get("PATH", "")])
    return shutil.which(name, path=search)
