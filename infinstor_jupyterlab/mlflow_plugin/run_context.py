"""Tags runs started from a lab kernel with their source notebook and the user.

jupyter_server tells each session's kernel its notebook in JPY_SESSION_NAME; the extension adds
the server's root directory and the user, so the tag is the path the lab itself uses. A job's
kernel has no session: the job's runner names the notebook in INFINSTOR_SOURCE_NOTEBOOK (the
lab's path of the job's notebook), so runs the notebook starts name it as their source, not
`ipykernel_launcher.py`.
"""

from __future__ import annotations

import os

from mlflow.entities import SourceType
from mlflow.tracking.context.abstract_context import RunContextProvider
from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE, MLFLOW_USER

SESSION_ENV = "JPY_SESSION_NAME"
ROOT_ENV = "INFINSTOR_SERVER_ROOT"
USER_ENV = "INFINSTOR_USER"
NOTEBOOK_PATH_TAG = "infinstor.notebook.path"
JOB_SOURCE_ENV = "INFINSTOR_SOURCE_NOTEBOOK"  # projects/runner.py SOURCE_ENV (the runner stands alone)


def lab_relative_path(path: str, root: str | None) -> str:
    """The path the lab uses for `path` (relative to the server root, '/' separators)."""
    if not os.path.isabs(path):
        return path.replace(os.sep, "/")  # already an API path
    if root:
        try:
            relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        except ValueError:  # different drives on Windows
            return path
        if not relative.startswith(".."):
            return relative.replace(os.sep, "/")
    return path


def notebook_session_path() -> str | None:
    path = os.environ.get(SESSION_ENV)
    if path and path.endswith(".ipynb"):
        return path
    return None


class InfinStorRunContextProvider(RunContextProvider):
    def in_context(self) -> bool:
        return notebook_session_path() is not None or bool(os.environ.get(USER_ENV) or os.environ.get(JOB_SOURCE_ENV))

    def tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        notebook = notebook_session_path()
        job_notebook = os.environ.get(JOB_SOURCE_ENV)
        if job_notebook:
            tags[MLFLOW_SOURCE_NAME] = lab_relative_path(job_notebook, os.environ.get(ROOT_ENV))
            tags[MLFLOW_SOURCE_TYPE] = SourceType.to_string(SourceType.NOTEBOOK)
        elif notebook:
            tags[MLFLOW_SOURCE_NAME] = lab_relative_path(notebook, os.environ.get(ROOT_ENV))
            tags[MLFLOW_SOURCE_TYPE] = SourceType.to_string(SourceType.NOTEBOOK)
            if os.path.isabs(notebook):
                tags[NOTEBOOK_PATH_TAG] = notebook
        user = os.environ.get(USER_ENV)
        if user:
            tags[MLFLOW_USER] = user
        return tags
