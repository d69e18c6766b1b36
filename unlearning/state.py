"""The O3 state an unlearned adapter version carries for gated inference and for the next request.

Files (all under the `o3/` prefix, next to the version's primary adapter_config.json / adapter_model.safetensors,
which hold the task + unlearning LoRA concatenated at full weight):

    o3/manifest.json                                   format, requests (config, sizes, summary), file layout
    o3/task/adapter_config.json, adapter_model.safetensors       the task adapter (PEFT folder)
    o3/unlearn/adapter_config.json, adapter_model.safetensors    the unlearning LoRA after the last request
    o3/requests/<k>/a_matrices.safetensors             request k's A matrices at its end (module path -> (r, in))
    o3/detectors/<k>/encoder/adapter_config.json, adapter_model.safetensors   request k's encoder LoRA
    o3/detectors/<k>/statistics.safetensors            Mahalanobis means / precisions, feature bank, OCSVM weights
    o3/detectors/<k>/detector.json                     OCSVM intercept, gate calibration m1 m2 s, ζ, γ, ...

Only safetensors and JSON: versions are downloadable from a registry, and unpickling a downloaded file runs code.
PRIVACY: the detectors hold features of the forget sets (see unlearning/detector.py); the files deserve the same
access rules as the forget data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from safetensors.torch import load, save

from lora import Adapter
from lora.manifest import read_manifest
from unlearning.detector import Detector

ROOT = "o3/"
MANIFEST = ROOT + "manifest.json"
FORMAT = "adaptarium-o3/1"


def _request_key(k: int) -> str:
    return f"{k:03d}"


@dataclass
class O3State:
    """Task adapter, unlearning LoRA, every request's A matrices and detector, and per-request metadata."""

    task: Adapter
    unlearn: Adapter
    a_history: list[dict[str, torch.Tensor]] = field(default_factory=list)
    detectors: list[Detector] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)  # JSON-friendly: config, forget-set size, summary numbers

    @property
    def n_requests(self) -> int:
        return len(self.detectors)

    def to_files(self) -> dict[str, bytes]:
        """path -> bytes of every o3/ file (see the module docstring)."""
        files: dict[str, bytes] = {}
        for name, adapter in (("task", self.task), ("unlearn", self.unlearn)):
            config_json, weights = adapter.to_bytes()
            files[f"{ROOT}{name}/adapter_config.json"] = config_json
            files[f"{ROOT}{name}/adapter_model.safetensors"] = weights
        for k, a in enumerate(self.a_history):
            files[f"{ROOT}requests/{_request_key(k)}/a_matrices.safetensors"] = save(
                {m: t.contiguous() for m, t in a.items()}, metadata={"format": "pt"})
        for k, detector in enumerate(self.detectors):
            files.update(detector.to_files(f"{ROOT}detectors/{_request_key(k)}/"))
        manifest = {"format": FORMAT, "n_requests": self.n_requests, "requests": self.requests,
                    "files": sorted(files)}
        files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode()
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> "O3State":
        """Read what to_files wrote (other keys, e.g. the version's primary adapter files, are ignored)."""
        manifest = read_manifest(files, MANIFEST, FORMAT, "O3 state")
        adapters = {name: Adapter.from_bytes(files[f"{ROOT}{name}/adapter_config.json"],
                                             files[f"{ROOT}{name}/adapter_model.safetensors"])
                    for name in ("task", "unlearn")}
        n = int(manifest["n_requests"])
        a_history = [dict(load(files[f"{ROOT}requests/{_request_key(k)}/a_matrices.safetensors"]))
                     for k in range(n)]
        detectors = [Detector.from_files(files, f"{ROOT}detectors/{_request_key(k)}/") for k in range(n)]
        return cls(task=adapters["task"], unlearn=adapters["unlearn"], a_history=a_history, detectors=detectors,
                   requests=list(manifest["requests"]))

    @staticmethod
    def is_state(files) -> bool:
        """True when a version's files include an O3 state (so `evaluate` / `infer` can gate it)."""
        return MANIFEST in files
