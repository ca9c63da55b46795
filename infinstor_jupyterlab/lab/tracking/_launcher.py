"""Runs `mlflow server` tied to the life of the Jupyter server that started it.

Usage: python -m infinstor_jupyterlab.lab.tracking._launcher PARENT_PID -- mlflow-server-args...

Setting the parent-death signal here, after exec, avoids `preexec_fn` (unsafe in a threaded
parent). The setting survives the execv below, so if Jupyter is killed without stopping us the
MLflow CLI gets SIGTERM and forwards it to its worker.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def main(argv: list[str]) -> None:
    parent_pid = int(argv[0])
    args = argv[argv.index("--") + 1 :]
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(1)
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", "server", *args])


if __name__ == "__main__":
    main(sys.argv[1:])
