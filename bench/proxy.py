#!/usr/bin/env python
"""Benchmark: the embedded MLflow service called directly (with its secret) vs through the proxy.

Starts a Jupyter server (`jupyter server`, the extension on its embedded default, a temporary
JUPYTER_DATA_DIR) and, through it, the embedded MLflow service; seeds an experiment with 100 runs
and a 100 MB artifact; then runs the same MLflow calls directly and through
`/infinstor/api/mlflow/`, with 1 and with 32 concurrent clients: with 1 client direct and proxied
calls are interleaved one by one, with 32 whole rounds alternate. Prints medians, p95 and the
proxied/direct ratios, and first the floor any Jupyter server extension stands on: the median of
an authenticated no-op Jupyter API call (`GET /api/me`) next to MLflow's `GET /health`, both
interleaved one by one from the same client.

    python bench/proxy.py [--rounds 4] [--requests 40] [--artifact-mb 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

TARGETS = {"latency_1": 1.10, "latency_32": 1.15, "throughput": 0.90}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Servers:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.proc: subprocess.Popen | None = None
        self.jupyter = f"http://127.0.0.1:{self.port}"
        self.mlflow = ""
        self.secret = ""

    def start(self) -> None:
        env = dict(os.environ)
        for name in ("MLFLOW_TRACKING_URI", "INFINSTOR_TRACKING_URI"):
            env.pop(name, None)
        env.update(
            JUPYTER_DATA_DIR=str(self.workdir / "data"),
            JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
            JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
        )
        (self.workdir / "root").mkdir()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "server",
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                "--ServerApp.password=",
                f"--ServerApp.root_dir={self.workdir / 'root'}",
                "--ServerApp.jpserver_extensions={'infinstor_jupyterlab': True}",
            ],
            env=env,
            stdout=open(self.workdir / "jupyter.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 180
        headers = {"Authorization": f"token {self.token}"}
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{self.jupyter}/infinstor/api/status", headers=headers) as r:
                    if r.status == 200:
                        status = await r.json()
                        if status["tracking"]["state"] == "running":
                            self.mlflow = status["tracking"]["uri"]
                            secret_file = self.workdir / "data" / "infinstor" / "embedded" / "secret"
                            self.secret = secret_file.read_text().strip()
                            return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        raise RuntimeError(f"Jupyter/MLflow did not start; see {self.workdir / 'jupyter.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class Target:
    def __init__(self, name: str, base: str, headers: dict):
        self.name = name
        self.base = base.rstrip("/")
        self.headers = headers


async def seed(session, direct: Target, runs: int, artifact_mb: int):
    async def post(path, body):
        async with session.post(f"{direct.base}/api/2.0/mlflow/{path}", json=body, headers=direct.headers) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    exp = (await post("experiments/create", {"name": f"bench-{time.time()}"}))["experiment_id"]
    run_ids = []
    now = int(time.time() * 1000)
    for i in range(runs):
        run_id = (await post("runs/create", {"experiment_id": exp, "run_name": f"run-{i}"}))["run"]["info"]["run_id"]
        await post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "params": [{"key": f"p{j}", "value": str(i * j)} for j in range(5)],
                "metrics": [{"key": f"m{j}", "value": i / (j + 1), "timestamp": now, "step": 0} for j in range(5)],
                "tags": [{"key": "bench", "value": "proxy"}],
            },
        )
        run_ids.append(run_id)
    artifact = f"{exp}/{run_ids[0]}/artifacts/blob.bin"
    block = os.urandom(1024 * 1024)

    async def body():
        for _ in range(artifact_mb):
            yield block

    async with session.put(
        f"{direct.base}/api/2.0/mlflow-artifacts/artifacts/{artifact}",
        data=body(),
        headers={**direct.headers, "Content-Length": str(artifact_mb * 1024 * 1024)},
    ) as r:
        assert r.status == 200, await r.text()
    return exp, run_ids, artifact


def operations(exp, run_ids, artifact):
    counter = {"i": 0}

    def log_batch_body():
        counter["i"] += 1
        return {
            "run_id": run_ids[counter["i"] % len(run_ids)],
            "metrics": [{"key": "loss", "value": 1.0 / counter["i"], "timestamp": int(time.time() * 1000), "step": counter["i"]}],
        }

    return {
        "runs/search (100 runs)": ("POST", "api/2.0/mlflow/runs/search", lambda: {"experiment_ids": [exp], "max_results": 100}),
        "runs/get": ("GET", f"api/2.0/mlflow/runs/get?run_id={run_ids[0]}", None),
        "runs/log-batch": ("POST", "api/2.0/mlflow/runs/log-batch", log_batch_body),
        "artifact download": ("GET", f"api/2.0/mlflow-artifacts/artifacts/{artifact}", None),
    }


async def one(session, target: Target, method, path, body_fn) -> tuple[float, int, int]:
    started = time.perf_counter()
    kwargs = {"json": body_fn()} if body_fn else {}
    async with session.request(method, f"{target.base}/{path}", headers=target.headers, **kwargs) as r:
        size = 0
        async for chunk in r.content.iter_chunked(1 << 20):
            size += len(chunk)
    return time.perf_counter() - started, size, r.status


async def round_(session, target, op, clients, per_client):
    method, path, body_fn = op
    latencies, total, errors = [], 0, {}

    async def client():
        nonlocal total
        for _ in range(per_client):
            elapsed, size, status = await one(session, target, method, path, body_fn)
            if status == 200:  # MLflow's own failures (e.g. sqlite busy) are counted, not timed
                latencies.append(elapsed)
                total += size
            else:
                errors[status] = errors.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, total, time.perf_counter() - started, errors


async def measure_floor(session, servers: Servers, calls: int) -> dict:
    """Medians (ms) of one bare HTTP round trip to each server, interleaved: what a hop costs."""
    probes = {
        "jupyter_api_me_ms": (f"{servers.jupyter}/api/me", {"Authorization": f"token {servers.token}"}),
        "mlflow_health_ms": (f"{servers.mlflow}/health", {"Authorization": f"Bearer {servers.secret}"}),
    }
    samples: dict[str, list[float]] = {name: [] for name in probes}
    for i in range(calls + 20):
        for name, (url, headers) in probes.items():
            started = time.perf_counter()
            async with session.get(url, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{url} answered {r.status}")
            if i >= 20:  # the first calls warm the connections
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


async def main(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="infinstor-bench-"))
    servers = Servers(workdir)
    servers.start()
    results = []
    floor: dict = {}
    try:
        # Idle connections closed after 4 s, before uvicorn's 5 s keep-alive closes them (a POST
        # sent on a connection uvicorn is closing fails; aiohttp retries only idempotent calls).
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=4)
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await servers.wait(session)
            direct = Target("direct", servers.mlflow, {"Authorization": f"Bearer {servers.secret}"})
            proxy = Target("proxy", f"{servers.jupyter}/infinstor/api/mlflow", {"Authorization": f"token {servers.token}"})
            exp, run_ids, artifact = await seed(session, direct, 100, args.artifact_mb)
            floor = await measure_floor(session, servers, args.floor_calls)
            print(
                f"  floor: Jupyter GET /api/me (authenticated no-op) {floor['jupyter_api_me_ms']:.3f} ms, "
                f"MLflow GET /health {floor['mlflow_health_ms']:.3f} ms (medians of {args.floor_calls})",
                flush=True,
            )
            ops = operations(exp, run_ids, artifact)
            for name, op in ops.items():
                is_artifact = name.startswith("artifact")
                for clients in (1, 32):
                    if is_artifact:
                        per_client = args.artifact_downloads if clients == 1 else 1
                        rounds = args.rounds if clients == 1 else 2
                    else:
                        per_client = max(1, args.requests // clients) if clients > 1 else args.requests
                        rounds = args.rounds
                    # warm-up both paths
                    for target in (direct, proxy):
                        await round_(session, target, op, min(clients, 4), 1)
                    samples = {"direct": ([], 0, 0.0), "proxy": ([], 0, 0.0)}
                    errors = {"direct": {}, "proxy": {}}

                    def record(target, lat, size, wall, errs):
                        prev = samples[target.name]
                        samples[target.name] = (prev[0] + lat, prev[1] + size, prev[2] + wall)
                        for code, n in errs.items():
                            errors[target.name][code] = errors[target.name].get(code, 0) + n

                    if clients == 1 and not args.no_interleave:
                        # One client: direct and proxied calls interleaved one by one (alternating
                        # which goes first), so drift in machine load hits both alike.
                        for i in range(rounds * per_client):
                            order = (direct, proxy) if i % 2 == 0 else (proxy, direct)
                            for target in order:
                                lat, size, wall, errs = await round_(session, target, op, 1, 1)
                                record(target, lat, size, wall, errs)
                    else:
                        for r in range(rounds):
                            order = (direct, proxy) if r % 2 == 0 else (proxy, direct)
                            for target in order:
                                lat, size, wall, errs = await round_(session, target, op, clients, per_client)
                                record(target, lat, size, wall, errs)
                    row = {"operation": name, "clients": clients}
                    for t in ("direct", "proxy"):
                        lat, size, wall = samples[t]
                        row[f"{t}_errors"] = errors[t]
                        row[f"{t}_n"] = len(lat)
                        row[f"{t}_median_ms"] = statistics.median(lat) * 1000
                        row[f"{t}_p95_ms"] = percentile(lat, 0.95) * 1000
                        row[f"{t}_rps"] = len(lat) / wall
                        row[f"{t}_mb_s"] = size / wall / 2**20
                    row["median_ratio"] = row["proxy_median_ms"] / row["direct_median_ms"]
                    row["p95_ratio"] = row["proxy_p95_ms"] / row["direct_p95_ms"]
                    row["throughput_ratio"] = row["proxy_mb_s"] / row["direct_mb_s"]
                    row["rps_ratio"] = row["proxy_rps"] / row["direct_rps"]
                    results.append(row)
                    print_row(row, is_artifact, flush=True)
    finally:
        servers.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_table(results)
    if floor:
        print(
            f"\nFloor (medians): Jupyter GET /api/me {floor['jupyter_api_me_ms']:.3f} ms, "
            f"MLflow GET /health {floor['mlflow_health_ms']:.3f} ms"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"floor": floor, "results": results}, indent=2))
    return 0


def print_row(row, is_artifact, flush=False):
    if is_artifact:
        print(
            f"  {row['operation']:<24} c={row['clients']:<3} direct {row['direct_mb_s']:7.0f} MB/s  "
            f"proxy {row['proxy_mb_s']:7.0f} MB/s  ratio {row['throughput_ratio']:.2f}  "
            f"(median {row['direct_median_ms']:.0f} / {row['proxy_median_ms']:.0f} ms)",
            flush=flush,
        )
    else:
        print(
            f"  {row['operation']:<24} c={row['clients']:<3} direct {row['direct_median_ms']:7.2f}/"
            f"{row['direct_p95_ms']:7.2f} ms  proxy {row['proxy_median_ms']:7.2f}/{row['proxy_p95_ms']:7.2f} ms  "
            f"median x{row['median_ratio']:.3f}  p95 x{row['p95_ratio']:.3f}  "
            f"errors {row['direct_errors'] or '-'} / {row['proxy_errors'] or '-'}",
            flush=flush,
        )


def print_table(results):
    print(
        "| operation | clients | direct median ms | direct p95 ms | proxy median ms | proxy p95 ms | median ratio | p95 ratio | direct MB/s or req/s | proxy MB/s or req/s | throughput ratio | errors direct/proxy |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        art = r["operation"].startswith("artifact")
        d_tp = f"{r['direct_mb_s']:.0f} MB/s" if art else f"{r['direct_rps']:.0f} req/s"
        p_tp = f"{r['proxy_mb_s']:.0f} MB/s" if art else f"{r['proxy_rps']:.0f} req/s"
        tp_ratio = r["throughput_ratio"] if art else r["rps_ratio"]
        print(
            f"| {r['operation']} | {r['clients']} | {r['direct_median_ms']:.2f} | {r['direct_p95_ms']:.2f} | "
            f"{r['proxy_median_ms']:.2f} | {r['proxy_p95_ms']:.2f} | {r['median_ratio']:.3f} | "
            f"{r['p95_ratio']:.3f} | {d_tp} | {p_tp} | {tp_ratio:.3f} | "
            f"{r['direct_errors'] or '-'} / {r['proxy_errors'] or '-'} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="alternating direct/proxy rounds per case")
    parser.add_argument("--requests", type=int, default=40, help="requests per round (split across clients)")
    parser.add_argument("--artifact-mb", type=int, default=100)
    parser.add_argument("--artifact-downloads", type=int, default=2, help="downloads per round, 1 client")
    parser.add_argument("--floor-calls", type=int, default=500, help="calls per server for the floor")
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--no-interleave", action="store_true", help="1 client: alternate whole rounds instead of single calls")
    sys.exit(asyncio.run(main(parser.parse_args())))
