"""What the HTTP layer reaches for: one object per server, stored in the Tornado settings."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import __version__
from .tracking import TrackingBackend

if TYPE_CHECKING:
    from ..jobs.manager import JobManager
    from ..projects.service import ProjectService
    from .signin import SignInService


@dataclass
class UserInfo:
    signed_in: bool
    name: str
    display_name: str
    email: str | None = None
    groups: list[str] = field(default_factory=list)
    org: str | None = None

    def to_json(self) -> dict:
        # Who the user is, never a credential.
        return {
            "signed_in": self.signed_in,
            "name": self.name,
            "display_name": self.display_name,
            "email": self.email,
            "groups": list(self.groups),
            "org": self.org,
        }


@dataclass
class InfinStorContext:
    tracking: TrackingBackend
    jobs: JobManager
    projects: ProjectService
    version: str = __version__
    auth: SignInService | None = None

    def current_user(self) -> UserInfo:
        identity = self.auth.identity() if self.auth is not None else None
        if identity is not None:
            return UserInfo(
                signed_in=True,
                name=identity.name,
                display_name=identity.display_name or identity.name,
                email=identity.email,
                groups=list(identity.groups),
                org=identity.org,
            )
        # Nobody signed in: work is done as the local OS user.
        return UserInfo(signed_in=False, name="local", display_name="local")

    def auth_status(self) -> dict:
        if self.auth is None:
            return {"configured": False, "issuer": None, "source": None}
        return self.auth.status_json()

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
            "auth": self.auth_status(),
        }
