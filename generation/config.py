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
    # Principal directions of the kept checkpoints the generator decodes into (generation/basis.py; at most
    # checkpoints - 1 are used). A family of M members needs about M - 1 for where the members end, plus a few for
    # the drift along their trajectories. Storage grows with it: the generator costs about (1 + basis/2) float32
    # adapters (mean float32, directions float16), so its size relative to the checkpoints it learned from is about
    # (1 + basis/2) / checkpoints used. Measured on a tiny 4-member add_constant family (40 checkpoints used): 8
    # directions keep 99.9 % of the checkpoints' variation.
    basis: int = 8
    # Latent size, capped at `basis` (z cannot carry more than the coordinates it is decoded to). The paper uses 256
    # over full weight vectors; in the basis, a few dims hold which member and where along its trajectory.
    latent: int = 64
    # KL weight (the paper's 0.005): reconstruction first, just enough KL to keep the latent usable from N(0, I).
    beta: float = 0.005
    # Fraction of the optimizer steps over which the KL weight ramps linearly from 0 to beta (KL annealing). With the
    # full weight from the first step the KL term wins before the decoder has learned to use z, and the posterior
    # collapses onto the prior (measured on the tiny test family: the reconstruction stays at the family mean).
    beta_warmup: float = 0.3
    # Passes over all kept checkpoints. Families are small (tens of checkpoints), so many cheap epochs: 200 is 800
    # steps for 3 members x 10 kept checkpoints; the MLP works on `basis` coordinates, so a step costs one
    # projection of the batch onto the basis and one expansion back (4.5 s for 200 epochs over 40 tiny checkpoints
    # on one busy core, where the conv decoder this replaced took 56 s).
    epochs: int = 200
    # Adam learning rate. 3e-3 rather than the usual 1e-3: on the tiny test family it reaches a 4x lower
    # reconstruction error in the same 300 steps, without instability.
    lr: float = 3e-3
    # Checkpoints per optimizer step.
    batch_size: int = 8
    # Seeds the network init, the batch order and the reparameterisation noise (bit-identical reruns on CPU).
    seed: int = 0

    def check(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        for name in ("condition_examples", "basis", "latent", "epochs", "batch_size"):
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
