"""The O3 state's files: exact round trip, safetensors + JSON only (no pickle), the documented layout."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load

from unlearning import O3State, detector_weights


def _assert_no_pickle(files: dict[str, bytes]):
    for name, data in files.items():
        assert not data.startswith(b"\x80"), f"{name} looks like a pickle"
        assert not data.startswith(b"PK"), f"{name} looks like a torch.save zip"
        if name.endswith(".json"):
            json.loads(data)
        elif name.endswith(".safetensors"):
            load(data)
        else:
            pytest.fail(f"unexpected file type: {name}")


def test_round_trip_is_exact(second, forget_sets, reference_prompts):
    files = second.state.to_files()
    again = O3State.from_files(files)
    assert again.to_files() == files
    for module in second.state.unlearn.modules():
        assert torch.equal(again.unlearn.a(module), second.state.unlearn.a(module))
        assert torch.equal(again.task.b(module), second.state.task.b(module))
    for k in range(2):
        for module, a in second.state.a_history[k].items():
            assert torch.equal(again.a_history[k][module], a)
    prompts = [p for p, _ in forget_sets[0][:2]] + reference_prompts[:2]
    assert (detector_weights(again, prompts) == detector_weights(second.state, prompts)).all()
    assert again.requests == second.state.requests


def test_no_file_is_a_pickle(second):
    files = second.files()
    _assert_no_pickle(files)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(files)


def test_files_follow_the_documented_layout(second):
    files = second.state.to_files()
    assert all(name.startswith("o3/") for name in files)
    for part in ("task", "unlearn", "detectors/000/encoder", "detectors/001/encoder"):
        assert f"o3/{part}/adapter_config.json" in files and f"o3/{part}/adapter_model.safetensors" in files
    for k in ("000", "001"):
        assert f"o3/requests/{k}/a_matrices.safetensors" in files
        assert f"o3/detectors/{k}/statistics.safetensors" in files
        meta = json.loads(files[f"o3/detectors/{k}/detector.json"])
        assert {"m1", "m2", "s", "svm_intercept", "zeta", "gamma"} <= set(meta)
    manifest = json.loads(files["o3/manifest.json"])
    assert manifest["n_requests"] == 2 and sorted(manifest["files"]) == sorted(set(files) - {"o3/manifest.json"})


def test_reading_refuses_incomplete_or_foreign_files(second):
    files = second.state.to_files()
    with pytest.raises(ValueError, match="missing"):
        O3State.from_files({k: v for k, v in files.items() if "detectors/001" not in k})
    with pytest.raises(ValueError, match="manifest"):
        O3State.from_files({"adapter_config.json": b"{}"})
