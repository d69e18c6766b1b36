"""The trained generator as a value: its JSON config and its CVAE, and the two files the registry stores.

generator_config.json holds everything needed to rebuild the network and to turn its output into a PEFT adapter:
the architecture, the base and the adapter config every generated adapter carries (rank, alpha, target modules),
the flattening layout (per tensor key, shape, dtype, mean, std, offset), the condition's kind and size and how the
training conditions were computed. generator.safetensors holds the CVAE's weights and condition statistics.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cached_property

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors

from generation.basis import BasisCVAE
from generation.errors import GenerationError
from generation.flatten import Layout, flatten, unflatten
from lora import Adapter

CONFIG_FILE = "generator_config.json"
WEIGHTS_FILE = "generator.safetensors"
FORMAT = "adaptarium-icm-lora-cvae"
# 2: the basis decoder (generation/basis.py). Version 1 generators used a conv decoder over the full weight vector,
# removed because the basis one reconstructs better at a fraction of the size; they must be retrained.
FORMAT_VERSION = 2


@dataclass
class Member:
    """One task of the family: its trajectory checkpoints in training order (Adapters, or the (step, Adapter)
    pairs of TrainResult.checkpoints, ordered by step as numbers) and its condition vector."""

    name: str
    checkpoints: list
    condition: torch.Tensor
    # where the member sits in its family (e.g. caesar_shift's k); only read to report whether the conditions are
    # ordered like the family (condition_separability). None for every member: their position in the list.
    order: float | None = None

    def ordered_checkpoints(self) -> list[Adapter]:
        items = list(self.checkpoints)
        if items and all(isinstance(c, tuple) for c in items):
            return [adapter for _, adapter in sorted(items, key=lambda c: int(c[0]))]
        if any(isinstance(c, tuple) for c in items):
            raise GenerationError(f"member {self.name}: mix of (step, adapter) pairs and bare adapters")
        return items


@dataclass
class Generator:
    config: dict  # the content of generator_config.json
    model: BasisCVAE
    report: dict = field(default_factory=dict)  # the training report (not part of the files)

    # ---------------------------------------------------------------- views of the config

    @cached_property
    def layout(self) -> Layout:
        return Layout.from_json(self.config["layout"])

    @property
    def base_model(self) -> str | None:
        return self.config["base_model"]

    @property
    def condition_kind(self) -> str:
        return self.config["condition"]["kind"]

    @property
    def condition_size(self) -> int:
        return int(self.config["condition"]["size"])

    @property
    def latent(self) -> int:
        return int(self.config["architecture"]["latent"])

    # ---------------------------------------------------------------- files

    def to_files(self) -> dict[str, bytes]:
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()}
        return {CONFIG_FILE: json.dumps(self.config, indent=2, sort_keys=True).encode(),
                WEIGHTS_FILE: save_safetensors(state, metadata={"format": "pt"})}

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> "Generator":
        missing = {CONFIG_FILE, WEIGHTS_FILE} - set(files)
        if missing:
            raise GenerationError(f"generator files missing: {sorted(missing)}")
        try:
            config = json.loads(files[CONFIG_FILE])
            arch = config["architecture"]
            if config.get("format") != FORMAT or int(config.get("format_version", 0)) > FORMAT_VERSION:
                raise GenerationError(f"{CONFIG_FILE} is not a version-{FORMAT_VERSION} {FORMAT} config")
            if int(config["format_version"]) < FORMAT_VERSION:
                raise GenerationError(f"this generator has format version {config['format_version']} (the conv "
                                      f"decoder, no longer supported): train it again")
            model = build_cvae(arch)
            state = load_safetensors_bytes(files[WEIGHTS_FILE])
            model.load_state_dict(state, strict=True)
            generator = cls(config=config, model=model)
            generator.layout  # validate the layout now, not at the first generate
        except GenerationError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise GenerationError(f"not a valid generator: {exc}") from exc
        if generator.layout.padded != model.length:
            raise GenerationError("generator layout and architecture disagree on the vector length")
        model.eval()
        return generator

    # ---------------------------------------------------------------- the network on adapters

    def check_condition(self, condition: torch.Tensor) -> torch.Tensor:
        condition = torch.as_tensor(condition).detach().float().cpu()
        if condition.dim() != 1 or condition.shape[0] != self.condition_size:
            raise GenerationError(f"this generator takes a {self.condition_kind} condition of size "
                                  f"{self.condition_size}, got shape {tuple(condition.shape)}")
        if not torch.isfinite(condition).all():
            raise GenerationError("the condition has non-finite values")
        return condition

    @torch.no_grad()
    def decode(self, z: torch.Tensor, condition: torch.Tensor) -> list[Adapter]:
        """One adapter per row of z (n, latent), all for the same raw condition."""
        condition = self.check_condition(condition)
        self.model.eval()
        vectors = self.model.decode(z.float(), condition.expand(z.shape[0], -1))
        return [self.to_adapter(v) for v in vectors]

    @torch.no_grad()
    def posterior(self, adapter: Adapter, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's μ and log σ² (each (latent,)) for an adapter of the family."""
        condition = self.check_condition(condition)
        self.model.eval()
        mu, logvar = self.model.encode(flatten(adapter, self.layout).float().unsqueeze(0), condition.unsqueeze(0))
        return mu[0], logvar[0]

    def to_adapter(self, vector: torch.Tensor) -> Adapter:
        return Adapter(config=copy.deepcopy(self.config["adapter_config"]), tensors=unflatten(vector, self.layout))


def build_cvae(arch: dict) -> BasisCVAE:
    return BasisCVAE(length=int(arch["length"]), directions=int(arch["directions"]),
                     condition_size=int(arch["condition_size"]), latent=int(arch["latent"]))
