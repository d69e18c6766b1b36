"""Parse and check a safetensors header without loading tensors and without torch.

The format: 8 bytes little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, __metadata__},
then the data section. The API checks uploads with this before anything becomes visible, so it must reject
everything a loader could trip on: a length past the file, bad JSON, unknown dtypes, spans that overlap, leave holes,
run past the end, or disagree with dtype x shape, and a data section whose size is not what the header implies.
"""
from __future__ import annotations

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
