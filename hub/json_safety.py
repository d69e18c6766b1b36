"""What every JSON value the hub accepts must satisfy, wherever it arrives: no NUL character in any string (keys
included), and no nesting deeper than MAX_DEPTH.

Why NUL: PostgreSQL's text and json types cannot hold U+0000. A NUL that reached a statement was a 500 there while
SQLite stored it happily, and a stored one was worse (an adapter_config.json holding "\\u0000" made that adapter's
version list a 500 on every call, once PostgreSQL had to cast it to jsonb). Refused at the edge, both databases
behave alike and stored data never holds one. Why depth: Python's json parser recurses, so a document nested a few
thousand levels deep raised RecursionError (a 500); nothing the hub stores needs more than a few levels.
The walk is iterative, so checking a deep value cannot itself run out of stack.
"""
from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class UnsafeJson(ValueError):
    pass


def check_value(value: Any, where: str = "the JSON", max_depth: int = MAX_DEPTH) -> None:
    """Raise UnsafeJson if `value` (decoded JSON) holds a string with NUL or nests deeper than `max_depth`."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise UnsafeJson(f"{where} holds a NUL character (\\u0000), which the hub does not store")
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise UnsafeJson(f"{where} is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def loads(raw: bytes | str, where: str = "the JSON", **kwargs) -> Any:
    """json.loads, then check_value; a document too deep for the parser itself is UnsafeJson too. Other decoding
    errors propagate as json.JSONDecodeError / UnicodeDecodeError, as from json.loads."""
    try:
        value = json.loads(raw, **kwargs)
    except RecursionError:
        raise UnsafeJson(f"{where} is nested more than {MAX_DEPTH} levels deep") from None
    check_value(value, where)
    return value


def may_be_unsafe(raw: bytes) -> bool:
    """A cheap pre-test on a raw JSON document: False means check_value cannot fail on it (no escaped NUL, and too
    few brackets to nest MAX_DEPTH deep), so most bodies are never parsed twice."""
    return b"\\u0000" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
