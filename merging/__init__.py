"""Merging LoRA adapters: LoRA-LEGO and PEFT's add_weighted_adapter methods, on `lora.Adapter` values.

    merge(adapters, MergeConfig(method="lego")) -> Adapter
    merge_with_report(adapters, config, progress=None) -> (Adapter, report dict)
    fit_merge(adapters, config, model, tokenizer, examples, progress=None) -> (Adapter, report dict)
        the same merge with coefficients fitted on a few examples per input (merging.fit)

The output is a plain PEFT adapter on the same base with scaling 1 on every module (alpha = rank there). Exports load
on first use, so `merging.config` and `merging.registry` stay torch-free for the hub."""
from lora.lazy import lazy_exports

_EXPORTS = {"METHODS": "merging.registry", "MergeConfig": "merging.config", "MergeError": "merging.errors",
            "merge": "merging.combine", "merge_with_report": "merging.combine", "fit_merge": "merging.fit"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
