#!/usr/bin/env python
"""Take the README's screenshot (docs/images/sidebar.png) of the real sidebar, reproducibly.

Starts a Jupyter server with the extension on a fresh, empty data dir (embedded tracking service),
writes a notebook `train.ipynb` that logs a small hyperparameter sweep with MLflow, opens it in the
lab in Debian chromium and runs it as a user does (its kernel logs through the lab: the runs carry
the notebook as their source), then opens the InfinStor sidebar on the experiment and its runs
and saves the whole lab window.

    python scripts/screenshot.py                      # -> docs/images/sidebar.png
    python scripts/screenshot.py --out /tmp/s.png --theme dark --width 1400 --height 860

Needs the package installed with its test extras (jupyterlab, playwright) and /usr/bin/chromium.
If the sidebar's layout changes, only `show_runs()` may need a new step: it finds things by the
names a user reads (the experiment's, a run's), not by CSS classes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _lab import TOKEN, Lab  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
EXPERIMENT = "churn-prediction"
BEST_RUN = "xgb-lr0.1-depth6"
NOTEBOOK = "train.ipynb"

# What a data scientist's notebook logs: a small sweep, params, per-epoch metrics, a tag.
TRAIN = f'''import math, random
import mlflow

mlflow.set_experiment("{EXPERIMENT}")
random.seed(7)
for lr in (0.3, 0.1, 0.03):
    for depth in (4, 6):
        with mlflow.start_run(run_name=f"xgb-lr{{lr}}-depth{{depth}}"):
            mlflow.log_params({{"learning_rate": lr, "max_depth": depth,
                               "n_estimators": 200}})
            mlflow.set_tag("dataset", "customers-2026-11")
            best = 0.93 - abs(lr - 0.1) / 4 - (depth == 4) * 0.02
            for epoch in range(15):
                p = 1 - math.exp(-epoch / (3 + 10 * (0.3 - lr)))
                noise = random.uniform(-0.004, 0.004)
                mlflow.log_metrics({{
                    "train_loss": round(0.69 * (1 - 0.8 * p) + noise, 4),
                    "val_auc": round(0.5 + (best - 0.5) * p + noise, 4),
                }}, step=epoch)
print("logged 6 runs to {EXPERIMENT}")
'''


def notebook() -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Churn model: a hyperparameter sweep"},
            {"cell_type": "code", "metadata": {}, "source": TRAIN, "outputs": [], "execution_count": None},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def wait_for_lab(page) -> None:
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.restored")
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")


def run_notebook(page) -> None:
    """Open the notebook and run it through the lab's own commands, as a user would."""
    page.evaluate(f"() => window.jupyterapp.commands.execute('docmanager:open', {{path: '{NOTEBOOK}'}})")
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle'; }",
        timeout=120_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.locator(".jp-OutputArea-output", has_text=f"logged 6 runs to {EXPERIMENT}").wait_for(timeout=180_000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")


def show_runs(page, sidebar_width: int) -> None:
    """The InfinStor sidebar on the experiment and its runs."""
    page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="infinstor-sidebar"]').click()
    panel = page.locator("#infinstor-sidebar")
    panel.wait_for(state="visible")
    # Wider than the default, so the runs' columns show.
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    if box:
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 300)
        page.mouse.down()
        page.mouse.move(sidebar_width, box["y"] + 300, steps=4)
        page.mouse.up()
    panel.get_by_text(EXPERIMENT, exact=True).first.click(timeout=60_000)
    page.get_by_text(BEST_RUN, exact=True).first.wait_for(timeout=60_000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "sidebar.png")
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--sidebar-width", type=int, default=470)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="infinstor-screenshot-"))
    root = base / "work"  # the file browser's root: the launcher and breadcrumbs show no test name
    root.mkdir()
    (root / NOTEBOOK).write_text(json.dumps(notebook(), indent=1))
    # No "get notified about Jupyter news?" toast over the picture.
    labconfig = base / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    lab = Lab(base, root, ["--LabApp.expose_app_in_browser=True"])
    try:
        lab.tracking()
        # The team's experiment exists already (as on a shared service): the notebook's
        # set_experiment then logs no "creating a new experiment" line under the cell.
        created = lab.post(
            "infinstor/api/mlflow/api/2.0/mlflow/experiments/create",
            json={"name": EXPERIMENT, "tags": [{"key": "team", "value": "growth"}]},
        )
        assert created.ok, created.text
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                page.set_default_timeout(60_000)
                page.goto(f"{lab.url}/lab?token={TOKEN}&reset")
                wait_for_lab(page)
                if args.theme == "dark":
                    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
                run_notebook(page)
                # A fresh page: the lists as anyone opening the lab now sees them.
                page.goto(f"{lab.url}/lab?token={TOKEN}")
                wait_for_lab(page)
                page.locator(".jp-NotebookPanel").first.wait_for()
                show_runs(page, args.sidebar_width)
                page.mouse.move(args.width - 5, args.height - 5)  # no hover highlight
                page.wait_for_timeout(1000)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), animations="disabled")
            finally:
                browser.close()
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
