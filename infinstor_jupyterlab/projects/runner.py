"""Runs a converted notebook inside its MLflow run. Copied verbatim into every project.

Standalone on purpose (standard library + papermill, nbconvert, mlflow, ipykernel): it must work in
any environment MLflow builds for the project, on this host or a VM, without this package.

    python _infinstor_runner.py [--param=NAME=VALUE]...

Each parameter is one `--param=NAME=VALUE` word, so no value (`--output-dir=/x`, `-p`) is ever read
as an option. `mlflow run` sets MLFLOW_RUN_ID and MLFLOW_TRACKING_URI; the kernel papermill starts
inherits them, so the notebook's own `mlflow.log_*` calls land in the project's run. The kernel is
always this interpreter's own ipykernel: the job runs in the environment that runs this file.

When the run fails, the last line on stderr is `[infinstor] error: <why>` (the notebook's
exception, the missing kernel or package): the lab shows it as the job's failure reason.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import signal
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
ERROR_PREFIX = "[infinstor] error: "
# Environment for the notebook's kernel: runs it starts are tagged with the notebook as their source.
SOURCE_ENV = "INFINSTOR_SOURCE_NOTEBOOK"
# MLflow refuses parameter values longer than this; every parameter is logged, so none may be.
MAX_VALUE_CHARS = 6000

_KIND_PHRASES = {
    "int": "an int",
    "float": "a float",
    "bool": "a bool (true or false)",
    "str": "a string",
    "list": "a list",
    "dict": "a dict",
    "tuple": "a tuple",
    "none": "any literal",
}


def _short(value, limit: int = 80) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than repr allows
        return f"<a number of about {int(math.log10(abs(value))) + 1} digits>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _literal(text: str):
    """`text` as a Python literal; ValueError when it is not one."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(text) from None


def coerce(name: str, kind: str, default, raw):
    """`raw` (text from the command line, or a JSON value: None for null) as the literal's type.

    A parameter whose default is None takes any literal; text that is not a literal is the string
    itself. Other parameters take values of their default's type.
    """

    def problem(extra: str = ""):
        return ValueError(
            f"parameter {name!r} must be {_KIND_PHRASES.get(kind, 'a ' + kind)} like its default "
            f"{_short(default)}; got {_short(raw)}{extra}"
        )

    if isinstance(raw, str) and len(raw) > MAX_VALUE_CHARS:
        raise ValueError(
            f"parameter {name!r} is {len(raw):,} characters long; values may be at most "
            f"{MAX_VALUE_CHARS:,} characters (MLflow's limit for a parameter)"
        )
    if kind == "none":
        if isinstance(raw, str):
            try:
                return _literal(raw)
            except ValueError:
                return raw
        return raw
    if raw is None:
        raise problem()
    if kind == "str":
        if isinstance(raw, (dict, list, tuple)):
            raise problem()
        return raw if isinstance(raw, str) else str(raw)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise problem()
    if isinstance(raw, bool):
        raise problem()
    if kind in ("int", "float"):
        return _number(kind, raw, problem)
    if isinstance(raw, str):
        try:
            value = _literal(raw)
        except ValueError:
            raise problem() from None
    else:
        value = raw
    if kind == "tuple" and isinstance(value, list):
        value = tuple(value)
    if type(value).__name__ != kind:
        raise problem()
    return value


def _number(kind: str, raw, problem):
    too_large = " (too large for a number MLflow can hold)"
    if isinstance(raw, (dict, list, tuple)):
        raise problem()
    if isinstance(raw, str):
        text = raw.strip().replace("_", "")
        try:
            number = int(text)  # exact for long integers
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise problem() from None
            if math.isinf(number) and "inf" not in text.lower():
                raise problem(too_large) from None
    else:
        number = raw
    if isinstance(number, int):
        try:
            float(number)
        except OverflowError:
            raise problem(too_large) from None
        return number if kind == "int" else float(number)
    if kind == "float":
        return float(number)
    if not math.isfinite(number) or not float(number).is_integer():
        raise problem()
    return int(number)


def encode(kind: str, value) -> str:
    """The command-line text for `value` (already coerced) that `coerce` reads back as `value`."""
    if kind in ("str", "int", "float", "bool"):
        return str(value)
    if kind == "none" and isinstance(value, str):
        try:
            if _literal(value) is not value:
                return repr(value)  # text that reads as another literal: quote it
        except ValueError:
            return value  # not a literal: it is read back as this very string
    return repr(value)


class Arguments(argparse.Namespace):
    parameters: dict
    output_dir: str


def parse_arguments(argv: list[str] | None = None, spec: dict | None = None) -> Arguments:
    here = Path(__file__).resolve().parent
    spec = spec or _spec(here)
    parser = argparse.ArgumentParser(description=f"Run {spec['notebook']} as an MLflow project")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a parameter (one word)")
    parser.add_argument("--output-dir", default=os.environ.get("INFINSTOR_OUTPUT_DIR", str(here / "outputs")))
    args = parser.parse_args(argv, namespace=Arguments())
    known = {p["name"]: p for p in spec["parameters"]}
    args.parameters = {}
    for item in args.param:
        name, sep, raw = item.partition("=")
        if not sep:
            _fail(parser, f"--param takes NAME=VALUE; got {_short(item)}")
        if name not in known:
            _fail(parser, f"unknown parameter {name!r}; the notebook defines: {', '.join(known) or 'none'}")
        try:
            args.parameters[name] = coerce(name, known[name]["type"], known[name]["default"], raw)
        except ValueError as exc:
            _fail(parser, str(exc))
    return args


def _fail(parser: argparse.ArgumentParser, message: str):
    print(ERROR_PREFIX + message, file=sys.stderr, flush=True)
    parser.error(message)


def _spec(here: Path) -> dict:
    return json.loads((here / SPEC_FILE).read_text(encoding="utf-8"))


class Cancelled(BaseException):
    """SIGTERM (the job was cancelled): stop, but record how far the notebook got."""


class NoKernel(RuntimeError):
    pass


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the rest of the run records what happened
    raise Cancelled()


def _own_kernel_manager():
    """A kernel manager whose "python3" is this interpreter's ipykernel, whatever kernelspecs
    the machine has installed (the job runs in the environment that runs this file)."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    try:
        from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    except ImportError:
        raise NoKernel(
            f"No Python kernel: ipykernel is not installed for {sys.executable} "
            "(install it there: pip install ipykernel)"
        ) from None

    class OwnKernelSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

    class OwnKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _own_specs(self):
            return OwnKernelSpecs(parent=self)

    return OwnKernelManager


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


def _run_name(run_id: str | None) -> str | None:
    if not run_id:
        return None
    from mlflow.tracking import MlflowClient

    return MlflowClient().get_run(run_id).info.run_name


def _keep_run_name(run_id: str | None, name: str | None) -> None:
    """The notebook's `mlflow.start_run(run_name=...)` resumes the job's run and renames it: the
    job's name stays (the lab's Jobs view and the runs table must agree)."""
    if not run_id or not name:
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if client.get_run(run_id).info.run_name != name:
        client.update_run(run_id, name=name)


def _stopped_with_success(exc) -> bool:
    """`sys.exit(0)`, `sys.exit()` or a bare `raise SystemExit`: the notebook ended early, on purpose."""
    return getattr(exc, "ename", None) == "SystemExit" and str(getattr(exc, "evalue", "")).strip() in ("", "0", "None")


def _printed_error(executed: Path, cell_index: int) -> str | None:
    """The error a failed cell printed itself (IPython prints a UsageError, such as an unknown
    magic, on stderr instead of raising it): its last `SomethingError: ...` line."""
    import nbformat

    try:
        cells = nbformat.read(executed, as_version=4).cells
    except Exception:
        return None
    # papermill inserts banner cells above the failed one: find it by its mark.
    failed = [c for c in cells if c.get("metadata", {}).get("papermill", {}).get("exception")]
    cell = failed[-1] if failed else (cells[cell_index] if 0 <= cell_index < len(cells) else {})
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    lines = [line.strip() for line in text.splitlines() if re.match(r"^\s*[A-Za-z_][\w.]*(Error|Exception): ", line)]
    return lines[-1] if lines else None


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    spec = _spec(here)
    args = parse_arguments(argv, spec)
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError as exc:
        print(f"{ERROR_PREFIX}{sys.executable} cannot run notebooks: {exc} (install papermill there)", file=sys.stderr)
        return 1
    notebook = here / spec["notebook"]
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    executed = output_dir / notebook.name
    run_id = os.environ.get("MLFLOW_RUN_ID")
    # Runs the notebook starts name it as their source (the lab's run context provider reads the
    # first, MLflow's own Jupyter context the second).
    os.environ.setdefault(SOURCE_ENV, spec.get("source") or spec["notebook"])
    os.environ.setdefault("IPYNB_FILE", os.environ[SOURCE_ENV])
    run_name = None
    if run_id:
        try:
            run_name = _run_name(run_id)
        except Exception as exc:
            print(f"[infinstor] could not read the run: {exc}", file=sys.stderr)
    error, code = None, 1
    signal.signal(signal.SIGTERM, _on_sigterm)
    progress = None
    if os.environ.get(PROGRESS_ENV):
        try:
            progress = Progress(os.environ[PROGRESS_ENV])
        except OSError as exc:  # the run goes on without its progress record
            print(f"[infinstor] no cell progress record: {exc}", file=sys.stderr)
    streams = {"stdout_file": sys.stdout, "stderr_file": sys.stderr}
    if progress is not None:
        streams = {"stdout_file": _Tee(sys.stdout, "stdout", progress), "stderr_file": _Tee(sys.stderr, "stderr", progress)}
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=args.parameters,
            kernel_name="python3",
            kernel_manager_class=_own_kernel_manager(),
            cwd=str(here),
            log_output=False,  # outputs go to stdout/stderr below; logging them as well doubled stderr
            progress_bar=False,
            **streams,
            **(progress.hooks() if progress is not None else {}),
        )
        code = 0
    except PapermillExecutionError as exc:
        if _stopped_with_success(exc):
            print(f"[infinstor] the notebook ended early ({exc.ename} in cell {exc.exec_count}); the run finished", flush=True)
            code = 0
        else:
            print(_ANSI.sub("", str(exc)), file=sys.stderr, flush=True)  # the notebook's traceback
            if exc.ename == "CellExecutionError" and not exc.evalue:
                error = _printed_error(executed, exc.cell_index) or "The notebook failed in cell %s" % exc.exec_count
            else:
                error = f"{exc.ename}: {exc.evalue}" if exc.evalue else exc.ename
    except Cancelled:
        code = 128 + signal.SIGTERM
        print("\n[infinstor] cancelled: logging the notebook as far as it ran", file=sys.stderr, flush=True)
    except NoKernel as exc:
        error = str(exc)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # record what happened, then end
        if executed.exists():
            os.chmod(executed, 0o600)  # it holds the notebook's outputs: as private as its job
        if progress is not None:
            progress.done("finished" if code == 0 else "failed", None if code == 0 else (error or "cancelled"))
        if run_id and executed.exists():
            try:
                _log_outputs(run_id, executed)
            except Exception as exc:
                print(f"[infinstor] could not log the executed notebook: {exc}", file=sys.stderr)
        try:
            _keep_run_name(run_id, run_name)
        except Exception as exc:
            print(f"[infinstor] could not keep the run's name: {exc}", file=sys.stderr)
    if error:
        print(ERROR_PREFIX + (error.strip().splitlines() or [""])[0][:1000], file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Cancelled:  # SIGTERM before or after the notebook ran
        sys.exit(128 + signal.SIGTERM)
