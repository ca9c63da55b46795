#!/usr/bin/env python
"""Load and fault harness for the company tracking service at company scale, on one machine, on
loopback only (every address is 127.0.0.1; there is no option to change that).

Starts a throwaway PostgreSQL (initdb/pg_ctl, as the `postgres` user when run as root), two
replicas of `mlflow server --app-name infinstor` in company mode (`--workers N`, no job runner,
one shared artifact directory) and nginx in front of them (Debian's nginx as a foreground process
with its own prefix; the proxy settings are deploy/nginx/infinstor-proxy.conf itself). Seeds
3 organisations x 10 groups (one shared experiment and one registered model per group, created
through the service so the default grants apply) and `--users` users: six sign in for real at
the test identity provider (tests/idp, OIDC access tokens), the others get pre-minted API tokens.
Every user creates their own run, then the timed phase starts.

Each user makes a request about once every `--think` seconds (uniform 0.5x-1.5x), from this mix:
log-batch to their run 30 %, runs/search in their group's experiment 20 %, runs/get 15 %,
experiments/search 10 %, registered-models/get 10 %, model-versions/search 5 %,
metrics/get-history 10 %; over one keep-alive connection of its own, with the retries of MLflow's
Python client (connection errors, 429/500/502/503/504, exponential back-off, Retry-After honoured).

Faults during the run: at 35 % of it one replica is killed (SIGKILL, its whole process group);
at 50 % it is started again and must take requests again (nginx's access log shows which replica
served what); at 75 % PostgreSQL is stopped (fast: every connection dropped) for `--db-down`
seconds and started again. Afterwards every metric a user logged and got a 200 for is read back.

Reports throughput, p50/p95/p99 (whole run, and steady state outside the fault windows), errors
after retries, what the retries saw, the load of the machine, PostgreSQL connections and replica
memory. Bounded: it stops by itself after `--seconds` (plus seeding and checking) and always
stops everything it started.

    python bench/load.py [--users 1500] [--seconds 120] [--think 10] [--workers 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import aiohttp
import psutil
import psycopg2
import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from idp_fixture import AUDIENCE, IdP, free_port  # noqa: E402
from pg_tools import RestartablePostgres  # noqa: E402
from servers import process_tree, stop_process_group  # noqa: E402
from service_fixture import user_token  # noqa: E402

LOOPBACK = "127.0.0.1"
ORGS = {  # the IdP's own users' organisations and groups come first, so they share with the rest
    "acme": ["vision", "nlp", "sales", "acme-admins"] + [f"acme-team-{i}" for i in range(4, 10)],
    "globex": ["research"] + [f"globex-team-{i}" for i in range(1, 10)],
    "initech": [f"initech-team-{i}" for i in range(10)],
}
IDP_USERS = {
    "alice": ("acme", "vision"),
    "bob": ("acme", "vision"),
    "carol": ("acme", "nlp"),
    "dave": ("globex", "research"),
    "erin": ("acme", "sales"),
    "frank": ("acme", "acme-admins"),
}
MIX = [
    ("log-batch", 30),
    ("runs/search", 20),
    ("runs/get", 15),
    ("experiments/search", 10),
    ("registered-models/get", 10),
    ("model-versions/search", 5),
    ("metrics/get-history", 10),
]
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_ATTEMPTS = 8


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# -- processes ---------------------------------------------------------------------------------------
class Replica:
    def __init__(self, name: str, root: Path, backend_uri: str, artifacts: Path, config_path: Path, workers: int):
        self.name, self.root, self.backend_uri, self.artifacts = name, root, backend_uri, artifacts
        self.config_path, self.workers = config_path, workers
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = open(root / f"{name}.log", "ab")

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
        env.update(
            INFINSTOR_SERVICE_MODE="company",
            INFINSTOR_SERVICE_CONFIG=str(self.config_path),
            MLFLOW_ENABLE_WORKSPACES="true",
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            PYTHONUNBUFFERED="1",
            MLFLOW_SQLALCHEMYSTORE_POOL_SIZE="20",
            MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW="20",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--app-name",
                "infinstor",
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--backend-store-uri",
                self.backend_uri,
                "--serve-artifacts",
                "--artifacts-destination",
                str(self.artifacts),
                "--default-artifact-root",
                "mlflow-artifacts:/",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 180) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited; see {self.root / (self.name + '.log')}")
            try:
                if requests.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"replica {self.name} did not become ready")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc:
            stop_process_group(self.proc)

    def rss_mb(self) -> float:
        if not self.proc or self.proc.poll() is not None:
            return 0.0
        try:
            return sum(p.memory_info().rss for p in process_tree(self.proc.pid)) / 2**20
        except psutil.Error:
            return 0.0


class Nginx:
    def __init__(self, root: Path, replicas: list[Replica], proxy_conf: Path):
        self.prefix = root / "nginx"
        for sub in ("logs", "tmp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        for path in (self.prefix, self.prefix / "tmp", self.prefix / "logs"):
            os.chmod(path, 0o777 if path.name in ("tmp", "logs") else 0o755)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.access_log = self.prefix / "logs" / "access.log"
        servers = "\n".join(f"        server {r.url[len('http://') :]} max_fails=2 fail_timeout=10s;" for r in replicas)
        tmp = self.prefix / "tmp"
        (self.prefix / "nginx.conf").write_text(f"""
daemon off;
worker_processes 2;
worker_rlimit_nofile 16384;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format bench '$msec $status "$upstream_addr" "$upstream_status" $request_time $request_method';
    access_log {self.access_log} bench buffer=256k flush=1s;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    upstream infinstor_tracking {{
        least_conn;
{servers}
        keepalive 64;
        keepalive_timeout 4s;
        keepalive_requests 10000;
    }}
    server {{
        listen {LOOPBACK}:{self.port};
        client_max_body_size 5g;
        location / {{
            proxy_pass http://infinstor_tracking;
            include {proxy_conf.resolve()};
        }}
    }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        test = subprocess.run([nginx, "-t", "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")], capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx config: {test.stderr}")
        self.log = open(self.prefix / "logs" / "stderr.log", "ab")
        self.proc = subprocess.Popen(
            [nginx, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/health", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: flushes the access log
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class CpuMeter:
    """CPU-seconds each part of the harness used during the timed phase, from its processes'
    counters sampled every few seconds: where the machine's cores went, and so what a request costs.
    A process that appears later (new database connections) counts from zero, except in the parts
    named in `sample(starting=...)`, whose new processes count from then on (the restarted replica,
    once it is ready); one that dies counts up to its last sample (so sample just before a kill)."""

    def __init__(self, parts: dict[str, Callable[[], list[psutil.Process]]]):
        self.parts = parts
        self.last: dict[tuple[str, int, float], float] = {}
        self.used: Counter = Counter()

    def sample(self, baseline: bool = False, starting: tuple[str, ...] = ()) -> None:
        for name, processes in self.parts.items():
            for process in processes():
                try:
                    times = process.cpu_times()
                    key = (name, process.pid, process.create_time())
                except psutil.Error:
                    continue
                total = times.user + times.system
                if not baseline and (key in self.last or name not in starting):
                    self.used[name] += total - self.last.get(key, 0.0)
                self.last[key] = total

    def report(self, requests: int, seconds: float) -> dict:
        parts = {name: round(self.used[name], 1) for name in self.parts}
        total = sum(self.used.values())
        return {
            "seconds": parts,
            "total": round(total, 1),
            "cores_busy": round(total / seconds, 2),
            "ms_per_request": {name: round(1000 * used / requests, 2) for name, used in {**parts, "total": total}.items()}
            if requests
            else {},
        }


# -- the simulated users ------------------------------------------------------------------------------
class Stats:
    def __init__(self):
        self.requests: list[tuple[float, float, str, bool]] = []  # (start, latency, kind, ok)
        self.attempt_outcomes: Counter = Counter()  # what the retried attempts saw
        self.retried: Counter = Counter()
        self.outcomes_by_time: dict[int, Counter] = defaultdict(Counter)  # 10-s bucket -> retried outcomes
        self.error_bodies: list[str] = []  # a few 500 bodies, to say what they were
        self.t0 = time.monotonic()
        # failed attempts per logical request, by what failed: {"502": Counter({1: n, 2: m}), ...}
        self.failures_per_request: dict[str, Counter] = defaultdict(Counter)
        self.errors: list[str] = []
        self.events: dict[str, float] = {}
        self.cpu: CpuMeter | None = None


class User:
    def __init__(self, name: str, org: str, group: str, token: str, kind: str):
        self.name, self.org, self.group, self.token, self.kind = name, org, group, token, kind
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.model: str | None = None
        self.step = 0
        self.logged: dict[int, float] = {}  # acknowledged metric steps -> values


async def call(
    session: aiohttp.ClientSession, base: str, user: User, method: str, path: str, stats: Stats | None, *, json_body=None, params=None
) -> tuple[int, dict]:
    """One logical request with MLflow-client-like retries. Returns (final status, body)."""
    headers = {"Authorization": f"Bearer {user.token}"}
    failed: Counter = Counter()
    for attempt in range(MAX_ATTEMPTS):
        retry_after = 0.0
        try:
            async with session.request(method, f"{base}/{path}", json=json_body, params=params, headers=headers) as response:
                body = await response.read()
                status = response.status
                if status not in RETRY_STATUSES:
                    if stats is not None:
                        for what, times in failed.items():
                            stats.failures_per_request[what][times] += 1
                    return status, (json.loads(body) if body and body[:1] in (b"{", b"[") else {})
                outcome = str(status)
                if status == 500 and stats is not None and len(stats.error_bodies) < 5:
                    stats.error_bodies.append(body[:300].decode(errors="replace"))
                retry_after = float(response.headers.get("Retry-After", "0") or 0)
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome = type(exc).__name__
        failed[outcome] += 1
        if stats is not None:
            stats.attempt_outcomes[outcome] += 1
            stats.retried[path] += 1
            stats.outcomes_by_time[int((time.monotonic() - stats.t0) // 10) * 10][outcome] += 1
        if attempt == MAX_ATTEMPTS - 1:
            return -1, {"error": outcome}
        await asyncio.sleep(max(retry_after, min(0.25 * 2**attempt, 4.0)) * random.uniform(0.8, 1.2))
    return -1, {}


async def one_request(session, base, user: User, stats: Stats) -> None:
    kind = random.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
    started = time.monotonic()
    if kind == "log-batch":
        step = user.step
        user.step += 1
        value = round(random.random(), 6)
        status, _ = await call(
            session,
            base,
            user,
            "POST",
            "api/2.0/mlflow/runs/log-batch",
            stats,
            json_body={
                "run_id": user.run_id,
                "metrics": [{"key": "loss", "value": value, "timestamp": int(time.time() * 1000), "step": step}],
            },
        )
        if status == 200:
            user.logged[step] = value
    elif kind == "runs/search":
        status, _ = await call(
            session,
            base,
            user,
            "POST",
            "api/2.0/mlflow/runs/search",
            stats,
            json_body={"experiment_ids": [user.experiment_id], "max_results": 20},
        )
    elif kind == "runs/get":
        status, _ = await call(session, base, user, "GET", "api/2.0/mlflow/runs/get", stats, params={"run_id": user.run_id})
    elif kind == "experiments/search":
        status, _ = await call(session, base, user, "POST", "api/2.0/mlflow/experiments/search", stats, json_body={"max_results": 20})
    elif kind == "registered-models/get":
        status, _ = await call(session, base, user, "GET", "api/2.0/mlflow/registered-models/get", stats, params={"name": user.model})
    elif kind == "model-versions/search":
        status, _ = await call(
            session, base, user, "GET", "api/2.0/mlflow/model-versions/search", stats, params={"filter": f"name='{user.model}'"}
        )
    else:
        status, _ = await call(
            session, base, user, "GET", "api/2.0/mlflow/metrics/get-history", stats, params={"run_id": user.run_id, "metric_key": "loss"}
        )
    ok = status == 200
    stats.requests.append((started, time.monotonic() - started, kind, ok))
    if not ok:
        stats.errors.append(f"{kind} {user.name}: {status}")


async def user_loop(base, user: User, stats: Stats, stop_at: list[float], think: float, ramp: float) -> None:
    connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=60, connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.sleep(random.uniform(0, ramp))
        while time.monotonic() < stop_at[0]:
            await one_request(session, base, user, stats)
            await asyncio.sleep(random.uniform(0.5, 1.5) * think)


# -- seeding -------------------------------------------------------------------------------------------
async def gather_limited(coros, limit: int = 32):
    semaphore = asyncio.Semaphore(limit)

    async def run(coro):
        async with semaphore:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def seed(base: str, users: list[User]) -> None:
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        by_group: dict[tuple[str, str], list[User]] = defaultdict(list)
        for user in users:
            by_group[(user.org, user.group)].append(user)

        async def setup_group(org, group, members):
            owner = members[0]
            name = f"{group}-experiment"
            status, body = await call(session, base, owner, "POST", "api/2.0/mlflow/experiments/create", None, json_body={"name": name})
            assert status == 200, (status, body)
            experiment_id = body["experiment_id"]
            status, body = await call(
                session,
                base,
                owner,
                "POST",
                "api/2.0/mlflow/runs/create",
                None,
                json_body={"experiment_id": experiment_id, "run_name": "baseline"},
            )
            assert status == 200, (status, body)
            run = body["run"]["info"]
            model = f"{group}-model"
            for path, payload in (
                ("registered-models/create", {"name": model}),
                ("model-versions/create", {"name": model, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]}),
            ):
                status, body = await call(session, base, owner, "POST", f"api/2.0/mlflow/{path}", None, json_body=payload)
                assert status == 200, (path, status, body)
            for member in members:
                member.experiment_id, member.model = experiment_id, model

        await gather_limited([setup_group(o, g, m) for (o, g), m in by_group.items()], 8)

        async def own_run(user):
            status, body = await call(
                session,
                base,
                user,
                "POST",
                "api/2.0/mlflow/runs/create",
                None,
                json_body={"experiment_id": user.experiment_id, "run_name": user.name},
            )
            assert status == 200, (user.name, status, body)
            user.run_id = body["run"]["info"]["run_id"]

        await gather_limited([own_run(u) for u in users], 32)


async def verify(base: str, users: list[User]) -> dict:
    """Every metric step a user got a 200 for is in the run's history, with its value."""
    connector = aiohttp.TCPConnector(limit=32)
    missing, checked = [], 0
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def check(user):
            nonlocal checked
            if not user.logged:
                return
            status, body = await call(
                session, base, user, "GET", "api/2.0/mlflow/metrics/get-history", None, params={"run_id": user.run_id, "metric_key": "loss"}
            )
            stored = {m["step"]: m["value"] for m in body.get("metrics", [])} if status == 200 else {}
            for step, value in user.logged.items():
                checked += 1
                if stored.get(step) != value:
                    missing.append((user.name, step))

        await gather_limited([check(u) for u in users], 32)
    return {"acknowledged_metrics": checked, "missing": len(missing), "missing_examples": missing[:10]}


# -- the run --------------------------------------------------------------------------------------------
def nginx_log_summary(path: Path, t0_wall: float, replicas: list[Replica], bucket: float = 10.0) -> dict:
    """Requests per replica per time bucket (seconds since the timed phase began), from nginx's log."""
    names = {r.url[len("http://") :]: r.name for r in replicas}
    buckets: dict[int, Counter] = defaultdict(Counter)
    statuses: Counter = Counter()
    passed_on: list[str] = []
    for line in path.read_text().splitlines():
        match = re.match(r'^(\S+) (\S+) "([^"]*)" "([^"]*)"', line)
        if not match:
            continue
        at, status, upstream = float(match[1]), match[2], match[3]
        if at < t0_wall:
            continue
        final = upstream.split(",")[-1].strip()
        buckets[int((at - t0_wall) // bucket)][names.get(final, final or "-")] += 1
        statuses[status] += 1
        if "," in upstream or ":" not in final:
            buckets[int((at - t0_wall) // bucket)]["passed on by nginx"] += 1
            if len(passed_on) < 10:
                passed_on.append(line)
    return {
        "per_bucket": {int(k * bucket): dict(v) for k, v in sorted(buckets.items())},
        "statuses": dict(statuses),
        "passed_on_examples": passed_on,
    }


def summarize(stats: Stats, t0: float, windows: list[tuple[float, float]], ramp: float, seconds: float) -> dict:
    def block(rows):
        latencies = [lat * 1000 for _, lat, _, _ in rows]
        return {
            "requests": len(rows),
            "errors": sum(1 for r in rows if not r[3]),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p95_ms": round(percentile(latencies, 95), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1) if latencies else None,
        }

    rows = stats.requests
    steady = [r for r in rows if r[0] - t0 >= ramp and not any(a <= r[0] - t0 < b for a, b in windows)]
    by_kind = {kind: block([r for r in steady if r[2] == kind]) for kind, _ in MIX}
    result = {"all": block(rows), "steady": block(steady), "steady_by_kind": by_kind}
    names = ("replica_down", "database_restart")
    for name, (a, b) in zip(names, windows):
        result[name] = block([r for r in rows if a <= r[0] - t0 < b])
    result["throughput_rps"] = round(len(rows) / seconds, 1)
    merged: list[list[float]] = []
    for a, b in sorted((max(a, ramp), min(b, seconds)) for a, b in windows):
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    steady_seconds = max(1.0, seconds - ramp - sum(b - a for a, b in merged))
    result["steady_seconds"] = round(steady_seconds, 1)
    result["steady_throughput_rps"] = round(len(steady) / steady_seconds, 1)
    return result


async def timed_phase(args, base, users, stats, replicas, cluster, nginx, samples) -> tuple[float, list[tuple[float, float]]]:
    loop = asyncio.get_running_loop()
    t0 = stats.t0 = time.monotonic()
    stats.events["t0_wall"] = time.time()
    # The users stop at t0 + seconds, or (at most 60 s later) 15 s after the database is back if
    # a slow replica start pushed the database restart late: every fault happens under load.
    stop_at = [t0 + args.seconds]
    tasks = [asyncio.create_task(user_loop(base, u, stats, stop_at, args.think, args.ramp)) for u in users]

    def mark(name):
        stats.events[name] = round(time.monotonic() - t0, 2)
        print(f"  t={stats.events[name]:6.1f}s  {name}", flush=True)

    async def sampler():
        conn = None
        while time.monotonic() < stop_at[0]:
            sample = {
                "t": round(time.monotonic() - t0, 1),
                "load1": os.getloadavg()[0],
                "cpu": psutil.cpu_percent(None),
                "rss_mb": {r.name: round(r.rss_mb()) for r in replicas},
            }
            try:
                if conn is None or conn.closed:
                    conn = psycopg2.connect(host=LOOPBACK, port=cluster.port, user="postgres", dbname="postgres", connect_timeout=2)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'mlflow'")
                    sample["pg_connections"] = cur.fetchone()[0]
            except psycopg2.Error:
                sample["pg_connections"] = None
                conn = None
            samples.append(sample)
            stats.cpu.sample()
            await asyncio.sleep(5)
        if conn is not None and not conn.closed:
            conn.close()

    booting: set[Replica] = set()  # a replica's start-up is not load: its CPU counts once it is ready
    stats.cpu = CpuMeter(
        {
            "replicas": lambda: [
                p for r in replicas if r not in booting for p in process_tree(r.proc.pid if r.proc and r.proc.poll() is None else None)
            ],
            "postgresql": lambda: process_tree(cluster.postmaster_pid()),
            "nginx": lambda: process_tree(nginx.proc.pid),
            "client": lambda: [psutil.Process()],  # this process only: the users and the fault driver
        }
    )
    stats.cpu.sample(baseline=True)
    sampler_task = asyncio.create_task(sampler())
    psutil.cpu_percent(None)
    victim = replicas[1]
    await asyncio.sleep(args.seconds * 0.35)
    stats.cpu.sample()
    mark("replica_killed")
    victim.kill()
    await asyncio.sleep(max(0.0, t0 + args.seconds * 0.50 - time.monotonic()))
    mark("replica_restarting")
    booting.add(victim)
    victim.start()
    ready_after = await loop.run_in_executor(None, victim.wait_ready)
    mark("replica_ready")
    booting.discard(victim)
    stats.cpu.sample(starting=("replicas",))
    stats.events["replica_start_seconds"] = round(ready_after, 1)
    await asyncio.sleep(max(0.0, t0 + args.seconds * 0.75 - time.monotonic()))
    stop_at[0] = min(max(stop_at[0], time.monotonic() + args.db_down + 15), t0 + args.seconds + 60)
    mark("database_stopping")
    await loop.run_in_executor(None, cluster.stop_server, "fast")
    mark("database_stopped")
    await asyncio.sleep(args.db_down)
    await loop.run_in_executor(None, cluster.start_server)
    mark("database_started")
    await asyncio.gather(*tasks)
    await sampler_task
    stats.cpu.sample()
    mark("users_done")
    stats.events["duration"] = round(time.monotonic() - t0, 2)
    events = stats.events
    windows = [(events["replica_killed"], events["replica_ready"] + 5), (events["database_stopping"], events["database_started"] + 10)]
    return t0, windows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=120.0, help="the timed phase (10-900)")
    parser.add_argument("--think", type=float, default=10.0, help="mean seconds between a user's requests")
    parser.add_argument("--ramp", type=float, default=10.0, help="users start spread over this many seconds")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per replica (1-4)")
    parser.add_argument("--db-down", type=float, default=3.0, help="seconds PostgreSQL stays stopped")
    parser.add_argument(
        "--proxy-conf",
        type=Path,
        default=REPO / "deploy" / "nginx" / "infinstor-proxy.conf",
        help="nginx proxy settings to include (default: the shipped deploy/nginx/infinstor-proxy.conf)",
    )
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    if not (10 <= args.seconds <= 900 and 1 <= args.users <= 5000 and 1 <= args.workers <= 4 and 0 < args.db_down <= 30):
        parser.error("out of bounds: --seconds 10-900, --users 1-5000, --workers 1-4, --db-down 0-30")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.users + 1000:
        parser.error(f"the open-file limit ({hard}) is too low for {args.users} users")

    root = Path(tempfile.mkdtemp(prefix="infinstor-load-"))
    started: list = []
    results: dict = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
    }
    try:
        print(f"[setup] PostgreSQL, identity provider, 2 replicas x {args.workers} workers, nginx  ({root})", flush=True)
        cluster = RestartablePostgres()
        started.append(cluster)
        conn = psycopg2.connect(host=LOOPBACK, port=cluster.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ALTER SYSTEM SET max_connections = 400")
        conn.close()
        cluster.stop_server()
        cluster.start_server()
        backend_uri = cluster.create_database("mlflow")
        idp = IdP(root / "idp.log", env={"IDP_ACCESS_TOKEN_TTL": "3600"})  # outlives the run
        started.append(idp)
        config_path = root / "service.yaml"
        config_path.write_text(
            yaml.safe_dump({"oidc": {"issuer": idp.issuer, "audience": AUDIENCE, "leeway": 5}, "org_admin_groups": ["acme-admins"]})
        )
        artifacts = root / "artifacts"
        replicas = [Replica(name, root, backend_uri, artifacts, config_path, args.workers) for name in ("replica-a", "replica-b")]
        replicas[0].start()
        started.append(replicas[0])
        replicas[0].wait_ready()  # the first one migrates the schema; then the second
        replicas[1].start()
        started.append(replicas[1])
        replicas[1].wait_ready()
        nginx = Nginx(root, replicas, args.proxy_conf)
        started.append(nginx)
        base = nginx.url

        print(f"[seed] {args.users} users in {sum(len(g) for g in ORGS.values())} groups of {len(ORGS)} organisations", flush=True)
        seed_started = time.monotonic()
        users: list[User] = []
        for name, (org, group) in IDP_USERS.items():
            if len(users) < args.users:
                users.append(User(name, org, group, user_token(idp, name), "oidc"))
        from infinstor_jupyterlab.tracking_service.db import make_engine
        from infinstor_jupyterlab.tracking_service.service_store import ServiceStore

        store = ServiceStore(make_engine(backend_uri))
        groups = [(org, g) for org, gs in ORGS.items() for g in gs if g != "acme-admins"]
        index = 0
        while len(users) < args.users:
            org, group = groups[index % len(groups)]
            name = f"user{index:04d}"
            store.see_user(org, name, f"{name}@{org}.example.com", [group])
            token, _ = store.create_token(org, name, "load-test", 86400)
            users.append(User(name, org, group, token, "api_token"))
            index += 1
        store.engine.dispose()
        # An organisation's workspace is made when its first member signs in with the IdP (API
        # tokens are created while signed in); these users never did, so make them here.
        from mlflow.entities import Workspace
        from mlflow.exceptions import MlflowException
        from mlflow.store.workspace.sqlalchemy_store import SqlAlchemyStore as WorkspaceStore

        workspaces = WorkspaceStore(backend_uri)
        for org in ORGS:
            try:
                workspaces.get_workspace(org)
            except MlflowException:
                workspaces.create_workspace(Workspace(name=org, description="InfinStor organisation"))
        asyncio.run(seed(base, users))
        results["seed_seconds"] = round(time.monotonic() - seed_started, 1)
        print(f"[seed] done in {results['seed_seconds']} s", flush=True)

        print(f"[run] {args.users} users, one request each ~{args.think} s, for {args.seconds} s", flush=True)
        stats, samples = Stats(), []
        t0, windows = asyncio.run(
            asyncio.wait_for(timed_phase(args, base, users, stats, replicas, cluster, nginx, samples), args.seconds + 300)
        )

        print("[check] every acknowledged metric is stored", flush=True)
        results["verify"] = asyncio.run(asyncio.wait_for(verify(base, users), 600))
        results["summary"] = summarize(stats, t0, windows, args.ramp, stats.events["duration"])
        results["events"] = stats.events
        results["retried_attempts"] = dict(stats.attempt_outcomes)
        results["retried_by_path"] = dict(stats.retried)
        results["errors_after_retries"] = stats.errors[:20]
        results["failed_attempts_per_request"] = {k: dict(sorted(v.items())) for k, v in stats.failures_per_request.items()}
        results["retried_by_time"] = {k: dict(v) for k, v in sorted(stats.outcomes_by_time.items())}
        results["error_bodies"] = stats.error_bodies
        nginx.stop()
        results["nginx"] = nginx_log_summary(nginx.access_log, stats.events["t0_wall"], replicas)
        results["samples"] = samples
        results["machine"]["load_after"] = os.getloadavg()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        results["machine"]["client_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
        results["machine"]["load1_during"] = [s["load1"] for s in samples]
        results["cpu"] = stats.cpu.report(len(stats.requests), stats.events["duration"])
        results["pg_connections_max"] = max((s["pg_connections"] or 0) for s in samples) if samples else None
        results["replica_rss_mb_max"] = {r.name: max(s["rss_mb"][r.name] for s in samples) for r in replicas} if samples else None
        print(
            json.dumps(
                {
                    k: results[k]
                    for k in (
                        "summary",
                        "verify",
                        "events",
                        "retried_attempts",
                        "failed_attempts_per_request",
                        "retried_by_time",
                        "error_bodies",
                        "errors_after_retries",
                        "cpu",
                        "pg_connections_max",
                        "replica_rss_mb_max",
                        "machine",
                    )
                },
                indent=2,
            )
        )
        print("[nginx] requests per replica per 10 s:")
        for at, counts in results["nginx"]["per_bucket"].items():
            print(f"  {at:4d}s  {counts}")
        print(f"[nginx] statuses {results['nginx']['statuses']}; passed on, e.g.: {results['nginx']['passed_on_examples'][:4]}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        cpu = results["cpu"]
        print(
            f"[cpu] {cpu['cores_busy']} of {psutil.cpu_count()} cores busy; CPU ms per request: "
            + ", ".join(f"{name} {ms}" for name, ms in cpu["ms_per_request"].items())
        )
        s = results["summary"]
        passed = s["all"]["errors"] == 0 and results["verify"]["missing"] == 0
        print(
            f"[result] errors after retries: {s['all']['errors']}, missing metrics: {results['verify']['missing']}, "
            f"steady p99 {s['steady']['p99_ms']} ms -> {'PASS' if passed and s['steady']['p99_ms'] < 500 else 'FAIL'}"
        )
        return 0 if passed else 1
    finally:
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception as exc:  # keep stopping the rest
                print(f"could not stop {thing}: {exc}", file=sys.stderr)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
