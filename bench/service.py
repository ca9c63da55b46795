#!/usr/bin/env python
"""Benchmark: the company tracking service vs plain MLflow and MLflow's basic-auth, one run.

Starts, side by side and alike (`mlflow server`, uvicorn, `--workers 1`, SQLite, no job runner):

- **plain**: `mlflow server`, no authentication at all;
- **basic-auth**: `mlflow server --app-name basic-auth` with `auth_cache_ttl_seconds` (so it does
  not hash the password on every request), called as a non-admin user (so its permission checks
  and search filtering run);
- **infinstor**: `mlflow server --app-name infinstor` in company mode, called with an OIDC access
  token from the test identity provider (tests/idp, npm `oidc-provider`; needs node and npm).

Each server is seeded the same way: the caller's experiment with `--runs` runs (params and
metrics), and 50 experiments of another user that the caller may not see (so searches filter).
Then `--clients` concurrent clients run the same mixed workload (runs/search, runs/get,
experiments/search, metrics/get-history, runs/log-batch to the client's own run) for `--seconds`,
server after server, for `--rounds` rounds. Prints throughput, median and p99 latency, and the
ratios to plain MLflow.

    python bench/service.py [--clients 64] [--seconds 20] [--rounds 2] [--runs 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from idp_fixture import IdP, free_port  # noqa: E402
from servers import stop_process_group, wait_until_healthy  # noqa: E402
from service_fixture import CompanyServer, user_token  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password-0123"
BENCH_PASSWORD = "bench-user-password-0123"
WEIGHTS = {"runs/search": 3, "runs/get": 3, "experiments/search": 1, "metrics/get-history": 1, "runs/log-batch": 2}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class MlflowProcess:
    """A plain or basic-auth `mlflow server`, configured like the company one."""

    def __init__(self, root: Path, app_name: str | None):
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
        env.update(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            str(root / "artifacts"),
        ]
        if app_name:
            ini = root / "auth.ini"
            ini.write_text(
                "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                f"database_uri = sqlite:///{root / 'auth.db'}\nadmin_username = admin\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                "auth_cache_ttl_seconds = 600\n"
            )
            env.update(
                MLFLOW_AUTH_CONFIG_PATH=str(ini),
                MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN_PASSWORD,
                MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
            )
            command += ["--app-name", app_name]
        self.log = open(root / "server.log", "ab")
        self.proc = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until_healthy(self.proc, f"{self.uri}/health", 180):
            outcome = "exited" if self.proc.poll() is not None else "did not start"
            raise RuntimeError(f"{app_name or 'mlflow'} server {outcome}; see {root / 'server.log'}")

    def stop(self) -> None:
        stop_process_group(self.proc)
        self.log.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def call(uri: str, headers: dict, method: str, endpoint: str, **kwargs) -> dict:
    response = requests.request(method, f"{uri}/api/2.0/mlflow/{endpoint}", headers=headers, timeout=60, **kwargs)
    if response.status_code != 200:
        raise RuntimeError(f"{method} {endpoint}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else {}


def seed(uri: str, caller: dict, other: dict, runs: int) -> tuple[str, list[str]]:
    experiment_id = call(uri, caller, "POST", "experiments/create", json={"name": "bench"})["experiment_id"]
    run_ids = []
    for index in range(runs):
        run_id = call(uri, caller, "POST", "runs/create", json={"experiment_id": experiment_id})["run"]["info"]["run_id"]
        call(
            uri,
            caller,
            "POST",
            "runs/log-batch",
            json={
                "run_id": run_id,
                "params": [{"key": f"p{k}", "value": str(index * k)} for k in range(5)],
                "metrics": [{"key": f"m{k}", "value": index / (k + 1), "timestamp": 1, "step": s} for k in range(5) for s in range(3)],
            },
        )
        run_ids.append(run_id)
    for index in range(50):
        call(uri, other, "POST", "experiments/create", json={"name": f"not-yours-{index}"})
    return experiment_id, run_ids


class Target:
    def __init__(self, name: str, uri: str, headers: dict, experiment_id: str, run_ids: list[str], client_runs: list[str]):
        self.name, self.uri, self.headers = name, uri, headers
        self.experiment_id, self.run_ids, self.client_runs = experiment_id, run_ids, client_runs


async def client(session: aiohttp.ClientSession, target: Target, own_run: str, deadline: float, latencies: dict, errors: dict) -> None:
    base = f"{target.uri}/api/2.0/mlflow/"
    plan = [op for op, weight in WEIGHTS.items() for _ in range(weight)]
    rng = random.Random()
    step = 0
    while time.monotonic() < deadline:
        op = rng.choice(plan)
        run_id = rng.choice(target.run_ids)
        if op == "runs/search":
            request = ("POST", {"json": {"experiment_ids": [target.experiment_id], "max_results": 50}})
        elif op == "runs/get":
            request = ("GET", {"params": {"run_id": run_id}})
        elif op == "experiments/search":
            request = ("POST", {"json": {"max_results": 20}})
        elif op == "metrics/get-history":
            request = ("GET", {"params": {"run_id": run_id, "metric_key": "m1"}})
        else:
            step += 1
            request = (
                "POST",
                {"json": {"run_id": own_run, "metrics": [{"key": "loss", "value": 1 / step, "timestamp": step, "step": step}]}},
            )
        method, kwargs = request
        started = time.perf_counter()
        try:
            async with session.request(method, base + op, headers=target.headers, **kwargs) as response:
                await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        elapsed = (time.perf_counter() - started) * 1000
        if ok:
            latencies.setdefault(op, []).append(elapsed)
        else:
            errors[op] = errors.get(op, 0) + 1


async def measure(target: Target, clients: int, seconds: float) -> dict:
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(*(client(session, target, own, deadline, latencies, errors) for own in target.client_runs[:clients]))
        wall = time.monotonic() - started
    every = [v for values in latencies.values() for v in values]
    return {
        "requests": len(every),
        "seconds": wall,
        "throughput": len(every) / wall,
        "median_ms": statistics.median(every) if every else None,
        "p99_ms": percentile(every, 99) if every else None,
        "errors": errors,
        "by_operation": {op: {"n": len(v), "median_ms": statistics.median(v), "p99_ms": percentile(v, 99)} for op, v in latencies.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", default=None, help="Write the results here too.")
    parser.add_argument("--keep", action="store_true", help="Keep the servers' directories (logs, databases).")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="infinstor-bench-service-"))
    started: list = []
    try:
        idp = IdP(root / "idp.log", env={"IDP_ACCESS_TOKEN_TTL": "7200"})
        started.append(idp)
        plain = MlflowProcess(root / "plain", None)
        started.append(plain)
        basic_auth = MlflowProcess(root / "basic", "basic-auth")
        started.append(basic_auth)
        ours = CompanyServer(root / "infinstor", idp.issuer, config={"defaults": {"experiment": "private"}})
        started.append(ours)
        print(f"servers up; seeding {args.runs} runs each", flush=True)

        admin = basic("admin", ADMIN_PASSWORD)
        for user in ("bench", "other"):
            response = requests.post(
                f"{basic_auth.uri}/api/2.0/mlflow/users/create",
                headers=admin,
                json={"username": user, "password": BENCH_PASSWORD},
                timeout=30,
            )
            response.raise_for_status()
        alice = {"Authorization": f"Bearer {user_token(idp, 'alice')}"}
        carol = {"Authorization": f"Bearer {user_token(idp, 'carol')}"}
        targets = []
        for name, server, caller, other in (
            ("plain", plain, {}, {}),
            ("basic-auth", basic_auth, basic("bench", BENCH_PASSWORD), basic("other", BENCH_PASSWORD)),
            ("infinstor", ours, alice, carol),
        ):
            experiment_id, run_ids = seed(server.uri, caller, other, args.runs)
            # One run per client for its log-batch calls, created up front (not in the measurement).
            client_runs = [
                call(server.uri, caller, "POST", "runs/create", json={"experiment_id": experiment_id})["run"]["info"]["run_id"]
                for _ in range(args.clients)
            ]
            targets.append(Target(name, server.uri, caller, experiment_id, run_ids, client_runs))

        results: dict[str, list[dict]] = {t.name: [] for t in targets}
        for round_index in range(args.rounds):
            for target in targets:
                result = asyncio.run(measure(target, args.clients, args.seconds))
                results[target.name].append(result)
                print(
                    f"round {round_index + 1} {target.name:11} {result['throughput']:7.1f} req/s  median {result['median_ms']:7.1f} ms"
                    f"  p99 {result['p99_ms']:7.1f} ms  errors {sum(result['errors'].values())}",
                    flush=True,
                )

        def summary(name: str) -> dict:
            rounds = results[name]
            return {
                "throughput": statistics.median(r["throughput"] for r in rounds),
                "median_ms": statistics.median(r["median_ms"] for r in rounds),
                "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
                "errors": sum(sum(r["errors"].values()) for r in rounds),
            }

        base = summary("plain")
        print(f"\n{args.clients} clients, {args.seconds:g} s x {args.rounds} rounds; medians over rounds")
        print("| server | req/s | median ms | p99 ms | errors | throughput / plain | p99 / plain |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        table = {}
        for target in targets:
            s = summary(target.name)
            s["throughput_ratio"] = s["throughput"] / base["throughput"]
            s["p99_ratio"] = s["p99_ms"] / base["p99_ms"]
            table[target.name] = s
            print(
                f"| {target.name} | {s['throughput']:.1f} | {s['median_ms']:.1f} | {s['p99_ms']:.1f} | {s['errors']} | "
                f"{s['throughput_ratio']:.3f} | {s['p99_ratio']:.3f} |"
            )
        if args.json:
            Path(args.json).write_text(json.dumps({"args": vars(args), "summary": table, "rounds": results}, indent=2))
        return 0
    finally:
        for process in reversed(started):
            try:
                process.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {process}: {exc}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
