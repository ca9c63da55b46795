#!/usr/bin/env python
"""The README's command 1, the way a newcomer runs it: a fresh virtualenv, no extras.

1. Reads command 1 out of README.md (`pip install . && jupyter lab ...`, one line), so the two
   cannot drift.
2. Copies the repository as a clone has it (git's tracked and unignored files, no build output,
   no node_modules) and creates a fresh virtualenv.
3. Runs the install part exactly as written, in the clone, with the virtualenv activated.
4. Runs the `jupyter lab` part by absolute path (`<venv>/bin/jupyter lab ...`) with the virtualenv
   OFF PATH and a fresh HOME, plus only the flags a headless test needs (port, token, no browser).
5. Checks, from THIS Python (which must have playwright; never the newcomer's virtualenv):
   both extensions are listed and loaded, the InfinStor sidebar renders in Debian chromium with
   the embedded tracking service running, and a Python kernel started through the lab's REST and
   websocket API runs `import mlflow; mlflow.log_metric(...)`, whose run appears in the embedded
   tracking service with the notebook as its source.

    python scripts/newcomer.py [--results newcomer.json] [--shots DIR] [--keep]

Exit status 0 if every check passed. `--results` writes the checks as JSON (test-all.sh counts
them in its summary).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("INFINSTOR_TEST_CHROMIUM", "/usr/bin/chromium")
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
NOTEBOOK = "newcomer.ipynb"
METRIC = ("newcomer_loss", 0.25)
# What the newcomer types in the notebook (the README's promise: any notebook can import mlflow
# and log); the last lines only report the run back to this script.
KERNEL_CODE = f"""
import mlflow
mlflow.log_metric({METRIC[0]!r}, {METRIC[1]!r})
print("RUN_ID=" + mlflow.active_run().info.run_id)
mlflow.end_run()
"""


def readme_command_1(readme: Path) -> tuple[str, str]:
    """(install part, lab part) of the README's command 1: `pip install . && jupyter lab ...`."""
    text = readme.read_text()
    match = re.search(r"\*\*1\..*?```(?:bash|sh)\n(.*?)```", text, re.S)
    if not match:
        raise SystemExit("README.md: no fenced command block after the '**1.' step")
    lines = [line for line in match.group(1).splitlines() if line.strip()]
    if len(lines) != 1:
        raise SystemExit(f"README.md: command 1 must be one line, found {lines!r}")
    install, sep, lab = lines[0].partition(" && ")
    if not sep or not install.startswith("pip install .") or not lab.startswith("jupyter lab"):
        raise SystemExit(f"README.md: command 1 must be 'pip install . && jupyter lab ...', found {lines[0]!r}")
    return install.strip(), lab.strip()


def copy_clone(dest: Path) -> None:
    """What a clone of this repository holds: tracked and unignored files, nothing built."""
    listed = (
        subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file():  # deleted in the work tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def work_folder() -> Path:
    """A fresh folder, in memory if there is room: the venv and the clone's node_modules are
    ~1.7 GB of small files, and deleting them from a disk mounted with `discard` takes minutes."""
    shm = Path("/dev/shm")
    try:
        stat = os.statvfs(shm)
        roomy = shm.is_dir() and os.access(shm, os.W_OK) and stat.f_bavail * stat.f_frsize > 6 << 30
    except OSError:
        roomy = False
    return Path(tempfile.mkdtemp(prefix="infinstor-newcomer-", dir=shm if roomy else None))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything of ours, of a virtualenv or of a configured Jupyter/MLflow."""
    drop = ("INFINSTOR_", "MLFLOW_", "JUPYTER_", "JPY_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def path_without(venv: Path) -> str:
    here = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    # Off PATH: the newcomer's venv, and the virtualenv running this script if it is one (it
    # has jupyter and the test extras).
    banned = {str(venv / "bin")}
    if sys.prefix != sys.base_prefix:
        banned.add(str(Path(sys.prefix) / "bin"))
    return os.pathsep.join(p for p in here if p.rstrip("/") not in banned)


class Checks:
    def __init__(self):
        self.results: list[dict] = []

    def run(self, name: str, fn, *args):
        t0 = time.perf_counter()
        print(f"---- {name}", flush=True)
        try:
            detail = fn(*args)
            ok = True
        except Exception as exc:  # a failed check is recorded, and the rest are reported as not run
            detail = f"{exc.__class__.__name__}: {exc}"
            traceback.print_exc()
            ok = False
        seconds = round(time.perf_counter() - t0, 1)
        self.results.append({"name": name, "ok": ok, "seconds": seconds, "detail": str(detail or "")[-2000:]})
        print(f"     {'ok' if ok else 'FAILED'} ({seconds} s) {str(detail or '')[-400:]}", flush=True)
        return ok

    def skip(self, names: list[str], why: str):
        for name in names:
            self.results.append({"name": name, "ok": False, "seconds": 0, "detail": f"not run: {why}"})
            print(f"---- {name}\n     FAILED (not run: {why})", flush=True)


class Newcomer:
    def __init__(self, work: Path, shots: Path | None):
        self.work = work
        self.clone = work / "clone"
        self.venv = work / "venv"
        self.home = work / "home"
        self.notebooks = work / "notebooks"
        self.shots = shots
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.lab: subprocess.Popen | None = None
        self.lab_log = work / "lab.log"
        self.install_part, self.lab_part = readme_command_1(ROOT / "README.md")

    # -- steps --------------------------------------------------------------------------------
    def install(self) -> str:
        copy_clone(self.clone)
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        # As after `source venv/bin/activate`: the venv first on PATH, then the command as written.
        tmp = self.work / "tmp"  # pip's build environment, beside the rest
        tmp.mkdir()
        env = clean_env(PATH=f"{self.venv / 'bin'}{os.pathsep}{path_without(self.venv)}", VIRTUAL_ENV=str(self.venv), TMPDIR=str(tmp))
        log = self.work / "install.log"
        with open(log, "wb") as out:
            done = subprocess.run(["bash", "-c", self.install_part], cwd=self.clone, env=env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{self.install_part!r} exited {done.returncode}:\n{log.read_text()[-3000:]}")
        return f"{self.install_part!r} in a fresh venv"

    def lab_env(self) -> dict[str, str]:
        self.home.mkdir(exist_ok=True)
        return clean_env(PATH=path_without(self.venv), HOME=str(self.home))

    def jupyter(self) -> str:
        return str(self.venv / "bin" / "jupyter")

    def extensions_listed(self) -> str:
        out = []
        for args, pattern in (
            (["server", "extension", "list"], r"infinstor_jupyterlab.*OK"),
            (["labextension", "list"], r"infinstor-jupyterlab.*enabled.*OK"),
        ):
            done = subprocess.run([self.jupyter(), *args], env=self.lab_env(), capture_output=True, text=True, timeout=120)
            text = done.stdout + done.stderr
            if done.returncode != 0 or not re.search(pattern, text):
                raise RuntimeError(f"`jupyter {' '.join(args)}` (exit {done.returncode}) does not show {pattern!r}:\n{text[-2000:]}")
            out.append(next(line.strip() for line in text.splitlines() if re.search(pattern, line)))
        return "; ".join(out)

    def start_lab(self) -> str:
        words = shlex.split(self.lab_part)  # ["jupyter", "lab", ...] as the README has it
        self.notebooks.mkdir(exist_ok=True)
        argv = [
            self.jupyter(),
            *words[1:],
            # Only what a headless test needs beyond the README's command.
            "--no-browser",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.notebooks}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True",
        ]
        if not Path(argv[0]).exists():
            raise RuntimeError(f"{argv[0]} does not exist: the install brought no `jupyter` command")
        self.log_file = open(self.lab_log, "wb")
        self.lab = subprocess.Popen(
            argv, cwd=self.notebooks, env=self.lab_env(), stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.lab.poll() is not None:
                command = shlex.join(argv).replace(self.token, "<token>")
                raise RuntimeError(f"{command} exited {self.lab.returncode}:\n{self.lab_log.read_text()[-3000:]}")
            try:
                if self.get("lab")[0] == 200:
                    return shlex.join(argv).replace(self.token, "<token>")
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer on {self.url}/lab:\n{self.lab_log.read_text()[-3000:]}")

    def get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.url}/{path}", headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def server_extension_answers(self) -> str:
        status, body = self.get("infinstor/api/status")
        if status != 200:
            raise RuntimeError(f"GET infinstor/api/status: {status} {body[:500]!r}")
        return json.loads(body).get("version", "?")

    def browser(self, playwright) -> str:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self._browser = browser
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{self.url}/lab?token={self.token}")
        self.page = page
        return "chromium " + browser.version

    def labextension_loaded(self) -> str:
        page = self.page
        names = page.evaluate(
            "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).federated_extensions.map(e => e.name)"
        )
        if "infinstor-jupyterlab" not in names:
            raise RuntimeError(f"the lab's page does not load infinstor-jupyterlab: {names}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started !== undefined", timeout=60_000)
        page.evaluate("() => window.jupyterapp.started")
        plugins = page.evaluate("() => window.jupyterapp.listPlugins().filter(id => id.startsWith('infinstor-jupyterlab'))")
        if not plugins:
            raise RuntimeError("no infinstor-jupyterlab plugin is registered in the lab")
        return f"{len(plugins)} plugins"

    def sidebar_renders(self) -> str:
        page = self.page
        page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="infinstor-sidebar"]').click(timeout=60_000)
        page.locator("#infinstor-sidebar").wait_for(state="visible", timeout=30_000)
        state = page.get_by_test_id("infinstor-tracking-state")
        deadline = time.monotonic() + 150
        text = ""
        while time.monotonic() < deadline:
            text = (state.text_content(timeout=30_000) or "").strip()
            if text == "running":
                break
            page.wait_for_timeout(500)
        if self.shots:
            self.shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(self.shots / "newcomer-sidebar.png"))
        if text != "running":
            raise RuntimeError(f"the sidebar shows the tracking service as {text!r}, not 'running'")
        return "tracking service running"

    def kernel_logs(self) -> str:
        page = self.page
        notebook = {
            "cells": [{"cell_type": "code", "metadata": {}, "source": KERNEL_CODE.strip(), "outputs": [], "execution_count": None}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        # Through the lab's own service manager: REST for the contents and the session, the
        # kernel's websocket for the execution, exactly as a notebook tab does it.
        answer = page.evaluate(
            """async ({path, notebook, code}) => {
              const sm = window.jupyterapp.serviceManager;
              await sm.ready;
              await sm.contents.save(path, {type: 'notebook', format: 'json', content: notebook});
              const session = await sm.sessions.startNew({path, name: path, type: 'notebook', kernel: {name: 'python3'}});
              const out = [], err = [];
              const future = session.kernel.requestExecute({code, stop_on_error: true});
              future.onIOPub = msg => {
                const c = msg.content;
                if (msg.header.msg_type === 'stream') (c.name === 'stderr' ? err : out).push(c.text);
                if (msg.header.msg_type === 'error') err.push(c.ename + ': ' + c.evalue + '\\n' + c.traceback.join('\\n'));
              };
              const reply = await future.done;
              await session.shutdown();
              return {status: reply.content.status, output: out.join(''), errors: err.join('')};
            }""",
            {"path": NOTEBOOK, "notebook": notebook, "code": KERNEL_CODE},
        )
        if answer["status"] != "ok":
            raise RuntimeError(f"the kernel answered {answer['status']}:\n{answer['errors'][-3000:]}")
        # The newcomer's first cell shows its own output only: no warning in red (stderr), no
        # link that the browser cannot open (MLflow prints the embedded service's loopback URL,
        # which only the lab and its kernels may use).
        if answer["errors"].strip():
            raise RuntimeError(f"the cell printed to stderr:\n{answer['errors'][-3000:]}")
        if "View run" in answer["output"] or "View experiment" in answer["output"]:
            raise RuntimeError(f"the cell prints links to the embedded tracking service:\n{answer['output'][-3000:]}")
        match = re.search(r"RUN_ID=([0-9a-f]{32})", answer["output"])
        if not match:
            raise RuntimeError(f"no run id in the kernel's output:\n{answer['output'][-3000:]}")
        self.run_id = match.group(1)
        return f"run {self.run_id}"

    def run_recorded(self) -> str:
        status, body = self.get(f"infinstor/api/mlflow/api/2.0/mlflow/runs/get?run_id={self.run_id}")
        if status != 200:
            raise RuntimeError(f"runs/get through the lab's MLflow proxy: {status} {body[:500]!r}")
        run = json.loads(body)["run"]
        tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
        problems = []
        if tags.get("mlflow.source.name") != NOTEBOOK:
            problems.append(f"source {tags.get('mlflow.source.name')!r}, not {NOTEBOOK!r}")
        if tags.get("mlflow.source.type") != "NOTEBOOK":
            problems.append(f"source type {tags.get('mlflow.source.type')!r}")
        if metrics.get(METRIC[0]) != METRIC[1]:
            problems.append(f"metric {METRIC[0]} = {metrics.get(METRIC[0])!r}")
        if run["info"]["status"] != "FINISHED":
            problems.append(f"status {run['info']['status']}")
        if problems:
            raise RuntimeError("; ".join(problems))
        return f"source {NOTEBOOK}, {METRIC[0]}={METRIC[1]}, FINISHED"

    def stop(self) -> None:
        browser, self._browser = getattr(self, "_browser", None), None
        if browser is not None:
            try:
                browser.close()
            except Exception:
                pass
        if self.lab is not None and self.lab.poll() is None:
            os.killpg(self.lab.pid, signal.SIGTERM)  # the lab, its kernels and the embedded MLflow
            try:
                self.lab.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.lab.pid, signal.SIGKILL)
                self.lab.wait()
        if getattr(self, "log_file", None):
            self.log_file.close()
            self.log_file = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, help="write the checks as JSON here")
    parser.add_argument("--shots", type=Path, help="save a screenshot of the sidebar here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (clone, venv, logs)")
    args = parser.parse_args()

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("newcomer.py drives chromium with playwright: run it with a Python that has the test extras", file=sys.stderr)
        return 2

    work = work_folder()
    newcomer = Newcomer(work, args.shots)
    print(f"README command 1: {newcomer.install_part} && {newcomer.lab_part}   (work folder {work})", flush=True)
    checks = Checks()
    # (name, step, the step it needs): a step whose prerequisite failed is reported as not run.
    steps = [
        ("install: README command 1's install part, fresh venv, no extras", newcomer.install, None),
        ("jupyter lists both extensions as OK (by absolute path, venv off PATH)", newcomer.extensions_listed, "install"),
        ("README command 1's `jupyter lab` starts (by absolute path, venv off PATH)", newcomer.start_lab, "install"),
        ("the server extension answers", newcomer.server_extension_answers, "lab"),
        ("chromium opens the lab", newcomer.browser, "lab"),
        ("the labextension is loaded", newcomer.labextension_loaded, "browser"),
        ("the InfinStor sidebar renders, tracking service running", newcomer.sidebar_renders, "labextension"),
        ("a kernel started through the lab's API logs to MLflow", newcomer.kernel_logs, "browser"),
        ("the run is in the embedded service with the notebook as source", newcomer.run_recorded, "kernel"),
    ]
    provides = {
        newcomer.install: "install",
        newcomer.start_lab: "lab",
        newcomer.browser: "browser",
        newcomer.labextension_loaded: "labextension",
        newcomer.kernel_logs: "kernel",
    }
    t0 = time.perf_counter()
    try:
        with sync_playwright() as playwright:
            broken: dict[str, str | None] = {}  # what a step provides -> the check that failed first, or None
            for name, fn, needs in steps:
                blocked = broken.get(needs) if needs else None
                if blocked:
                    checks.skip([name], f"{blocked!r} failed")
                    root = blocked
                else:
                    root = None if checks.run(name, fn, *([playwright] if fn == newcomer.browser else [])) else name
                if fn in provides:
                    broken[provides[fn]] = root
            newcomer.stop()
    finally:
        newcomer.stop()
        if newcomer.lab_log.exists() and not all(c["ok"] for c in checks.results):
            print("---- lab log (tail)\n" + newcomer.lab_log.read_text(errors="replace")[-4000:])
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    passed = sum(c["ok"] for c in checks.results)
    failed = len(checks.results) - passed
    print(f"newcomer: {passed} passed, {failed} failed in {time.perf_counter() - t0:.0f} s")
    if args.results:
        args.results.write_text(json.dumps({"passed": passed, "failed": failed, "checks": checks.results}, indent=2))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
