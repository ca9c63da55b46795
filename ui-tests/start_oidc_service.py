"""Start the token-checking MLflow service for the sign-in UI tests (never use in production).

    python start_oidc_service.py PORT ISSUER [--company]

Waits for the identity provider's discovery document, then execs
`mlflow server --app-name infinstor` in `oidc` mode (it refuses requests without a valid
bearer token from ISSUER) with a throwaway sqlite store in ui-tests/.oidc-service, wiped at
every start. With `--company` it runs the company service instead (organisations as MLflow
workspaces, roles, default grants, sharing; configured from the environment alone, with the
shipped defaults) in ui-tests/.company-service, for the Share… dialog tests (share.spec.ts).
Playwright's `webServer` (playwright.config.js) starts and stops it.
"""

import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent.resolve()
AUDIENCE = "urn:infinstor:tracking"


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"start_oidc_service: {url} did not answer within {timeout:.0f} s")
        time.sleep(0.3)


def main() -> None:
    company = "--company" in sys.argv[1:]
    port, issuer = [a for a in sys.argv[1:] if a != "--company"][:2]
    issuer = issuer.rstrip("/")
    root = HERE / (".company-service" if company else ".oidc-service")
    wait_for(f"{issuer}/.well-known/openid-configuration")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_ENABLE_WORKSPACES", "INFINSTOR_"))}
    env.update(
        INFINSTOR_SERVICE_MODE="company" if company else "oidc", INFINSTOR_OIDC_ISSUER=issuer,
        INFINSTOR_OIDC_AUDIENCE=AUDIENCE, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONUNBUFFERED="1",
    )
    if company:
        env["MLFLOW_ENABLE_WORKSPACES"] = "true"  # organisations are MLflow workspaces
    args = [
        sys.executable, "-m", "mlflow", "server", "--app-name", "infinstor", "--host", "127.0.0.1",
        "--port", port, "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
        "--default-artifact-root", "mlflow-artifacts:/",
    ]
    os.execve(sys.executable, args, env)


if __name__ == "__main__":
    main()
