"""What training a generator and generating from one are asked to do: two torch-free pydantic configs, which are
also the `train_generator` and `generate` jobs' params (the hub's models add the conditions the jobs name), so each
field's limits and description are written here once. The comments say why each default was picked.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from lora.config import ESSENTIAL, MAX_SEED, MethodConfig

CONDITIONS = ("hidden_state", "text")
SELECTIONS = ("none", "likelihood")


class GeneratorConfig(MethodConfig):
    """Training a CVAE over a family's checkpoint trajectories (ICM-LoRA, methods.md)."""

    # "hidden_state" is the paper's; "text" embeds a description with all-MiniLM-L6-v2
    condition: Literal[CONDITIONS] = Field("hidden_state", description='what a task is described by: '
                                           '"hidden_state" (the base\'s last hidden state over a few task examples) '
                                           'or "text" (a description)', json_schema_extra=ESSENTIAL)
    # a few suffice (the paper uses a handful); 8 keeps the forward passes cheap on CPU while averaging out one odd one
    condition_examples: int = Field(8, ge=1, le=256, description="hidden_state: task examples averaged into a "
                                    "condition")
    # Off: a new task has no adapter yet, so at generate time its condition can only come from the base; training
    # conditions computed the same way are exactly the kind of vector the generator is given later.
    # generation.condition_shift measures how far apart the two kinds are for a member.
    condition_with_adapter: bool = Field(False, description="hidden_state: compute the members' training conditions "
                                         "with their adapter applied (the paper) instead of on the base alone")
    # early checkpoints are still close to the random init and describe no task
    keep: float = Field(0.5, gt=0, le=1, description="fraction of each trajectory kept, the later part")
    # A family of M members needs about M - 1 directions for where the members end, plus a few for the drift along
    # their trajectories. The generator costs about (1 + basis/2) float32 adapters. Measured on a tiny 4-member
    # add_constant family (40 checkpoints used): 8 directions keep 99.9 % of the checkpoints' variation.
    basis: int = Field(8, ge=1, le=256, description="principal directions of the kept checkpoints the generator "
                       "decodes into (at most checkpoints - 1 are used)", json_schema_extra=ESSENTIAL)
    # z cannot carry more than the coordinates it is decoded to
    latent: int = Field(64, ge=1, le=4096, description="latent size, capped at basis")
    beta: float = Field(0.005, ge=0, le=100, description="KL weight (the paper's 0.005)")
    # With the full weight from the first step the KL term wins before the decoder uses z and the posterior
    # collapses onto the prior (measured on the tiny test family: the reconstruction stays at the family mean).
    beta_warmup: float = Field(0.3, ge=0, le=1, description="fraction of the steps over which the KL weight ramps "
                               "from 0 to beta")
    # families are small (tens of checkpoints), so many cheap epochs: 4.5 s for 200 over 40 tiny checkpoints
    epochs: int = Field(200, ge=1, le=100_000, description="passes over all kept checkpoints",
                        json_schema_extra=ESSENTIAL)
    # 3e-3 rather than 1e-3: a 4x lower reconstruction error in the same 300 steps on the tiny test family
    lr: float = Field(3e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(8, ge=1, le=4096, description="checkpoints per optimizer step")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the init, the batch order and the noise "
                      "(bit-identical reruns on CPU)")


class GenerateConfig(MethodConfig):
    """Decoding adapters from a trained generator."""

    samples: int = Field(1, ge=1, le=64, description="candidates drawn (z ~ N(0, I) each); with select none the "
                         "first is returned", json_schema_extra=ESSENTIAL)
    # "likelihood" is our addition to the paper
    select: Literal[SELECTIONS] = Field("none", description='"none": the first candidate; "likelihood": the best '
                                        "mean log-likelihood on the given examples")
    temperature: float = Field(1.0, ge=0, le=10, description="multiplies z: 1 samples the prior, 0 decodes its mean")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of z: same generator, condition and seed give the same "
                      "adapter")
