"""A notebook job's live cell progress record, as the lab reads it.

The runner (projects/runner.py, `Progress`) appends one JSON object a line to `progress.jsonl` in
the job's folder as the notebook runs (on EC2 the agent ships it and the lab copies it back);
`GET jobs/{id}/progress?offset=` serves it from a byte cursor, whole lines only.
"""

from __future__ import annotations

import json
from pathlib import Path

PROGRESS_FILE = "progress.jsonl"


def read_progress_lines(path: Path, offset: int, limit: int, final: bool = False) -> tuple[list[dict], int, int]:
    """The JSON objects of the whole lines from `offset` on (at most `limit` bytes), the offset after
    them, and the file's size. A line still being written waits for the next read, unless `final`
    (the job ended: a line cut short by a kill is passed over)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [], offset, 0
    start = min(offset, size)
    with open(path, "rb") as handle:
        handle.seek(start)
        chunk = handle.read(limit)
    end = chunk.rfind(b"\n") + 1
    if final and start + len(chunk) >= size:
        end = len(chunk)
    if end == 0 and len(chunk) == limit:
        # A line longer than a whole answer (the runner never writes one): skip past it; the
        # rest of it fails to parse at the next read and is skipped too.
        return [], start + len(chunk), size
    events = []
    for line in chunk[:end].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, start + end, size
