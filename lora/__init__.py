"""LoRA core: the Adapter value, base models, training, evaluation, gating and built-in tasks.

A pure library (torch, transformers, peft, safetensors): the hub, the workers and the method packages build on
it, never the other way round. `lora.config` (the LoRA training config every method extends) is torch-free, so
this file imports nothing heavy itself.
"""
from lora.lazy import lazy_exports

_EXPORTS = {"Adapter": "lora.adapter"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
