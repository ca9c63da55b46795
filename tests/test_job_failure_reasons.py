"""A failed job's reason names the underlying error, not MLflow's "Run (ID ...) failed"."""

from __future__ import annotations

import pytest

from infinstor_jupyterlab.jobs.manager import failure_reason_from_log

RUN = "2026/12/03 08:05:15 INFO mlflow.projects.backend.local: === Running command 'python _infinstor_runner.py --param=n=3' in run with ID 'abc' === \n"
FAILED = (
    "🏃 View run peaceful-wolf-827 at: http://127.0.0.1:58461/#/experiments/0/runs/86bb\n"
    "🧪 View experiment at: http://127.0.0.1:58461/#/experiments/0\n"
    "2026/12/03 08:05:24 ERROR mlflow.cli: === Run (ID '86bb2bc8687f470e93335faf8e15187b') failed ===\n"
)


@pytest.mark.parametrize(
    "log,reason",
    [
        # What the VM's systemd PATH gave before the job had its own python.
        (RUN + "bash: line 1: python: command not found\n" + FAILED, "python: command not found"),
        (RUN + "/bin/sh: 1: uv: not found\n" + FAILED, "uv: command not found"),
        # The runner's own last word wins over everything before it.
        (
            RUN + "Traceback (most recent call last):\nValueError: an earlier, handled problem\n"
            "[infinstor] error: No Python kernel: ipykernel is not installed for /opt/infinstor/bin/python "
            "(install it there: pip install ipykernel)\n" + FAILED,
            "No Python kernel: ipykernel is not installed for /opt/infinstor/bin/python (install it there: pip install ipykernel)",
        ),
        # An older runner: papermill's traceback names the kernel that was not found.
        (
            RUN + "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
            "jupyter_client.kernelspec.NoSuchKernel: No such kernel named python3\n" + FAILED,
            "jupyter_client.kernelspec.NoSuchKernel: No such kernel named python3",
        ),
        (
            RUN + "Traceback (most recent call last):\n  File \"/x/_infinstor_runner.py\", line 9\n"
            "ModuleNotFoundError: No module named 'papermill'\n" + FAILED,
            "ModuleNotFoundError: No module named 'papermill'",
        ),
        (
            "Traceback (most recent call last):\nFileNotFoundError: [Errno 2] No such file or directory: 'uv'\n" + FAILED,
            "FileNotFoundError: [Errno 2] No such file or directory: 'uv'",
        ),
        # A project folder's command: its own message (sys.exit("..."), argparse), not "Run failed".
        (RUN + "alpha must be at most 1\n" + FAILED, "alpha must be at most 1"),
        (
            RUN + "usage: train.py [-h] [--alpha ALPHA]\ntrain.py: error: argument --alpha: invalid float value: 'x'\n" + FAILED,
            "train.py: error: argument --alpha: invalid float value: 'x'",
        ),
        # MLflow's own wrappers are never the reason.
        (
            RUN + "RuntimeError: boom\nmlflow.exceptions.ExecutionException: Run (ID 'abc') failed\n" + FAILED,
            "RuntimeError: boom",
        ),
    ],
)
def test_the_reason_is_the_underlying_error(log, reason):
    assert failure_reason_from_log(log, 1) == reason


def test_no_output_at_all_says_so():
    assert failure_reason_from_log(RUN + FAILED, 1) == "The job's process exited with code 1 and printed no error."
    assert failure_reason_from_log("", 3) == "The job's process exited with code 3 and printed no error."
