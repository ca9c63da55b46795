"""Request parameters read the way MLflow reads them: the JSON body first, then the query string."""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

from .refusals import bad_request

M = TypeVar("M")


def json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Params:
    def __init__(self, query: dict[str, list[str]], body_json: Any, method: str = "POST"):
        self.query, self.body_json, self.method = query, body_json, method
        self.raw_body: bytes | None = None
        self.headers: dict[str, str] = {}  # lower-case names

    def _body_value(self, name: str) -> Any:
        """A body field by its proto name or its JSON (camelCase) name, as protobuf parsing
        accepts both: authorizing one spelling while MLflow acts on the other must not happen."""
        if not isinstance(self.body_json, dict):
            return None
        value = self.body_json.get(name)
        if value in (None, ""):
            value = self.body_json.get(camel(name))
        return None if value in (None, "") else value

    def get(self, name: str) -> str | None:
        value = self._body_value(name)
        if value is not None:
            return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        values = self.query.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        value = self._body_value(name)
        if isinstance(value, list):
            return [str(v) for v in value]
        return self.query.get(name, [])

    def message(self, message: M, repeated: tuple[str, ...] = ()) -> M:
        """The parameters parsed into a protobuf request message (MLflow's own parsing)."""
        from mlflow.utils.proto_json_utils import parse_dict

        if isinstance(self.body_json, dict) and self.body_json:
            data = dict(self.body_json)
        else:
            data = {k: (v if k in repeated else v[0]) for k, v in self.query.items()}
        try:
            parse_dict(data, message)
        except Exception as exc:
            raise bad_request(f"Invalid search parameters: {exc}") from None
        return message

    def with_values(self, name: str, values: list[str]) -> tuple[bytes | None, str | None]:
        """(body, query string) of this request with the repeated parameter `name` set to `values`,
        where MLflow will read it (the query string of a GET, the JSON body otherwise); None for
        the part that stays as the client sent it."""
        if self.method == "GET":
            query = {k: v for k, v in self.query.items() if k != name}
            return None, urlencode({**query, name: values}, doseq=True)
        data = self.body_json if isinstance(self.body_json, dict) else {}
        rest = {k: v for k, v in data.items() if k not in (name, camel(name))}
        return json_bytes({**rest, name: values}), None


def parse_params(query: str, body: bytes | None, method: str = "POST") -> Params:
    body_json = None
    if body:
        try:
            body_json = json.loads(body)
        except ValueError:
            raise bad_request("The request body is not valid JSON.") from None
    return Params(parse_qs(query or "", keep_blank_values=False), body_json, method)


def required(params: Params, name: str, *aliases: str) -> str:
    """A parameter MLflow requires (or the first of its older names that is given)."""
    for candidate in (name, *aliases):
        if value := params.get(candidate):
            return value
    raise bad_request(f"Missing value for required parameter '{name}'.")


def required_all(params: Params, name: str) -> list[str]:
    """A repeated parameter MLflow requires at least one value of."""
    if values := params.get_all(name):
        return values
    raise bad_request(f"Missing value for required parameter '{name}'.")


def message_json(message: Any) -> bytes:
    from mlflow.utils.proto_json_utils import message_to_json

    return str(message_to_json(message)).encode()
