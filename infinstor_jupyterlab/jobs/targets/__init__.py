"""Where jobs run. Each target is a traitlets-configurable class chosen by `c.InfinStor.job_targets`."""

from .base import JobFailed, JobTarget, TargetUnavailable
from .inline import InlineTarget

__all__ = ["InlineTarget", "JobFailed", "JobTarget", "TargetUnavailable"]
