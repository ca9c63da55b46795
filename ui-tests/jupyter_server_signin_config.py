"""Jupyter server configuration for the sign-in UI tests (never use in production).

A second lab (port INFINSTOR_UI_TEST_SIGNIN_PORT, default 8889) whose tracking service is the
remote, token-checking MLflow service (start_oidc_service.py) and whose users sign in with the
test identity provider (../tests/idp). Playwright starts all three (playwright.config.js).
Its Jupyter data directory, with the token store, is a throwaway folder inside ui-tests, wiped
at every server start; the sign-in spec reads the token store to check no token reaches the page.
The Share… dialog spec runs a third lab from this file with its own ports and data directory
(share_setup.js), against the company-mode service (start_oidc_service.py --company).
"""

import os
import shutil
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

HERE = Path(__file__).parent.resolve()
DATA_DIR = Path(os.environ.setdefault("JUPYTER_DATA_DIR", str(HERE / ".jupyter-data-signin"))).resolve()
TOKEN_STORE = DATA_DIR / "infinstor" / "credentials" / "tokens.json"
PORT = int(os.environ.get("INFINSTOR_UI_TEST_SIGNIN_PORT", "8889"))
IDP_PORT = int(os.environ.get("INFINSTOR_UI_TEST_IDP_PORT", "8990"))
SERVICE_PORT = int(os.environ.get("INFINSTOR_UI_TEST_SERVICE_PORT", "8991"))

# Only ever wipe a folder inside ui-tests.
if HERE in DATA_DIR.parents and DATA_DIR.exists():
    shutil.rmtree(DATA_DIR)
DATA_DIR.mkdir(parents=True, exist_ok=True)

# Kernels and terminals started by this lab may talk plain HTTP to the loopback service.
os.environ["INFINSTOR_INSECURE_LOOPBACK"] = "1"
os.environ.pop("INFINSTOR_TOKEN_STORE", None)

configure_jupyter_server(c)  # noqa: F821

c.ServerApp.allow_root = True  # noqa: F821
c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = PORT  # noqa: F821
c.LabApp.news_url = None  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821

c.InfinStor.tracking_uri = f"http://127.0.0.1:{SERVICE_PORT}"  # noqa: F821
c.InfinStor.oidc_issuer = f"http://127.0.0.1:{IDP_PORT}"  # noqa: F821
c.InfinStor.oidc_client_id = "infinstor-lab"  # noqa: F821
c.InfinStor.oidc_audience = "urn:infinstor:tracking"  # noqa: F821
c.InfinStor.oidc_scopes = ["openid", "profile", "email", "groups", "org", "offline_access"]  # noqa: F821
c.InfinStor.token_store_path = str(TOKEN_STORE)  # noqa: F821
