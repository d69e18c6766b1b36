"""Bad uploads: a clear 4xx naming the problem, and nothing stored — no version row, no blob, no skipped number."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.api.conftest import make_adapter_dir, start_hub, upload


def _blob_files(hub) -> int:
    """Blobs in the store, counted where they live (local dir) — S3 is checked through the DB row count."""
    root = Path(hub.settings.storage_url.removeprefix("file://"))
    if not hub.settings.storage_url.startswith("file://"):
        return hub.scalar("select count(*) from blobs")
    return sum(1 for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts)


def _rewrite_config(adapter_dir: Path, **changes) -> None:
    path = adapter_dir / "adapter_config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _bad_header(adapter_dir: Path, mutate) -> None:
    path = adapter_dir / "adapter_model.safetensors"
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    header, data = mutate(header, data)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)


def _first_tensor(header: dict) -> str:
    return next(k for k in header if k != "__metadata__")


CASES = {
    "unknown base": (lambda d: _rewrite_config(d, base_model_name_or_path="no-such-base"), 422, "unknown base"),
    "not a LoRA config": (lambda d: _rewrite_config(d, peft_type="PREFIX_TUNING"), 422, "LORA"),
    "rank in config disagrees with tensors": (lambda d: _rewrite_config(d, r=8), 422, "lora_A"),
    "invalid JSON config": (lambda d: (d / "adapter_config.json").write_text("{nope"), 422, "JSON"),
    "truncated weights": (lambda d: (d / "adapter_model.safetensors").write_bytes(
        (d / "adapter_model.safetensors").read_bytes()[:-10]), 422, ""),
    "header length beyond the file": (lambda d: (d / "adapter_model.safetensors").write_bytes(
        struct.pack("<Q", 10**9) + b"{}"), 422, "header"),
    "unknown dtype": (lambda d: _bad_header(d, lambda h, data: (
        {**h, _first_tensor(h): {**h[_first_tensor(h)], "dtype": "Q7"}}, data)), 422, "dtype"),
    "module the base does not have": (lambda d: _bad_header(d, lambda h, data: (
        {k.replace("layers.0.", "layers.7."): v for k, v in h.items()}, data)), 422, "layers.7"),
    "non-PEFT tensor names": (lambda d: _bad_header(d, lambda h, data: (
        {k.replace("lora_A", "lora_X"): v for k, v in h.items()}, data)), 422, "lora_X"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_adapter_upload_is_refused_and_leaves_nothing(registered, tmp_path, case):
    break_it, status, fragment = CASES[case]
    with registered.client() as c:
        assert upload(c, "team", "x", make_adapter_dir(tmp_path / "good", seed=1)).status_code == 201
        blobs_before = _blob_files(registered)
        bad = make_adapter_dir(tmp_path / "bad", seed=2)
        break_it(bad)
        r = upload(c, "team", "x", bad)
        assert r.status_code == status, r.text
        assert fragment.lower() in r.json()["detail"].lower()
        assert registered.scalar("select count(*) from adapter_versions") == 1
        assert _blob_files(registered) == blobs_before
        assert upload(c, "team", "x", make_adapter_dir(tmp_path / "next", seed=3)).json()["number"] == 2


def test_bad_names_are_refused(registered, tmp_path):
    adapter_dir = make_adapter_dir(tmp_path / "a")
    with registered.client() as c:
        for ns, name in [("team", "a..b"), ("team", "-lead"), ("te am", "x"), ("team", "x" * 200)]:
            r = upload(c, ns, name, adapter_dir)
            assert r.status_code in (404, 422), (ns, name, r.text)
    assert registered.scalar("select count(*) from adapters") == 0


def test_missing_duplicate_and_unexpected_files_are_refused(registered, tmp_path):
    adapter_dir = make_adapter_dir(tmp_path / "a")
    config = (adapter_dir / "adapter_config.json").read_bytes()
    weights = (adapter_dir / "adapter_model.safetensors").read_bytes()
    url = "/api/v1/adapters/team/f/versions"
    with registered.client() as c:
        r = c.post(url, files={"adapter_config.json": ("adapter_config.json", config)})
        assert r.status_code == 422 and "adapter_model.safetensors" in r.json()["detail"]
        r = c.post(url, files=[("adapter_config.json", ("adapter_config.json", config)),
                               ("adapter_model.safetensors", ("adapter_model.safetensors", weights)),
                               ("adapter_config.json", ("adapter_config.json", config))])
        assert r.status_code == 400 and "twice" in r.json()["detail"]
        r = c.post(url, files={"adapter_config.json": ("adapter_config.json", config),
                               "adapter_model.safetensors": ("adapter_model.safetensors", weights),
                               "evil.sh": ("../../evil.sh", b"rm -rf /")})
        assert r.status_code == 400 and "evil.sh" in r.json()["detail"]
        assert c.post(url, json={"x": 1}).status_code == 415
    assert registered.scalar("select count(*) from adapter_versions") == 0
    assert _blob_files(registered) == 0


def test_upload_over_the_size_limit_is_413_and_stores_nothing(tmp_path, tiny_base):
    live, stop = start_hub(tmp_path, ADAPTARIUM_MAX_UPLOAD_BYTES=4096)
    try:
        with live.client() as c:
            c.post("/api/v1/bases", json=tiny_base[2])
            r = upload(c, "team", "big", make_adapter_dir(tmp_path / "a"))
            assert r.status_code == 413 and "4096" in r.json()["detail"]
        assert live.scalar("select count(*) from adapter_versions") == 0
        assert _blob_files(live) == 0
    finally:
        stop()


def test_adapter_already_on_another_base_is_a_conflict(registered, tmp_path, tiny_base):
    other = dict(tiny_base[2], name="tiny-llama-copy", aliases=[])
    with registered.client() as c:
        assert c.post("/api/v1/bases", json=other).status_code == 201
        assert upload(c, "team", "c", make_adapter_dir(tmp_path / "a")).status_code == 201
        r = upload(c, "team", "c", make_adapter_dir(tmp_path / "b", seed=4), base="tiny-llama-copy")
        assert r.status_code == 409, r.text
    assert registered.scalar("select count(*) from adapter_versions") == 1
