"""Which device and dtype a worker runs its models on.

One worker process serves one device (a GPU host runs one worker per GPU), so the choice is made once, at start, from
`adaptarium worker --device/--dtype` or ADAPTARIUM_DEVICE / ADAPTARIUM_DTYPE, and every base the process loads goes
there. "auto" means the GPU when torch sees one, and bfloat16 on a GPU that supports it (float32 elsewhere: CPU
kernels for half precision are slow and training in fp16 without a loss scaler diverges). LoRA weights stay float32
whatever the base's dtype, so adapters saved from a GPU worker and a CPU worker are the same kind of file.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

DEVICES = ("auto", "cpu", "cuda")  # plus "cuda:N"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Placement:
    """Where a worker's models live: `device` and the `dtype` bases are loaded in."""

    device: torch.device
    dtype: torch.dtype

    def describe(self) -> dict:
        """Facts about the device for the fleet view: its name and total memory (None on CPU)."""
        info = {"device": str(self.device), "dtype": str(self.dtype).removeprefix("torch."),
                "device_name": "cpu", "memory_bytes": None}
        if self.device.type == "cuda":
            props = torch.cuda.get_device_properties(self.device)
            info.update(device_name=props.name, memory_bytes=int(props.total_memory))
        return info


def resolve(device: str = "auto", dtype: str = "auto") -> Placement:
    """The placement a --device/--dtype pair asks for; ValueError (with the accepted values) for anything else,
    including a CUDA device on a host where torch sees none."""
    device = (device or "auto").strip().lower()
    if device == "auto":
        chosen = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    elif device == "cpu":
        chosen = torch.device("cpu")
    elif device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device on this host")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but this host has {torch.cuda.device_count()} CUDA "
                             f"device(s)")
        chosen = torch.device("cuda", index)
    else:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")

    dtype = (dtype or "auto").strip().lower()
    if dtype == "auto":
        gpu_bf16 = chosen.type == "cuda" and torch.cuda.is_bf16_supported()
        chosen_dtype = torch.bfloat16 if gpu_bf16 else torch.float32
    elif dtype in DTYPES:
        chosen_dtype = DTYPES[dtype]
    else:
        raise ValueError(f"unknown dtype {dtype!r}: use auto, {', '.join(DTYPES)}")
    return Placement(chosen, chosen_dtype)


_current = Placement(torch.device("cpu"), torch.float32)


def use(placement: Placement) -> None:
    """Make `placement` the process's placement (the worker calls this once at start)."""
    global _current
    _current = placement


def current() -> Placement:
    """The process's placement: CPU/float32 unless a worker chose otherwise, so notebooks and tests are unchanged."""
    return _current
