#!/usr/bin/env python
"""Benchmark: the sidebar's runs table vs MLflow's own UI on a 10,000 runs x 20 params x 20 metrics experiment.

Seeds a temporary JUPYTER_DATA_DIR with ui-tests/seed_tracking.py (experiment `big-sweep-10k`),
starts a Jupyter server with the extension (embedded tracking service), and in ONE headless
Debian chromium (Python playwright):

1. sidebar: opens the lab, then `--trials` times clicks the experiment in the InfinStor sidebar
   and measures (in the page, performance.now()) the time from the click to the first run row
   painted (the next animation frame after a row has a layout box);
2. MLflow's own UI through the proxy (`/infinstor/api/mlflow/#/experiments/<id>/runs`):
   a) in-app: with the UI loaded on its experiments list, the time from switching the route to
      the experiment's runs table to the first run name painted (the UI's equivalent of the click);
   b) page load: navigation (JS cached) to the first run name painted;
3. scrolls the sidebar's table to the end (all 10,000 runs, server-side pages) and reports the
   number of row elements in the DOM at the end and the most seen at any time.

    python bench/sidebar.py [--trials 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent.resolve()
sys.path.insert(0, str(HERE))
from _lab import TOKEN, Lab  # noqa: E402

ROOT = HERE.parent
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip
EXPERIMENT = "big-sweep-10k"
NEWEST = "sweep-09999"

CLICK_TO_FIRST_ROW = """
async (name) => {
  const item = [...document.querySelectorAll('[data-testid=infinstor-experiment-item]')]
    .find(e => e.querySelector('.jp-InfinStor-listName').textContent === name);
  const t0 = performance.now();
  item.querySelector('.jp-InfinStor-listMain').click();
  return await new Promise(resolve => {
    const check = () => {
      const row = document.querySelector('[data-testid=infinstor-run-row]');
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
""" % NEWEST


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="infinstor-bench-sidebar-"))
    root = base / "root"
    root.mkdir()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "ui-tests" / "seed_tracking.py"),
                    str(base / "data" / "infinstor" / "embedded")], check=True)  # fmt: skip
    seed_s = time.perf_counter() - t0
    lab = Lab(base, root)
    result: dict = {"seed_s": round(seed_s, 1)}
    try:
        lab.tracking()
        answer = lab.get("infinstor/api/mlflow/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": EXPERIMENT})
        assert answer.ok, answer.text
        exp_id = answer.json()["experiment"]["experiment_id"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{lab.url}/lab?token={TOKEN}&reset")
            page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="infinstor-sidebar"]').click()
            page.get_by_test_id("infinstor-experiment-item").filter(has_text=EXPERIMENT).wait_for(timeout=120_000)

            sidebar = []
            for _ in range(args.trials):
                sidebar.append(page.evaluate(CLICK_TO_FIRST_ROW, EXPERIMENT))
                page.get_by_test_id("infinstor-runs-back").click()
                page.get_by_test_id("infinstor-experiment-item").first.wait_for()
            result["sidebar_click_to_first_row_ms"] = [round(x) for x in sidebar]

            # Scroll to the end: all pages, count the row elements.
            page.get_by_test_id("infinstor-experiment-item").filter(has_text=EXPERIMENT).locator(".jp-InfinStor-listMain").click()
            page.get_by_test_id("infinstor-run-row").first.wait_for()
            page.evaluate("""() => {
              window.__maxRows = 0;
              const count = () => { window.__maxRows = Math.max(window.__maxRows,
                document.querySelectorAll('[data-testid=infinstor-run-row]').length); };
              new MutationObserver(count).observe(document.body, { childList: true, subtree: true });
            }""")
            t_scroll = time.perf_counter()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                page.get_by_test_id("infinstor-runs-table").evaluate("el => el.scrollTop = el.scrollHeight")
                text = page.get_by_test_id("infinstor-runs-count").text_content() or ""
                if text.strip() == "10000 runs":
                    break
                page.wait_for_timeout(100)
            page.wait_for_timeout(500)
            result["sidebar_scroll_to_end_s"] = round(time.perf_counter() - t_scroll, 1)
            result["sidebar_loaded_runs"] = page.get_by_test_id("infinstor-runs-count").text_content()
            result["sidebar_rows_in_dom_at_end"] = page.locator("[data-testid=infinstor-run-row]").count()
            result["sidebar_rows_in_dom_max"] = page.evaluate("window.__maxRows")
            last = page.locator("[data-testid=infinstor-run-row]").last.text_content()
            result["sidebar_last_row"] = (last or "")[:40]

            # MLflow's own UI through the proxy.
            ui = f"{lab.url}/infinstor/api/mlflow/"
            in_app, load = [], []
            for _ in range(args.trials):
                page.goto(f"{ui}#/experiments")
                page.get_by_text(EXPERIMENT).first.wait_for(timeout=120_000)
                page.evaluate(WATCH_TEXT)
                page.evaluate(f"location.hash = '#/experiments/{exp_id}/runs'")
                page.wait_for_function("window.__firstRowAt !== null", timeout=120_000)
                in_app.append(page.evaluate("window.__firstRowAt - window.__watchFrom"))

                page.goto("about:blank")
                page.add_init_script(WATCH_TEXT)
                page.goto(f"{ui}#/experiments/{exp_id}/runs")
                page.wait_for_function("window.__firstRowAt !== null", timeout=120_000)
                load.append(page.evaluate("window.__firstRowAt"))  # ms since navigation start
                page.close()
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"{lab.url}/lab?token={TOKEN}")  # keep the token cookie; JS cache is per browser
            result["mlflow_ui_in_app_ms"] = [round(x) for x in in_app]
            result["mlflow_ui_page_load_ms"] = [round(x) for x in load]
            browser.close()
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in result.items() if isinstance(v, list)}
    result["median"] = {k: round(v) for k, v in med.items()}
    ratio_app = med["sidebar_click_to_first_row_ms"] / med["mlflow_ui_in_app_ms"]
    ratio_load = med["sidebar_click_to_first_row_ms"] / med["mlflow_ui_page_load_ms"]
    result["ratio_vs_mlflow_in_app"] = round(ratio_app, 2)
    result["ratio_vs_mlflow_page_load"] = round(ratio_load, 2)
    result["targets"] = {
        "first_rows_le_1s": med["sidebar_click_to_first_row_ms"] <= 1000,
        "le_half_of_mlflow_in_app": ratio_app <= 0.5,
        "le_half_of_mlflow_page_load": ratio_load <= 0.5,
        "rows_lt_200": result["sidebar_rows_in_dom_max"] < 200,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
