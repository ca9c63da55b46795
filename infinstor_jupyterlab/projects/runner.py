"""Runs a converted notebook inside its MLflow run. Copied verbatim into every project.

Standalone on purpose (standard library + papermill, nbconvert, mlflow): it must work in any
environment MLflow builds for the project, on this host or a VM, without this package.

    python _infinstor_runner.py [-p NAME VALUE]...

`mlflow run` sets MLFLOW_RUN_ID and MLFLOW_TRACKING_URI; the kernel papermill starts inherits
them, so the notebook's own `mlflow.log_*` calls land in the project's run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path

SPEC_FILE = "infinstor_project.json"


def coerce(name: str, kind: str, default, raw):
    """`raw` (a string from the command line, or a JSON value) as the notebook literal's type."""
    problem = ValueError(f"parameter {name!r} must be a {kind} like its default {default!r}; got {raw!r}")
    if kind == "str":
        return str(raw)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise problem
    if isinstance(raw, bool):
        raise problem
    try:
        if kind == "int":
            number = float(raw)
            if not number.is_integer():
                raise problem
            return int(number)
        if kind == "float":
            return float(raw)
        value = ast.literal_eval(raw) if isinstance(raw, str) else raw
    except (ValueError, SyntaxError, TypeError):
        raise problem from None
    if kind != "none" and type(value).__name__ != kind:
        raise problem
    return value


def _log_outputs(run_id: str, executed: Path) -> None:
    import nbformat
    from mlflow.tracking import MlflowClient
    from nbconvert import HTMLExporter

    client = MlflowClient()
    client.log_artifact(run_id, str(executed), "notebook")
    try:
        html, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    except Exception as exc:  # a rendering problem must not hide the run's own outcome
        print(f"[infinstor] could not render the executed notebook as HTML: {exc}", file=sys.stderr)
        return
    html_path = executed.with_suffix(".html")
    with open(os.open(html_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(html)
    client.log_artifact(run_id, str(html_path), "notebook")


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    spec = json.loads((here / SPEC_FILE).read_text(encoding="utf-8"))
    parser = argparse.ArgumentParser(description=f"Run {spec['notebook']} as an MLflow project")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--output-dir", default=os.environ.get("INFINSTOR_OUTPUT_DIR", str(here / "outputs")))
    args = parser.parse_args(argv)

    known = {p["name"]: p for p in spec["parameters"]}
    parameters = {}
    for name, raw in args.param:
        if name not in known:
            parser.error(f"unknown parameter {name!r}; the notebook defines: {', '.join(known) or 'none'}")
        try:
            parameters[name] = coerce(name, known[name]["type"], known[name]["default"], raw)
        except ValueError as exc:
            parser.error(str(exc))

    import papermill

    notebook = here / spec["notebook"]
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    executed = output_dir / notebook.name
    run_id = os.environ.get("MLFLOW_RUN_ID")
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=spec.get("kernel", "python3"),
            cwd=str(here),
            log_output=True,
            progress_bar=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
        )
    finally:
        if executed.exists():
            os.chmod(executed, 0o600)  # it holds the notebook's outputs: as private as its job
        if run_id and executed.exists():
            _log_outputs(run_id, executed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
