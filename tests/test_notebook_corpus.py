"""The notebook corpus (tests/corpus, see make_corpus.py) run as inline jobs, with and without
overrides: status, failure reason, every parameter logged, metrics, artifacts and the job log.

All jobs go in at once (the inline target runs four at a time); the long one is cancelled once
it is running: it ends KILLED with the notebook as far as it ran, and its kernel's connection file
(which holds the kernel's HMAC key) is gone.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import pytest

from conftest import mlflow_api, wait_for_state
from test_jobs import artifacts_of, get_job, read_whole_log, run_of, submit

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass
class Case:
    notebook: str
    overrides: dict | None = None
    status: str = "FINISHED"
    reason: str | None = None  # the failure reason, from its start
    params: dict = field(default_factory=dict)  # every parameter logged on the run
    metrics: dict = field(default_factory=dict)  # a subset of the run's metrics
    log_has: tuple = ()
    log_once: tuple = ()  # lines that appear exactly once
    artifacts: tuple = ()  # beyond notebook/<name>.ipynb and .html
    include_folder: bool = False


TYPED = {
    "learning_rate": "0.1",
    "epochs": "3",
    "run_label": "baseline",
    "verbose": "False",
    "layers": "[64, 32]",
    "optimizer": "{'name': 'sgd', 'momentum': 0.9}",
}
MULTILINE = {"grid": "{'alpha': [0.1, 0.5, 1.0], 'l1_ratio': [0.2, 0.8]}", "columns": "['sepal_length', 'sepal_width']", "shape": "(2, 3)"}

CASES = [
    Case("typed_parameters.ipynb", params=TYPED, metrics={"layers": 2.0}, log_has=("LABEL baseline",)),
    Case(
        "typed_parameters.ipynb",
        {"epochs": 5, "run_label": "--output-dir=/x", "layers": [8], "verbose": "true"},
        params={**TYPED, "epochs": "5", "run_label": "--output-dir=/x", "layers": "[8]", "verbose": "True"},
        metrics={"layers": 1.0},
        log_has=("LABEL --output-dir=/x", "config 0.1 5 '--output-dir=/x' True [8]"),
    ),
    Case("none_defaults.ipynb", params={"msg": "None", "threshold": "None", "data_path": "None"}, log_has=("MSG None",)),
    Case(
        "none_defaults.ipynb",
        {"msg": "Hello", "threshold": 0.5, "data_path": None},
        params={"msg": "Hello", "threshold": "0.5", "data_path": "None"},
        metrics={"threshold": 0.5},
        log_has=("MSG 'Hello'", "THRESHOLD 0.5", "DATA None"),
    ),
    Case("multiline_literals.ipynb", params=MULTILINE, artifacts=("config.json",), log_has=("COLUMNS ['sepal_length', 'sepal_width']",)),
    Case(
        "multiline_literals.ipynb",
        {"grid": {"alpha": [1]}, "shape": [4, 5]},
        params={**MULTILINE, "grid": "{'alpha': [1]}", "shape": "(4, 5)"},
        artifacts=("config.json",),
        log_has=('GRID {"alpha": [1]}',),
    ),
    Case("exit_zero.ipynb", metrics={"before_exit": 1.0}, log_has=("stopping here on purpose",)),
    Case("exit_one.ipynb", status="FAILED", reason="SystemExit: 1"),
    Case("bare_system_exit.ipynb", metrics={"reached": 1.0}),
    Case("failing_magic.ipynb", status="FAILED", reason="UsageError: Line magic function `%this_magic_does_not_exist` not found"),
    Case("missing_import.ipynb", status="FAILED", reason="ModuleNotFoundError: No module named 'definitely_not_installed_pkg'"),
    Case("stderr_output.ipynb", log_once=("OUT-LINE-1", "ERR-LINE-1", "ERR-LINE-2", "LOG-LINE-1", "WARN-LINE-1")),
    Case("sklearn_training.ipynb", params={"C": "1.0", "max_iter": "200", "seed": "7"}),
    Case("sklearn_training.ipynb", {"C": 0.5, "max_iter": 50}, params={"C": "0.5", "max_iter": "50", "seed": "7"}),
    Case("pandas_report.ipynb", params={"points": "10", "title": "squares"}, metrics={"rows": 10.0}, artifacts=("report/curve.png",)),
    Case(
        "pandas_report.ipynb",
        {"points": 4, "title": "a title: with 'quotes'"},
        params={"points": "4", "title": "a title: with 'quotes'"},
        metrics={"rows": 4.0},
        artifacts=("report/curve.png",),
    ),
    Case("own_runs.ipynb"),
    Case("magics_and_shell.ipynb", metrics={"total": 499500.0}, log_has=("SHELL-SAYS-hello", "RESULT captured-shell")),
    Case("no_parameters.ipynb", metrics={"ok": 1.0}),
    Case(
        "nbformat44_no_ids.ipynb", params={"n_estimators": "10", "depth": "None"}, metrics={"n_estimators": 10.0}, log_has=("DEPTH None",)
    ),
    Case("nbformat44_no_ids.ipynb", {"n_estimators": 3, "depth": 4}, params={"n_estimators": "3", "depth": "4"}, log_has=("DEPTH 4",)),
    Case("with_data/reads_beside.ipynb", params={"csv_name": "values.csv"}, metrics={"sum": 6.0}, include_folder=True),
    Case(
        "with_data/reads_beside.ipynb",
        {"csv_name": "other.csv"},
        params={"csv_name": "other.csv"},
        metrics={"sum": 30.0},
        include_folder=True,
    ),
]

PARAMETER_TYPES = {
    "typed_parameters.ipynb": {
        "learning_rate": "float",
        "epochs": "int",
        "run_label": "str",
        "verbose": "bool",
        "layers": "list",
        "optimizer": "dict",
    },
    "none_defaults.ipynb": {"msg": "none", "threshold": "none", "data_path": "none"},
    "multiline_literals.ipynb": {"grid": "dict", "columns": "list", "shape": "tuple"},
    "nbformat44_no_ids.ipynb": {"n_estimators": "int", "depth": "none"},
    "with_data/reads_beside.ipynb": {"csv_name": "str"},
    "no_parameters.ipynb": {},
}


@pytest.fixture
def jp_server_config(jp_server_config):
    return {**jp_server_config, "InlineTarget": {"max_parallel": 4}}


async def search_runs(infinstor, experiment_id: str) -> list[dict]:
    tracking = infinstor.tracking
    code, body = await mlflow_api(
        tracking.uri, "runs/search", body={"experiment_ids": [experiment_id], "max_results": 1000}, headers=tracking.auth_headers()
    )
    assert code == 200, body
    return body.get("runs", [])


async def all_artifacts(infinstor, run_id: str, path: str = "") -> set[str]:
    found = set()
    for item in await artifacts_of(infinstor, run_id, path):
        found.add(item)
        found |= await all_artifacts(infinstor, run_id, item) if "." not in item.rsplit("/", 1)[-1] else set()
    return found


def kernel_connection_files(job: dict) -> list[str]:
    """The `-f` argument of the job's kernels (their connection files)."""
    files = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if "ipykernel_launcher" in " ".join(cmdline) and proc.info["cwd"] and proc.info["cwd"].startswith(job["project_dir"]):
                files.append(cmdline[cmdline.index("-f") + 1])
        except (psutil.Error, ValueError, IndexError):
            continue
    return files


async def check(case: Case, job: dict, jp_fetch, infinstor) -> list[str]:
    problems = []
    label = f"{case.notebook} {case.overrides or ''}"
    log = await read_whole_log(jp_fetch, job["id"])
    if job["status"] != case.status:
        return [f"{label}: {job['status']} ({job['failure_reason']}), expected {case.status}; log tail:\n{log[-1500:]}"]
    if case.reason and not (job["failure_reason"] or "").startswith(case.reason):
        problems.append(f"{label}: reason {job['failure_reason']!r}, expected {case.reason!r}")
    if case.status == "FINISHED" and job["failure_reason"]:
        problems.append(f"{label}: finished with a reason {job['failure_reason']!r}")
    run = await run_of(infinstor, job["run_id"])
    params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
    if params != case.params:
        problems.append(f"{label}: params {params}, expected {case.params}")
    metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
    if any(metrics.get(k) != v for k, v in case.metrics.items()):
        problems.append(f"{label}: metrics {metrics}, expected {case.metrics}")
    if run["info"]["status"] != case.status:
        problems.append(f"{label}: run status {run['info']['status']}")
    stem = Path(case.notebook).stem
    wanted = {f"notebook/{stem}.ipynb", f"notebook/{stem}.html", "job/output.log", *case.artifacts}
    present = await all_artifacts(infinstor, job["run_id"])
    if not wanted <= present:
        problems.append(f"{label}: artifacts {sorted(present)}, missing {sorted(wanted - present)}")
    for text in case.log_has:
        if text not in log:
            problems.append(f"{label}: {text!r} not in the log")
    for text in case.log_once:
        count = sum(1 for line in log.splitlines() if text in line)
        if count != 1:
            problems.append(f"{label}: {text!r} appears {count} times in the log")
    if "[infinstor] error:" in log and case.status == "FINISHED":
        problems.append(f"{label}: an error line in a finished job's log")
    return problems


async def test_the_corpus_runs_as_jobs(jp_fetch, jp_root_dir, infinstor):
    shutil.copytree(CORPUS, jp_root_dir / "corpus", ignore=shutil.ignore_patterns("make_corpus.py", "__pycache__"))
    assert len([p for p in (jp_root_dir / "corpus").rglob("*.ipynb")]) >= 15
    problems: list[str] = []
    for name, types in PARAMETER_TYPES.items():
        described = json.loads((await jp_fetch("infinstor", "api", "projects", "parameters", params={"path": f"corpus/{name}"})).body)
        got = {p["name"]: p["type"] for p in described["parameters"]}
        if got != types:
            problems.append(f"{name}: parameters {got}, expected {types}")
    await wait_for_state(jp_fetch, "running")

    long_job = await submit(jp_fetch, path="corpus/long_running.ipynb", experiment_name="corpus")
    submitted = []
    for case in CASES:
        body = {"path": f"corpus/{case.notebook}", "experiment_name": "corpus", "include_folder": case.include_folder}
        if case.overrides is not None:
            body["parameters"] = case.overrides
        submitted.append((case, await submit(jp_fetch, **body)))

    # The long one: cancelled while its loop runs.
    deadline = time.monotonic() + 600
    while "TICK 2" not in await read_whole_log(jp_fetch, long_job["id"]):
        assert time.monotonic() < deadline, await read_whole_log(jp_fetch, long_job["id"])
        await asyncio.sleep(1)
    connection_files = kernel_connection_files(long_job)
    assert connection_files, "the long job's kernel should be running"
    assert all(f.startswith(str(Path(long_job["project_dir"]).parent)) for f in connection_files), connection_files
    response = await jp_fetch("infinstor", "api", "jobs", long_job["id"], "cancel", method="POST", body=b"")
    cancelled = json.loads(response.body)
    assert cancelled["status"] == "KILLED"
    assert [f for f in connection_files if Path(f).exists()] == []  # the HMAC key does not outlive the job
    assert not (Path(long_job["project_dir"]).parent / "tmp").exists()
    run = await run_of(infinstor, long_job["run_id"])
    assert run["info"]["status"] == "KILLED"
    assert {"notebook/long_running.ipynb", "notebook/long_running.html"} <= await all_artifacts(infinstor, long_job["run_id"])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(infinstor.tracking.uri)
    downloaded = await asyncio.to_thread(
        client.download_artifacts, long_job["run_id"], "notebook/long_running.ipynb", str(jp_root_dir.parent)
    )
    executed = nbformat.read(downloaded, as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "TICK 0" in printed and "TICK 2" in printed, printed[-500:]  # as far as it got

    for case, job in submitted:
        deadline = time.monotonic() + 900
        while (job := await get_job(jp_fetch, job["id"]))["status"] not in ("FINISHED", "FAILED", "KILLED"):
            assert time.monotonic() < deadline, job
            await asyncio.sleep(1)
        problems += await check(case, job, jp_fetch, infinstor)

    # A notebook's own runs: the job's run keeps its name; the others name the notebook as source.
    own = next(job for case, job in submitted if case.notebook == "own_runs.ipynb")
    runs = {r["info"]["run_name"]: r for r in await search_runs(infinstor, own["experiment_id"])}
    job_run = (await run_of(infinstor, own["run_id"]))["info"]["run_name"]
    if job_run != own["run_name"] or "notebook-chosen-name" in runs:
        problems.append(f"own_runs: the job's run is named {job_run!r}, the job {own['run_name']!r}")
    for name in ("inner-run", "afterwards-run"):
        tags = {t["key"]: t["value"] for t in runs.get(name, {"data": {"tags": []}})["data"].get("tags", [])}
        if tags.get("mlflow.source.name") != "corpus/own_runs.ipynb" or tags.get("mlflow.source.type") != "NOTEBOOK":
            problems.append(f"own_runs: {name} has source {tags.get('mlflow.source.name')!r} ({tags.get('mlflow.source.type')})")
    assert not problems, "\n".join(problems)
