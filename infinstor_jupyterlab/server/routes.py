"""Every InfinStor route, in one list (the authentication test walks it)."""

from __future__ import annotations

API_PREFIX = "/infinstor/api"


def build_handlers() -> list[tuple[str, type]]:
    from .base import NotFoundHandler
    from .auth import AuthCallbackHandler, AuthConfigHandler, AuthLoginHandler, AuthLogoutHandler
    from .jobs import (
        JOB_ID,
        JobCancelHandler,
        JobHandler,
        JobLogHandler,
        JobProgressHandler,
        JobsHandler,
        JobValidateHandler,
        TargetsHandler,
    )
    from .compute import (
        INSTANCE_ID,
        ComputeConfigHandler,
        ComputeInstancesHandler,
        ComputeInstanceStopHandler,
        ComputeInstanceTerminateHandler,
    )
    from .projects import ProjectParametersHandler, ProjectsHandler
    from .proxy import MlflowProxyHandler, MlflowUIRedirectHandler
    from .status import StatusHandler, TrackingRestartHandler

    return [
        (rf"{API_PREFIX}/status", StatusHandler),
        (rf"{API_PREFIX}/tracking/restart", TrackingRestartHandler),
        (rf"{API_PREFIX}/auth/login", AuthLoginHandler),
        (rf"{API_PREFIX}/auth/callback", AuthCallbackHandler),
        (rf"{API_PREFIX}/auth/logout", AuthLogoutHandler),
        (rf"{API_PREFIX}/auth/config", AuthConfigHandler),
        (rf"{API_PREFIX}/projects", ProjectsHandler),
        (rf"{API_PREFIX}/projects/parameters", ProjectParametersHandler),
        (rf"{API_PREFIX}/targets", TargetsHandler),
        (rf"{API_PREFIX}/jobs", JobsHandler),
        (rf"{API_PREFIX}/jobs/validate", JobValidateHandler),
        (rf"{API_PREFIX}/jobs/{JOB_ID}", JobHandler),
        (rf"{API_PREFIX}/jobs/{JOB_ID}/log", JobLogHandler),
        (rf"{API_PREFIX}/jobs/{JOB_ID}/progress", JobProgressHandler),
        (rf"{API_PREFIX}/jobs/{JOB_ID}/cancel", JobCancelHandler),
        (rf"{API_PREFIX}/compute/config", ComputeConfigHandler),
        (rf"{API_PREFIX}/compute/instances", ComputeInstancesHandler),
        (rf"{API_PREFIX}/compute/instances/{INSTANCE_ID}/stop", ComputeInstanceStopHandler),
        (rf"{API_PREFIX}/compute/instances/{INSTANCE_ID}/terminate", ComputeInstanceTerminateHandler),
        (rf"{API_PREFIX}/mlflow", MlflowUIRedirectHandler),
        (rf"{API_PREFIX}/mlflow/(?P<path>.*)", MlflowProxyHandler),
        # Last: anything else under the prefix is a JSON 404, not Jupyter's HTML page.
        (rf"{API_PREFIX}/(?P<rest>.*)", NotFoundHandler),
    ]
