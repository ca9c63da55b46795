"""The contract between the job manager and a place that runs jobs."""

from __future__ import annotations

from typing import Any

from traitlets import Int
from traitlets.config import LoggingConfigurable

from ...errors import InfinStorError
from ..models import Job


class TargetUnavailable(InfinStorError):
    status = 409
    reason = "target_unavailable"


class JobFailed(InfinStorError):
    """Raised by a target's `wait` when the job failed for a reason of the target's own (an instance
    that never checked in, a lost heartbeat): the manager marks the job FAILED with this message."""

    status = 500
    reason = "job_failed"


class JobTarget(LoggingConfigurable):
    """A place to run MLflow projects. Subclasses declare what they support in `capabilities`."""

    name = "base"
    display_name = "Base"

    max_parallel = Int(2, help="Jobs that may run at once on this target; more wait in the queue.").tag(config=True)

    def bind(self, manager) -> None:
        """Called once by the job manager that owns this target (its tracking backend, user, store)."""
        self.manager = manager

    def capabilities(self) -> dict[str, Any]:
        """What the UI may offer: e.g. env_managers, instance_types, sweeps."""
        return {"env_managers": ["local"], "instance_types": [], "sweeps": False, "max_parallel": self.max_parallel}

    def unavailable_reason(self) -> str | None:
        """None when the target can take jobs; otherwise why not (shown in the dialog)."""
        return None

    async def refresh_availability(self, force: bool = False) -> None:
        """Re-check what `unavailable_reason` reports when that needs I/O (e.g. asking a cloud
        provider who the server's credentials belong to). Called before the targets are listed;
        cheap when the last answer is still fresh, unless `force`."""

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Check target options of a request; return them normalised or raise BadRequest."""
        return options

    async def start(self, job: Job, env: dict[str, str], log_path) -> None:
        """Launch the job; record in `job.target_state` what `reattach` will need."""
        raise NotImplementedError

    async def wait(self, job: Job) -> int | None:
        """Wait until the job's process ends; its exit code, or None when it cannot be known."""
        raise NotImplementedError

    def is_alive(self, job: Job) -> bool:
        raise NotImplementedError

    async def cancel(self, job: Job) -> None:
        raise NotImplementedError

    async def finished(self, job: Job, log_path) -> None:
        """The job ended (any status): remove what it no longer needs on this host."""

    def describe(self) -> dict[str, Any]:
        reason = self.unavailable_reason()
        return {
            "name": self.name,
            "display_name": self.display_name,
            "available": reason is None,
            "reason": reason,
            "capabilities": self.capabilities(),
        }
