"""bench/sidebar.py's harness: a failed trial is recorded and the benchmark goes on (no browser)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "sidebar.py"


def load_bench():
    sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_sidebar", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sidebar"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_failed_trial_is_recorded_and_the_rest_are_measured():
    bench = load_bench()
    calls = {"slow": 0}

    def slow_once(_bench):
        calls["slow"] += 1
        if calls["slow"] == 2:
            raise TimeoutError("Timeout 30000ms exceeded waiting for rows")
        return {"x_ms": 100.0 * calls["slow"]}

    def broken_prepare(_bench):
        raise RuntimeError("the lab did not open")

    samples, failures = {}, []
    bench.run_measurements(
        object(),
        [
            bench.Measurement("slow", slow_once),
            bench.Measurement("never", lambda b: {"y_ms": 1.0}, prepare=broken_prepare),
            bench.Measurement("one_shot", lambda b: {"rows_max": 30}, trials=1),
        ],
        3,
        samples,
        failures,
    )
    assert samples == {"x_ms": [100, 300], "rows_max": [30]}
    assert [(f["measurement"], f["trial"]) for f in failures] == [("slow", 2), ("never", "prepare")]
    assert "Timeout 30000ms" in failures[0]["error"]


def test_summary_reports_what_was_measured_and_only_the_targets_it_can_evaluate():
    bench = load_bench()
    result = bench.summarize({"runs_tab_click_to_first_rows_ms": [400, 600, 450]}, [{"measurement": "mlflow_ui_page_load"}])
    assert result["median"] == {"runs_tab_click_to_first_rows_ms": 450}
    assert result["targets"] == {"first_rows_le_500ms": True}  # no MLflow UI sample: no ratio
    assert "ratio_vs_mlflow_page_load" not in result
    full = bench.summarize(
        {"runs_tab_click_to_first_rows_ms": [400], "mlflow_ui_page_load_ms": [2000], "runs_tab_rows_in_dom_max": [30]}, []
    )
    assert full["ratio_vs_mlflow_page_load"] == 0.2
    assert full["targets"] == {"first_rows_le_500ms": True, "le_0.3x_mlflow_page_load": True, "rows_lt_200": True}
