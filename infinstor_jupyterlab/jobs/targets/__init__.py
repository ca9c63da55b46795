"""Where jobs run. Each target is a traitlets-configurable class chosen by `c.InfinStor.job_targets`."""

from .base import JobTarget, TargetUnavailable
from .inline import InlineTarget

__all__ = ["InlineTarget", "JobTarget", "TargetUnavailable"]
