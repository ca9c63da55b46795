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
import re
import sys
import time
from pathlib import Path

SPEC_FILE = "infinstor_project.json"
PROGRESS_ENV = "INFINSTOR_PROGRESS_FILE"
MAX_CELL_OUTPUT = 64 * 1024  # characters of one cell's output kept in the progress record
MAX_PROGRESS = 4 * 1024 * 1024  # characters of output in the whole record
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONNECTION_KEY = re.compile(r"""(['"]key['"]\s*:\s*b?['"])[^'"]*""")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD", re.I)


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


class Progress:
    """The live progress record: one JSON object a line, appended as the notebook runs.

    Events: `notebook` (how many code cells will run), `start` (a cell's number, notebook index
    and first line), `output` (streamed text as it arrives), `end` (status, rich outputs as text,
    the error with its traceback), `done` (the notebook's outcome). The lab reads it live (inline)
    or from S3 (the EC2 agent ships it). Output is bounded per cell and in all, with the number
    of characters left out; secrets the job holds and a kernel's connection key never go in.
    A record that cannot be written is given up, never the notebook's run.
    """

    def __init__(self, path: str):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self._numbers: dict[int, int] = {}  # notebook index -> code cell number
        self._current: int | None = None
        self._kept = 0
        self._cell_kept = 0
        self._cell_dropped = 0
        self._broken = False
        self._secrets, self._secrets_at = self._find_secrets(), time.monotonic()

    @staticmethod
    def _find_secrets() -> list[str]:
        found = [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and not k.endswith("_FILE") and len(v) >= 8]
        for name in ("INFINSTOR_SECRET_FILE", "INFINSTOR_JOB_TOKEN_FILE"):
            try:
                value = Path(os.environ[name]).read_text().strip()
            except (KeyError, OSError):
                continue
            if len(value) >= 8:
                found.append(value)
        try:  # the signed-in user's tokens, when they are kept in a file
            found += _token_values(json.loads(Path(os.environ["INFINSTOR_TOKEN_STORE"]).read_text()))
        except (KeyError, OSError, ValueError):
            pass
        return found

    def _clean(self, text: str) -> str:
        if time.monotonic() - self._secrets_at > 30:  # a long job's token is renewed meanwhile
            self._secrets, self._secrets_at = self._find_secrets(), time.monotonic()
        text = _ANSI.sub("", text)
        if "signature_scheme" in text:  # a kernel's connection info: never its HMAC key
            text = _CONNECTION_KEY.sub(r"\1[redacted]", text)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _write(self, event: dict) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()

    def _safe(self, hook):
        """`hook`, except that a failure of the record stops the record, not the notebook."""

        def run(*args, **kwargs):
            if self._broken:
                return
            try:
                hook(*args, **kwargs)
            except Exception as exc:
                self._broken = True
                print(f"[infinstor] the cell progress record stopped: {type(exc).__name__}: {exc}", file=sys.stderr)

        return run

    def _budget(self, text: str) -> str:
        room = max(0, min(MAX_CELL_OUTPUT - self._cell_kept, MAX_PROGRESS - self._kept))
        kept = text[:room]
        self._cell_kept += len(kept)
        self._kept += len(kept)
        self._cell_dropped += len(text) - len(kept)
        return kept

    # nbclient's hooks (papermill passes them on to its notebook client)
    def on_notebook_start(self, notebook, **_) -> None:
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code" and cell.source.strip():
                self._numbers[index] = len(self._numbers) + 1
        self._write({"event": "notebook", "cells": len(self._numbers), "time": time.time()})

    def on_cell_start(self, cell, cell_index, **_) -> None:
        number = self._numbers.get(cell_index)
        if number is None:
            return
        self._current, self._cell_kept, self._cell_dropped = number, 0, 0
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        event = {"event": "start", "cell": number, "index": cell_index, "source": self._clean(first)[:200], "time": time.time()}
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            event["injected"] = True
        self._write(event)

    def on_cell_executed(self, cell, cell_index, execute_reply, **_) -> None:
        number = self._numbers.get(cell_index)
        if number is None:
            return
        content = (execute_reply or {}).get("content", {})
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") in ("execute_result", "display_data"):
                data = output.get("data", {})
                text = data.get("text/plain") or "[" + ", ".join(sorted(data)) + "]"
                outputs.append({"type": output["output_type"], "text": self._budget(self._clean("".join(text)))})
        event = {"event": "end", "cell": number, "time": time.time(), "status": content.get("status", "ok"), "outputs": outputs}
        if content.get("status") == "error":
            lines = [self._clean(line) for line in content.get("traceback", [])][-200:]
            event["error"] = {
                "ename": content.get("ename", ""),
                "evalue": self._clean(str(content.get("evalue", "")))[:2000],
                "traceback": [line[:4000] for line in lines],
            }
        if self._cell_dropped:
            event["truncated"] = self._cell_dropped
        self._current = None
        self._write(event)

    def stream(self, name: str, text: str) -> None:
        if self._current is None or not text:
            return
        dropped = self._cell_dropped
        kept = self._budget(self._clean(text))
        if kept:
            self._write({"event": "output", "cell": self._current, "name": name, "text": kept})
        if self._cell_dropped and not dropped:  # the marker, once, where the cell's output stops
            self._write({"event": "output", "cell": self._current, "name": name, "text": "", "truncated": True})

    def hooks(self) -> dict:
        return {
            "on_notebook_start": self._safe(self.on_notebook_start),
            "on_cell_start": self._safe(self.on_cell_start),
            "on_cell_executed": self._safe(self.on_cell_executed),
        }

    def done(self, status: str, message: str | None = None) -> None:
        event = {"event": "done", "status": status, "time": time.time()}
        if message:
            event["message"] = self._clean(message)[:2000]
        self._safe(self._write)(event)
        try:
            self._file.close()
        except OSError:
            pass


def _token_values(data, key: str = "") -> list[str]:
    """The string values stored under a key naming a token, at any depth."""
    if isinstance(data, dict):
        return [v for k, item in data.items() for v in _token_values(item, str(k))]
    if isinstance(data, list):
        return [v for item in data for v in _token_values(item, key)]
    return [data] if isinstance(data, str) and len(data) >= 8 and "token" in key.lower() else []


class _Tee:
    """papermill writes a cell's stream output here as it arrives: on to the log and the record."""

    def __init__(self, stream, name: str, progress: Progress):
        self._stream, self._name = stream, name
        self._stream_to_record = progress._safe(progress.stream)

    def write(self, text: str) -> None:
        self._stream.write(text)
        self._stream_to_record(self._name, text)

    def flush(self) -> None:
        self._stream.flush()


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
    progress = None
    if os.environ.get(PROGRESS_ENV):
        try:
            progress = Progress(os.environ[PROGRESS_ENV])
        except OSError as exc:  # the run goes on without its progress record
            print(f"[infinstor] no cell progress record: {exc}", file=sys.stderr)
    streams = {"stdout_file": sys.stdout, "stderr_file": sys.stderr}
    if progress is not None:
        streams = {"stdout_file": _Tee(sys.stdout, "stdout", progress), "stderr_file": _Tee(sys.stderr, "stderr", progress)}
    outcome, message = "failed", None
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=spec.get("kernel", "python3"),
            cwd=str(here),
            log_output=True,
            progress_bar=False,
            **streams,
            **(progress.hooks() if progress is not None else {}),
        )
        outcome = "finished"
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if executed.exists():
            os.chmod(executed, 0o600)  # it holds the notebook's outputs: as private as its job
        if progress is not None:
            progress.done(outcome, message if outcome != "finished" else None)
        if run_id and executed.exists():
            _log_outputs(run_id, executed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
