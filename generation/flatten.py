"""Adapters <-> one vector each, in a fixed, stored layout (methods.md ICM-LoRA step 2).

Every tensor is z-scored on its own (its values across all training checkpoints): A and B live on very different
scales (A starts random, B starts at zero), and one MSE over raw values would only ever learn the larger. Tensors are
concatenated in natural key order: digit runs compare as numbers, so layers.10 comes after layers.9 (the released
code sorted checkpoint names as strings, which puts 10 before 2). The vector can be zero-padded to a multiple of a
given number (a strided network needs it; the basis generator asks for none: multiple 1).

Exactness. The mean is rounded to a float32 value and the scale is the standard deviation rounded to the nearest
power of two, and flatten/unflatten work in float64: dividing and multiplying by a power of two is exact, and the
difference of two float32 numbers is exact in float64 unless their magnitudes are more than 2**29 apart. So unflatten
returns the original tensors bit for bit, including exact zeros; the only values that can come back differently are
nonzero ones smaller than 2**-29 * |mean| of their tensor, which come back within 2**-53 * |mean|. The z-scores are
then within a factor sqrt(2) of unit variance, all the network needs.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch

from generation.errors import GenerationError


def natural_key(key: str) -> tuple:
    """Sort key comparing digit runs as integers: "layers.9.q" < "layers.10.q"."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", key)))


@dataclass(frozen=True)
class TensorSpec:
    """Where one adapter tensor sits in the vector and how it was normalised."""

    key: str  # as in adapter_model.safetensors
    shape: tuple[int, ...]
    dtype: str  # torch dtype name without "torch.", restored on unflatten
    mean: float  # a float32 value
    std: float  # the tensor's standard deviation rounded to a power of two (the exact scale used)
    offset: int  # first position in the vector

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Layout:
    tensors: tuple[TensorSpec, ...]
    length: int  # real values, sum of numel
    padded: int  # vector length: length rounded up to the multiple fit_layout was given

    def to_json(self) -> dict:
        return {"length": self.length, "padded": self.padded,
                "tensors": [{**asdict(t), "shape": list(t.shape)} for t in self.tensors]}

    @classmethod
    def from_json(cls, data: dict) -> "Layout":
        specs = tuple(TensorSpec(key=t["key"], shape=tuple(int(s) for s in t["shape"]), dtype=str(t["dtype"]),
                                 mean=float(t["mean"]), std=float(t["std"]), offset=int(t["offset"]))
                      for t in data["tensors"])
        layout = cls(tensors=specs, length=int(data["length"]), padded=int(data["padded"]))
        position = 0
        for t in specs:  # a layout read from files must tile the vector exactly as fit_layout made it
            if t.offset != position or t.std <= 0 or not hasattr(torch, t.dtype):
                raise GenerationError(f"generator layout entry {t.key!r} is inconsistent")
            position += t.numel
        if position != layout.length or layout.padded < layout.length:
            raise GenerationError("generator layout lengths are inconsistent")
        return layout

    def keys(self) -> list[str]:
        return [t.key for t in self.tensors]


def _power_of_two(std: float) -> float:
    if not math.isfinite(std) or std <= 0:
        return 1.0  # a constant tensor: any scale inverts exactly, 1 leaves it centred at 0
    return 2.0 ** round(math.log2(std))


def fit_layout(adapters: list, multiple: int) -> Layout:
    """Layout for adapters sharing tensor keys and shapes (check_family first): per tensor, the mean and scale of
    its values over all of them; the vector padded to a multiple of `multiple`."""
    if not adapters:
        raise GenerationError("no adapters to fit a layout on")
    specs, offset = [], 0
    for key in sorted(adapters[0].tensors, key=natural_key):
        reference = adapters[0].tensors[key]
        values = torch.cat([a.tensors[key].detach().reshape(-1).to(torch.float64) for a in adapters])
        mean = float(torch.tensor(values.mean().item(), dtype=torch.float32))
        std = _power_of_two(values.std(correction=0).item()) if values.numel() > 1 else 1.0
        dtype = str(reference.dtype).removeprefix("torch.")
        specs.append(TensorSpec(key=key, shape=tuple(reference.shape), dtype=dtype, mean=mean, std=std, offset=offset))
        offset += reference.numel()
    padded = -(-offset // multiple) * multiple
    return Layout(tensors=tuple(specs), length=offset, padded=padded)


def flatten(adapter, layout: Layout) -> torch.Tensor:
    """The adapter's normalised vector, float64 of length layout.padded (zeros after layout.length)."""
    out = torch.zeros(layout.padded, dtype=torch.float64)
    for t in layout.tensors:
        if t.key not in adapter.tensors:
            raise GenerationError(f"adapter lacks the layout's tensor {t.key}")
        value = adapter.tensors[t.key].detach()
        if tuple(value.shape) != t.shape:
            raise GenerationError(f"{t.key}: shape {tuple(value.shape)}, layout expects {t.shape}")
        out[t.offset:t.offset + t.numel] = (value.reshape(-1).to(torch.float64) - t.mean) / t.std
    return out


def unflatten(vector: torch.Tensor, layout: Layout) -> dict[str, torch.Tensor]:
    """Tensors from a (normalised, possibly padded) vector: crop, denormalise, reshape, cast back."""
    if vector.dim() != 1 or vector.numel() < layout.length:
        raise GenerationError(f"vector of shape {tuple(vector.shape)} is shorter than the layout ({layout.length})")
    v = vector.detach().to("cpu", torch.float64)
    return {t.key: (v[t.offset:t.offset + t.numel] * t.std + t.mean).to(getattr(torch, t.dtype)).reshape(t.shape)
            for t in layout.tensors}
