"""Base loading: tiny models, HF folders, GGUF conversion cached as safetensors, one load per process."""
import gguf
import pytest
import torch
from transformers.convert_slow_tokenizer import bytes_to_unicode

from lora import bases
from lora.bases import architecture, gguf_to_hf_dir, load_base, module_shapes, tiny_model
from lora.tokenizer import char_tokenizer

torch.set_num_threads(1)


def _permute(w, n_head):
    """llama.cpp stores llama's q/k rows interleaved for its rope kernel; transformers undoes this on load."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(model, path):
    """A real (unquantised F32) llama GGUF, written with the gguf package the way llama.cpp's converter does."""
    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    tokens = ["<s>", "</s>"] + list(bytes_to_unicode().values())  # byte-level BPE with no merges
    tokens += [f"<extra{i}>" for i in range(c.vocab_size - len(tokens))]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([1] * len(tokens))
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_merges([])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, c.num_hidden_layers)
    for name, t in model.state_dict().items():
        arr = t.float().numpy()
        if name.endswith("q_proj.weight"):
            arr = _permute(arr, c.num_attention_heads)
        if name.endswith("k_proj.weight"):
            arr = _permute(arr, c.num_key_value_heads)
        w.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTARIUM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bases, "_cache", {})
    return tmp_path / "cache"


@pytest.mark.parametrize("arch,model_type", [("llama", "llama"), ("qwen2", "qwen2"), ("gemma3", "gemma3_text")])
def test_tiny_models_are_seeded_and_use_the_char_tokenizer(arch, model_type):
    one, tok = tiny_model(arch, seed=4)
    two, _ = tiny_model(arch, seed=4)
    other, _ = tiny_model(arch, seed=5)
    assert architecture(one) == model_type
    assert one.config.vocab_size == len(tok) == len(char_tokenizer())
    w = lambda m: m.model.layers[0].self_attn.q_proj.weight  # noqa: E731
    assert torch.equal(w(one), w(two)) and not torch.equal(w(one), w(other))
    shapes = module_shapes(one)
    assert shapes["model.layers.1.self_attn.q_proj"] == (64, 64)
    assert shapes["model.layers.0.self_attn.k_proj"] == (64, 32)
    assert not any(name.endswith("lm_head") for name in shapes)


def test_load_base_returns_the_same_object_per_spec(fresh_cache):
    first = load_base("tiny:llama?seed=2")
    assert load_base("tiny:llama?seed=2") is first
    other = load_base("tiny:llama?seed=3")
    assert other is not first
    assert not torch.equal(first[0].lm_head.weight, other[0].lm_head.weight)


def test_hf_folder_loads_by_dir_spec_and_plain_path(fresh_cache, tmp_path):
    model, tok = tiny_model("qwen2", seed=1)
    model.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    loaded, loaded_tok = load_base(f"dir:{tmp_path / 'hf'}")
    assert load_base(str(tmp_path / "hf"))[0] is not None
    ids = tok(["abc"], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-6)
    assert loaded_tok("abc")["input_ids"] == tok("abc")["input_ids"] and loaded_tok.padding_side == "left"


def test_gguf_is_dequantised_once_into_a_cached_safetensors_folder(fresh_cache, tmp_path):
    source, _ = tiny_model("llama", seed=6, vocab_size=300)
    write_llama_gguf(source, tmp_path / "tiny.gguf")
    model, tok = load_base(f"gguf:{tmp_path / 'tiny.gguf'}")
    ids = torch.tensor([[5, 9, 77, 123, 250]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, source(input_ids=ids).logits, atol=1e-5)
    folders = list((fresh_cache / "gguf").iterdir())
    assert len(folders) == 1 and (folders[0] / "model.safetensors").exists() and (folders[0] / "config.json").exists()
    stamp = (folders[0] / "config.json").stat().st_mtime_ns
    assert gguf_to_hf_dir(tmp_path / "tiny.gguf") == folders[0]  # second call: the cached folder, not converted again
    assert (folders[0] / "config.json").stat().st_mtime_ns == stamp
    assert tok.decode(tok("hello there")["input_ids"], skip_special_tokens=True) == "hello there"


def test_unknown_specs_and_missing_shortcut_packages_are_clear_errors(fresh_cache, monkeypatch):
    with pytest.raises(ValueError, match="unknown base spec"):
        load_base("nonsense-base")
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        load_base("tiny:gpt9")
    monkeypatch.setitem(bases._SHORTCUTS, "smollm2", "adaptarium_no_such_package")
    with pytest.raises(ValueError, match="adaptarium-no-such-package"):
        load_base("smollm2")
