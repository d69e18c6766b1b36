"""Issue 10, item 4: no NaN or infinity gets into the registry, neither in an uploaded adapter_config.json (JSON's
`Infinity`, `NaN`, and `1e999`, which Python parses to inf) nor in the uploaded tensors of any float dtype. The tensor
check runs on the bytes as they stream in, without torch and without holding the file."""
from __future__ import annotations

import json
import random
import struct

import numpy as np
import pytest

from tests.hardening.conftest import SYN_BASE, lora_files, upload


def _bf16(values: np.ndarray) -> bytes:
    """bfloat16 bytes: the upper half of each float32 (numpy has no bfloat16)."""
    return (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    header, data, offset = {}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + data


def _lora_bytes(dtype: str, bad=None) -> bytes:
    """A LoRA for the synthetic base's four modules, rank 2, in `dtype`; `bad` goes into the last B value."""
    rng = np.random.default_rng(1)
    encode = {"F32": lambda a: a.astype(np.float32).tobytes(), "F64": lambda a: a.astype(np.float64).tobytes(),
              "F16": lambda a: a.astype(np.float16).tobytes(), "BF16": _bf16}[dtype]
    tensors = {}
    modules = [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    for module in modules:
        a, b = rng.standard_normal((2, 8)), rng.standard_normal((8, 2))
        if bad is not None and module == modules[-1]:
            b[-1, -1] = bad
        tensors[f"base_model.model.{module}.lora_A.weight"] = (dtype, [2, 8], encode(a))
        tensors[f"base_model.model.{module}.lora_B.weight"] = (dtype, [8, 2], encode(b))
    return safetensors_bytes(tensors)


def _config(**extra) -> bytes:
    return json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"],
                       "base_model_name_or_path": SYN_BASE, **extra}).encode()


def _staged_leftovers(live) -> list:
    staging = live.settings.data_dir / "blobs" / ".staging"
    return [p.name for p in staging.iterdir()] if staging.exists() else []


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_an_uploaded_config_with_a_non_finite_number_is_refused(live, literal):
    raw = _config().replace(b'"lora_alpha": 4', b'"lora_alpha": ' + literal.encode())
    assert literal.encode() in raw
    with live.client() as c:
        r = upload(c, "nf", "config", lora_files(raw_config=raw))
        assert r.status_code == 422, r.text
        assert literal in r.json()["detail"]
        # anywhere in the config, not just in the fields the validator reads
        r = upload(c, "nf", "config", lora_files(raw_config=_config(extra={"x": [1.0]}).replace(b"1.0", literal.encode())))
        assert r.status_code == 422, r.text
        assert c.get("/api/v1/adapters/nf/config").status_code == 404


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16", "F64"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_an_upload_with_a_nan_or_infinite_weight_is_refused_and_leaves_nothing(live, dtype, bad):
    with live.client() as c:
        files = {"adapter_config.json": ("adapter_config.json", _config()),
                 "adapter_model.safetensors": ("adapter_model.safetensors", _lora_bytes(dtype, bad))}
        r = upload(c, "nf", f"w-{dtype.lower()}", files)
        assert r.status_code == 422, r.text
        assert "model.layers.1.self_attn.v_proj.lora_B.weight" in r.json()["detail"]
        assert c.get(f"/api/v1/adapters/nf/w-{dtype.lower()}").status_code == 404
    assert _staged_leftovers(live) == []


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16", "F64"])
def test_finite_weights_of_every_float_dtype_are_accepted_including_extremes(live, dtype):
    extreme = {"F32": 3.4e38, "F16": 65504.0, "BF16": 3.38e38, "F64": 1.7e308}[dtype]
    with live.client() as c:
        files = {"adapter_config.json": ("adapter_config.json", _config()),
                 "adapter_model.safetensors": ("adapter_model.safetensors", _lora_bytes(dtype, -extreme))}
        r = upload(c, "nf", f"ok-{dtype.lower()}", files)
        assert r.status_code == 201, r.text


def _values(dtype: str, count: int, bad_at: int | None, bad: float) -> bytes:
    rng = np.random.default_rng(count)
    values = rng.standard_normal(count) * 1000
    if bad_at is not None:
        values[bad_at] = bad
    if dtype == "BF16":
        return _bf16(values)
    return values.astype({"F32": np.float32, "F16": np.float16, "F64": np.float64}[dtype]).tobytes()


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16", "F64"])
def test_has_non_finite_finds_one_bad_value_anywhere_across_block_edges(dtype):
    from hub.safetensors_header import has_non_finite

    count = (1 << 16) + 5  # past one big-integer block
    assert not has_non_finite(_values(dtype, count, None, 0.0), dtype)
    for at in (0, 1, (1 << 16) - 1, 1 << 16, count - 1):
        for bad in (float("nan"), float("inf"), float("-inf")):
            assert has_non_finite(_values(dtype, count, at, bad), dtype), (at, bad)


def test_the_streaming_scanner_finds_a_nan_however_the_bytes_are_split():
    from hub.safetensors_header import NonFiniteScanner, NonFiniteTensor

    clean = _lora_bytes("F32")
    poisoned = _lora_bytes("F32", float("nan"))
    splitter = random.Random(0)
    for _ in range(30):
        for data, expect in ((clean, False), (poisoned, True)):
            scanner, found, at = NonFiniteScanner(), False, 0
            while at < len(data):
                step = splitter.choice([1, 2, 3, 7, 64, 1000])
                try:
                    scanner.feed(data[at:at + step])
                except NonFiniteTensor:
                    found = True
                    break
                at += step
            assert found is expect


def test_the_streaming_scanner_leaves_a_malformed_header_to_the_header_check():
    from hub.safetensors_header import NonFiniteScanner

    scanner = NonFiniteScanner()
    scanner.feed(struct.pack("<Q", 5) + b"{bad}" + b"\xff" * 64)  # not JSON: no opinion, no error
    scanner = NonFiniteScanner(max_header_bytes=10)
    scanner.feed(struct.pack("<Q", 11) + b"x" * 100)
