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


def kernel_python(nb) -> str:
    """The interpreter of the notebook's kernel, or this one when it cannot be told.

    Reads the kernelspec's kernel.json from Jupyter's kernel paths directly: starting
    jupyter_client's KernelSpecManager costs ~0.3 s, more than the rest of a conversion.
    """
    name = nb.metadata.get("kernelspec", {}).get("name")
    if not name:
        return sys.executable
    from jupyter_core.paths import jupyter_path

    for directory in jupyter_path("kernels"):
        spec_file = os.path.join(directory, name, "kernel.json")
        if not os.path.isfile(spec_file):
            continue
        try:
            with open(spec_file, encoding="utf-8") as handle:
                argv = json.load(handle).get("argv") or []
        except (OSError, ValueError):
            return sys.executable
        executable = argv[0] if argv else ""
        if os.path.isabs(executable) and "python" in os.path.basename(executable) and os.access(executable, os.X_OK):
            return executable
        return sys.executable
    # No kernelspec on disk: the native kernel (ipykernel in this interpreter) serves "python3".
    return sys.executable


def python_env(nb, python_executable: str | None = None) -> dict:
    """The python_env.yaml content: interpreter version and pinned distributions."""
    resolved = resolve(imported_modules(nb), [*pip_installed(nb), *RUNTIME_DISTRIBUTIONS], python_executable)
    if "mlflow" not in {name.lower() for name in resolved["distributions"]}:
        import mlflow  # the kernel lacks mlflow: pin the version this service is tested with

        resolved["distributions"]["mlflow"] = mlflow.__version__
    pins = sorted(f"{name}=={version}" for name, version in resolved["distributions"].items())
    return {"python": resolved["python"], "build_dependencies": ["pip"], "dependencies": pins}
