#!/usr/bin/env python
"""Benchmark: the company service's Lambda handler vs the same app under uvicorn, one run.

On one throwaway PostgreSQL database (migrated once, as the deploy's migration function does),
with users signed in at the test identity provider (tests/idp; needs node and npm):

- **cold start**: `--cold-starts` times, a fresh process (tests/lambda_local.py, the handler called
  with HTTP API events as Lambda's runtime calls it) from process start to its first answered
  request; and the import time alone (Python start excluded) of what the handler imports; between
  the cold starts, the baseline: a fresh process importing MLflow's server as `mlflow server` does
  (the floor for any function that runs MLflow's server), with the ratio of the two;
- **warm latency**: the same sequential calls (runs/search, runs/get, experiments/search,
  metrics/get-history, runs/log-batch), `--calls` of each, through the handler (an event to a warm
  instance) and through `mlflow server --app-name infinstor` (uvicorn, `--workers 1`) over
  keep-alive HTTP. Lambda's own invocation overhead (API Gateway and the Lambda service, a few ms
  in AWS) cannot be measured here and is not included; the local pipe to the handler's process
  stands in for it.
- **image payload**: the installed size of the package with the `serverless` extra and its
  dependencies in this environment (the image adds AWS's base image, about 0.6 GB).

Targets (issue 16): cold start at most 3 s on this machine, warm median at most 1.2x uvicorn's.

    python bench/serverless.py [--cold-starts 3] [--calls 200] [--runs 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from idp_fixture import AUDIENCE, IdP  # noqa: E402
from lambda_local import ALLOWED_HOSTS, LambdaProcess, http_api_event, response_json  # noqa: E402
from service_fixture import ADMIN_GROUP, CompanyServer, PostgresCluster, user_token  # noqa: E402

CALLS = ("runs/search", "runs/get", "experiments/search", "metrics/get-history", "runs/log-batch")
IMPORTS = (
    "mangum",
    "mlflow.server",
    "mlflow.server.fastapi_app",
    "infinstor_jupyterlab.tracking_service.app",
    "infinstor_jupyterlab.tracking_service.company",
    "infinstor_jupyterlab.tracking_service.serverless",
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def request_for(name: str, exp: str, run: str, step: int) -> tuple[str, str, dict | None]:
    """(method, path with query, JSON body) of one call of the workload."""
    if name == "runs/search":
        return "POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp], "max_results": 50}
    if name == "runs/get":
        return "GET", f"/api/2.0/mlflow/runs/get?run_id={run}", None
    if name == "experiments/search":
        return "POST", "/api/2.0/mlflow/experiments/search", {"max_results": 100}
    if name == "metrics/get-history":
        return "GET", f"/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=loss", None
    metrics = [{"key": "loss", "value": 1.0 / (step + 1), "timestamp": 1_700_000_000_000 + step, "step": step}]
    return "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": run, "metrics": metrics}


def via_handler(function: LambdaProcess, token: str, method: str, path: str, body: dict | None) -> dict:
    path, _, query = path.partition("?")
    headers = {"authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data, headers["content-type"] = json.dumps(body).encode(), "application/json"
    response = function.invoke(http_api_event(method, path, query=query, headers=headers, body=data))
    if response["statusCode"] != 200:
        raise RuntimeError(f"{method} {path}: {response['statusCode']} {response.get('body', '')[:300]}")
    return response_json(response)


def image_payload_mb() -> float:
    """Installed size of infinstor-jupyterlab[serverless] and everything it requires, here."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: dict[str, int] = {}
    todo = [("infinstor-jupyterlab", {"serverless"})]
    while todo:
        name, extras = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = sum((f.size or 0) for f in (dist.files or []))
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                todo.append((req.name, set(req.extras)))
    return sum(seen.values()) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200, help="sequential calls of each kind, per server")
    parser.add_argument("--runs", type=int, default=50, help="runs seeded in the caller's experiment")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-serverless-"))
    idp = IdP(root / "idp.log")
    cluster = PostgresCluster()
    functions: list[LambdaProcess] = []
    server = None
    try:
        uri = cluster.create_database("mlflow")
        config = {"oidc": {"issuer": idp.issuer, "audience": AUDIENCE, "leeway": 0}, "org_admin_groups": [ADMIN_GROUP]}
        (root / "service.yaml").write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
        env.update(
            PYTHONPATH=str(REPO / "tests"),
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            MLFLOW_BACKEND_STORE_URI=uri,
            INFINSTOR_SERVICE_CONFIG=str(root / "service.yaml"),
            INFINSTOR_ARTIFACTS_DESTINATION=str(root / "artifacts"),
            MLFLOW_SERVER_ALLOWED_HOSTS=ALLOWED_HOSTS,
        )
        migrator = LambdaProcess(env, root / "migrate.log")
        functions.append(migrator)
        print("migrate:", migrator.invoke({}, handler="migrate_handler")["Status"], flush=True)
        token = user_token(idp, "alice")

        # Cold starts: process start to the first answered request; then the imports alone.
        # The baseline, measured between the cold starts so a slow spell of the machine touches both:
        # a fresh process importing MLflow's server as `mlflow server` does (the floor any function
        # running MLflow's server pays), process start to the import's end.
        cold: list[float] = []
        floor: list[float] = []
        floor_probe = "import mlflow.server, mlflow.server.fastapi_app"
        for i in range(args.cold_starts):
            function = LambdaProcess(env, root / f"cold-{i}.log")
            functions.append(function)
            via_handler(function, token, "POST", "/api/2.0/mlflow/experiments/search", {"max_results": 1})
            cold.append(time.monotonic() - function.started)
            function.stop()
            started = time.monotonic()
            subprocess.run([sys.executable, "-W", "ignore", "-c", floor_probe], env=env, capture_output=True, timeout=300, check=True)
            floor.append(time.monotonic() - started)
        imports: list[float] = []
        # As the handler imports them: with the collector off while the instance is built.
        probe = (
            "import time; t = time.perf_counter()\n"
            "from infinstor_jupyterlab.tracking_service.serverless import _initialising\n"
            "with _initialising():\n" + "".join(f"    import {m}\n" for m in IMPORTS) + "print(time.perf_counter() - t)"
        )
        for _ in range(args.cold_starts):
            out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300, check=True)
            imports.append(float(out.stdout.strip().splitlines()[-1]))

        # Seed once, through the handler.
        warm = LambdaProcess(env, root / "warm.log")
        functions.append(warm)
        exp = via_handler(warm, token, "POST", "/api/2.0/mlflow/experiments/create", {"name": "bench-serverless"})["experiment_id"]
        run_ids = []
        for i in range(args.runs):
            run = via_handler(warm, token, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
            via_handler(
                warm,
                token,
                "POST",
                "/api/2.0/mlflow/runs/log-batch",
                {
                    "run_id": run,
                    "params": [{"key": "lr", "value": str(i)}],
                    "metrics": [{"key": "loss", "value": 1.0 / (i + 1), "timestamp": 1, "step": 0}],
                },
            )
            run_ids.append(run)
        run = run_ids[0]

        server = CompanyServer(root / "uvicorn", idp.issuer, backend_uri=uri)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"

        def over_http(method, path, body):
            response = session.request(method, f"{server.uri}{path}", json=body, timeout=60)
            response.raise_for_status()

        results: dict[str, dict[str, list[float]]] = {"handler": {}, "uvicorn": {}}
        for name in CALLS:  # interleaved per kind, so both see the same database state
            for label, do in (("handler", lambda m, p, b: via_handler(warm, token, m, p, b)), ("uvicorn", over_http)):
                times = results[label].setdefault(name, [])
                for step in range(args.calls):
                    method, path, body = request_for(name, exp, run, step)
                    started = time.perf_counter()
                    do(method, path, body)
                    times.append((time.perf_counter() - started) * 1000)

        summary = {
            "cold_start_s": {"runs": cold, "median": statistics.median(cold)},
            "import_s": {"runs": imports, "median": statistics.median(imports)},
            "mlflow_server_import_s": {"runs": floor, "median": statistics.median(floor)},
            "cold_start_over_mlflow_import": statistics.median(c / f for c, f in zip(cold, floor)),
            "image_payload_mb": round(image_payload_mb(), 1),
            "warm_ms": {},
        }
        print(
            f"\ncold start (process start -> first answer): median {statistics.median(cold):.2f} s  {['%.2f' % c for c in cold]}  (target <= 3 s)"
        )
        print(f"imports alone: median {statistics.median(imports):.2f} s")
        print(
            f"baseline, a process importing MLflow's server as `mlflow server` does: median {statistics.median(floor):.2f} s"
            f"  {['%.2f' % f for f in floor]}; cold start / baseline: {summary['cold_start_over_mlflow_import']:.2f}"
        )
        print(f"package + dependencies installed: {summary['image_payload_mb']} MB (the image adds AWS's base image)")
        print(f"\n{'call':22} {'handler p50':>12} {'uvicorn p50':>12} {'ratio':>6} {'handler p99':>12} {'uvicorn p99':>12}")
        all_h, all_u = [], []
        for name in CALLS:
            h, u = results["handler"][name], results["uvicorn"][name]
            all_h += h
            all_u += u
            ratio = statistics.median(h) / statistics.median(u)
            summary["warm_ms"][name] = {
                "handler_p50": statistics.median(h),
                "uvicorn_p50": statistics.median(u),
                "ratio": ratio,
                "handler_p99": percentile(h, 99),
                "uvicorn_p99": percentile(u, 99),
            }
            print(
                f"{name:22} {statistics.median(h):10.2f}ms {statistics.median(u):10.2f}ms {ratio:6.2f} {percentile(h, 99):10.2f}ms {percentile(u, 99):10.2f}ms"
            )
        overall = statistics.median(all_h) / statistics.median(all_u)
        summary["warm_ratio_all"] = overall
        print(f"{'all calls':22} {statistics.median(all_h):10.2f}ms {statistics.median(all_u):10.2f}ms {overall:6.2f}   (target <= 1.2)")
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2))
        return 0
    finally:
        for function in functions:
            function.stop()
        if server is not None:
            server.stop()
        cluster.stop()
        idp.stop()


if __name__ == "__main__":
    sys.exit(main())
