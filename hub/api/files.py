"""Streaming a stored file to a client: ETag (the sha256), conditional GET, single byte ranges, HEAD.

Shared by the REST file route and the Hugging Face `resolve` route so both give the same bytes and headers; the blob
store yields 1 MiB chunks, so a download never holds a whole file in memory.
"""
from __future__ import annotations

import itertools
import logging
import re

from fastapi import HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from hub.storage import BlobMissing, BlobStore

logger = logging.getLogger("adaptarium.api")

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a single `bytes=` range, None when the header is absent or not one we serve."""
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    if match.group(1):
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else size - 1
    else:  # suffix range: the last N bytes
        start, end = max(size - int(match.group(2)), 0), size - 1
    if start >= size or end < start:
        raise HTTPException(416, f"range {header!r} is outside the file of {size} bytes",
                            headers={"Content-Range": f"bytes */{size}"})
    return start, min(end, size - 1)


def blob_response(request: Request, store: BlobStore, entry: dict, media_type: str | None = None,
                  extra_headers: dict[str, str] | None = None) -> Response:
    sha, size = entry["sha256"], int(entry["size"])
    headers = {"ETag": f'"{sha}"', "Accept-Ranges": "bytes", **(extra_headers or {})}
    media_type = media_type or _media_type(entry["name"])
    if request.headers.get("if-none-match", "").strip('" ') == sha:
        return Response(status_code=304, headers=headers)
    byte_range = _parse_range(request.headers["range"], size) if "range" in request.headers else None
    start, length, status = 0, size, 200
    if byte_range is not None:
        start, end = byte_range
        length, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    chunks = store.read(sha, start=start, length=length)
    try:
        first = next(chunks, b"")  # opened here, so a missing blob is an answer of its own, not a cut-off stream
    except BlobMissing:
        logger.error("blob %s (%s) is named by a version but missing from the store", sha, entry["name"])
        raise HTTPException(500, f"the stored content of {entry['name']} (sha256 {sha}) is missing from the blob "
                                 "store; an operator has to restore it") from None
    return StreamingResponse(itertools.chain([first], chunks), status_code=status, headers=headers,
                             media_type=media_type)


def _media_type(name: str) -> str:
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".md"):
        return "text/markdown; charset=utf-8"
    if name.endswith(".jsonl"):
        return "application/x-ndjson"
    return "application/octet-stream"
