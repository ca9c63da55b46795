"""Domain errors. Handlers map them to JSON responses; domain code never imports tornado."""

from __future__ import annotations


class InfinStorError(Exception):
    """Base class: `status` is the HTTP status the API answers with, `reason` a stable code."""

    status = 500
    reason = "internal_error"

    def __init__(self, message: str, *, reason: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if status is not None:
            self.status = status


class BadRequest(InfinStorError):
    status = 400
    reason = "bad_request"


class SignInRequired(InfinStorError):
    """No usable credential for the tracking service: the user must sign in (again)."""

    status = 401
    reason = "sign_in_required"


class Forbidden(InfinStorError):
    status = 403
    reason = "forbidden"


class NotFound(InfinStorError):
    status = 404
    reason = "not_found"


class TrackingUnavailable(InfinStorError):
    """The tracking service cannot answer right now (starting, crashed, unreachable)."""

    status = 503
    reason = "tracking_unavailable"


class PayloadTooLarge(InfinStorError):
    status = 413
    reason = "payload_too_large"
