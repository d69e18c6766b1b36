"""`adaptarium bases add` against a live hub: shapes from a config or GGUF header, no weights loaded."""
from __future__ import annotations

import json

import httpx

from lora.bases import module_shapes, tiny_model
from tests.cli.conftest import invoke
from tests.lora.test_bases import write_llama_gguf
from tests.lora.test_shapes import LLAMA3_8B, LLAMA3_8B_LAYER


def said(result) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _base(live, name):
    return httpx.get(f"{live.url}/api/v1/bases/{name}")


def test_from_config_registers_a_llama3_8b_with_its_shapes_and_no_source(cli_env, tmp_path):
    (tmp_path / "llama3.json").write_text(json.dumps(LLAMA3_8B))
    r = invoke("bases", "add", "llama-3-8b", "--from-config", tmp_path / "llama3.json",
               "--alias", "meta-llama/Meta-Llama-3-8B")
    assert r.exit_code == 0, r.output
    assert "224 adaptable modules" in said(r) and "no --source" in said(r)
    base = _base(cli_env, "meta-llama/Meta-Llama-3-8B").json()
    assert base["architecture"] == "llama" and base["source"] == ""
    assert base["module_shapes"] == {f"model.layers.{i}.{m}": list(s)
                                     for i in range(32) for m, s in LLAMA3_8B_LAYER.items()}


def test_from_config_records_the_source_workers_load_from(cli_env, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B))
    r = invoke("bases", "add", "llama-3-8b", "--from-config", tmp_path / "config.json",
               "--source", "dir:/models/llama-3-8b")
    assert r.exit_code == 0, r.output
    assert _base(cli_env, "llama-3-8b").json()["source"] == "dir:/models/llama-3-8b"


def test_a_relative_or_unknown_source_is_refused_and_nothing_registered(cli_env, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B))
    for source in ("dir:models/llama", "s3://bucket/llama"):
        r = invoke("bases", "add", "llama-3-8b", "--from-config", tmp_path / "config.json", "--source", source)
        assert r.exit_code == 1 and source in said(r)
    r = invoke("bases", "add", "tiny", "--tiny", "llama", "--source", "dir:/x")
    assert r.exit_code == 1 and "--source does not go with --tiny" in said(r)
    assert _base(cli_env, "llama-3-8b").status_code == 404


def test_from_dir_reads_only_config_json_so_a_folder_without_tokenizer_or_weights_registers(cli_env, tmp_path):
    model, _ = tiny_model("gemma3")
    model.config.save_pretrained(tmp_path / "g")
    r = invoke("bases", "add", "tiny-gemma", "--from-dir", tmp_path / "g")
    assert r.exit_code == 0, r.output
    base = _base(cli_env, "tiny-gemma").json()
    assert base["architecture"] == "gemma3_text" and base["source"] == f"dir:{(tmp_path / 'g').resolve()}"
    assert base["module_shapes"] == {m: list(s) for m, s in module_shapes(model).items()}


def test_from_gguf_registers_from_the_header_and_leaves_conversion_to_the_worker(cli_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTARIUM_CACHE_DIR", str(tmp_path / "cache"))
    model, _ = tiny_model("llama", seed=4)
    write_llama_gguf(model, tmp_path / "tiny.gguf")
    r = invoke("bases", "add", "tiny-gguf", "--from-gguf", tmp_path / "tiny.gguf")
    assert r.exit_code == 0, r.output
    base = _base(cli_env, "tiny-gguf").json()
    assert base["source"] == f"gguf:{(tmp_path / 'tiny.gguf').resolve()}"
    assert base["module_shapes"] == {m: list(s) for m, s in module_shapes(model).items()}
    assert not (tmp_path / "cache").exists()  # not dequantised at registration


def test_bad_inputs_exit_1_with_the_reason(cli_env, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"model_type": "no-such-model"}))
    r = invoke("bases", "add", "x", "--from-config", tmp_path / "bad.json")
    assert r.exit_code == 1 and "'no-such-model' is not one" in said(r)
    r = invoke("bases", "add", "x", "--from-dir", tmp_path)
    assert r.exit_code == 1 and "has no config.json" in said(r)
    r = invoke("bases", "add", "x", "--from-config", tmp_path / "bad.json", "--tiny", "llama")
    assert r.exit_code == 1 and "exactly one of" in said(r)
    assert _base(cli_env, "x").status_code == 404
