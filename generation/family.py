"""Which adapters can be one generator's family, checked without torch.

A generator flattens every checkpoint into one vector with one layout, and stamps every adapter it generates with one
PEFT config, so all of its inputs must agree on the base, the rank (and rank/alpha patterns), alpha, the target
modules and the tensor shapes. The API refuses a `train_generator` job before queuing it by listing the offending
versions; it is torch-free, so this module imports only the stdlib and works on plain adapter_config.json dicts
(`family_mismatches`) or on anything with `.config` and `.tensors` whose values have a `.shape` (`check_family`).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence

# adapter_config.json field -> (label in messages, value when the field is absent)
FAMILY_FIELDS = {
    "peft_type": ("PEFT type", "LORA"),
    "base_model_name_or_path": ("base", None),
    "r": ("rank", None),
    "lora_alpha": ("alpha", None),
    "use_rslora": ("use_rslora", False),
    "target_modules": ("target modules", None),
    "rank_pattern": ("rank pattern", {}),
    "alpha_pattern": ("alpha pattern", {}),
    "use_dora": ("use_dora", False),
    "layers_to_transform": ("layers_to_transform", None),
}


def _normalised(field: str, config: Mapping):
    _, default = FAMILY_FIELDS[field]
    value = config.get(field, default)
    if field == "target_modules" and isinstance(value, (list, tuple, set)):
        return tuple(sorted(value))  # PEFT treats the list as a set of leaf names
    if field in ("rank_pattern", "alpha_pattern") and value is None:
        return {}
    if field in ("r", "lora_alpha") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)  # alpha 16 and 16.0 are the same adapter
    return value


def _family_value(values: list):
    """The value most inputs share (ties: the first one seen), so one odd input is the one reported."""
    counts = Counter(json.dumps(v, sort_keys=True, default=str) for v in values)
    best = max(counts.values())
    for v in values:
        if counts[json.dumps(v, sort_keys=True, default=str)] == best:
            return v
    raise AssertionError("unreachable")


def _shown(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else repr(value)


def _merge_problems(found: dict[str, list[str]]) -> list[str]:
    return [f"{name}: " + "; ".join(problems) for name, problems in found.items() if problems]


def family_mismatches(configs: Mapping[str, Mapping]) -> list[str]:
    """One line per input whose adapter_config.json disagrees with the family (the value most inputs share):
    "<name>: rank 16 differs from the family's 8; ...". Empty when they all agree (or there is one input)."""
    return _merge_problems(_config_problems(configs))


def _config_problems(configs: Mapping[str, Mapping]) -> dict[str, list[str]]:
    names = list(configs)
    found: dict[str, list[str]] = {name: [] for name in names}
    for field, (label, _) in FAMILY_FIELDS.items():
        values = [_normalised(field, configs[name]) for name in names]
        family = _family_value(values) if values else None
        for name, value in zip(names, values):
            if value != family:
                found[name].append(f"{label} {_shown(value)} differs from the family's {_shown(family)}")
    return found


def check_family(adapters) -> list[str]:
    """family_mismatches on the adapters' configs, plus the tensor layout: every input must hold the same tensor keys
    with the same shapes (a base with the same names but other sizes would otherwise slip through). `adapters` is a
    mapping name -> adapter, or a sequence (named by position)."""
    if isinstance(adapters, Mapping):
        named = dict(adapters)
    elif isinstance(adapters, Sequence):
        named = {str(i): a for i, a in enumerate(adapters)}
    else:
        raise TypeError("check_family takes a mapping name -> adapter or a list of adapters")
    problems = _config_problems({name: a.config for name, a in named.items()})
    layouts = {name: {k: tuple(t.shape) for k, t in a.tensors.items()} for name, a in named.items()}
    family = _family_value(list(layouts.values())) if layouts else {}
    for name, layout in layouts.items():
        missing = sorted(set(family) - set(layout))
        extra = sorted(set(layout) - set(family))
        reshaped = sorted(k for k in set(layout) & set(family) if layout[k] != family[k])
        lines = problems[name]
        if missing:
            lines.append(f"lacks {len(missing)} of the family's tensors (e.g. {missing[0]})")
        if extra:
            lines.append(f"has {len(extra)} tensors the family lacks (e.g. {extra[0]})")
        if reshaped:
            k = reshaped[0]
            lines.append(f"{len(reshaped)} tensors differ in shape (e.g. {k}: {list(layout[k])} vs {list(family[k])})")
    return _merge_problems(problems)
