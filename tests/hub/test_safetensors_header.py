"""The safetensors header parser accepts what safetensors writes and names the problem in everything else."""
from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save

from hub.safetensors_header import HeaderError, TensorInfo, read_header


def _parse(raw: bytes):
    return read_header(io.BytesIO(raw), len(raw))


def _craft(header: dict, data: bytes, length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded) if length is None else length) + encoded + data


def test_reads_what_safetensors_writes():
    raw = save({"a": np.zeros((4, 3), dtype=np.float32), "b": np.ones((2,), dtype=np.float16)}, metadata={"format": "pt"})
    tensors, meta = _parse(raw)
    assert tensors["a"] == TensorInfo("F32", (4, 3), tensors["a"].start, tensors["a"].start + 48)
    assert tensors["b"].dtype == "F16" and tensors["b"].shape == (2,)
    assert meta == {"format": "pt"}


GOOD = {"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "y": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}


@pytest.mark.parametrize("raw, fragment", [
    (b"\x01\x02", "shorter than its 8-byte"),
    (_craft(GOOD, b"\0" * 12, length=10**9), "above the limit"),
    (_craft(GOOD, b"\0" * 12, length=5000), "runs past the end"),
    (struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", "JSON object"),
    (_craft({**GOOD, "x": {**GOOD["x"], "dtype": "F13"}}, b"\0" * 12), "unknown dtype 'F13'"),
    (_craft({**GOOD, "x": {**GOOD["x"], "shape": [-2]}}, b"\0" * 12), "shape"),
    (_craft({**GOOD, "x": {**GOOD["x"], "shape": [3]}}, b"\0" * 12), "needs 12"),
    (_craft({**GOOD, "y": {**GOOD["y"], "data_offsets": [4, 8]}}, b"\0" * 12), "overlaps"),
    (_craft({**GOOD, "y": {**GOOD["y"], "data_offsets": [12, 16]}}, b"\0" * 16), "gap"),
    (_craft(GOOD, b"\0" * 10), "runs past the end of the data section"),
    (_craft(GOOD, b"\0" * 20), "file size disagrees"),
    (_craft({**GOOD, "__metadata__": {"k": 1}}, b"\0" * 12), "__metadata__"),
])
def test_rejects_malformed_headers_with_a_message_naming_the_problem(raw, fragment):
    with pytest.raises(HeaderError, match=None) as info:
        _parse(raw)
    assert fragment in str(info.value)


def test_header_bound_is_configurable():
    raw = _craft(GOOD, b"\0" * 12)
    with pytest.raises(HeaderError, match="above the limit of 16"):
        read_header(io.BytesIO(raw), len(raw), max_header_bytes=16)
