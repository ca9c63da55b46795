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
from pathlib import Path

SPEC_FILE = "infinstor_project.json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
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
    html_path.write_text(html, encoding="utf-8")
    client.log_artifact(run_id, str(html_path), "notebook")


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
    output_dir.mkdir(parents=True, exist_ok=True)
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
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
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
