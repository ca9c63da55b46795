"""Project operations on paths of the lab (relative to the Jupyter server's root)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..limits import check_path, shown
from .convert import build_project, load_notebook
from .parameters import extract_parameters


def resolve_in_root(root: Path, path: str, *, must_exist: bool = True, field: str = "path") -> Path:
    """`path` (lab-relative or absolute) as an absolute path that stays inside `root`."""
    check_path(field, path)
    candidate = Path(path)
    try:
        resolved = candidate.resolve() if candidate.is_absolute() else (root / path).resolve()
        if resolved != root and not resolved.is_relative_to(root):
            raise BadRequest(f"{shown(path)} is outside the Jupyter server's root directory.")
        if must_exist and not resolved.exists():
            raise BadRequest(f"{shown(path)} does not exist.")
    except (OSError, RuntimeError) as exc:  # e.g. a symlink loop, a name the file system refuses
        raise BadRequest(f"{shown(path)} cannot be used: {exc.strerror if isinstance(exc, OSError) else exc}.") from None
    return resolved


def lab_path(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


class ProjectService:
    def __init__(self, root_dir: Path):
        self.root_dir = Path(root_dir).resolve()

    async def convert(self, path: str, output_dir: str | None, *, include_folder: bool) -> dict[str, Any]:
        notebook = resolve_in_root(self.root_dir, path)
        out = resolve_in_root(self.root_dir, output_dir, must_exist=False, field="output_dir") if output_dir else None
        info = await asyncio.to_thread(build_project, notebook, out, include_folder=include_folder)
        data = info.to_json()
        data["path"] = lab_path(self.root_dir, info.path)
        return data

    async def describe(self, path: str) -> dict[str, Any]:
        target = resolve_in_root(self.root_dir, path)
        return await asyncio.to_thread(self._describe, target)

    def _describe(self, target: Path) -> dict[str, Any]:
        if target.is_file():
            nb = load_notebook(target)
            return {
                "kind": "notebook",
                "path": lab_path(self.root_dir, target),
                "parameters": [p.to_json() for p in extract_parameters(nb)],
            }
        from mlflow.projects import _project_spec

        if not (target / "MLproject").is_file():
            raise BadRequest(f"{shown(lab_path(self.root_dir, target))} is a folder without an MLproject file.")
        try:
            project = _project_spec.load_project(str(target))
            entry = project.get_entry_point("main")
        except Exception as exc:
            raise BadRequest(f"Invalid MLproject: {exc}") from None
        params = []
        for name, param in entry.parameters.items():
            default = param.default
            kind = {"float": "float", "path": "str", "uri": "str"}.get(param.type, "str")
            params.append({"name": name, "type": kind, "mlflow_type": param.type, "default": default})
        return {"kind": "project", "path": lab_path(self.root_dir, target), "name": project.name, "parameters": params}
