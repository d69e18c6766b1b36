"""Check that an upload is a PEFT LoRA adapter that fits its base, from the config JSON and the safetensors header.

No torch and no weights: the base's module shapes were recorded when it was registered, and the header gives every
tensor's shape, so `lora_A` must be (r, in) and `lora_B` (out, r) for each adapted module, with r taken from
`rank_pattern` exactly as PEFT resolves it. Anything PEFT would fail on when loading is refused here instead.
"""
from __future__ import annotations

import json
import re

from hub.safetensors_header import FLOAT_DTYPES, TensorInfo

PREFIX = "base_model.model."
_KEY = re.compile(r"^base_model\.model\.(?P<module>[A-Za-z0-9_.]+)\.lora_(?P<part>[AB])\.weight$")


class AdapterValidationError(ValueError):
    pass


def parse_adapter_config(raw: bytes) -> dict:
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterValidationError(f"adapter_config.json is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise AdapterValidationError("adapter_config.json must be a JSON object")
    if config.get("peft_type") != "LORA":
        raise AdapterValidationError(f"adapter_config.json: peft_type must be 'LORA', got {config.get('peft_type')!r}")
    r = config.get("r")
    if not isinstance(r, int) or isinstance(r, bool) or not 0 < r <= 65536:
        raise AdapterValidationError(f"adapter_config.json: r must be a positive integer, got {r!r}")
    alpha = config.get("lora_alpha")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise AdapterValidationError(f"adapter_config.json: lora_alpha must be a positive number, got {alpha!r}")
    targets = config.get("target_modules")
    if not (isinstance(targets, str) or (isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets))):
        raise AdapterValidationError("adapter_config.json: target_modules must be a module name list or a regex string")
    for field, value_type in (("rank_pattern", int), ("alpha_pattern", (int, float))):
        pattern = config.get(field) or {}
        if not isinstance(pattern, dict) or not all(isinstance(v, value_type) and not isinstance(v, bool) and v > 0
                                                    for v in pattern.values()):
            raise AdapterValidationError(f"adapter_config.json: {field} must map module patterns to positive numbers")
    if config.get("use_dora"):
        raise AdapterValidationError("adapter_config.json: DoRA adapters (use_dora) are not supported")
    base = config.get("base_model_name_or_path")
    if base is not None and not isinstance(base, str):
        raise AdapterValidationError("adapter_config.json: base_model_name_or_path must be a string")
    return config


def rank_for(config: dict, module: str) -> int:
    """The rank PEFT gives `module`: the first rank_pattern key matching the module path (or a dotted suffix)."""
    for key, rank in (config.get("rank_pattern") or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return rank
    return config["r"]


def _targeted(config: dict, module: str) -> bool:
    targets = config["target_modules"]
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    return any(module == t or module.endswith("." + t) for t in targets)


def check_lora_tensors(config: dict, tensors: dict[str, TensorInfo], module_shapes: dict | None) -> list[str]:
    """The sorted adapted module names; raises AdapterValidationError on the first thing PEFT could not load."""
    if not tensors:
        raise AdapterValidationError("adapter_model.safetensors holds no tensors")
    parts: dict[str, dict[str, TensorInfo]] = {}
    for key, info in tensors.items():
        match = _KEY.match(key)
        if match is None:
            raise AdapterValidationError(f"tensor {key!r} is not named like a PEFT LoRA weight "
                                         f"('{PREFIX}<module>.lora_A.weight' / '.lora_B.weight')")
        if info.dtype not in FLOAT_DTYPES:
            raise AdapterValidationError(f"tensor {key!r} has dtype {info.dtype}; LoRA weights must be floating point")
        if len(info.shape) != 2:
            raise AdapterValidationError(f"tensor {key!r} has shape {list(info.shape)}; LoRA weights are 2-D")
        parts.setdefault(match["module"], {})[match["part"]] = info
    for module, pair in sorted(parts.items()):
        missing = {"A", "B"} - set(pair)
        if missing:
            raise AdapterValidationError(f"module {module!r} has lora_{''.join(sorted(set(pair)))} but no "
                                         f"lora_{''.join(sorted(missing))}")
        if not _targeted(config, module):
            raise AdapterValidationError(f"module {module!r} is not covered by target_modules "
                                         f"{config['target_modules']!r}")
        rank = rank_for(config, module)
        a_shape, b_shape = pair["A"].shape, pair["B"].shape
        if module_shapes is not None:
            if module not in module_shapes:
                raise AdapterValidationError(f"module {module!r} does not exist in the base model (or is not an "
                                             "adaptable linear layer)")
            fan_in, fan_out = module_shapes[module]
        else:
            fan_in, fan_out = a_shape[1], b_shape[0]
        if tuple(a_shape) != (rank, fan_in):
            raise AdapterValidationError(f"module {module!r}: lora_A has shape {list(a_shape)}, expected "
                                         f"[{rank}, {fan_in}] (rank {rank} from the config, in_features {fan_in})")
        if tuple(b_shape) != (fan_out, rank):
            raise AdapterValidationError(f"module {module!r}: lora_B has shape {list(b_shape)}, expected "
                                         f"[{fan_out}, {rank}] (out_features {fan_out}, rank {rank} from the config)")
    return sorted(parts)
