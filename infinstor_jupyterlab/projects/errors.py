from ..errors import BadRequest


class ProjectError(BadRequest):
    """The notebook or folder cannot become an MLflow project; the message says why."""

    reason = "invalid_project"
