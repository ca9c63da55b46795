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

# EC2 jobs on emulated AWS: moto_server on INFINSTOR_UI_TEST_MOTO_PORT (started by
# playwright.config.js), seeded with what the admin's CloudFormation stack would create.
sys.path.insert(0, str(HERE))
import seed_moto  # noqa: E402

MOTO_URL = f"http://127.0.0.1:{os.environ.get('INFINSTOR_UI_TEST_MOTO_PORT', '8894')}"
os.environ.update(seed_moto.AWS_ENV)
seed_moto.seed(MOTO_URL)

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

c.EC2Target.region = seed_moto.REGION  # noqa: F821
c.EC2Target.endpoint_url = MOTO_URL  # noqa: F821
c.EC2Target.ami = seed_moto.AMI_PARAMETER  # noqa: F821
c.EC2Target.s3_bucket = seed_moto.BUCKET  # noqa: F821
c.EC2Target.s3_prefix = "lab"  # noqa: F821
c.EC2Target.iam_instance_profile = seed_moto.PROFILE  # noqa: F821
c.EC2Target.default_instance_type = "t3.medium"  # noqa: F821
c.EC2Target.allowed_instance_types = ["t3.medium", "g5.xlarge"]  # noqa: F821
c.EC2Target.max_instances_per_user = 3  # noqa: F821
c.EC2Target.tags = {"team": "ui-tests"}  # noqa: F821
# The emulated instances never boot: jobs wait for their agent until the test ends them.
c.EC2Target.checkin_timeout = 600.0  # noqa: F821
c.EC2Target.poll_interval = 0.5  # noqa: F821
