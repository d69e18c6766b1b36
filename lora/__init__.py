"""LoRA core: the Adapter value, base models, training, evaluation, gating and built-in tasks.

A pure library (torch, transformers, peft, safetensors): the hub, the workers and the method packages build on
it, never the other way round.
"""
from lora.adapter import Adapter

__all__ = ["Adapter"]
