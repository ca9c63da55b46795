#!/usr/bin/env python
"""Benchmark: the runs tab vs MLflow's own UI on a 10,000 runs x 20 params x 20 metrics experiment.

Seeds a temporary JUPYTER_DATA_DIR with ui-tests/seed_tracking.py (experiment `big-sweep-10k`),
starts a Jupyter server with the extension (embedded tracking service), and in ONE headless
Debian chromium (Python playwright) runs each measurement of `MEASUREMENTS` in turn:

- `runs_tab_click_to_first_rows_ms`: clicks the experiment in the InfinStor sidebar and measures
  (in the page, performance.now()) the time from the click to the first run row painted in the
  experiment's runs tab (main area; the next animation frame after a row has a layout box); the
  tab is closed between trials, so each trial asks the server again;
- `mlflow_ui_in_app_ms`: MLflow's own UI through the proxy
  (`/infinstor/api/mlflow/#/experiments/<id>/runs`), loaded on its experiments list: the time from
  switching the route to the experiment's runs table to the newest run's name painted (the UI's
  equivalent of the click);
- `mlflow_ui_page_load_ms`: a navigation to that page (JS cached) to the newest run's name painted;
- `runs_tab_scroll`: scrolls the runs tab's table to the end (every run, server-side pages) and
  reports the row elements in the DOM at the end and the most seen at any time (one trial);
- `log_metric_to_screen_ms`: an MLflow client outside the lab (as a kernel: straight to the
  tracking service with its secret, not through the lab) logs a new value of a running run's
  metric; the time from the call to the value shown in the sidebar's compact runs list of that
  run's experiment, with no click (each trial first leaves the list idle for `LIVE_IDLE_S`, so the
  checks have backed off as far as they go);
- `idle_sidebar`: the sidebar open on the experiments list and left alone for `--idle-seconds`
  (default 60): the requests per minute the page makes to the lab's MLflow proxy, and to all of
  the extension's API (`/infinstor/api/`: the status and jobs polls too) (one trial).

A trial that fails (a timeout, a page that never shows its rows) is recorded with its error and
the benchmark goes on to the next trial (on a fresh page); the JSON printed at the end holds every
sample that was measured, every failure, the medians and the targets it could evaluate.

To add a measurement: write `def measure_x(bench: Bench) -> dict[str, float]` (one trial: what
it measured, by name) and append `Measurement("x", measure_x)` to `MEASUREMENTS`
(`trials=1` for a one-shot, `prepare=` for what the trials share, e.g. opening a view once).

    python bench/sidebar.py [--trials 5] [--json out.json] [--only NAME ...]
    python bench/sidebar.py --runs 300 --trials 1 --idle-seconds 10   # smoke test: 300 runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent.resolve()
sys.path.insert(0, str(HERE))
from _lab import TOKEN, Lab  # noqa: E402

ROOT = HERE.parent
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
VIEWPORT = {"width": 1400, "height": 900}
EXPERIMENT = "big-sweep-10k"  # seed_tracking.py's name, whatever its size
# How long one trial may wait for rows: generous (a loaded 2-core machine), yet a stuck trial
# costs minutes, not the whole run.
ROWS_TIMEOUT_MS = 90_000
# MLflow's UI opens its Assistant panel on a local host name; the lab's tab keeps it closed
# (labextension/src/mlflow/mlflowUi.ts): measure the UI as the lab shows it.
ASSISTANT_CLOSED = """
try {
  localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
  localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
} catch (e) {}
"""

TAB_ROW = "[data-testid=infinstor-runs-tab] [data-testid=infinstor-run-row]"

CLICK_TO_TAB_ROWS = (
    """
async (name) => {
  const item = [...document.querySelectorAll('[data-testid=infinstor-experiment-item]')]
    .find(e => e.querySelector('.jp-InfinStor-listName').textContent === name);
  const t0 = performance.now();
  item.querySelector('.jp-InfinStor-listMain').click();
  return await new Promise(resolve => {
    const check = () => {
      const row = document.querySelector('%s');
      if (row && row.getBoundingClientRect().height > 0) {
        requestAnimationFrame(() => resolve(performance.now() - t0));
      } else {
        requestAnimationFrame(check);
      }
    };
    check();
  });
}
"""
    % TAB_ROW
)

# Installed in MLflow's UI page: records when the newest run's name is first painted.
WATCH_TEXT = """
(() => {
  window.__firstRowAt = null;
  window.__watchFrom = performance.now();
  const xpath = "//*[text()='%s']";
  const check = () => {
    const el = document.evaluate(xpath, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
    if (el && el.getBoundingClientRect().height > 0) {
      requestAnimationFrame(() => { window.__firstRowAt = performance.now(); });
      return;
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})()
"""


# The small experiment the live measurement logs to, and the metric it logs.
LIVE_EXPERIMENT = "bench-live"
LIVE_METRIC = "bench_value"
# Idle time before each live trial: the lists' checks back off to the refreshInterval setting
# (default 4 s) while nothing changes; a user's write usually comes after such a pause.
LIVE_IDLE_S = 6.0


class Bench:
    """What the measurements share: the lab, the browser, the seeded experiment."""

    def __init__(self, lab: Lab, browser, runs: int, exp_id: str, rows_timeout_ms: int = ROWS_TIMEOUT_MS, idle_seconds: float = 60.0):
        self.lab, self.runs, self.exp_id = lab, runs, exp_id
        self.rows_timeout_ms = rows_timeout_ms
        self.idle_seconds = idle_seconds
        self.live = None  # (MlflowClient, run id) once prepare_live made them
        self.live_step = 0
        self.newest = f"sweep-{runs - 1:05d}"  # seed_tracking.py's newest run
        self.ui = f"{lab.url}/infinstor/api/mlflow/"
        # One context for every page: they share the HTTP cache and Jupyter's login cookie.
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = None
        # Jupyter's login cookie, through the context's request client (it shares the context's
        # cookies): no page to close later (closing a page still loading has hung a smoke run).
        self.context.request.get(f"{lab.url}/infinstor/api/status?token={TOKEN}")

    def fresh_page(self, url: str | None = None):
        """A new tab (after a failed trial the old one may be in any state)."""
        if self.page is not None:
            try:
                self.page.close()
            except Exception:
                pass
        self.page = self.context.new_page()
        self.page.set_default_timeout(self.rows_timeout_ms)
        if url:
            self.page.goto(url, wait_until="commit")
        return self.page

    def open_lab_sidebar(self) -> None:
        page = self.fresh_page(f"{self.lab.url}/lab?token={TOKEN}&reset")
        page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="infinstor-sidebar"]').click(timeout=120_000)
        self.experiment_item().wait_for(timeout=120_000)

    def experiment_item(self):
        return self.page.get_by_test_id("infinstor-experiment-item").filter(has_text=EXPERIMENT)

    def close_runs_tab(self) -> None:
        """Close the experiment's runs tab and take the sidebar back to the experiments list."""
        tab = self.page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab[data-id="infinstor-runs-{self.exp_id}"]')
        if tab.count():
            tab.locator(".lm-TabBar-tabCloseIcon").click()
            tab.wait_for(state="detached")
        back = self.page.get_by_test_id("infinstor-runs-back")
        if back.count():
            back.click()
        self.page.get_by_test_id("infinstor-experiment-item").first.wait_for()

    def mlflow_ui_page(self):
        """A fresh tab on the lab's origin with MLflow's UI set up as the lab's tab has it."""
        page = self.fresh_page()
        page.add_init_script(ASSISTANT_CLOSED)
        return page


# -- measurements (each: one trial -> {name: value}) ---------------------------------------------


def prepare_sidebar(bench: Bench) -> None:
    bench.open_lab_sidebar()


def measure_runs_tab_click(bench: Bench) -> dict[str, float]:
    if not bench.experiment_item().count():  # a failed trial left the runs list open
        bench.open_lab_sidebar()
    ms = bench.page.evaluate(CLICK_TO_TAB_ROWS, EXPERIMENT)
    bench.close_runs_tab()
    return {"runs_tab_click_to_first_rows_ms": ms}


def measure_runs_tab_scroll(bench: Bench) -> dict[str, float]:
    bench.open_lab_sidebar()
    page = bench.page
    bench.experiment_item().locator(".jp-InfinStor-listMain").click()
    page.locator(TAB_ROW).first.wait_for()
    page.evaluate(
        """(sel) => {
      window.__maxRows = 0;
      const count = () => { window.__maxRows = Math.max(window.__maxRows, document.querySelectorAll(sel).length); };
      new MutationObserver(count).observe(document.body, { childList: true, subtree: true });
      count();
    }""",
        TAB_ROW,
    )
    table = page.locator("[data-testid=infinstor-runs-tab] [data-testid=infinstor-runs-table]")
    count = page.locator("[data-testid=infinstor-runs-tab] [data-testid=infinstor-runs-count]")
    t0 = time.perf_counter()
    deadline = time.monotonic() + 600
    expected = f"{bench.runs} runs"
    text = ""
    while time.monotonic() < deadline:
        table.evaluate("el => el.scrollTop = el.scrollHeight")
        text = (count.text_content() or "").strip()
        if text == expected:
            break
        page.wait_for_timeout(100)
    else:
        raise TimeoutError(f"after 600 s of scrolling the runs tab says {text!r}, not {expected!r}")
    page.wait_for_timeout(500)
    return {
        "runs_tab_scroll_to_end_s": round(time.perf_counter() - t0, 1),
        "runs_tab_rows_in_dom_at_end": page.locator(TAB_ROW).count(),
        "runs_tab_rows_in_dom_max": page.evaluate("window.__maxRows"),
    }


def measure_mlflow_ui_in_app(bench: Bench) -> dict[str, float]:
    page = bench.mlflow_ui_page()
    # Not `goto`'s default wait for "load": MLflow's UI keeps loading chunks; wait for what the
    # user waits for.
    page.goto(f"{bench.ui}#/experiments", wait_until="commit")
    page.get_by_text(EXPERIMENT).first.wait_for()
    page.evaluate(WATCH_TEXT % bench.newest)
    page.evaluate(f"location.hash = '#/experiments/{bench.exp_id}/runs'")
    page.wait_for_function("window.__firstRowAt !== null", timeout=bench.rows_timeout_ms)
    return {"mlflow_ui_in_app_ms": page.evaluate("window.__firstRowAt - window.__watchFrom")}


def measure_mlflow_ui_page_load(bench: Bench) -> dict[str, float]:
    page = bench.mlflow_ui_page()
    page.add_init_script(WATCH_TEXT % bench.newest)
    page.goto(f"{bench.ui}#/experiments/{bench.exp_id}/runs", wait_until="commit")
    page.wait_for_function("window.__firstRowAt !== null", timeout=bench.rows_timeout_ms)
    return {"mlflow_ui_page_load_ms": page.evaluate("window.__firstRowAt")}  # ms since navigation start


def prepare_live(bench: Bench) -> None:
    """A running run in a small experiment, logged by a client outside the lab, and the sidebar
    open on that experiment's compact runs list."""
    from mlflow.tracking import MlflowClient

    tracking = bench.lab.tracking()
    # As a kernel does: straight to the tracking service, with the per-install secret.
    os.environ["MLFLOW_TRACKING_TOKEN"] = bench.lab.secret
    client = MlflowClient(tracking_uri=tracking["uri"])
    existing = client.get_experiment_by_name(LIVE_EXPERIMENT)
    exp_id = existing.experiment_id if existing else client.create_experiment(LIVE_EXPERIMENT)
    run = client.create_run(exp_id, run_name="bench-live-run")
    client.log_metric(run.info.run_id, LIVE_METRIC, 0.0, step=0)
    bench.live = (client, run.info.run_id)
    bench.open_lab_sidebar()
    bench.page.get_by_test_id("infinstor-experiment-item").filter(has_text=LIVE_EXPERIMENT).locator(".jp-InfinStor-listMain").click()
    bench.page.locator(f'[data-testid=infinstor-list-run][data-run-id="{run.info.run_id}"]').wait_for()


def measure_log_metric_to_screen(bench: Bench) -> dict[str, float]:
    client, run_id = bench.live
    bench.live_step += 1
    value = 1000 + bench.live_step  # a new value each trial; the row's tooltip shows it raw
    bench.page.wait_for_timeout(LIVE_IDLE_S * 1000)
    shown = f'[data-testid=infinstor-list-run][data-run-id="{run_id}"] [title="{LIVE_METRIC} = {value}"]'
    t0 = time.perf_counter()
    client.log_metric(run_id, LIVE_METRIC, float(value), step=bench.live_step)
    bench.page.wait_for_selector(shown, timeout=bench.rows_timeout_ms)
    return {"log_metric_to_screen_ms": (time.perf_counter() - t0) * 1000}


def measure_idle_sidebar(bench: Bench) -> dict[str, float]:
    bench.open_lab_sidebar()
    page = bench.page
    page.wait_for_timeout(5000)  # the first answers and the immediate checks after load
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.wait_for_timeout(bench.idle_seconds * 1000)
    per_min = 60.0 / bench.idle_seconds
    # Ours (/infinstor/api/: the MLflow proxy, the status, the jobs list), not JupyterLab's own
    # polls (kernels, sessions, terminals).
    ours = [u for u in seen if u.startswith(f"{bench.lab.url}/infinstor/api/")]
    mlflow_requests = [u for u in ours if "/infinstor/api/mlflow/" in u]
    return {
        "idle_sidebar_mlflow_requests_per_min": round(len(mlflow_requests) * per_min, 1),
        "idle_sidebar_infinstor_requests_per_min": round(len(ours) * per_min, 1),
    }


@dataclass
class Measurement:
    name: str
    trial: Callable[[Bench], dict[str, float]]
    trials: int | None = None  # None: --trials
    prepare: Callable[[Bench], None] | None = None


MEASUREMENTS = [
    Measurement("runs_tab_click", measure_runs_tab_click, prepare=prepare_sidebar),
    Measurement("runs_tab_scroll", measure_runs_tab_scroll, trials=1),
    Measurement("mlflow_ui_in_app", measure_mlflow_ui_in_app),
    Measurement("mlflow_ui_page_load", measure_mlflow_ui_page_load),
    Measurement("log_metric_to_screen", measure_log_metric_to_screen, prepare=prepare_live),
    Measurement("idle_sidebar", measure_idle_sidebar, trials=1),
]


def run_measurements(
    bench: Bench, measurements: list[Measurement], trials: int, samples: dict[str, list[float]], failures: list[dict]
) -> None:
    """Every trial of every measurement into `samples`; a failure goes to `failures`, and the
    next trial goes on."""
    for m in measurements:
        count = m.trials or trials
        if m.prepare is not None:
            try:
                m.prepare(bench)
            except Exception as exc:
                failures.append(_failure(m.name, "prepare", exc))
                continue
        for index in range(count):
            t0 = time.perf_counter()
            try:
                values = m.trial(bench)
            except Exception as exc:
                failures.append(_failure(m.name, index + 1, exc, time.perf_counter() - t0))
                continue
            for key, value in values.items():
                samples.setdefault(key, []).append(round(value) if key.endswith("_ms") else value)
            print(f"  {m.name} trial {index + 1}/{count}: {values}", file=sys.stderr, flush=True)


def _failure(name: str, trial, exc: BaseException, seconds: float = 0.0) -> dict:
    message = f"{exc.__class__.__name__}: {exc}".strip()
    print(f"  {name} trial {trial} FAILED after {seconds:.0f} s: {message.splitlines()[0][:300]}", file=sys.stderr, flush=True)
    traceback.print_exc(limit=3, file=sys.stderr)
    return {"measurement": name, "trial": trial, "seconds": round(seconds, 1), "error": message[:2000]}


def summarize(samples: dict[str, list[float]], failures: list[dict]) -> dict:
    """Medians of what was measured; ratios and targets only where both sides were measured."""
    result: dict = {**samples, "failures": failures}
    med = {k: statistics.median(v) for k, v in samples.items() if v}
    result["median"] = {k: round(v, 1) for k, v in med.items()}
    sidebar = med.get("runs_tab_click_to_first_rows_ms")
    targets: dict[str, bool] = {}
    if sidebar is not None:
        targets["first_rows_le_500ms"] = sidebar <= 500
        for key, label in (("mlflow_ui_in_app_ms", "in_app"), ("mlflow_ui_page_load_ms", "page_load")):
            if med.get(key):
                result[f"ratio_vs_mlflow_{label}"] = round(sidebar / med[key], 2)
                targets[f"le_0.3x_mlflow_{label}"] = sidebar / med[key] <= 0.3
    if "runs_tab_rows_in_dom_max" in med:
        targets["rows_lt_200"] = max(samples["runs_tab_rows_in_dom_max"]) < 200
    if "log_metric_to_screen_ms" in med:
        targets["log_metric_to_screen_le_5s"] = med["log_metric_to_screen_ms"] <= 5000
    result["targets"] = targets
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the big experiment (smoke tests: a few hundred)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[m.name for m in MEASUREMENTS])
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--rows-timeout",
        type=float,
        default=ROWS_TIMEOUT_MS / 1000,
        help="seconds a trial may wait for rows before it is recorded as failed",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=60.0, help="how long idle_sidebar watches an idle sidebar (smoke tests: a few seconds)"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="infinstor-bench-sidebar-"))
    root = base / "root"
    root.mkdir()
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "ui-tests" / "seed_tracking.py"), str(base / "data" / "infinstor" / "embedded")],
        check=True,
        env={**os.environ, "INFINSTOR_SEED_BIG_RUNS": str(args.runs)},
    )
    result: dict = {"runs": args.runs, "seed_s": round(time.perf_counter() - t0, 1)}
    samples: dict[str, list[float]] = {}
    failures: list[dict] = []
    lab = None
    try:
        lab = Lab(base, root)
        lab.tracking()
        answer = lab.get("infinstor/api/mlflow/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": EXPERIMENT})
        assert answer.ok, answer.text
        exp_id = answer.json()["experiment"]["experiment_id"]
        measurements = [m for m in MEASUREMENTS if not args.only or m.name in args.only]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                run_measurements(
                    Bench(lab, browser, args.runs, exp_id, int(args.rows_timeout * 1000), args.idle_seconds),
                    measurements,
                    args.trials,
                    samples,
                    failures,
                )
            finally:
                browser.close()
    except Exception as exc:  # the lab or the browser itself: report what was measured so far
        failures.append(_failure("setup", "-", exc))
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(base, ignore_errors=True)

    result.update(summarize(samples, failures))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
