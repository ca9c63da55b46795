"""What a client may send the lab's API, in one place (the limits are listed in docs/rest-api.md).

Where a value ends up in MLflow the limit is MLflow's own (a parameter's name and value, an
experiment name, an experiment id); paths are held to the file system's limits; request bodies to
a size no legitimate request comes near. `shown` bounds how much of a client's value any error
message or log line quotes.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import BadRequest

MAX_BODY_BYTES = 1024 * 1024  # a JSON request body (413 beyond)
# A body over MAX_BODY_BYTES is read and dropped up to this size, so the 413 reaches the client
# and its keep-alive connection stays usable; a larger one is not read (the connection closes).
MAX_DRAIN_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 32  # nesting of arrays and objects in a request body
MAX_PATH_CHARS = 4096  # a lab path (PATH_MAX)
MAX_NAME_BYTES = 255  # one file or folder name in a path, UTF-8 encoded (NAME_MAX)
MAX_PARAMETERS = 100  # parameters in a job request (and names in a sweep set)
MAX_SWEEP_SIZE = 1000  # parameter sets in a job request's sweep (a grid's combinations, or a list)
MAX_PARAMETER_NAME_CHARS = 250  # MLflow's limit on a parameter's name
MAX_PARAMETER_VALUE_CHARS = 6000  # MLflow's limit on a parameter's value
MAX_EXPERIMENT_NAME_CHARS = 500  # MLflow's limit on an experiment's name
MAX_NAME_CHARS = 250  # a target, an entry point, a run name, an option's name, a client id
MAX_URL_CHARS = 2048  # an identity provider's issuer URL
MAX_SHOWN_CHARS = 200  # how much of a client's value a message or a log line quotes
MAX_MESSAGE_CHARS = 2000  # an error message, whatever it quotes
MAX_LOGGED_URI_CHARS = 1000  # a request's URI in the server's log lines

# MLflow's own pattern for experiment ids (mlflow.utils.validation), matched in full; numeric ids
# must also fit the SQL stores' 64-bit integer column, or MLflow fails with a 500.
EXPERIMENT_ID_PATTERN = r"[a-zA-Z0-9][\w\-]{0,63}"
MAX_SQL_INTEGER = 2**63 - 1
_EXPERIMENT_ID = re.compile(EXPERIMENT_ID_PATTERN)


def shown(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """`repr(value)` for a message, cut to about `limit` characters (saying how long it was)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def clip(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters (for a log line)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def bounded(message: str) -> str:
    """A message cut to MAX_MESSAGE_CHARS (the last line of defence for logs and responses)."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 40] + f"… ({len(message)} characters)"


def check_text(field: str, value: str, max_chars: int) -> str:
    if len(value) > max_chars:
        raise BadRequest(f"`{field}` is longer than {max_chars} characters ({len(value)}).")
    return value


def check_path(field: str, value: str) -> str:
    """A lab path the file system can take: no NUL, at most MAX_PATH_CHARS, names of at most
    MAX_NAME_BYTES bytes (the OS would fail with 'file name too long' instead of a message)."""
    if "\x00" in value:
        raise BadRequest(f"`{field}` contains a NUL character.")
    if len(value) > MAX_PATH_CHARS:
        raise BadRequest(f"`{field}` is longer than {MAX_PATH_CHARS} characters ({len(value)}).")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"`{field}` is not valid Unicode.") from None
    for name in encoded.split(b"/"):
        if len(name) > MAX_NAME_BYTES:
            raise BadRequest(
                f"`{field}` has a file or folder name longer than {MAX_NAME_BYTES} bytes: {shown(name.decode('utf-8', 'replace'), 60)}."
            )
    return value


def check_experiment_id(value: Any) -> str:
    """An experiment id as MLflow validates it, and one its SQL stores can hold."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRequest(f"`experiment_id` must be an MLflow experiment id (a string), not {shown(value, 40)}.")
    text = str(value)
    if not _EXPERIMENT_ID.fullmatch(text) or (text.isdigit() and int(text) > MAX_SQL_INTEGER):
        raise BadRequest(f"`experiment_id`: {shown(text, 80)} is not a valid MLflow experiment id.")
    return text


def check_json_value(value: Any) -> None:
    """What JSON parsing lets through that nothing downstream can take: nesting deeper than
    MAX_JSON_DEPTH, NUL characters and lone surrogates (invalid Unicode) in keys or strings."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise BadRequest(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                label = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
                if isinstance(key, str):
                    _check_string(label.lstrip("."), key, "a name")
                stack.append((child, label, depth + 1))
        elif isinstance(item, str):
            _check_string(where.lstrip(".") or "the body", item, "a value")


def _check_string(where: str, text: str, what: str) -> None:
    if "\x00" in text:
        raise BadRequest(f"{shown(where, 80)}: {what} contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{shown(where, 80)}: {what} is not valid Unicode (a lone surrogate).") from None
