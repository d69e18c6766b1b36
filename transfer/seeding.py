"""Keep the caller's random streams as they were.

Every random choice in this package comes from an explicit seed (random.Random(config.seed), seeded generate and
train_lora calls). But applying an adapter for one call (lora.evaluation's generate / yes_no_prob with `adapter=`)
builds fresh LoRA layers, whose random init draws from torch's global generator before the adapter's weights
replace them. Running each entry function inside fork_rng gives that state back on the way out, so a notebook's
own random sequence is the same whether or not it ran a transfer in between.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def caller_rng_preserved(*models):
    """torch's CPU generator, and the CUDA generators of the devices these models sit on, restored on exit."""
    cuda = sorted({p.device for m in models for p in list(m.parameters())[:1] if p.device.type == "cuda"},
                  key=str)
    with torch.random.fork_rng(devices=cuda):
        yield
