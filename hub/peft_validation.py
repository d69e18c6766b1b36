"""Check that an upload is a PEFT LoRA adapter that fits its base, from the config JSON and the safetensors header.

No torch and no weights: the base's module shapes were recorded when it was registered, and the header gives every
tensor's shape, so `lora_A` must be (r, in) and `lora_B` (out, r) for each adapted module, with r taken from
`rank_pattern` exactly as PEFT resolves it. Anything PEFT would fail on when loading is refused here instead.

`target_modules` given as a string, `exclude_modules` as a string, and the keys of `rank_pattern` / `alpha_pattern`
are regular expressions written by whoever uploads. Python's `re` backtracks without bound (`(a|aa)+$` against a
module name doubles its time per character) and holds the GIL while it does, which would stall the whole API. They
run here on the `regex` module instead, with a time limit per match and a budget per upload, and with the GIL
released (`concurrent=True`): a pattern too slow to finish within them is refused (422) like an invalid one.
"""
from __future__ import annotations

import json
import math
import re
import time

import regex

from hub import json_safety
from hub.safetensors_header import FLOAT_DTYPES, TensorInfo

PREFIX = "base_model.model."
_KEY = re.compile(r"^base_model\.model\.(?P<module>[A-Za-z0-9_.]+)\.lora_(?P<part>[AB])\.weight$")


MATCH_TIMEOUT_S = 0.05  # one module name against one pattern: ordinary patterns take microseconds
PATTERN_BUDGET_S = 1.0  # every match of one upload together, so hundreds of modules cannot add up to minutes


class AdapterValidationError(ValueError):
    pass


def _compile(pattern: str, field: str):
    try:
        return regex.compile(pattern)
    except (regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise AdapterValidationError(f"adapter_config.json: {field} is not a valid regular expression "
                                     f"{pattern!r}: {exc}") from None


class _Patterns:
    """The config's user-written patterns, compiled once and matched with a time bound (see the module docstring)."""

    def __init__(self, config: dict):
        targets, exclude = config.get("target_modules"), config.get("exclude_modules")
        self.target = _compile(targets, "target_modules") if isinstance(targets, str) else None
        self.exclude = _compile(exclude, "exclude_modules") if isinstance(exclude, str) else None
        # PEFT resolves a rank_pattern / alpha_pattern key against a module as re.match(rf"(.*\.)?({key})$", module)
        self.rank = [(_compile(rf"(.*\.)?({key})$", f"rank_pattern key {key!r}"), value)
                     for key, value in (config.get("rank_pattern") or {}).items()]
        self.alpha = [_compile(rf"(.*\.)?({key})$", f"alpha_pattern key {key!r}")
                      for key in (config.get("alpha_pattern") or {})]
        self.deadline = time.monotonic() + PATTERN_BUDGET_S

    def match(self, compiled, module: str, full: bool = False) -> bool:
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            method = compiled.fullmatch if full else compiled.match
            return method(module, timeout=min(MATCH_TIMEOUT_S, left), concurrent=True) is not None
        except TimeoutError:
            raise AdapterValidationError(
                f"adapter_config.json: the pattern {compiled.pattern!r} takes too long to match module names "
                f"(over {MATCH_TIMEOUT_S * 1000:.0f} ms on {module!r}, or {PATTERN_BUDGET_S:.0f} s for the whole "
                "adapter); use a module name list or a simpler pattern") from None


def _refuse_non_finite(text: str):
    raise AdapterValidationError(f"adapter_config.json holds {text}: only finite numbers are allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        _refuse_non_finite(text)
    return value


def parse_adapter_config(raw: bytes) -> dict:
    """The config as a dict; refuses anything PEFT could not load, and NaN or infinite numbers anywhere in it (Python's
    json accepts `Infinity`, `NaN` and `1e999`; `"lora_alpha": Infinity` would make every weight NaN)."""
    try:
        config = json_safety.loads(raw.decode("utf-8"), "adapter_config.json", parse_constant=_refuse_non_finite,
                                   parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterValidationError(f"adapter_config.json is not valid JSON: {exc}") from None
    except json_safety.UnsafeJson as exc:  # a NUL (PostgreSQL cannot store it) or nesting too deep
        raise AdapterValidationError(str(exc)) from None
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
    exclude = config.get("exclude_modules")
    if exclude is not None and not (isinstance(exclude, str) or (isinstance(exclude, list)
                                                                 and all(isinstance(e, str) for e in exclude))):
        raise AdapterValidationError("adapter_config.json: exclude_modules must be a module name list or a regex string")
    _Patterns(config)  # every pattern compiles, or a 422 naming the bad one
    return config


def rank_for(config: dict, module: str, patterns: _Patterns | None = None) -> int:
    """The rank PEFT gives `module`: the first rank_pattern key matching the module path (or a dotted suffix)."""
    patterns = patterns or _Patterns(config)
    for compiled, rank in patterns.rank:
        if patterns.match(compiled, module):
            return rank
    return config["r"]


def _targeted(config: dict, module: str, patterns: _Patterns) -> bool:
    """Would PEFT put a LoRA layer on `module`? Its rule: not excluded, then a regex fullmatch or a name suffix."""
    exclude = config.get("exclude_modules")
    if patterns.exclude is not None and patterns.match(patterns.exclude, module, full=True):
        return False
    if isinstance(exclude, list) and any(module == e or module.endswith("." + e) for e in exclude if isinstance(e, str)):
        return False
    if patterns.target is not None:
        return patterns.match(patterns.target, module, full=True)
    return any(module == t or module.endswith("." + t) for t in config["target_modules"])


def check_lora_tensors(config: dict, tensors: dict[str, TensorInfo], module_shapes: dict | None) -> list[str]:
    """The sorted adapted module names; raises AdapterValidationError on the first thing PEFT could not load."""
    if not tensors:
        raise AdapterValidationError("adapter_model.safetensors holds no tensors")
    patterns = _Patterns(config)
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
        if not _targeted(config, module, patterns):
            raise AdapterValidationError(f"module {module!r} is not covered by target_modules "
                                         f"{config['target_modules']!r}")
        rank = rank_for(config, module, patterns)
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


# Config fields PEFT reads as regular expressions, or splices into one, when it puts LoRA layers on a model. A
# registry adapter needs none of them once its module list is explicit (uploads hold lora_A/lora_B tensors only, so
# modules_to_save can have no weights).
_PATTERN_FIELDS = ("exclude_modules", "layers_to_transform", "layers_pattern", "modules_to_save")


def explicit_config(config: dict, modules: list[str]) -> dict:
    """`config` rewritten so that PEFT runs none of its user-written patterns when a worker loads the adapter.

    PEFT matches a string target_modules / exclude_modules against every module name of the base and the
    rank_pattern / alpha_pattern keys against every adapted one, with Python's `re`: unbounded and holding the GIL. The
    upload check bounded them only on the modules the file holds, so a pattern quick on those and catastrophic on
    another module of the base (`...q_proj|(?:\\w|\\w)*#` against `mlp.down_proj`) would hang the worker. Here the
    patterns are resolved, with the upload's bounded matcher, for exactly `modules` (the adapter's tensors): the
    targets become that list of full module paths, and rank_pattern / alpha_pattern one escaped exact-path key per
    module that differs from r / lora_alpha. A pattern too slow even on those raises AdapterValidationError."""
    patterns = _Patterns(config)
    out = dict(config)
    if isinstance(config.get("target_modules"), str) or any(config.get(f) not in (None, "", [], {})
                                                            for f in _PATTERN_FIELDS):
        uncovered = [m for m in modules if not _targeted(config, m, patterns)]
        if uncovered:
            raise AdapterValidationError(f"module {uncovered[0]!r} is not covered by target_modules "
                                         f"{config.get('target_modules')!r}")
        out["target_modules"] = sorted(modules)
        out.update({f: None for f in _PATTERN_FIELDS})
    if config.get("rank_pattern"):
        ranks = {m: rank_for(config, m, patterns) for m in modules}
        out["rank_pattern"] = {f"^{re.escape(m)}": r for m, r in ranks.items() if r != config["r"]}
    if config.get("alpha_pattern"):
        values = list(config["alpha_pattern"].values())
        alphas = {m: next((values[i] for i, compiled in enumerate(patterns.alpha) if patterns.match(compiled, m)),
                          config["lora_alpha"]) for m in modules}
        out["alpha_pattern"] = {f"^{re.escape(m)}": a for m, a in alphas.items() if a != config["lora_alpha"]}
    return out
