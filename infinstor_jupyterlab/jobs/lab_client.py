"""Talks to the user's running Jupyter server's job API from outside it (CLI, MLflow backend).

The server is found the way `jupyter server list` finds it: through the runtime files Jupyter
writes for its owner only (they hold the server's URL and token).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import requests

from ..errors import BadRequest, InfinStorError


class LabUnavailable(InfinStorError):
    status = 503
    reason = "lab_unavailable"


def _contains(root: str, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(Path(root).resolve())
    except (OSError, ValueError):
        return False


class LabClient:
    def __init__(self, url: str, token: str, root_dir: str):
        self.url = url.rstrip("/") + "/"
        self.root_dir = Path(root_dir).resolve()
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"token {token}"

    @classmethod
    def for_path(cls, path: Path) -> LabClient:
        """The running Jupyter server (with InfinStor) whose root holds `path`."""
        from jupyter_server.serverapp import list_running_servers

        candidates = [s for s in list_running_servers() if _contains(s.get("root_dir", ""), path)]
        # The deepest root first: it is the most specific server for this path.
        candidates.sort(key=lambda s: len(s.get("root_dir", "")), reverse=True)
        for server in candidates:
            client = cls(server["url"], server.get("token", ""), server["root_dir"])
            try:
                if client._session.get(client._api("status"), timeout=10).ok:
                    return client
            except requests.RequestException:
                continue
        raise LabUnavailable(
            f"No running Jupyter server with InfinStor has {path} under its root directory. "
            "Start JupyterLab (jupyter lab) in a folder that contains the project, then try again."
        )

    def _api(self, *parts: str) -> str:
        return self.url + "/".join(("infinstor", "api", *parts))

    def _check(self, response: requests.Response) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json().get("message")
            except ValueError:
                message = None
            error = BadRequest if response.status_code < 500 else InfinStorError
            raise error(message or f"HTTP {response.status_code} from the Jupyter server", status=response.status_code)
        return response.json() if response.content else None

    def lab_path(self, path: Path) -> str:
        return path.resolve().relative_to(self.root_dir).as_posix() or "."

    def submit(self, body: dict) -> dict:
        return self._check(self._session.post(self._api("jobs"), json=body, timeout=300))

    def job(self, job_id: str) -> dict:
        return self._check(self._session.get(self._api("jobs", job_id), timeout=30))

    def log(self, job_id: str, offset: int) -> dict:
        return self._check(self._session.get(self._api("jobs", job_id, "log"), params={"offset": offset}, timeout=30))

    def cancel(self, job_id: str) -> dict:
        return self._check(self._session.post(self._api("jobs", job_id, "cancel"), timeout=120))


def is_local_path(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("git@") and os.path.exists(uri)
