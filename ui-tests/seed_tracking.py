"""Seed the embedded MLflow store that the Galata Jupyter server uses (run before it starts).

    python seed_tracking.py <embedded dir>      # e.g. .jupyter-data/infinstor/embedded

What it creates (names are what the Galata specs and bench/sidebar.py look for):

- experiments `vision-resnet` (runs with metric histories, a RUNNING run, a parent with child
  runs, a run `artifact-showcase` with image/CSV/HTML/JSON/text/notebook artifacts, an MLmodel
  folder and an MLflow 3 logged model), `churn-model`, `nlp-sentiment`, `empty-experiment`;
- `big-sweep-10k`: 10,000 runs x 20 params x 20 metrics (+ 3 tags each), bulk-inserted with SQL
  (the store API takes about 18 ms a run: 3 minutes; this takes a few seconds);
- registered models `churn-classifier` (3 versions, aliases `champion`/`challenger`, tags,
  descriptions) and `resnet-vision` (1 version).

The seeded store (sqlite db + artifacts) is built once into `.seed-cache/<hash of this file>/`
and copied into place on later runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import struct
import sys
import time
import uuid
import zlib
from pathlib import Path

HERE = Path(__file__).parent.resolve()
CACHE_ROOT = HERE / ".seed-cache"

BIG_EXPERIMENT = "big-sweep-10k"
BIG_RUNS = int(os.environ.get("INFINSTOR_SEED_BIG_RUNS", "10000"))
NOTEBOOK = "seeded/train.ipynb"  # mlflow.source.name of the vision runs (a lab path)
USER = "local"

PARAM_KEYS = ["lr", "batch_size", "optimizer", "dropout", "epochs"] + [f"p{i:02d}" for i in range(5, 20)]
METRIC_KEYS = ["loss", "accuracy", "val_loss", "val_accuracy", "f1"] + [f"m{i:02d}" for i in range(5, 20)]


def _png(width: int, height: int, pixel) -> bytes:
    """A small RGB PNG, no imaging library needed."""
    raw = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _curve(step: int, steps: int, start: float, end: float, noise: float, rng: random.Random) -> float:
    t = step / max(1, steps - 1)
    return end + (start - end) * (1 - t) ** 2 + rng.uniform(-noise, noise)


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _artifact_dir(artifacts: Path, run) -> Path:
    # run artifact URI: mlflow-artifacts:/<exp>/<run>/artifacts -> <artifacts>/<exp>/<run>/artifacts
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/"), uri
    return artifacts / uri[len("mlflow-artifacts:/"):]


def seed(target: Path) -> None:
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = target / "mlflow.db"
    artifacts = target / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{db}"
    store = SqlAlchemyStore(uri, "mlflow-artifacts:/")
    rng = random.Random(42)
    now = int(time.time() * 1000)

    def exp(name: str, tags: dict[str, str]) -> str:
        from mlflow.entities import ExperimentTag

        return store.create_experiment(name, tags=[ExperimentTag(k, v) for k, v in tags.items()])

    def run(exp_id: str, name: str, start: int, params: dict, tags: dict, status="FINISHED", end=None, source=NOTEBOOK):
        all_tags = {
            "mlflow.user": USER,
            "mlflow.source.name": source,
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.runName": name,
            **tags,
        }
        r = store.create_run(exp_id, USER, start, [RunTag(k, v) for k, v in all_tags.items()], name)
        run_id = r.info.run_id
        store.log_batch(run_id, metrics=[], params=[Param(k, str(v)) for k, v in params.items()], tags=[])
        if status != "RUNNING":
            store.update_run_info(run_id, RunStatus.from_string(status), end or start + rng.randint(60_000, 900_000), name)
        return store.get_run(run_id)

    def history(run_id: str, start: int, steps: int, curves: dict[str, tuple[float, float, float]]):
        metrics = []
        for key, (a, b, noise) in curves.items():
            for s in range(steps):
                metrics.append(Metric(key, _curve(s, steps, a, b, noise, rng), start + s * 5000, s))
        for i in range(0, len(metrics), 900):
            store.log_batch(run_id, metrics=metrics[i:i + 900], params=[], tags=[])

    # -- vision-resnet: histories, a running run, parent/children, artifacts -----------------------
    vision = exp("vision-resnet", {"team": "vision", "mlflow.owner": "ada", "mlflow.note.content": "ResNet fine-tuning"})
    vision_runs = []
    for i, (lr, opt) in enumerate([(0.1, "sgd"), (0.01, "sgd"), (0.01, "adam"), (0.001, "adam"), (0.003, "adamw")]):
        start = now - (10 - i) * 3_600_000
        r = run(vision, f"resnet-{opt}-lr{lr}", start, {"lr": lr, "optimizer": opt, "batch_size": 64, "epochs": 60}, {"team": "vision"})
        history(r.info.run_id, start, 60, {
            "loss": (2.3, 0.15 + 0.1 * i, 0.03),
            "accuracy": (0.1, 0.93 - 0.03 * i, 0.01),
            "val_loss": (2.4, 0.3 + 0.08 * i, 0.05),
        })
        vision_runs.append(r)

    running = run(vision, "resnet-live", now - 600_000, {"lr": 0.005, "optimizer": "adam", "batch_size": 128, "epochs": 60},
                  {"team": "vision"}, status="RUNNING")
    history(running.info.run_id, now - 600_000, 25, {"loss": (2.3, 0.6, 0.03), "accuracy": (0.1, 0.7, 0.01)})

    parent = run(vision, "hyperparam-sweep", now - 20 * 3_600_000, {"search": "grid"}, {"team": "vision"})
    for j, lr in enumerate([0.1, 0.03, 0.01]):
        child = run(vision, f"sweep-trial-{j}", now - 20 * 3_600_000 + j * 60_000, {"lr": lr, "optimizer": "sgd"},
                    {"mlflow.parentRunId": parent.info.run_id})
        history(child.info.run_id, child.info.start_time, 20, {"loss": (2.3, 0.4 + j * 0.1, 0.02)})

    show = run(vision, "artifact-showcase", now - 5 * 3_600_000, {"lr": 0.01, "optimizer": "adam", "batch_size": 32, "epochs": 10},
               {"team": "vision", "stage": "review"})
    history(show.info.run_id, show.info.start_time, 10, {"loss": (1.5, 0.2, 0.02), "accuracy": (0.4, 0.95, 0.01)})
    adir = _artifact_dir(artifacts, show)
    _write(adir / "plots" / "confusion.png",
           _png(96, 96, lambda x, y: ((x * 255) // 95, (y * 255) // 95, 160 if (x // 12 + y // 12) % 2 else 60)))
    _write(adir / "plots" / "loss_curve.png",
           _png(160, 80, lambda x, y: (30, 30, 30) if abs(y - int(70 - 60 * (1 - x / 159) ** 2)) < 2 else (245, 245, 245)))
    _write(adir / "data" / "predictions.csv",
           "id,label,prediction,confidence\n" + "".join(f"{k},{'cat' if k % 3 else 'dog'},{'cat' if k % 4 else 'dog'},{0.5 + (k % 50) / 100:.2f}\n" for k in range(1, 121)))
    _write(adir / "report.html",
           "<!doctype html><html><body><h1>Evaluation report</h1><p>Accuracy <b>0.95</b></p>"
           "<script>document.body.insertAdjacentHTML('beforeend','<p id=\"script-ran\">SCRIPT RAN</p>')</script>"
           "</body></html>")
    _write(adir / "config.json", json.dumps({"model": "resnet50", "pretrained": True, "layers": [64, 128, 256], "lr": 0.01}))
    _write(adir / "notes.txt", "Trained on the cleaned split.\nAugmentation: flips, crops.\n")
    _write(adir / "notebooks" / "train.ipynb", json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# Training notebook\n", "Logged as an artifact."]},
            {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": 1, "source": ["print('epoch 1 loss 0.42')"],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["epoch 1 loss 0.42\n"]}]},
            {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 2, "source": ["{'acc': 0.95}"],
             "outputs": [{"output_type": "execute_result", "execution_count": 2, "metadata": {}, "data": {"text/plain": ["{'acc': 0.95}"]}}]},
        ],
    }))
    mlmodel = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    python_version: 3.11.7\nmlflow_version: 3.17.2\n"
    _write(adir / "model" / "MLmodel", mlmodel)
    _write(adir / "model" / "requirements.txt", "mlflow\n")
    logged = store.create_logged_model(vision, name="resnet-logged", source_run_id=show.info.run_id)
    loc = logged.artifact_location
    assert loc.startswith("mlflow-artifacts:/"), loc
    _write(artifacts / loc[len("mlflow-artifacts:/"):] / "MLmodel", mlmodel)

    # -- small experiments ------------------------------------------------------------------------
    churn = exp("churn-model", {"team": "growth", "mlflow.owner": "grace"})
    churn_runs = []
    for i in range(4):
        start = now - (30 - i) * 86_400_000
        r = run(churn, f"xgb-depth{3 + i}", start, {"max_depth": 3 + i, "eta": 0.1, "lr": 0.1},
                {"team": "growth"}, source="notebooks/churn.ipynb")
        history(r.info.run_id, start, 30, {"auc": (0.6, 0.85 + 0.02 * i, 0.01), "loss": (0.7, 0.3, 0.01)})
        churn_runs.append(r)
    run(churn, "xgb-failed", now - 2 * 86_400_000, {"max_depth": 12}, {}, status="FAILED", source="notebooks/churn.ipynb")
    _write(_artifact_dir(artifacts, churn_runs[0]) / "model" / "MLmodel", mlmodel)
    _write(_artifact_dir(artifacts, churn_runs[2]) / "model" / "MLmodel", mlmodel)
    _write(_artifact_dir(artifacts, churn_runs[3]) / "model" / "MLmodel", mlmodel)

    nlp = exp("nlp-sentiment", {"team": "nlp", "mlflow.owner": "alan"})
    for i in range(3):
        run(nlp, f"bert-{i}", now - (5 - i) * 86_400_000, {"lr": 2e-5, "epochs": 3 + i}, {"team": "nlp"}, source="notebooks/nlp.ipynb")
    exp("empty-experiment", {})

    # -- registered models ------------------------------------------------------------------------
    registry = RegistryStore(uri)
    registry.create_registered_model(
        "churn-classifier",
        tags=[RegisteredModelTag("team", "growth"), RegisteredModelTag("task", "classification")],
        description="Predicts customer churn from usage features.",
    )
    for i, r in enumerate([churn_runs[0], churn_runs[2], churn_runs[3]]):
        registry.create_model_version(
            "churn-classifier", f"{r.info.artifact_uri}/model", r.info.run_id,
            tags=[ModelVersionTag("validated", "true" if i else "false")],
            description=f"XGBoost, depth {3 + [0, 2, 3][i]}",
        )
    registry.set_registered_model_alias("churn-classifier", "champion", "3")
    registry.set_registered_model_alias("churn-classifier", "challenger", "2")
    registry.create_registered_model("resnet-vision", tags=[RegisteredModelTag("team", "vision")], description="Image classifier.")
    registry.create_model_version("resnet-vision", f"{show.info.artifact_uri}/model", show.info.run_id,
                                  tags=[ModelVersionTag("stage", "review")], description="First candidate")
    registry.set_registered_model_alias("resnet-vision", "candidate", "1")

    # -- the 10,000-run experiment, bulk SQL ---------------------------------------------------------
    big = exp(BIG_EXPERIMENT, {"team": "platform", "mlflow.owner": "bench"})
    store.engine.dispose()
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    runs, params, metrics, latest, tags = [], [], [], [], []
    base = now - BIG_RUNS * 60_000
    for i in range(BIG_RUNS):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        start = base + i * 60_000
        status = "FAILED" if i % 97 == 0 else "FINISHED"
        name = f"sweep-{i:05d}"
        runs.append((run_id, name, "NOTEBOOK", "notebooks/sweep.ipynb", "", USER, status, start,
                     start + rng.randint(10_000, 600_000), "", "active",
                     f"mlflow-artifacts:/{big}/{run_id}/artifacts", int(big), None))
        for k, key in enumerate(PARAM_KEYS):
            value = {"lr": f"{[0.1, 0.03, 0.01, 0.003, 0.001][i % 5]}", "batch_size": str([16, 32, 64, 128][i % 4]),
                     "optimizer": ["sgd", "adam", "adamw"][i % 3]}.get(key, str((i * (k + 3)) % 17))
            params.append((key, value, run_id))
        for k, key in enumerate(METRIC_KEYS):
            v = rng.random() if key != "loss" else round(0.05 + rng.random() * 2, 4)
            metrics.append((key, v, start + 1000, run_id, 10, 0))
            latest.append((key, v, start + 1000, 10, 0, run_id))
        tags += [("mlflow.runName", name, run_id), ("mlflow.user", USER, run_id),
                 ("mlflow.source.name", "notebooks/sweep.ipynb", run_id)]
    with con:
        con.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", metrics)
        con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    con.execute("ANALYZE")
    con.close()
    print(f"seed_tracking: {BIG_RUNS} runs x {len(PARAM_KEYS)} params x {len(METRIC_KEYS)} metrics "
          f"inserted in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def cache_key() -> str:
    import mlflow

    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(mlflow.__version__.encode())
    h.update(str(BIG_RUNS).encode())
    return h.hexdigest()[:16]


def main(target: Path) -> None:
    t0 = time.perf_counter()
    cached = CACHE_ROOT / cache_key()
    if not (cached / "done").exists():
        shutil.rmtree(CACHE_ROOT, ignore_errors=True)
        building = CACHE_ROOT / f".building-{os.getpid()}"
        building.mkdir(parents=True)
        seed(building)
        (building / "done").write_text("ok")
        building.rename(cached)
        print(f"seed_tracking: built the seeded store in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    shutil.copy2(cached / "mlflow.db", target / "mlflow.db")
    shutil.rmtree(target / "artifacts", ignore_errors=True)
    shutil.copytree(cached / "artifacts", target / "artifacts")
    print(f"seed_tracking: seeded {target} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]).resolve())
