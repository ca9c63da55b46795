"""One base handler: authentication, JSON bodies, and domain errors mapped to JSON responses."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler

from ..context import InfinStorContext
from ..errors import BadRequest, InfinStorError

AUTH_RESOURCE = "infinstor"


class InfinStorHandler(APIHandler):
    """Every InfinStor handler derives from this; each verb is also `@authenticated`."""

    auth_resource = AUTH_RESOURCE

    @property
    def infinstor(self) -> InfinStorContext:
        return self.settings["infinstor"]

    def get_json_body_or_400(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        return body

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, InfinStorError):
            self.set_status(exc.status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": exc.message, "reason": exc.reason}))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, InfinStorError):
            # Expected outcomes (bad input, service down) are not server bugs: no traceback.
            self.log.warning("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        super().log_exception(typ, value, tb)
