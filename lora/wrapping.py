"""Put a PEFT LoRA wrapper on a shared base model and take it off again without a trace.

Bases are cached per process (lora.bases.load_base), so training or evaluating an adapter must not leave LoRA
layers, frozen parameters or train mode behind on the base. peft's get_peft_model injects layers in place;
`unload()` swaps the original Linear modules back. We also restore requires_grad flags and train/eval mode,
which unload does not. One wrapper at a time per base: other threads wait, the same thread gets an error.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

from lora.adapter import Adapter

_locks: "weakref.WeakKeyDictionary[object, threading.RLock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _lock_for(model) -> threading.RLock:
    with _locks_guard:
        if model not in _locks:
            _locks[model] = threading.RLock()
        return _locks[model]


@contextmanager
def exclusive(model):
    """Hold the model's lock: a plain forward pass of a shared base must not see another thread's LoRA layers."""
    with _lock_for(model):
        yield model


@contextmanager
def wrapped(model, config: LoraConfig, adapter: Adapter | None = None):
    """Yield a PeftModel around `model` with a fresh LoRA from `config` (or `adapter`'s weights loaded into it).

    Threads sharing a base take turns (a per-model lock): the wrapper changes the shared modules in place."""
    with _lock_for(model):
        with _wrapped(model, config, adapter) as peft_model:
            yield peft_model


@contextmanager
def _wrapped(model, config: LoraConfig, adapter: Adapter | None):
    if hasattr(model, "peft_config"):
        raise RuntimeError("this base already carries a PEFT adapter; nested wrapping is not supported")
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    name = config.base_model_name_or_path
    # get_peft_model replaces the name with the model's own name_or_path and warns when they differ (every job's
    # log repeated it); ours is put back right after, so hand it none to replace
    config.base_model_name_or_path = None
    # autocast_adapter_dtype: on a bf16/fp16 base the LoRA weights are still created in float32 (PEFT casts the
    # layer's input to them), so training updates small deltas at full precision and adapters save as float32
    try:
        if adapter is None:
            peft_model = get_peft_model(model, config, autocast_adapter_dtype=True)
        else:  # the fresh LoRA init is overwritten at once: don't let it draw from the caller's random stream
            with torch.random.fork_rng(devices=[]):
                peft_model = get_peft_model(model, config, autocast_adapter_dtype=True)
    finally:
        if name is not None:  # get_peft_model set the model's own name_or_path; ours names the base
            config.base_model_name_or_path = name
    if name is not None:
        peft_model.peft_config["default"].base_model_name_or_path = name
    try:
        if adapter is not None:
            device = next(model.parameters()).device
            tensors = {k: v.to(device) for k, v in adapter.tensors.items()}
            result = set_peft_model_state_dict(peft_model, tensors)
            unexpected = [k for k in result.unexpected_keys if "lora_" in k]
            if unexpected:
                raise ValueError(f"adapter tensors do not fit this base: {unexpected[:3]}")
        yield peft_model
    finally:
        peft_model.unload()
        for attr in ("peft_config", "_hf_peft_config_loaded"):
            if attr in model.__dict__:
                delattr(model, attr)
        for name, p in model.named_parameters():
            p.requires_grad_(flags.get(name, p.requires_grad))
        model.train(was_training)
