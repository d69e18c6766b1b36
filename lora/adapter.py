"""A LoRA adapter as a plain value.

Every part of Adaptarium (the registry, transfer, unlearning, merging, generation) passes adapters around, and
most of them only need the per-module (A, B) pairs and the scaling PEFT applies to them. Keeping the adapter as
"PEFT's config dict + PEFT's tensor dict" means what we store is byte-for-byte what `PeftModel.from_pretrained`
reads, while the accessors below give the math view (A, B, alpha/r, ΔW) without a model in memory.
"""
from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file, save

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PREFIX = "base_model.model."
_A_SUFFIX = ".lora_A.weight"
_B_SUFFIX = ".lora_B.weight"


def _jsonable(value):
    """LoraConfig.to_dict() holds sets and enums; adapter_config.json holds lists and strings."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def pattern_key(patterns, module: str) -> str | None:
    """The rank_pattern / alpha_pattern key PEFT would use for `module` (first key matching the module path or a
    dotted suffix of it, as peft.utils.other.get_pattern_key does), or None when no key matches."""
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", module):
            return key
    return None


@dataclass
class Adapter:
    """A LoRA adapter as a value: its PEFT LoraConfig (as the dict in adapter_config.json) and its tensors keyed
    exactly as in adapter_model.safetensors ("base_model.model.<module>.lora_A.weight" / ".lora_B.weight")."""

    config: dict
    tensors: dict[str, torch.Tensor]

    # ---------------------------------------------------------------- construction / I/O

    @classmethod
    def from_dir(cls, path) -> "Adapter":
        path = Path(path)
        config = json.loads((path / CONFIG_NAME).read_text())
        return cls(config=config, tensors=load_file(str(path / WEIGHTS_NAME)))

    @classmethod
    def from_bytes(cls, config_json: bytes, safetensors_bytes: bytes) -> "Adapter":
        return cls(config=json.loads(config_json), tensors=load_safetensors_bytes(safetensors_bytes))

    @classmethod
    def from_modules(
        cls,
        base_model: str,
        modules: dict[str, tuple[torch.Tensor, torch.Tensor]],
        *,
        r: int,
        lora_alpha: float,
        use_rslora: bool = False,
        rank_pattern: dict | None = None,
        alpha_pattern: dict | None = None,
        **extra_config,
    ) -> "Adapter":
        """Build an adapter from module path -> (A (r_m, in), B (out, r_m)).

        Modules whose rank differs from `r` get an exact-path rank_pattern entry (anchored so it cannot match a
        longer path), so PEFT recreates layers with the right shapes when loading."""
        if not modules:
            raise ValueError("an adapter needs at least one module")
        rank_pattern = dict(rank_pattern or {})
        tensors = {}
        for module, (a, b) in modules.items():
            if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
                raise ValueError(f"{module}: A {tuple(a.shape)} and B {tuple(b.shape)} are not (r, in) and (out, r)")
            rank = a.shape[0]
            key = pattern_key(rank_pattern, module)
            expected = rank_pattern[key] if key is not None else r
            if rank != expected:
                rank_pattern[f"^{re.escape(module)}"] = rank  # PEFT's regex: (.*\.)?(^path)$ matches only path
            tensors[PREFIX + module + _A_SUFFIX] = a.detach().contiguous()
            tensors[PREFIX + module + _B_SUFFIX] = b.detach().contiguous()
        leaves = sorted({m.rsplit(".", 1)[-1] for m in modules})
        config = LoraConfig(
            r=r,
            lora_alpha=lora_alpha,
            use_rslora=use_rslora,
            target_modules=leaves,
            rank_pattern=rank_pattern,
            alpha_pattern=dict(alpha_pattern or {}),
            task_type="CAUSAL_LM",
            base_model_name_or_path=base_model,
            **extra_config,
        ).to_dict()
        adapter = cls(config=_jsonable(config), tensors=tensors)
        for module in modules:  # a pattern we generated must resolve to the rank we stored
            assert adapter.rank(module) == modules[module][0].shape[0], module
        return adapter

    @classmethod
    def from_peft_model(cls, model, adapter_name: str = "default") -> "Adapter":
        """Snapshot a PeftModel's adapter (tensors cloned to CPU, so later training does not change it), in float32
        whatever the device and dtype of the base: adapters from a bf16 GPU worker and a CPU worker are alike."""
        from peft import get_peft_model_state_dict

        # save_embedding_layers=False: "auto" would look the base up on the hub, which we never reach
        state = get_peft_model_state_dict(model, adapter_name=adapter_name, save_embedding_layers=False)
        tensors = {k: v.detach().to("cpu", dtype=torch.float32 if v.is_floating_point() else v.dtype, copy=True)
                   .contiguous() for k, v in state.items()}
        config = _jsonable(model.peft_config[adapter_name].to_dict())
        return cls(config=config, tensors=tensors)

    def save(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config_json, weights = self.to_bytes()
        (path / CONFIG_NAME).write_bytes(config_json)
        (path / WEIGHTS_NAME).write_bytes(weights)

    def to_bytes(self) -> tuple[bytes, bytes]:
        config_json = json.dumps(self.config, indent=2, sort_keys=True).encode()
        tensors = {k: v.contiguous() for k, v in self.tensors.items()}
        return config_json, save(tensors, metadata={"format": "pt"})

    def lora_config(self) -> LoraConfig:
        """The config as a peft LoraConfig (e.g. to wrap a base model with get_peft_model)."""
        fields = {k: v for k, v in self.config.items() if k in LoraConfig.__dataclass_fields__}
        return LoraConfig(**fields)

    # ---------------------------------------------------------------- per-module access

    @property
    def base_model(self) -> str:
        return self.config.get("base_model_name_or_path")

    def modules(self) -> list[str]:
        found = set()
        for key in self.tensors:
            if key.endswith(_A_SUFFIX):
                module = key[len(PREFIX) : -len(_A_SUFFIX)]
                if PREFIX + module + _B_SUFFIX in self.tensors:
                    found.add(module)
        return sorted(found)

    def _tensor(self, module: str, suffix: str) -> torch.Tensor:
        key = PREFIX + module + suffix
        if key not in self.tensors:
            raise KeyError(f"adapter has no LoRA weights for module {module!r}")
        return self.tensors[key]

    def a(self, module: str) -> torch.Tensor:
        return self._tensor(module, _A_SUFFIX)

    def b(self, module: str) -> torch.Tensor:
        return self._tensor(module, _B_SUFFIX)

    def rank(self, module: str) -> int:
        patterns = self.config.get("rank_pattern") or {}
        key = pattern_key(patterns, module)
        return int(patterns[key]) if key is not None else int(self.config["r"])

    def alpha(self, module: str) -> float:
        patterns = self.config.get("alpha_pattern") or {}
        key = pattern_key(patterns, module)
        return float(patterns[key]) if key is not None else float(self.config["lora_alpha"])

    def scaling(self, module: str) -> float:
        r = self.rank(module)
        if self.config.get("use_rslora"):
            return self.alpha(module) / math.sqrt(r)
        return self.alpha(module) / r

    def delta_weight(self, module: str) -> torch.Tensor:
        """ΔW = scaling · B @ A in float32, shape (out, in)."""
        return self.scaling(module) * (self.b(module).float() @ self.a(module).float())

    def delta_weights(self) -> dict[str, torch.Tensor]:
        return {m: self.delta_weight(m) for m in self.modules()}

    def same_delta(self, other: "Adapter", atol: float = 1e-6) -> bool:
        """True when both adapters change the model by the same ΔW on every module, within atol.

        The A/B factorisation may differ, and a module one adapter lacks counts as ΔW = 0: target_modules holds
        leaf names, so PEFT gives every matching layer a LoRA (B = 0 where the file has none) and a snapshot of
        the loaded model lists modules the original did not, with no effect on outputs."""
        mine, theirs = set(self.modules()), set(other.modules())
        for m in sorted(mine | theirs):
            x = self.delta_weight(m) if m in mine else None
            y = other.delta_weight(m) if m in theirs else None
            x = torch.zeros_like(y) if x is None else x
            y = torch.zeros_like(x) if y is None else y
            if x.shape != y.shape or not torch.allclose(x, y, atol=atol, rtol=0):
                return False
        return True

    def mismatches(self, shapes: dict[str, tuple[int, int]]) -> list[str]:
        """Why this adapter cannot be applied to a base with these module shapes (lora.bases.module_shapes:
        path -> (in, out)); empty when it fits. Lets the hub refuse "adapter for another base" with a reason."""
        problems = []
        for m in self.modules():
            if m not in shapes:
                problems.append(f"{m}: no such linear module in the base")
                continue
            d_in, d_out = shapes[m]
            if self.a(m).shape[1] != d_in or self.b(m).shape[0] != d_out:
                problems.append(f"{m}: adapter expects (in={self.a(m).shape[1]}, out={self.b(m).shape[0]}), "
                                f"base has (in={d_in}, out={d_out})")
        return problems

    def num_parameters(self) -> int:
        return sum(t.numel() for t in self.tensors.values())
