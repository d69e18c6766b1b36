"""Check a dataset upload: JSONL, one {"prompt": str, "completion": str} object per line (other keys allowed).

Validated line by line from the staged file, so a large dataset is never loaded whole, and the first bad line is
reported by its 1-based number, which is what a person fixing the file needs.
"""
from __future__ import annotations

import json
from pathlib import Path

from hub import json_safety


class DatasetError(ValueError):
    pass


def validate_jsonl(path: str | Path, max_line_bytes: int = 1024 * 1024) -> int:
    """Number of records; raises DatasetError naming the first bad line."""
    records = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if len(raw) > max_line_bytes:
                raise DatasetError(f"line {number}: longer than {max_line_bytes} bytes")
            if not raw.strip():
                continue  # blank lines (e.g. a trailing newline) carry nothing
            try:
                record = json_safety.loads(raw, f"line {number}")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DatasetError(f"line {number}: not valid JSON ({exc})") from None
            except json_safety.UnsafeJson as exc:  # a NUL or nesting too deep: the same refusal as any JSON we take
                raise DatasetError(str(exc)) from None
            if not isinstance(record, dict):
                raise DatasetError(f"line {number}: expected a JSON object with prompt and completion")
            for key in ("prompt", "completion"):
                if not isinstance(record.get(key), str):
                    raise DatasetError(f"line {number}: {key!r} must be a string")
            records += 1
    if records == 0:
        raise DatasetError("the file is empty: a dataset needs at least one line")
    return records
