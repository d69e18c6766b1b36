"""Adaptable-module shapes of a base model without loading its weights.

Registering a base only needs the (in, out) shape of each module LoRA may adapt, and those follow from the model's
config alone. Building the model on torch's "meta" device allocates no storage, so an 8B config costs as little
memory as a 135M one, and no tokenizer is needed (a folder with config.json but no tokenizer files registers fine).
For a GGUF file only its header (metadata and tensor names) is read; the weights stay quantised on disk until a worker
first loads the base, when `lora.bases.gguf_to_hf_dir` dequantises and caches them.

What counts as adaptable is `lora.bases.module_shapes`, applied to the meta model: one definition for both paths.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from lora.bases import architecture, module_shapes


class ShapeError(ValueError):
    """The config (or GGUF header) cannot describe a causal LM we can build; the message says why."""


def config_from_dict(fields: dict) -> PretrainedConfig:
    """A transformers config from a config.json's contents, chosen by its model_type (no network, no remote code)."""
    if not isinstance(fields, dict):
        raise ShapeError("a config must be a JSON object")
    model_type = fields.get("model_type")
    if not model_type:
        raise ShapeError("the config has no model_type")
    if model_type not in CONFIG_MAPPING:
        raise ShapeError(f"model_type {model_type!r} is not one this transformers version knows")
    try:
        return CONFIG_MAPPING[model_type].from_dict(fields)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"invalid {model_type} config: {exc}") from exc


def config_from_file(path: str | os.PathLike) -> PretrainedConfig:
    """Config from a config.json file."""
    path = Path(path)
    if not path.is_file():
        raise ShapeError(f"{path} is not a file")
    try:
        fields = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShapeError(f"{path} is not JSON: {exc}") from exc
    return config_from_dict(fields)


def config_from_dir(path: str | os.PathLike) -> PretrainedConfig:
    """Config from a Hugging Face model folder's config.json; weights and tokenizer files are not opened."""
    path = Path(path)
    if not path.is_dir():
        raise ShapeError(f"{path} is not a folder")
    if not (path / "config.json").is_file():
        raise ShapeError(f"{path} has no config.json")
    return config_from_file(path / "config.json")


def config_from_gguf(path: str | os.PathLike) -> PretrainedConfig:
    """Config from a GGUF file's metadata, mapped the way transformers maps it when it loads the file, so the meta
    model has the modules the dequantised one will have. Tensors are not read, let alone dequantised."""
    path = Path(path)
    if not path.is_file():
        raise ShapeError(f"{path} is not a file")
    try:
        return AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, OSError, KeyError, IndexError, TypeError, struct.error) as exc:  # a truncated or odd header
        raise ShapeError(f"cannot read a model config from GGUF {path}: {exc}") from exc


def meta_model(config: PretrainedConfig):
    """The causal LM `lora.bases.load_base` would build for this config, with every tensor on the meta device."""
    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, TypeError) as exc:
        raise ShapeError(f"transformers cannot build a causal LM from this {config.model_type} config: {exc}") from exc


def shapes_from_config(config: PretrainedConfig) -> tuple[str, dict[str, tuple[int, int]]]:
    """(architecture, adaptable module -> (in, out)) for a config, as a loaded model would report them."""
    model = meta_model(config)
    shapes = module_shapes(model)
    if not shapes:
        raise ShapeError(f"a {config.model_type} model has no adaptable linear modules")
    return architecture(model), shapes


def source_problem(spec: str) -> str | None:
    """Why `spec` cannot tell a worker where a base's weights are, or None if it can.

    Checked when a base is registered, because a bad source only shows up later, as a failed job on another machine.
    Paths must be absolute: the worker resolves them in its own working directory, not the registering shell's."""
    from lora.bases import _ARCHS, _SHORTCUTS

    kind, colon, rest = spec.partition(":")
    if colon and kind == "tiny":
        return None if rest.partition("?")[0] in _ARCHS else f"unknown tiny architecture in {spec!r}"
    if colon and kind in ("dir", "gguf"):
        return None if os.path.isabs(rest) else f"{spec!r}: the path must be absolute (workers resolve it)"
    if spec in _SHORTCUTS:
        return None
    return (f"unknown base source {spec!r}: use dir:/ABS/PATH, gguf:/ABS/FILE.gguf, tiny:<arch> "
            f"or one of {sorted(_SHORTCUTS)}")
