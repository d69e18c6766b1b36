"""Streaming multipart uploads straight into blob-store staging files.

Why not FastAPI's `UploadFile`: Starlette spools every part to its own temporary file first, so a 500 MB adapter would
be written to disk twice and hashed in a second pass. Here the request body is fed chunk by chunk to python-multipart's
push parser and each file part goes directly into a `Staging` writer that hashes as it writes. Memory stays at one
network chunk per upload whatever the file size.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header

from hub.safetensors_header import NonFiniteTensor
from hub.storage import BlobStore, StagedBlob, Staging, UploadTooLarge


@dataclass
class ReceivedForm:
    """What a multipart body held: staged files by file name and plain text fields."""

    files: dict[str, StagedBlob] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self, store: BlobStore) -> None:
        for staged in self.files.values():
            store.discard(staged)
        self.files.clear()


class _FormCollector:
    """python-multipart callbacks that route each part to a staging file or a small in-memory field."""

    MAX_FIELD_BYTES = 64 * 1024

    def __init__(self, store: BlobStore, allowed_files: tuple[str, ...], max_bytes: int,
                 inspectors: dict[str, Callable[[], Callable[[bytes], None]]] | None = None):
        self.store, self.allowed, self.max_bytes = store, allowed_files, max_bytes
        self.inspectors = inspectors or {}
        self.form = ReceivedForm()
        self.total = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[str, bytes] = {}
        self._staging: Staging | None = None
        self._file_name: str | None = None
        self._field_name: str | None = None
        self._field_value = bytearray()
        self.error: HTTPException | None = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._append("_header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._append("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _append(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._headers = {}
        self._staging, self._file_name, self._field_name = None, None, None
        self._field_value = bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self._field_name = name
            return
        # Clients name the part either by field name (requests/httpx `files={"adapter_config.json": ...}`) or by
        # the file's own name; accept whichever of the two is a file we expect.
        filename = filename.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
        chosen = name if name in self.allowed else filename
        if chosen not in self.allowed:
            raise _Reject(400, f"unexpected file {filename!r}; expected {', '.join(self.allowed)}")
        if chosen in self.form.files or chosen == self._file_name:
            raise _Reject(400, f"file {chosen!r} was sent twice")
        self._file_name = chosen
        make_inspector = self.inspectors.get(chosen)
        self._staging = self.store.staging(max_bytes=self.max_bytes,
                                           inspect=make_inspector() if make_inspector else None)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise _Reject(413, f"upload larger than the limit of {self.max_bytes} bytes")
        if self._staging is not None:
            self._staging.write(chunk)
        else:
            self._field_value += chunk
            if len(self._field_value) > self.MAX_FIELD_BYTES:
                raise _Reject(400, f"form field {self._field_name!r} is too long")

    def _part_end(self) -> None:
        if self._staging is not None:
            self.form.files[self._file_name] = self._staging.finish()
            self._staging = None
        elif self._field_name is not None:
            value = self._field_value.decode("utf-8", "replace")
            if "\x00" in value:  # PostgreSQL cannot store it (a description with one was a 500 there)
                raise _Reject(422, f"form field {self._field_name!r} holds a NUL character")
            self.form.fields[self._field_name] = value

    def abort(self) -> None:
        if self._staging is not None:
            self._staging.abort()
            self._staging = None
        self.form.discard(self.store)


class _Reject(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


async def receive_form(request: Request, store: BlobStore, allowed_files: tuple[str, ...], max_bytes: int,
                       inspectors: dict[str, Callable[[], Callable[[bytes], None]]] | None = None) -> ReceivedForm:
    """Stream a multipart/form-data body into staging; on any problem discard everything and raise a 4xx.

    `inspectors` maps a file name to a factory of a per-file check that sees that file's bytes as they stream (see
    `Staging`); a NonFiniteTensor it raises is a 422 and stops the upload there."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise HTTPException(415, "expected a multipart/form-data body with the adapter files")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"upload of {declared} bytes is larger than the limit of {max_bytes} bytes")
    collector = _FormCollector(store, allowed_files, max_bytes, inspectors)
    parser = MultipartParser(options[b"boundary"], collector.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except _Reject as exc:
        collector.abort()
        raise HTTPException(exc.status, exc.detail) from None
    except UploadTooLarge:
        collector.abort()
        raise HTTPException(413, f"upload larger than the limit of {max_bytes} bytes") from None
    except NonFiniteTensor as exc:  # the content itself is refused: the client's fault
        collector.abort()
        raise HTTPException(422, str(exc)) from None
    except HTTPException:  # a 408 from the body read timeout
        collector.abort()
        raise
    except Exception as exc:  # malformed multipart, client went away
        collector.abort()
        raise HTTPException(400, f"could not read the multipart body: {exc}") from None
    if collector._staging is not None:  # body ended inside a part
        collector.abort()
        raise HTTPException(400, "the multipart body ended in the middle of a file")
    return collector.form
