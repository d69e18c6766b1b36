"""What training a generator and generating from one are asked to do: two plain dataclasses, torch-free.

The hub keeps a pydantic params model for the `train_generator` and `generate` job kinds that a test checks against
these (field names and defaults), so they stay flat, JSON-friendly and stdlib-only. `check()` raises ValueError naming
the first bad field, so a notebook user or the API learns what is wrong before any training starts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

CONDITIONS = ("hidden_state", "text")
SELECTIONS = ("none", "likelihood")


def _positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _number(name: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclass
class GeneratorConfig:
    """Training a CVAE over a family's checkpoint trajectories (ICM-LoRA, methods.md)."""

    # What a task is described by: "hidden_state" (the paper: the base's last-layer, last-position hidden state
    # averaged over a few task examples) or "text" (a description embedded with all-MiniLM-L6-v2).
    condition: Literal["hidden_state", "text"] = "hidden_state"
    # hidden_state only: how many task examples are averaged. A few suffice (the paper uses a handful); 8 keeps the
    # forward passes cheap on CPU while averaging out one odd example.
    condition_examples: int = 8
    # hidden_state only: compute the members' training conditions WITH their adapter applied (the paper) or on the
    # base alone. Off by default: a new task has no adapter yet, so at generate time its condition can only come from
    # the base; computing training conditions the same way means the generator is trained on exactly the kind of
    # vector it is given later. generation.condition_shift measures how far apart the two kinds are for a member.
    condition_with_adapter: bool = False
    # Fraction of each trajectory kept, the later part (the paper keeps the later half of its checkpoints: early
    # ones are still close to the random init and describe no task).
    keep: float = 0.5
    # Latent size. The paper uses 256; 64 keeps the encoder/decoder heads (features x latent) ~4x smaller, which
    # matters on CPU, and a family of a few tasks has far fewer than 64 directions of variation to encode.
    latent: int = 64
    # Widest Conv1d / ConvTranspose1d block (widths double from 2 up to this). 16 keeps a SmolLM2 q,v rank-8 step
    # (a 460,800-long vector) at ~0.1 s per checkpoint on one CPU core.
    channels: int = 16
    # Number of stride-2 blocks in the encoder (and the decoder): the vector is padded to a multiple of 2**blocks and
    # the bottleneck has channels * length / 2**blocks features. 10 takes a 0.46M vector to 451 positions, so the
    # linear heads stay a few million parameters.
    blocks: int = 10
    # Per-position gains (see generation/cvae.py): channels of L learned weights with which the encoder reads and the
    # decoder writes every position of the vector. Conv kernels are shared across positions and cannot place
    # adapter-specific values; each gain channel lets the decoder add one learned pattern, so a family needs about as
    # many as it has members that differ. Measured on a SmolLM2-shaped 3-member family (30 checkpoints used, 300
    # epochs): reconstruction error (fraction of variation) 0.15 with 2, 0.03 with 4, 0.02 with 8; each channel
    # costs 2 L parameters (two adapters' worth), so 4 is the default.
    position_channels: int = 4
    # KL weight (the paper's 0.005): reconstruction first, just enough KL to keep the latent usable from N(0, I).
    beta: float = 0.005
    # Fraction of the optimizer steps over which the KL weight ramps linearly from 0 to beta (KL annealing). With the
    # full weight from the first step the KL term wins before the decoder has learned to use z, and the posterior
    # collapses onto the prior (measured on the tiny test family: the reconstruction stays at the family mean).
    beta_warmup: float = 0.3
    # Passes over all kept checkpoints. Families are small (tens of checkpoints), so many cheap epochs: 200 is 800
    # steps for 3 members x 10 kept checkpoints. For SmolLM2 q,v rank 8 (a 460,800-long vector) that measured 13 s
    # on an H200 (reconstruction error 0.045 of the variation); on CPU a step of 8 took ~1 s on one busy core, so
    # ~13 min: use the gpu queue, or fewer epochs on CPU. The tiny test family reconstructs well after 200.
    epochs: int = 200
    # Adam learning rate. 3e-3 rather than the usual 1e-3: on the tiny test family it reaches a 4x lower
    # reconstruction error in the same 300 steps, without instability.
    lr: float = 3e-3
    # Checkpoints per optimizer step; 8 fits a SmolLM2-sized vector's activations comfortably in CPU memory.
    batch_size: int = 8
    # Seeds the network init, the batch order and the reparameterisation noise (bit-identical reruns on CPU).
    seed: int = 0

    def check(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        for name in ("condition_examples", "latent", "channels", "blocks", "position_channels", "epochs",
                     "batch_size"):
            _positive_int(name, getattr(self, name))
        if not isinstance(self.condition_with_adapter, bool):
            raise ValueError(f"condition_with_adapter must be true or false, got {self.condition_with_adapter!r}")
        if not 0 < _number("keep", self.keep) <= 1:
            raise ValueError(f"keep must be in (0, 1], got {self.keep!r}")
        if _number("beta", self.beta) < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")
        if not 0 <= _number("beta_warmup", self.beta_warmup) <= 1:
            raise ValueError(f"beta_warmup must be in [0, 1], got {self.beta_warmup!r}")
        if _number("lr", self.lr) <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.blocks > 24:
            raise ValueError(f"blocks must be at most 24 (pads to a multiple of 2**blocks), got {self.blocks!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GeneratorConfig":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown generator config field(s): {sorted(unknown)}")
        return cls(**data)


@dataclass
class GenerateConfig:
    """Decoding adapters from a trained generator."""

    # Candidates drawn (z ~ N(0, I) each). With select="none" the first is returned, so samples > 1 only costs time.
    samples: int = 1
    # "none": return the first candidate. "likelihood" (our addition to the paper): score every candidate by its
    # mean log-likelihood on the given examples with the base model and keep the best.
    select: Literal["none", "likelihood"] = "none"
    # Multiplies z: 1.0 samples the prior as the paper does; 0.0 decodes the prior mean (one deterministic adapter).
    temperature: float = 1.0
    # Seeds z; the same generator, condition and config give bit-identical adapters on CPU.
    seed: int = 0

    def check(self) -> None:
        _positive_int("samples", self.samples)
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, got {self.select!r}")
        if _number("temperature", self.temperature) < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GenerateConfig":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown generate config field(s): {sorted(unknown)}")
        return cls(**data)
