"""Module shapes from a config.json or a GGUF header: right shapes, no weights read, little memory."""
import json
import subprocess
import sys

import pytest
import torch

from lora import bases
from lora.bases import architecture, module_shapes, tiny_model
from lora.shapes import (ShapeError, config_from_dict, config_from_dir, config_from_file, config_from_gguf,
                         shapes_from_config, source_problem)
from tests.conftest import ROOT
from tests.lora.test_bases import write_llama_gguf

torch.set_num_threads(1)

# Meta-Llama-3-8B's config.json, the fields that matter for shapes plus the usual rest.
LLAMA3_8B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
             "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
             "rope_theta": 500000.0, "hidden_act": "silu", "bos_token_id": 128000, "eos_token_id": 128001,
             "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
LLAMA3_8B_LAYER = {"self_attn.q_proj": (4096, 4096), "self_attn.k_proj": (4096, 1024),
                   "self_attn.v_proj": (4096, 1024), "self_attn.o_proj": (4096, 4096), "mlp.gate_proj": (4096, 14336),
                   "mlp.up_proj": (4096, 14336), "mlp.down_proj": (14336, 4096)}

_MEASURE = """
import json, re, sys, time
start = time.monotonic()
from lora.shapes import config_from_file, shapes_from_config
arch, shapes = shapes_from_config(config_from_file(sys.argv[1]))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork + exec, so it would report the (large) test session that
# started this process; VmHWM is this process's own address space's high-water mark
peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"arch": arch, "shapes": shapes, "seconds": time.monotonic() - start, "peak_kb": peak_kb}))
"""


def test_a_llama3_8b_config_gives_its_shapes_in_a_process_that_stays_under_1gb(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B))
    # A fresh process, so the peak RSS is this computation's (imports included), not the test session's. The
    # timeout is a hang guard; the seconds are reported by bench/bases_add.py, not asserted here.
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(tmp_path / "config.json")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["peak_kb"] < 1024 * 1024, f"peak RSS {result['peak_kb'] / 1024:.0f} MiB"  # float32 weights: 32 GB
    assert result["arch"] == "llama"
    expected = {f"model.layers.{i}.{m}": list(s) for i in range(32) for m, s in LLAMA3_8B_LAYER.items()}
    assert result["shapes"] == expected  # 32 layers x 7 projections, lm_head left out


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3"])
def test_shapes_from_a_saved_folders_config_equal_the_loaded_models(arch, tmp_path):
    model, _ = tiny_model(arch, seed=1)
    model.save_pretrained(tmp_path / arch)  # weights and config.json, no tokenizer files
    found_arch, shapes = shapes_from_config(config_from_dir(tmp_path / arch))
    assert found_arch == architecture(model)
    assert shapes == module_shapes(model)


def test_a_folder_with_only_a_config_json_needs_no_weights_and_no_tokenizer(tmp_path):
    model, _ = tiny_model("qwen2")
    model.config.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    assert shapes_from_config(config_from_dir(tmp_path))[1] == module_shapes(model)


def test_gguf_shapes_come_from_the_header_without_dequantising(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTARIUM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bases, "_cache", {})
    model, _ = tiny_model("llama", seed=2)
    write_llama_gguf(model, tmp_path / "tiny.gguf")
    found_arch, shapes = shapes_from_config(config_from_gguf(tmp_path / "tiny.gguf"))
    assert found_arch == "llama"
    assert shapes == module_shapes(model)
    assert not (tmp_path / "cache").exists()  # nothing converted or cached: the worker does that on first use


def test_bad_configs_are_clear_errors(tmp_path):
    with pytest.raises(ShapeError, match="no config.json"):
        config_from_dir(tmp_path)
    with pytest.raises(ShapeError, match="not a folder"):
        config_from_dir(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ShapeError, match="not JSON"):
        config_from_file(tmp_path / "bad.json")
    with pytest.raises(ShapeError, match="no model_type"):
        config_from_dict({"hidden_size": 8})
    with pytest.raises(ShapeError, match="'no-such-model' is not one"):
        config_from_dict({"model_type": "no-such-model"})
    (tmp_path / "not.gguf").write_bytes(b"GGUF but not really")
    with pytest.raises(ShapeError, match="cannot read a model config from GGUF"):
        config_from_gguf(tmp_path / "not.gguf")


@pytest.mark.parametrize("spec, ok", [("dir:/models/llama", True), ("gguf:/models/x.gguf", True),
                                      ("tiny:qwen2?seed=0", True), ("smollm2", True), ("dir:models/llama", False),
                                      ("gguf:x.gguf", False), ("tiny:gpt9", False), ("s3://bucket/x", False),
                                      ("", False)])
def test_source_specs_are_checked_before_a_base_is_registered(spec, ok):
    assert (source_problem(spec) is None) == ok
