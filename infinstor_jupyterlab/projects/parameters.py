"""The parameters cell (tagged `parameters`, as papermill uses it) -> MLflow entry point parameters."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from .errors import ProjectError
from .runner import MAX_VALUE_CHARS, coerce, encode

PARAMETERS_TAG = "parameters"
_SCALARS = (bool, int, float, str, type(None))
# A bigger cell is refused before it is parsed (reading it must stay fast: GET projects/parameters).
MAX_CELL_CHARS = 1_000_000
__all__ = ["MAX_CELL_CHARS", "MAX_VALUE_CHARS", "NotebookParameter", "coerce_value", "encode_value", "parse_parameters_source"]


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
        return self.mlflow_text(self.default)

    def mlflow_text(self, value: Any) -> str:
        """`value` as the text MLflow passes to the runner (and logs as the run's parameter)."""
        return encode(self.kind, value)

    def to_json(self) -> dict:
        default = self.default if isinstance(self.default, _SCALARS) else repr(self.default)
        return {"name": self.name, "type": self.kind, "mlflow_type": self.mlflow_type, "default": default}


def parameters_cell(nb) -> tuple[int, Any] | None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return index, cell
    return None


def _is_type_expression(node: ast.AST) -> bool:
    """What papermill users write as annotations: `int`, `typing.List[str]`, `Optional[int]`,
    `int | None`, `'float'`, `None`; never a call, a comprehension or any other expression."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _is_type_expression(node.value)
    if isinstance(node, ast.Constant):
        return node.value is None or isinstance(node.value, str)
    if isinstance(node, ast.Subscript):
        return _is_type_expression(node.value) and _is_type_expression(node.slice)
    if isinstance(node, ast.Tuple):
        return all(_is_type_expression(element) for element in node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type_expression(node.left) and _is_type_expression(node.right)
    return False


def parse_parameters_source(source: str) -> list[NotebookParameter]:
    """Plain assignments of literals, one name each; anything else is an error naming its line.

    Linear in the size of the cell, which is capped (MAX_CELL_CHARS) before anything is parsed.
    """
    if len(source) > MAX_CELL_CHARS:
        raise ProjectError(
            f"the parameters cell is {len(source):,} characters long; it may be at most {MAX_CELL_CHARS:,} "
            "characters (keep large values in a file beside the notebook and read it there)"
        )
    lines = source.splitlines()
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if stripped.startswith(("%", "!")):
            raise ProjectError(
                f"parameters cell, line {number}: `{_clip(stripped)}` is a magic or shell command; "
                "the parameters cell may only assign literal values"
            )
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise ProjectError(f"parameters cell, line {getattr(exc, 'lineno', '?')}: syntax error: {getattr(exc, 'msg', exc)}") from None
    except (MemoryError, RecursionError):
        raise ProjectError("the parameters cell is nested too deeply to be read") from None
    params: dict[str, NotebookParameter] = {}
    for stmt in tree.body:
        first_line = lines[stmt.lineno - 1].strip() if stmt.lineno <= len(lines) else ""
        where = f"parameters cell, line {stmt.lineno}: `{_clip(first_line)}`"
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            if not _is_type_expression(stmt.annotation):
                raise ProjectError(f"{where} has an annotation that is not a type name (such as int, str or Optional[int])")
            targets, value = [stmt.target], stmt.value
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring-like comment
        else:
            raise ProjectError(f"{where} is not a plain assignment of a literal value")
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            raise ProjectError(f"{where} must assign exactly one name (no tuples, attributes or chains)")
        try:
            default = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ProjectError(f"{where} assigns an expression; only literal values are allowed") from None
        param = NotebookParameter(name=targets[0].id, default=default, line=stmt.lineno)
        size = len(param.mlflow_text(default))
        if size > MAX_VALUE_CHARS:
            raise ProjectError(
                f"{where}: the value is {size:,} characters long; a parameter may be at most {MAX_VALUE_CHARS:,} "
                "characters (MLflow's limit; keep large values in a file beside the notebook)"
            )
        params[param.name] = param
    return list(params.values())


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def extract_parameters(nb) -> list[NotebookParameter]:
    found = parameters_cell(nb)
    if found is None:
        return []
    return parse_parameters_source(found[1].source)


def coerce_value(param: NotebookParameter, raw: Any) -> Any:
    """A value given on the command line or in a job request (None for JSON null), as the
    notebook's literal type; ProjectError (naming the parameter) when it cannot be."""
    try:
        return coerce(param.name, param.kind, param.default, raw)
    except ValueError as exc:
        raise ProjectError(str(exc)) from None


def encode_value(param: NotebookParameter, value: Any) -> str:
    """The text the runner reads back as `value` (a value `coerce_value` returned)."""
    return param.mlflow_text(value)
