"""schemathesis over docs/openapi.yaml against a real lab: zero 5xx, zero schema violations.

Starts `jupyter server` with the extension on a throwaway root (empty: no notebook, so no job can
be created) and a throwaway data directory (its own embedded MLflow), runs schemathesis with
scripts/schemathesis.toml (deterministic inputs, a fixed number of examples per operation), then
checks that nothing was left behind and removes everything.

    python scripts/schemathesis-lab.py [--junit PATH] [--max-examples N] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import TOKEN, JupyterServer, kill_processes_mentioning  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junit", help="write a JUnit XML report here")
    parser.add_argument("--max-examples", type=int, help="override the config's examples per operation")
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="infinstor-schemathesis-"))
    root = base / "root"
    root.mkdir()
    started = time.monotonic()
    server = JupyterServer(base, root)
    try:
        server.wait_tracking()
        command = [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            str(REPO / "docs" / "openapi.yaml"),
            "--url",
            f"{server.url}/infinstor/api",
            "--header",
            f"Authorization: token {TOKEN}",
            "--workers",
            "1",
            "--no-color",
        ]
        if args.max_examples:
            command += ["--max-examples", str(args.max_examples)]
        if args.junit:
            command += ["--report", "junit", "--report-junit-path", str(Path(args.junit).resolve())]
        try:
            result = subprocess.run(command, timeout=args.timeout, cwd=base)
            code = result.returncode
        except subprocess.TimeoutExpired:
            print(f"schemathesis did not finish within {args.timeout:g} s", file=sys.stderr)
            code = 1
        # Nothing may be left behind: no job, no file in the root.
        jobs = server.get("infinstor/api/jobs").json()["jobs"]
        leftovers = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        if jobs or leftovers:
            print(f"left behind: {len(jobs)} job(s), files {leftovers[:20]}", file=sys.stderr)
            code = code or 1
    finally:
        server.stop()
        kill_processes_mentioning(str(base))  # the embedded MLflow stops with the lab; belt and braces
        shutil.rmtree(base, ignore_errors=True)
    print(f"schemathesis-lab: exit {code} after {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
