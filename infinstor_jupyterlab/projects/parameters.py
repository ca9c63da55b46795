"""The parameters cell (tagged `parameters`, as papermill uses it) -> MLflow entry point parameters."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from .errors import ProjectError
from .runner import coerce

PARAMETERS_TAG = "parameters"
_SCALARS = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class NotebookParameter:
    name: str
    default: Any
    line: int

    @property
    def kind(self) -> str:
        """The literal's Python type name: bool, int, float, str, none, list, dict, tuple."""
        return "none" if self.default is None else type(self.default).__name__

    @property
    def mlflow_type(self) -> str:
        # MLflow knows string, float, path and uri; ints and bools are checked again by the runner.
        return "float" if self.kind in ("int", "float") else "string"

    @property
    def mlflow_default(self) -> str | float | None:
        if self.kind in ("int", "float"):
            return self.default
        if self.kind == "str":
            return self.default
        return repr(self.default)

    def to_json(self) -> dict:
        default = self.default if isinstance(self.default, _SCALARS) else repr(self.default)
        return {"name": self.name, "type": self.kind, "mlflow_type": self.mlflow_type, "default": default}


def parameters_cell(nb) -> tuple[int, Any] | None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return index, cell
    return None


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def parse_parameters_source(source: str) -> list[NotebookParameter]:
    """Plain assignments of literals, one name each; anything else is an error naming its line."""
    lines = source.splitlines()
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if stripped.startswith(("%", "!")):
            raise ProjectError(
                f"parameters cell, line {number}: `{stripped}` is a magic or shell command; "
                "the parameters cell may only assign literal values"
            )
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ProjectError(f"parameters cell, line {exc.lineno}: syntax error: {exc.msg}") from None
    params: dict[str, NotebookParameter] = {}
    for stmt in tree.body:
        text = ast.get_source_segment(source, stmt) or ""
        where = f"parameters cell, line {stmt.lineno}: `{text.splitlines()[0] if text else ''}`"
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring-like comment
        else:
            raise ProjectError(f"{where} is not a plain assignment of a literal value")
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            raise ProjectError(f"{where} must assign exactly one name (no tuples, attributes or chains)")
        if not _is_literal(value):
            raise ProjectError(f"{where} assigns an expression; only literal values are allowed")
        name = targets[0].id
        params[name] = NotebookParameter(name=name, default=ast.literal_eval(value), line=stmt.lineno)
    return list(params.values())


def extract_parameters(nb) -> list[NotebookParameter]:
    found = parameters_cell(nb)
    if found is None:
        return []
    return parse_parameters_source(found[1].source)


def coerce_value(param: NotebookParameter, raw: Any) -> Any:
    """A value given on the command line or in a job request, as the notebook's literal type."""
    try:
        return coerce(param.name, param.kind, param.default, raw)
    except ValueError as exc:
        raise ProjectError(str(exc)) from None
