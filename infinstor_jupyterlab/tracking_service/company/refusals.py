"""How the company service says no: a `Refusal` is an MLflow-style JSON error with its status."""

from __future__ import annotations

import json


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> bytes:
        return json.dumps({"error_code": self.code, "message": self.message}).encode()


def not_found(message: str) -> Refusal:
    return Refusal(404, "RESOURCE_DOES_NOT_EXIST", message)


def forbidden(message: str = "Permission denied for this operation.") -> Refusal:
    return Refusal(403, "PERMISSION_DENIED", message)


def bad_request(message: str) -> Refusal:
    return Refusal(400, "INVALID_PARAMETER_VALUE", message)


def unauthenticated_body(message: str) -> bytes:
    """The 401 answer's body: what was wrong, and how to sign in."""
    return json.dumps(
        {
            "error_code": "UNAUTHENTICATED",
            "message": f"Authentication required: {message}. Sign in from the InfinStor sidebar or run "
            "`infinstor login` (or pass an API token with `infinstor login --token`).",
        }
    ).encode()
