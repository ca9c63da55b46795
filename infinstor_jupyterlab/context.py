"""What the HTTP layer reaches for: one object per server, stored in the Tornado settings."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import __version__
from .tracking import TrackingBackend

if TYPE_CHECKING:
    from .jobs.manager import JobManager
    from .projects.service import ProjectService


@dataclass
class UserInfo:
    signed_in: bool
    name: str
    display_name: str

    def to_json(self) -> dict:
        return {"signed_in": self.signed_in, "name": self.name, "display_name": self.display_name}


@dataclass
class InfinStorContext:
    tracking: TrackingBackend
    jobs: JobManager
    projects: ProjectService
    version: str = __version__

    def current_user(self) -> UserInfo:
        # Until someone signs in (identity issue), work is done as the local OS user.
        return UserInfo(signed_in=False, name="local", display_name="local")

    @staticmethod
    def local_username() -> str:
        try:
            return getpass.getuser()
        except Exception:  # no passwd entry in some containers
            return "local"

    async def status(self) -> dict:
        tracking = await self.tracking.status()
        return {
            "version": self.version,
            "tracking": tracking.to_json(),
            "user": self.current_user().to_json(),
        }
