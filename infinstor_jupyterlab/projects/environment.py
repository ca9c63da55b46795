"""The notebook's Python environment: its interpreter version and the distributions it uses.

Modules come from the notebook's import statements and `%pip install` lines; they are mapped to
installed distributions (and pinned to their versions) in the *kernel's* Python, which need not
be the one running Jupyter.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys

from .errors import ProjectError

# What the runner itself needs in the project's environment.
RUNTIME_DISTRIBUTIONS = ("mlflow", "papermill", "ipykernel", "nbconvert")

_MAGIC_OR_SHELL = re.compile(r"^\s*(%|!)")
_PIP_INSTALL = re.compile(r"^\s*(?:%pip|!pip3?|!python3?\s+-m\s+pip|%conda|!conda)\s+install\s+(.*)$")


def _code_without_magics(source: str) -> str:
    return "\n".join("" if _MAGIC_OR_SHELL.match(line) else line for line in source.splitlines())


def imported_modules(nb) -> set[str]:
    modules: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_code_without_magics(cell.source))
        except SyntaxError:
            continue  # a cell that does not parse cannot have imported anything either
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def pip_installed(nb) -> list[str]:
    """Requirement names from `%pip install ...` lines (flags and options dropped)."""
    names: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            match = _PIP_INSTALL.match(line)
            if not match:
                continue
            try:
                words = shlex.split(match.group(1), comments=True)
            except ValueError:
                words = match.group(1).split()
            skip_next = False
            for word in words:
                if skip_next:
                    skip_next = False
                    continue
                if word in ("-r", "-c", "-e", "-i", "--index-url", "--extra-index-url", "-f", "--find-links"):
                    skip_next = True
                    continue
                if word.startswith("-") or "/" in word or word.startswith("$") or word.startswith("{"):
                    continue
                names.append(re.split(r"[<>=!~\[;@ ]", word, maxsplit=1)[0])
    return names


# Runs in the kernel's interpreter (possibly another virtualenv): maps modules and distribution
# names to installed distributions and versions. Reads JSON on stdin, writes JSON on stdout.
_RESOLVER = r"""
import json, sys
from importlib import metadata
request = json.load(sys.stdin)
mapping = metadata.packages_distributions()
stdlib = set(getattr(sys, "stdlib_module_names", ()))
found = {}
for module in request["modules"]:
    if module in stdlib or module in sys.builtin_module_names:
        continue
    for dist in mapping.get(module, []):
        try:
            found[metadata.distribution(dist).metadata["Name"]] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
for name in request["distributions"]:
    try:
        dist = metadata.distribution(name)
        found[dist.metadata["Name"]] = dist.version
    except metadata.PackageNotFoundError:
        pass
json.dump({"python": "%d.%d.%d" % sys.version_info[:3], "distributions": found}, sys.stdout)
"""


@functools.lru_cache(maxsize=1)
def _packages_distributions():
    """Module -> distributions for this interpreter.

    Scanning every installed distribution takes a few hundred ms, so the result is kept on disk,
    keyed by the modification times of the import path (installing anything changes them).
    """
    from importlib import metadata

    key = [[entry, os.stat(entry).st_mtime] for entry in sys.path if entry and os.path.isdir(entry)]
    cache = None
    try:
        from ..paths import infinstor_data_dir, write_private_file

        digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:16]
        cache = infinstor_data_dir() / "cache" / f"packages-{digest}.json"
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["mapping"]
    except (OSError, ValueError, KeyError):
        pass
    mapping = metadata.packages_distributions()
    if cache is not None:
        try:
            write_private_file(cache, json.dumps({"key": key, "mapping": mapping}))
        except OSError:
            pass
    return mapping


def _resolve_here(modules: list[str], distributions: list[str]) -> dict:
    from importlib import metadata

    mapping = _packages_distributions()
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    found: dict[str, str] = {}
    for module in modules:
        if module in stdlib or module in sys.builtin_module_names:
            continue
        for dist in mapping.get(module, []):
            try:
                found[metadata.distribution(dist).metadata["Name"]] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
    for name in distributions:
        try:
            dist = metadata.distribution(name)
            found[dist.metadata["Name"]] = dist.version
        except metadata.PackageNotFoundError:
            pass
    return {"python": "%d.%d.%d" % sys.version_info[:3], "distributions": found}


def resolve(modules, distributions, python_executable: str | None = None) -> dict:
    modules, distributions = sorted(modules), sorted(distributions)
    if not python_executable or python_executable == sys.executable:
        return _resolve_here(modules, distributions)
    try:
        result = subprocess.run(
            [python_executable, "-c", _RESOLVER],
            input=json.dumps({"modules": modules, "distributions": distributions}),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(result.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise ProjectError(f"Could not read the kernel's Python environment ({python_executable}): {exc}") from None


# jupyter_client's rule for kernel names (jupyter_client.kernelspec._kernel_name_pat).
_KERNEL_NAME = re.compile(r"^[a-z0-9._\-]+$", re.IGNORECASE)
_PYTHON_NAMES = {"python", "python%d" % sys.version_info[0], "python%d.%d" % sys.version_info[:2]}


def kernel_python(nb) -> str:
    """The interpreter of the notebook's kernel, or this one when it cannot be told.

    The kernelspec's name is checked as jupyter_client checks names and looked up only through
    its KernelSpecManager (never joined into a path). The kernel's interpreter is its argv[0]
    when that is an absolute path to an executable named python*; "python" alone means this
    interpreter (jupyter_client starts such kernels with sys.executable); anything else (a
    wrapper script, `conda run`, a missing kernel) falls back to this interpreter.
    """
    name = (nb.metadata.get("kernelspec") or {}).get("name")
    if not name:
        return sys.executable
    if not isinstance(name, str) or not _KERNEL_NAME.match(name):
        raise ProjectError(
            f"the notebook's kernelspec name {str(name)[:80]!r} is not a valid kernel name (ASCII letters, "
            "digits, '-', '.' and '_' only); choose the notebook's kernel again in JupyterLab and save it"
        )
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name.lower())
    except NoSuchKernel:
        return sys.executable
    except Exception:  # an unreadable kernel.json: the lab's own interpreter
        return sys.executable
    executable = spec.argv[0] if spec.argv else ""
    if executable in _PYTHON_NAMES:
        return sys.executable
    if (
        os.path.isabs(executable)
        and os.path.basename(executable).startswith("python")
        and os.path.isfile(executable)
        and os.access(executable, os.X_OK)
    ):
        return executable
    return sys.executable


def python_env(nb, python_executable: str | None = None) -> dict:
    """The python_env.yaml content: interpreter version and pinned distributions."""
    resolved = resolve(imported_modules(nb), [*pip_installed(nb), *RUNTIME_DISTRIBUTIONS], python_executable)
    if "mlflow" not in {name.lower() for name in resolved["distributions"]}:
        import mlflow  # the kernel lacks mlflow: pin the version this service is tested with

        resolved["distributions"]["mlflow"] = mlflow.__version__
    pins = sorted(f"{name}=={version}" for name, version in resolved["distributions"].items())
    return {"python": resolved["python"], "build_dependencies": ["pip"], "dependencies": pins}
