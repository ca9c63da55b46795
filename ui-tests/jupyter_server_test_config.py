"""Jupyter server configuration for the Galata UI tests (never use in production).

`jlpm playwright test` starts `jupyter lab --config jupyter_server_test_config.py`
(see playwright.config.js). Jupyter's data directory - where the embedded MLflow
tracking service keeps its sqlite store - is a throwaway folder inside ui-tests,
wiped at every server start.
"""

import os
import shutil
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

HERE = Path(__file__).parent.resolve()
DATA_DIR = Path(os.environ.setdefault("JUPYTER_DATA_DIR", str(HERE / ".jupyter-data"))).resolve()

# Only ever wipe a folder inside ui-tests.
if HERE in DATA_DIR.parents and DATA_DIR.exists():
    shutil.rmtree(DATA_DIR)
DATA_DIR.mkdir(parents=True, exist_ok=True)

# Seed the embedded tracking store (experiments, a 10,000-run experiment, runs with artifacts,
# registered models) before the server starts; see seed_tracking.py (cached in .seed-cache/).
import subprocess  # noqa: E402
import sys  # noqa: E402

subprocess.run(
    [sys.executable, str(HERE / "seed_tracking.py"), str(DATA_DIR / "infinstor" / "embedded")],
    check=True,
)

configure_jupyter_server(c)  # noqa: F821

c.ServerApp.allow_root = True  # noqa: F821
c.ServerApp.ip = "127.0.0.1"  # noqa: F821
# INFINSTOR_UI_TEST_PORT lets two suites run side by side (see playwright.config.js).
c.ServerApp.port = int(os.environ.get("INFINSTOR_UI_TEST_PORT", "8888"))  # noqa: F821
# Fail if the port is taken instead of moving to another one: Playwright waits on this port and
# would otherwise test whatever server already answers there.
c.ServerApp.port_retries = 0  # noqa: F821
c.LabApp.news_url = None  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821
