"""Issue 10, item 5 on the worker side: the regular expressions of a registry adapter's config (target_modules as a
string, exclude_modules, rank_pattern / alpha_pattern keys) never reach PEFT's unbounded `re` in a worker. The
worker resolves them with the upload's bounded matcher into explicit module paths (hub.peft_validation.
explicit_config), so a pattern the upload accepted cannot hang a job, and one too slow even on the adapter's own
modules fails the job in about a second. A train job's target_modules is a module name list: a pattern is a 422.

Uses a real Celery worker on Redis db 4.
"""
from __future__ import annotations

import json
import time

import pytest
import torch
from peft import LoraConfig, get_peft_model

from hub import registry
from hub.peft_validation import AdapterValidationError, explicit_config
from hub.registry import FileEntry
from lora import Adapter
from lora.bases import tiny_model
from tests.api.conftest import TINY_BASE, make_adapter_dir, tiny_base, upload  # noqa: F401 - fixture
from tests.methods.conftest import method_hub, run_job  # noqa: F401 - fixture

REDIS_URL = "redis://127.0.0.1:6379/4"
# Quick on the adapted modules (the first branch matches them), exponential in Python's re on every other module
# name of the base: PEFT tries target_modules against model.layers.0.self_attn.k_proj too (2^31 steps, minutes).
SLOW_ELSEWHERE = r"model\.layers\.\d+\.self_attn\.[qv]_proj|(?:[\w.]|[\w.])*#"
SLOW_EVERYWHERE = r"(?:[\w.]|[\w.])*#|model\.layers\.\d+\.self_attn\.[qv]_proj"


def _peft_view(config: dict) -> dict[str, tuple[int, float]]:
    """module -> (rank, scaling) of the LoRA layers PEFT puts on the tiny llama for this config."""
    model, _ = tiny_model("llama", seed=0)
    fields = {k: v for k, v in config.items() if k in LoraConfig.__dataclass_fields__}
    peft_model = get_peft_model(model, LoraConfig(**fields))
    found = {}
    for name, module in peft_model.base_model.model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            found[name] = (module.r["default"], module.scaling["default"])
    return found


def test_explicit_config_puts_the_same_layers_with_the_same_ranks_and_scalings_as_the_patterns():
    config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "task_type": "CAUSAL_LM",
              "target_modules": r".*\.(?!.*vision)(q_proj|v_proj|up_proj)", "exclude_modules": r".*layers\.1\.mlp.*",
              "rank_pattern": {r"layers\.0\.self_attn\.q_proj": 2, "v_proj": 6}, "alpha_pattern": {"up_proj": 3}}
    modules = sorted(_peft_view(config))
    resolved = explicit_config(config, modules)
    assert resolved["target_modules"] == modules and resolved["exclude_modules"] is None
    assert all(key.startswith("^") for key in [*resolved["rank_pattern"], *resolved["alpha_pattern"]])
    assert _peft_view(resolved) == _peft_view(config)
    assert _peft_view(config)["model.layers.0.self_attn.q_proj"][0] == 2  # the patterns really did something


def test_a_pattern_too_slow_on_the_adapters_own_modules_is_refused_within_the_budget():
    config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": SLOW_EVERYWHERE}
    start = time.perf_counter()
    with pytest.raises(AdapterValidationError, match="too long"):
        explicit_config(config, ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"])
    assert time.perf_counter() - start < 3


def _adapter_files(tmp_path, config_changes: dict) -> dict[str, bytes]:
    path = make_adapter_dir(tmp_path / "adapter")
    config = json.loads((path / "adapter_config.json").read_text())
    config.update(config_changes)
    (path / "adapter_config.json").write_text(json.dumps(config))
    return {f.name: f.read_bytes() for f in path.iterdir()}


def _infer(client, ref: str) -> dict:
    return run_job(client, {"kind": "infer", "inputs": [ref], "params": {"prompts": ["abc"], "max_new_tokens": 2}},
                   timeout=120)


def test_an_uploaded_pattern_slow_on_other_base_modules_never_runs_in_the_worker(method_hub, tmp_path):
    files = _adapter_files(tmp_path, {"target_modules": SLOW_ELSEWHERE})
    with method_hub.client() as c:
        r = c.post("/api/v1/adapters/pat/elsewhere/versions", files={k: (k, v) for k, v in files.items()})
        assert r.status_code == 201, r.text  # the upload's bounded check only sees the adapted q/v modules
        start = time.perf_counter()
        job = _infer(c, "pat/elsewhere@1")
    assert job["state"] == "succeeded", job
    assert time.perf_counter() - start < 60  # unresolved, PEFT would spend minutes on k_proj alone


def test_a_stored_adapter_whose_pattern_is_slow_on_its_own_modules_fails_its_job_promptly(method_hub, tmp_path):
    """Stored past the upload check (an adapter from before it, or written by another path): the job fails with
    the pattern named, in about a second, and the worker goes on to the next job."""
    files = _adapter_files(tmp_path, {"target_modules": SLOW_EVERYWHERE})
    app = method_hub.app
    with app.state.session_factory() as s:
        base_id = registry.find_base(s, TINY_BASE).id
    entries = [FileEntry(name, app.state.store.put_bytes(data), len(data)) for name, data in sorted(files.items())]
    registry.create_version(app.state.session_factory, kind="adapter", namespace="pat", name="stored",
                            base_id=base_id, peft_config=json.loads(files["adapter_config.json"]), files=entries)
    with method_hub.client() as c:
        start = time.perf_counter()
        job = _infer(c, "pat/stored@1")
        took = time.perf_counter() - start
        assert job["state"] == "failed", job
        assert "too long" in job["error"]["message"] and "pat/stored@1" in job["error"]["message"]
        assert took < 60
        assert _infer(c, "pat/stored@1")["state"] == "failed"  # the worker is free: the next job runs


def test_a_train_job_with_a_pattern_for_target_modules_is_a_quick_422(method_hub):
    with method_hub.client() as c:
        start = time.perf_counter()
        r = c.post("/api/v1/jobs", json={"kind": "train", "params": {
            "base": TINY_BASE, "task": "builtin:word_sorting", "target_modules": SLOW_EVERYWHERE, "steps": 1},
            "output": "pat/trained"})
        assert r.status_code == 422, r.text
        assert "target_modules" in r.text
        assert time.perf_counter() - start < 3
