"""Live cell progress: the runner's progress record, and the lab's `GET jobs/{id}/progress` on it.

The runner (copied into every project) writes one JSON object a line as the notebook runs: the
number of code cells, each cell's start (with its first line), its streamed output as it arrives,
its end (status, elapsed, rich outputs, the traceback of an error), and the notebook's end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
import time

import pytest
from nbformat.v4 import new_markdown_cell
from tornado.httpclient import HTTPClientError

from conftest import wait_for_state
from infinstor_jupyterlab.projects import build_project
from infinstor_jupyterlab.projects.runner import MAX_CELL_OUTPUT, PROGRESS_ENV
from notebooks import notebook, write


def progress_notebook():
    return notebook(
        new_markdown_cell("# Progress"),
        "import time\nx = 1",
        "# second cell\nprint('first line', flush=True)\nprint('second line', flush=True)\n41 + x",
        "",  # an empty cell is not executed, so not counted
        "raise ValueError('bad value in cell four')",
        "print('never runs')",
        parameters="n = 3",
    )


def read_events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_runner(project, progress, *args, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_RUN_ID", "INFINSTOR_"))}
    env[PROGRESS_ENV] = str(progress)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, str(project / "_infinstor_runner.py"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow  # a notebook kernel
def test_runner_records_each_cell_its_output_and_the_failing_traceback(tmp_path):
    project = build_project(write(progress_notebook(), tmp_path / "nb" / "p.ipynb"), tmp_path / "proj").path
    progress = tmp_path / "job" / "progress.jsonl"
    progress.parent.mkdir()
    done = run_runner(project, progress, "--param=n=5")
    assert done.returncode != 0, done.stdout + done.stderr
    assert stat.S_IMODE(progress.stat().st_mode) == 0o600

    events = read_events(progress)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "notebook" and kinds[-1] == "done"
    # parameters cell, papermill's injected parameters, three code cells that run; empty ones don't count
    assert events[0]["cells"] == 6
    starts = [e for e in events if e["event"] == "start"]
    assert [e["cell"] for e in starts] == [1, 2, 3, 4, 5]
    assert starts[0]["source"] == "n = 3"
    assert starts[1]["source"] == "# Parameters" and starts[1]["injected"] is True
    assert starts[3]["source"] == "# second cell"
    assert all(isinstance(e["time"], float) for e in starts)

    outputs = [e for e in events if e["event"] == "output"]
    assert "".join(e["text"] for e in outputs if e["cell"] == 4) == "first line\nsecond line\n"
    assert all(e["name"] == "stdout" for e in outputs)
    # A cell's output comes between its start and its end.
    first_output = kinds.index("output")
    assert events[first_output - 1]["event"] == "start" or events[first_output - 1]["cell"] == 4

    ends = {e["cell"]: e for e in events if e["event"] == "end"}
    assert [ends[c]["status"] for c in (1, 2, 3, 4)] == ["ok"] * 4
    assert ends[4]["outputs"] == [{"type": "execute_result", "text": "42"}]
    assert ends[4]["time"] >= starts[3]["time"]
    failed = ends[5]
    assert failed["status"] == "error"
    assert failed["error"]["ename"] == "ValueError" and failed["error"]["evalue"] == "bad value in cell four"
    traceback = "\n".join(failed["error"]["traceback"])
    assert "bad value in cell four" in traceback and "\x1b[" not in traceback  # no terminal colours
    assert 6 not in ends and events[-1] == {**events[-1], "event": "done", "status": "failed"}


@pytest.mark.slow  # a notebook kernel
def test_runner_bounds_outputs_and_never_writes_a_secret(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t-token-value-0123456789")
    store = tmp_path / "tokens.json"
    store.write_text(json.dumps({"https://mlflow.example": {"access_token": "eyJaccess-abcdef", "refresh_token": "refresh-ghijkl"}}))
    nb = notebook(
        # A cell printing far more than the record keeps for one cell.
        f"for i in range({MAX_CELL_OUTPUT // 50}):\n    print('x' * 99, flush=(i % 100 == 0))",
        "import os\nprint(open(os.environ['INFINSTOR_SECRET_FILE']).read())\nprint(os.environ['MLFLOW_TRACKING_TOKEN'])\n"
        "print(open(os.environ['INFINSTOR_TOKEN_STORE']).read())",
        "from ipykernel.connect import get_connection_info\nget_connection_info(unpack=True)",
    )
    project = build_project(write(nb, tmp_path / "nb" / "big.ipynb"), tmp_path / "proj").path
    progress = tmp_path / "progress.jsonl"
    done = run_runner(
        project,
        progress,
        env_extra={
            "INFINSTOR_SECRET_FILE": str(secret_file),
            "MLFLOW_TRACKING_TOKEN": "tok-abcdefghijklmnop",
            "INFINSTOR_TOKEN_STORE": str(store),
        },
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = progress.read_text()
    assert "s3cr3t-token-value" not in text and "tok-abcdefghijklmnop" not in text
    assert "eyJaccess" not in text and "refresh-ghijkl" not in text and "https://mlflow.example" in text
    assert "[redacted]" in text
    # The kernel's connection info (its HMAC key) stays out, even when a cell displays it.
    executed = json.loads((project / "outputs" / "big.ipynb").read_text())
    shown = "".join(executed["cells"][-1]["outputs"][0]["data"]["text/plain"])
    key = re.search(r"'key': b?'([^']+)'", shown).group(1)
    assert len(key) > 16 and key not in text and "signature_scheme" in text
    events = read_events(progress)
    first = "".join(e["text"] for e in events if e["event"] == "output" and e["cell"] == 1)
    assert MAX_CELL_OUTPUT <= len(first) < MAX_CELL_OUTPUT + 200
    end = next(e for e in events if e["event"] == "end" and e["cell"] == 1)
    assert end["truncated"] > 0
    # A marker where the kept output stops, while the cell still runs.
    markers = [e for e in events if e["event"] == "output" and e.get("truncated")]
    assert [(m["cell"], m["text"]) for m in markers] == [(1, "")]
    assert len(text) < 3 * MAX_CELL_OUTPUT


async def read_progress(jp_fetch, job_id, offset=0) -> dict:
    response = await jp_fetch("infinstor", "api", "jobs", job_id, "progress", params={"offset": offset})
    return json.loads(response.body)


async def read_all_progress(jp_fetch, job_id, offset=0) -> tuple[list[dict], dict]:
    events, answer = [], {}
    for _ in range(1000):
        answer = await read_progress(jp_fetch, job_id, offset)
        events += answer["events"]
        if answer["next_offset"] == offset:
            break
        offset = answer["next_offset"]
    return events, answer


@pytest.mark.slow
async def test_progress_of_a_running_inline_job_then_its_failure(jp_fetch, jp_root_dir, infinstor):
    from test_jobs import get_job, submit, wait_for_job

    nb = notebook(
        "import time",
        "# the slow cell\nprint('working', flush=True)\ntime.sleep(6)\nprint('still working', flush=True)",
        "raise ValueError('fails here')",
    )
    write(nb, jp_root_dir / "slow.ipynb")
    await wait_for_state(jp_fetch, "running")
    job = await submit(jp_fetch, path="slow.ipynb")

    # While the slow cell runs: which cell (2 of 3, with its first line) and its output so far.
    offset, events, seen_running = 0, [], False
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not seen_running:
        answer = await read_progress(jp_fetch, job["id"], offset)
        assert answer["job_id"] == job["id"] and answer["offset"] == offset and isinstance(answer["now"], float)
        events += answer["events"]
        offset = answer["next_offset"]
        started = {e["cell"]: e for e in events if e["event"] == "start"}
        ended = {e["cell"] for e in events if e["event"] == "end"}
        said = "".join(e["text"] for e in events if e["event"] == "output" and e["cell"] == 2)
        if 2 in started and 2 not in ended and "working" in said:
            seen_running = True
            assert answer["status"] == "RUNNING" and answer["complete"] is False
            assert started[2]["source"] == "# the slow cell"
            assert events[0] == {**events[0], "event": "notebook", "cells": 3}
            assert "still working" not in said
            assert answer["now"] >= started[2]["time"]
        await asyncio.sleep(0.3)
    assert seen_running, events

    job = await wait_for_job(jp_fetch, job["id"])
    assert job["status"] == "FAILED"
    rest, last = await read_all_progress(jp_fetch, job["id"], offset)
    everything = events + rest
    assert last["complete"] is True and last["status"] == "FAILED"
    # The cursor moves on: nothing is read twice.
    again, _ = await read_all_progress(jp_fetch, job["id"])
    assert again == everything
    failed = next(e for e in everything if e["event"] == "end" and e["status"] == "error")
    assert failed["cell"] == 3 and failed["error"]["ename"] == "ValueError"
    assert "fails here" in "\n".join(failed["error"]["traceback"])
    assert everything[-1]["event"] == "done" and everything[-1]["status"] == "failed"
    secret = infinstor.tracking.auth_headers()["Authorization"].split()[1]
    assert secret not in json.dumps(everything)
    progress_file = infinstor.jobs.progress_path(job["id"])
    assert stat.S_IMODE(progress_file.stat().st_mode) == 0o600

    # Bad cursors are refused; an unknown job is a 404.
    for bad in ("-1", "x"):
        with pytest.raises(HTTPClientError) as excinfo:
            await jp_fetch("infinstor", "api", "jobs", job["id"], "progress", params={"offset": bad})
        assert excinfo.value.code == 400
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "api", "jobs", "0123456789abcdef", "progress")
    assert excinfo.value.code == 404
    assert (await get_job(jp_fetch, job["id"]))["status"] == "FAILED"


def test_progress_is_read_in_whole_lines_from_a_cursor(tmp_path):
    from infinstor_jupyterlab.jobs.progress import read_progress_lines

    path = tmp_path / "progress.jsonl"
    assert read_progress_lines(path, 0, 1000) == ([], 0, 0)  # not started yet
    first = json.dumps({"event": "notebook", "cells": 2}) + "\n"
    path.write_text(first + '{"event": "start", "ce')  # the runner is writing the second line
    assert read_progress_lines(path, 0, 1000) == ([{"event": "notebook", "cells": 2}], len(first), path.stat().st_size)
    assert read_progress_lines(path, len(first), 1000)[:2] == ([], len(first))
    with open(path, "a") as handle:
        handle.write('ll": 1}\n' + "not json\n" + "[1, 2]\n" + json.dumps({"event": "end", "cell": 1}) + "\n")
    events, cursor, size = read_progress_lines(path, len(first), 1000)
    assert events == [{"event": "start", "cell": 1}, {"event": "end", "cell": 1}] and cursor == size
    # Answers are bounded; a line longer than one answer is passed over, not returned in pieces.
    with open(path, "a") as handle:
        handle.write(json.dumps({"event": "output", "text": "x" * 5000}) + "\n" + json.dumps({"event": "done"}) + "\n")
    events, cursor, _ = read_progress_lines(path, size, 1000)
    assert events == [] and cursor == size + 1000
    events, cursor, end = read_progress_lines(path, cursor, 1000)
    while cursor < end:
        more, cursor, end = read_progress_lines(path, cursor, 1000)
        events += more
    assert events == [{"event": "done"}]
    # Once the job ended, a last line cut short by a kill does not hold the cursor back.
    with open(path, "a") as handle:
        handle.write('{"event": "outp')
    assert read_progress_lines(path, cursor, 1000)[1] == cursor
    assert read_progress_lines(path, cursor, 1000, final=True)[1:] == (path.stat().st_size,) * 2


@pytest.mark.slow  # a notebook kernel
def test_a_progress_record_that_cannot_be_written_never_fails_the_run(tmp_path):
    project = build_project(write(notebook("print('still runs')"), tmp_path / "nb" / "ok.ipynb"), tmp_path / "proj").path
    done = run_runner(project, tmp_path / "no-such-folder" / "progress.jsonl")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "still runs" in done.stdout and "no cell progress record" in done.stderr
    # A record that breaks midway (here: the disk "fills" once the notebook started) stops alone.
    done = run_runner(project, "/dev/full")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the cell progress record stopped" in done.stderr and "still runs" in done.stdout
