"""Notebook -> a standard MLflow project directory."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from ..paths import make_tree_private
from .environment import kernel_python, python_env
from .errors import ProjectError
from .parameters import NotebookParameter, extract_parameters
from .runner import SPEC_FILE

RUNNER_FILE = "_infinstor_runner.py"
DEFAULT_MAX_FOLDER_BYTES = 200 * 1024 * 1024
DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".ipynb_checkpoints",
    "__pycache__",
    "node_modules",
    ".venv",
    "venv",
    "env",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    "mlruns",
    "mlartifacts",
    ".DS_Store",
    ".Trash-0",
)


@dataclass
class ProjectInfo:
    path: Path
    name: str
    notebook: str
    parameters: list[NotebookParameter]
    python_env: dict
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "name": self.name,
            "notebook": self.notebook,
            "parameters": [p.to_json() for p in self.parameters],
            "python": self.python_env["python"],
            "dependencies": self.python_env["dependencies"],
            "files": self.files,
        }


def load_notebook(path: Path):
    if path.suffix != ".ipynb":
        raise ProjectError(f"{path.name} is not a notebook (expected a .ipynb file)")
    if not path.is_file():
        raise ProjectError(f"{path} does not exist or is not a file")
    try:
        nb = nbformat.read(path, as_version=4)
    except nbformat.ValidationError as exc:
        raise ProjectError(f"{path.name} is not valid nbformat: {exc.message}") from None
    except (ValueError, nbformat.reader.NotJSONError) as exc:
        raise ProjectError(f"{path.name} is not a valid notebook: {exc}") from None
    except Exception as exc:  # nbformat raises assorted errors for damaged files
        raise ProjectError(f"{path.name} cannot be read as a notebook: {exc}") from None
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise ProjectError(f"{path.name} is not valid nbformat: {exc.message}") from None
    language = nb.metadata.get("kernelspec", {}).get("language") or nb.metadata.get("language_info", {}).get("name") or "python"
    if language.lower() != "python":
        raise ProjectError(f"{path.name} uses a {language} kernel; only Python notebooks can become MLflow projects")
    return nb


def project_name(notebook: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", notebook.stem).strip("-.")
    return name or "notebook"


def _excluded(path: Path, excludes: tuple[str, ...]) -> bool:
    return path.name in excludes or (path.is_dir() and (path / "pyvenv.cfg").exists())


def _folder_files(folder: Path, skip: set[Path], excludes, max_bytes: int) -> list[Path]:
    files: list[Path] = []
    total = 0
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        dirs[:] = sorted(d for d in dirs if not _excluded(base / d, excludes) and (base / d).resolve() not in skip)
        for name in sorted(names):
            path = base / name
            if name in excludes or path.resolve() in skip or not path.is_file() or path.is_symlink():
                continue
            total += path.stat().st_size
            if total > max_bytes:
                raise ProjectError(
                    f"the folder beside the notebook holds more than {max_bytes // (1024 * 1024)} MB; "
                    "exclude large files or run without --include-folder"
                )
            files.append(path)
    return files


def _mlproject(name: str, params: list[NotebookParameter]) -> dict:
    parameters = {}
    for p in params:
        entry: dict = {"type": p.mlflow_type}
        if p.mlflow_default is not None:
            entry["default"] = p.mlflow_default
        parameters[p.name] = entry
    # One word per parameter (MLflow shell-quotes the value): no value is ever read as an option.
    command = " ".join(["python", RUNNER_FILE, *[f"--param={p.name}={{{p.name}}}" for p in params]])
    return {
        "name": name,
        "python_env": "python_env.yaml",
        "entry_points": {"main": {"parameters": parameters, "command": command}},
    }


def check_notebook(
    notebook_path: str | os.PathLike,
    *,
    include_folder: bool = False,
    max_folder_bytes: int = DEFAULT_MAX_FOLDER_BYTES,
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES,
) -> list[NotebookParameter]:
    """Everything `build_project` would refuse, found without writing anything: the notebook, its
    parameters cell, its kernelspec's name, the size of the folder beside it. Its parameters."""
    notebook = Path(notebook_path).resolve()
    nb = load_notebook(notebook)
    params = extract_parameters(nb)
    kernel_python(nb)
    if include_folder:
        _folder_files(notebook.parent, {notebook}, excludes, max_folder_bytes)
    return params


def build_project(
    notebook_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    *,
    include_folder: bool = False,
    python_executable: str | None = None,
    max_folder_bytes: int = DEFAULT_MAX_FOLDER_BYTES,
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES,
    overwrite: bool = False,
    private: bool = False,
    source_name: str | None = None,
) -> ProjectInfo:
    """The notebook as an MLflow project in `output_dir`. `private`: readable by this user only (a
    job's copy), whatever the umask. `source_name` is what runs the notebook starts name as their
    source (default: the notebook's file name; the lab gives its own path)."""
    notebook = Path(notebook_path).resolve()
    nb = load_notebook(notebook)
    params = extract_parameters(nb)
    name = project_name(notebook)
    out = Path(output_dir).resolve() if output_dir else notebook.parent / f"{name}-mlproject"
    if out == notebook.parent or notebook.parent.is_relative_to(out):
        raise ProjectError("the output directory must not contain the notebook's folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ProjectError(f"{out} already exists and is not empty")
        shutil.rmtree(out)
    env = python_env(nb, python_executable or kernel_python(nb))

    extra: list[Path] = []
    if include_folder:
        extra = _folder_files(notebook.parent, {out, notebook}, excludes, max_folder_bytes)

    # Write into a sibling temp dir and rename, so a failure never leaves half a project.
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        written: list[str] = []
        for path in extra:
            relative = path.relative_to(notebook.parent)
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            written.append(relative.as_posix())
        shutil.copy2(notebook, staging / notebook.name)
        shutil.copy2(Path(__file__).with_name("runner.py"), staging / RUNNER_FILE)
        spec = {
            "notebook": notebook.name,
            "source": source_name or notebook.name,
            "parameters": [{"name": p.name, "type": p.kind, "default": p.to_json()["default"]} for p in params],
        }
        (staging / SPEC_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")
        (staging / "MLproject").write_text(yaml.safe_dump(_mlproject(name, params), sort_keys=False), encoding="utf-8")
        (staging / "python_env.yaml").write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")
        written += [notebook.name, RUNNER_FILE, SPEC_FILE, "MLproject", "python_env.yaml"]
        if private:
            make_tree_private(staging)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ProjectInfo(path=out, name=name, notebook=notebook.name, parameters=params, python_env=env, files=sorted(set(written)))
