"""Benchmark: notebook -> project conversion, and inline job submit -> RUNNING.

    python bench/jobs.py [--submissions 10]

Baselines measured in the same run: nbformat read+write of the same notebook (the I/O any
conversion must do), and MLflow's own `mlflow.projects.run(..., synchronous=False)` with the
local backend for the same project (submit until the run's process is started).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).parent))
from _lab import Lab

from infinstor_jupyterlab.projects import build_project


def big_notebook(cells: int = 1000, target_bytes: int = 5 * 1024 * 1024):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells.append(new_code_cell("lr = 0.01\nepochs = 10\nname = 'bench'", metadata={"tags": ["parameters"]}))
    payload = base64.b64encode(os.urandom(target_bytes // cells * 3 // 4)).decode()
    imports = ["import numpy as np", "import pandas as pd", "from sklearn import linear_model", "import mlflow"]
    for i in range(cells - 1):
        source = f"{imports[i % len(imports)]}\nx_{i} = np.arange({i}) * lr\nprint(x_{i}.sum())"
        cell = new_code_cell(source, execution_count=i + 1)
        cell.outputs = [new_output("display_data", data={"image/png": payload})]
        nb.cells.append(cell)
    return nb


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_conversion(work: Path, repeat: int) -> dict:
    nb_path = work / "big.ipynb"
    nbformat.write(big_notebook(), nb_path)
    size_mb = nb_path.stat().st_size / 1024 / 1024
    cells = len(nbformat.read(nb_path, as_version=4).cells)

    def roundtrip():
        nbformat.write(nbformat.read(nb_path, as_version=4), work / "copy.ipynb")

    counter = iter(range(10**6))

    def convert():
        build_project(nb_path, work / f"proj-{next(counter)}")

    cold = timed(convert, 1)[0]
    warm = timed(convert, repeat)
    base = timed(roundtrip, repeat)
    return {"cells": cells, "size_mb": size_mb, "cold": cold, "convert": statistics.median(warm), "baseline": statistics.median(base)}


def bench_submit(work: Path, submissions: int) -> dict:
    root = work / "root"
    root.mkdir()
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_code_cell("alpha = 0.5", metadata={"tags": ["parameters"]}), new_code_cell("import time\ntime.sleep(1)")]
    nbformat.write(nb, root / "quick.ipynb")
    lab = Lab(work, root, ["--InlineTarget.max_parallel=64"])
    try:
        tracking = lab.tracking()
        ours = []
        for i in range(submissions):
            start = time.perf_counter()
            job = lab.post("infinstor/api/jobs", json={"path": "quick.ipynb", "parameters": {"alpha": i}}).json()
            while job["status"] == "QUEUED":
                time.sleep(0.01)
                job = lab.get(f"infinstor/api/jobs/{job['id']}").json()
            ours.append(time.perf_counter() - start)
            assert job["status"] in ("RUNNING", "FINISHED"), job
        # Baseline: MLflow's own local backend, same service, same converted project.
        project = build_project(root / "quick.ipynb", work / "baseline-project")
        os.environ.update(
            MLFLOW_TRACKING_URI=tracking["uri"],
            INFINSTOR_EMBEDDED_URI=tracking["uri"],
            INFINSTOR_SECRET_FILE=str(work / "data" / "infinstor" / "embedded" / "secret"),
        )
        import mlflow.projects

        theirs, runs = [], []
        for i in range(submissions):
            start = time.perf_counter()
            runs.append(mlflow.projects.run(str(project.path), parameters={"alpha": i}, env_manager="local", synchronous=False))
            theirs.append(time.perf_counter() - start)
        for run in runs:
            run.wait()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            jobs = lab.get("infinstor/api/jobs").json()["jobs"]
            if all(j["status"] in ("FINISHED", "FAILED", "KILLED") for j in jobs):
                break
            time.sleep(0.5)
        return {"ours": ours, "mlflow": theirs}
    finally:
        lab.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        conv = bench_conversion(work / "conv", args.repeat) if (work / "conv").mkdir() is None else None
        sub = bench_submit(work / "submit", args.submissions) if (work / "submit").mkdir() is None else None

    print(f"\nConversion of a {conv['cells']}-cell, {conv['size_mb']:.1f} MB notebook (median of {args.repeat}):")
    print(f"  infinstor project      {conv['convert'] * 1000:8.1f} ms   (first, cold: {conv['cold'] * 1000:.1f} ms)")
    print(f"  nbformat read+write    {conv['baseline'] * 1000:8.1f} ms   (baseline)")
    print(
        f"  ratio                  {conv['convert'] / conv['baseline']:8.2f}x   target: <= 300 ms absolute -> "
        f"{'OK' if conv['convert'] <= 0.3 else 'MISSED'}"
    )
    ours, theirs = sub["ours"], sub["mlflow"]
    print(f"\nInline submit -> RUNNING ({len(ours)} submissions, sequential):")
    print(f"  infinstor jobs API     median {statistics.median(ours) * 1000:7.1f} ms   max {max(ours) * 1000:7.1f} ms")
    print(f"  mlflow.projects.run    median {statistics.median(theirs) * 1000:7.1f} ms   max {max(theirs) * 1000:7.1f} ms   (baseline)")
    print(
        f"  ratio                  {statistics.median(ours) / statistics.median(theirs):8.2f}x   target: median <= 2 s -> "
        f"{'OK' if statistics.median(ours) <= 2 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
