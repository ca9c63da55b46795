"""The environment of a job's process tree (inline and on the VM): its Python, its temp folder.

MLflow runs a project's entry point as `bash -c "python ..."`, and its uv env manager runs `uv`:
both found on PATH. A Jupyter started by absolute path with its venv off PATH, or a systemd unit
(a minimal default PATH), would give the job the system's `python` or none. So the job's PATH
starts with a folder of its own whose `python` and `python3` run the chosen interpreter (the
notebook's kernel's, or the agent's), then that interpreter's folder (its pip, uv, jupyter), then
the folder of the interpreter running `mlflow run` (its uv). Last come the folders of the Pythons
those venvs were made from: MLflow's uv env manager builds job environments from a system (not a
venv's) Python of the project's version, and would download one when none is on PATH.

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
    bases = [os.path.dirname(_base_python(python)), os.path.dirname(_base_python(sys.executable))]
    path = []
    for folder in [*folders, *inherited, *bases]:
        if folder and folder not in path:
            path.append(folder)
    return {**env, "PATH": os.pathsep.join(path), "TMPDIR": str(tmp_dir)}


def _base_python(python: str) -> str:
    """The interpreter a venv was made from (its pyvenv.cfg's `home`), else `python` itself."""
    config = Path(python).parent.parent / "pyvenv.cfg"
    try:
        for line in config.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "home" and value.strip():
                return os.path.join(value.strip(), "python3")
    except OSError:
        pass
    return python


def remove_job_scratch(work_dir: Path) -> None:
    for name in (BIN_DIR, TMP_DIR):
        shutil.rmtree(Path(work_dir) / name, ignore_errors=True)


def find_next_to_python(name: str, path: str | None = None) -> str | None:
    """`name` on PATH or beside this interpreter (a venv's tools when the venv is off PATH)."""
    search = os.pathsep.join([os.path.dirname(sys.executable), path if path is not None else os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


PACKAGE = "infinstor_jupyterlab"


def own_requirement() -> str:
    """This package as installed here, as a requirement another environment can install: the
    wheel, folder or URL it was installed from (PEP 610 direct_url.json), else its PyPI version."""
    import json
    from importlib import metadata

    dist = metadata.distribution(PACKAGE)
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        direct = None
    if isinstance(direct, dict) and isinstance(direct.get("url"), str) and direct["url"].startswith(("file:", "https:", "http:")):
        return f"{PACKAGE} @ {direct['url']}"
    return f"{PACKAGE}=={dist.version}"


def add_own_requirement(project_dir: Path) -> bool:
    """Make a job environment MLflow builds (uv, virtualenv) install this package too: its
    request header provider is what sends the job's credentials (the token file, the install
    secret) to the tracking service. Edits the project's python_env.yaml (a job's own copy).
    False when the project has none."""
    import yaml

    project_dir = Path(project_dir)
    mlproject = next((project_dir / n for n in ("MLproject", "mlproject") if (project_dir / n).is_file()), None)
    if mlproject is None:
        return False
    env_file = (yaml.safe_load(mlproject.read_text(encoding="utf-8")) or {}).get("python_env")
    if not isinstance(env_file, str) or not (project_dir / env_file).is_file():
        return False
    path = project_dir / env_file
    env = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    dependencies = [d for d in env.get("dependencies") or [] if not str(d).replace("-", "_").lower().startswith(PACKAGE)]
    env["dependencies"] = [*dependencies, own_requirement()]
    path.write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")
    return True
