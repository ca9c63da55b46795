"""Notebook -> MLflow project conversion."""

from .convert import ProjectInfo, build_project
from .errors import ProjectError
from .parameters import NotebookParameter, extract_parameters

__all__ = ["NotebookParameter", "ProjectError", "ProjectInfo", "build_project", "extract_parameters"]
