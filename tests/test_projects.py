"""Notebook -> MLflow project conversion."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell

from notebooks import failing_notebook, notebook, sklearn_training_notebook, write

from infinstor_jupyterlab.projects import ProjectError, build_project
from infinstor_jupyterlab.projects.environment import imported_modules, pip_installed
from infinstor_jupyterlab.projects.parameters import coerce_value, parse_parameters_source


def test_parameters_become_typed_entry_point_parameters(tmp_path):
    nb_path = write(sklearn_training_notebook(), tmp_path / "work" / "Train Iris.ipynb")
    info = build_project(nb_path, tmp_path / "proj")
    mlproject = yaml.safe_load((tmp_path / "proj" / "MLproject").read_text())
    assert mlproject["name"] == "Train-Iris"
    assert mlproject["python_env"] == "python_env.yaml"
    main = mlproject["entry_points"]["main"]
    assert main["parameters"] == {
        "C": {"type": "float", "default": 1.0},
        "max_iter": {"type": "float", "default": 200},
        "seed": {"type": "float", "default": 7},
        "label": {"type": "string", "default": "baseline"},
        "verbose": {"type": "string", "default": "False"},
    }
    assert main["command"].startswith("python _infinstor_runner.py --param=C={C} --param=max_iter={max_iter}")
    assert [p.name for p in info.parameters] == ["C", "max_iter", "seed", "label", "verbose"]
    assert (tmp_path / "proj" / "Train Iris.ipynb").exists()


def test_python_env_pins_what_the_notebook_imports(tmp_path):
    import mlflow
    import numpy
    import sklearn

    nb = sklearn_training_notebook()
    nb.cells.append(new_code_cell("%pip install -q pyyaml\nimport os, json"))
    info = build_project(write(nb, tmp_path / "nb.ipynb"), tmp_path / "proj")
    env = yaml.safe_load((tmp_path / "proj" / "python_env.yaml").read_text())
    assert env["python"] == "%d.%d.%d" % sys.version_info[:3]
    deps = set(env["dependencies"])
    assert f"mlflow=={mlflow.__version__}" in deps
    assert f"numpy=={numpy.__version__}" in deps
    assert f"scikit-learn=={sklearn.__version__}" in deps
    assert any(d.lower().startswith("pyyaml==") for d in deps)
    assert any(d.startswith("papermill==") for d in deps)
    assert not any(d.startswith(("os==", "json==")) for d in deps)
    assert info.python_env == env


def test_module_and_pip_detection():
    nb = notebook(
        "import numpy as np, os.path\nfrom sklearn import svm\nfrom . import local\n%matplotlib inline",
        "!pip install -U 'requests>=2' -r reqs.txt tqdm[notebook]\n%pip install --quiet rich==13.0",
        "def f(:\n    pass",  # does not parse: ignored
    )
    assert imported_modules(nb) == {"numpy", "os", "sklearn"}
    assert pip_installed(nb) == ["requests", "tqdm", "rich"]


def test_include_folder_copies_neighbours_with_excludes_and_a_cap(tmp_path):
    work = tmp_path / "work"
    nb_path = write(sklearn_training_notebook(), work / "train.ipynb")
    (work / "data").mkdir()
    (work / "data" / "train.csv").write_text("a,b\n1,2\n")
    (work / "helpers.py").write_text("X = 1\n")
    for junk in (".git", ".ipynb_checkpoints", "__pycache__", "myenv"):
        (work / junk).mkdir()
        (work / junk / "file").write_text("junk")
    (work / "myenv" / "pyvenv.cfg").write_text("home = /usr")
    info = build_project(nb_path, work / "out", include_folder=True)
    assert {"data/train.csv", "helpers.py"} <= set(info.files)
    assert not any(f.startswith((".git", ".ipynb_checkpoints", "__pycache__", "myenv", "out")) for f in info.files)

    (work / "big.bin").write_bytes(b"0" * 2_000_000)
    with pytest.raises(ProjectError, match="more than 1 MB"):
        build_project(nb_path, tmp_path / "out2", include_folder=True, max_folder_bytes=1024 * 1024)
    assert not (tmp_path / "out2").exists()
    assert not (tmp_path / ".out2.partial").exists()


@pytest.mark.parametrize(
    "source,line,words",
    [
        ("a = 1\nlr = get_lr()\n", 2, "expression"),
        ("a = 1\n\nb, c = 1, 2\n", 3, "exactly one name"),
        ("x = 1\nprint(x)\n", 2, "not a plain assignment"),
        ("x = 1\n%time y = 2\n", 2, "magic"),
        ("x = [1, 2\n", 1, "syntax error"),
        ("a = b = 1\n", 1, "exactly one name"),
        ("import os\n", 1, "not a plain assignment"),
    ],
)
def test_parameters_cell_errors_name_the_line(source, line, words):
    with pytest.raises(ProjectError) as excinfo:
        parse_parameters_source(source)
    assert f"line {line}" in excinfo.value.message
    assert words in excinfo.value.message


def test_parameters_cell_accepts_literals_comments_and_annotations():
    params = parse_parameters_source('"""doc"""\n# c\na = -1\nb: float = 2.5\nc = [1, "x"]\nd = None\ne = {"k": (1, 2)}\n')
    assert {p.name: p.kind for p in params} == {"a": "int", "b": "float", "c": "list", "d": "none", "e": "dict"}


def test_values_are_coerced_to_the_literal_type():
    params = {p.name: p for p in parse_parameters_source("i = 1\nf = 0.5\nb = True\ns = 'x'\nl = [1]\n")}
    assert coerce_value(params["i"], "3") == 3
    assert coerce_value(params["i"], 4.0) == 4
    assert coerce_value(params["f"], "1e-3") == 0.001
    assert coerce_value(params["b"], "false") is False
    assert coerce_value(params["s"], 5) == "5"
    assert coerce_value(params["l"], "[1, 2]") == [1, 2]
    for name, bad in (("i", "3.5"), ("i", "x"), ("f", "abc"), ("b", "maybe"), ("l", "{1: 2}"), ("i", True)):
        with pytest.raises(ProjectError, match=f"parameter '{name}' must be"):
            coerce_value(params[name], bad)


def test_bad_inputs_get_clear_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ProjectError, match="not a notebook"):
        build_project(tmp_path / "notes.txt")
    (tmp_path / "broken.ipynb").write_text("{not json")
    with pytest.raises(ProjectError, match="not a valid notebook|cannot be read"):
        build_project(tmp_path / "broken.ipynb")
    (tmp_path / "bad.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "nonsense"}]}))
    with pytest.raises(ProjectError, match="not valid nbformat"):
        build_project(tmp_path / "bad.ipynb")
    r_nb = notebook("x <- 1")
    r_nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    write(r_nb, tmp_path / "r.ipynb")
    with pytest.raises(ProjectError, match="uses a R kernel"):
        build_project(tmp_path / "r.ipynb")
    with pytest.raises(ProjectError, match="does not exist"):
        build_project(tmp_path / "missing.ipynb")
    write(notebook("x = 1", parameters="lr = compute()"), tmp_path / "p.ipynb")
    with pytest.raises(ProjectError, match="parameters cell, line 1"):
        build_project(tmp_path / "p.ipynb", tmp_path / "p-out")
    assert not (tmp_path / "p-out").exists()


def _mlflow_run(project, tracking_uri, *params, cwd):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    for name in ("INFINSTOR_EMBEDDED_URI", "INFINSTOR_SECRET_FILE", "JPY_SESSION_NAME"):
        env.pop(name, None)
    args = [sys.executable, "-m", "mlflow", "run", str(project), "--env-manager", "local"]
    for p in params:
        args += ["-P", p]
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_converted_project_runs_with_mlflow_run(tmp_path):
    """`mlflow run` on the converted project executes the notebook inside the project's run."""
    from mlflow.tracking import MlflowClient

    project = build_project(write(sklearn_training_notebook(), tmp_path / "train.ipynb"), tmp_path / "proj").path
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = _mlflow_run(project, tracking_uri, "C=0.5", "max_iter=150", "label=tuned run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    client = MlflowClient(tracking_uri)
    [run] = client.search_runs(["0"])
    assert run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.5"
    # `mlflow run` itself logs string parameters shell-quoted; the notebook gets the plain value.
    assert run.data.params["label"] in ("tuned run", "'tuned run'")
    assert 0.5 < run.data.metrics["accuracy"] <= 1.0
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [1.0, 0.5, 0.25]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "notebook")}
    assert artifacts == {"notebook/train.ipynb", "notebook/train.html"}
    executed = nbformat.reads(
        open(client.download_artifacts(run.info.run_id, "notebook/train.ipynb", str(tmp_path / "dl"))).read(),
        as_version=4,
    )
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "C = 0.5" in injected[0].source and "max_iter = 150" in injected[0].source
    assert 'label = "tuned run"' in injected[0].source
    assert "accuracy" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    logged = client.search_logged_models(experiment_ids=["0"])
    assert [m.source_run_id for m in logged] == [run.info.run_id]


@pytest.mark.slow
def test_failing_notebook_fails_the_run_and_keeps_the_executed_notebook(tmp_path):
    from mlflow.tracking import MlflowClient

    project = build_project(write(failing_notebook(), tmp_path / "fail.ipynb"), tmp_path / "proj").path
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = _mlflow_run(project, tracking_uri, cwd=tmp_path)
    assert result.returncode != 0
    assert "boom in the third cell" in result.stdout + result.stderr
    [run] = MlflowClient(tracking_uri).search_runs(["0"])
    assert run.info.status == "FAILED"
    assert {a.path for a in MlflowClient(tracking_uri).list_artifacts(run.info.run_id, "notebook")} == {
        "notebook/fail.ipynb", "notebook/fail.html"
    }


def test_wrong_parameter_value_is_refused_by_the_runner(tmp_path):
    project = build_project(write(sklearn_training_notebook(), tmp_path / "t.ipynb"), tmp_path / "proj").path
    result = subprocess.run(
        [sys.executable, str(project / "_infinstor_runner.py"), "--param=max_iter=many"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "[infinstor] error: parameter 'max_iter' must be an int like its default 200; got 'many'" in result.stderr
    result = subprocess.run(
        [sys.executable, str(project / "_infinstor_runner.py"), "--param=nope=1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "unknown parameter 'nope'" in result.stderr


def test_distribution_map_cache_follows_installs(tmp_path, monkeypatch):
    from infinstor_jupyterlab.projects import environment

    monkeypatch.setenv("INFINSTOR_DATA_DIR", str(tmp_path / "state"))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    environment._packages_distributions.cache_clear()
    first = environment._packages_distributions()
    assert "mlflow" in first
    [cache] = (tmp_path / "state" / "cache").glob("packages-*.json")
    saved = json.loads(cache.read_text())
    assert saved["mapping"] == first
    # "Installing" something (the import path changes) invalidates the cache.
    saved["mapping"] = {"fake_module": ["fake-dist"]}
    cache.write_text(json.dumps(saved))
    environment._packages_distributions.cache_clear()
    assert environment._packages_distributions() == {"fake_module": ["fake-dist"]}
    os.utime(site, (1, 1))
    environment._packages_distributions.cache_clear()
    assert "mlflow" in environment._packages_distributions()
    environment._packages_distributions.cache_clear()


def test_kernel_python_reads_the_kernelspec(tmp_path, monkeypatch):
    from infinstor_jupyterlab.projects.environment import kernel_python

    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    fake = tmp_path / "venv" / "bin" / "python3"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    spec = tmp_path / "share" / "kernels" / "project-env"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(fake), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python"}))
    nb = notebook("x = 1")
    nb.metadata["kernelspec"]["name"] = "project-env"
    assert kernel_python(nb) == str(fake)
    nb.metadata["kernelspec"]["name"] = "no-such-kernel"
    assert kernel_python(nb) == sys.executable


def test_cli_project(tmp_path):
    nb_path = write(sklearn_training_notebook(), tmp_path / "train.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "infinstor_jupyterlab.cli", "project", str(nb_path), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote MLflow project 'train'" in result.stdout
    assert "C=1.0 (float), max_iter=200 (int)" in result.stdout
    assert (tmp_path / "out" / "MLproject").exists()
    # The same again refuses to overwrite, with a message and a non-zero exit.
    again = subprocess.run(
        [sys.executable, "-m", "infinstor_jupyterlab.cli", "project", str(nb_path), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 2
    assert "already exists and is not empty" in again.stderr
    write(notebook("x = 1", parameters="lr = compute()"), tmp_path / "bad.ipynb")
    bad = subprocess.run(
        [sys.executable, "-m", "infinstor_jupyterlab.cli", "project", str(tmp_path / "bad.ipynb")],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("infinstor: parameters cell, line 1")
