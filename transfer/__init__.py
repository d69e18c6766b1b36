"""Trans-LoRA: move an adapter to a new base model without its training data (arXiv 2405.17258; methods.md).

Two entry functions, one per phase:

    kit = make_kit(source_adapter, source_model, source_tokenizer, real_pairs, KitConfig(seeds=5))
    result = trans_lora(source_adapter, source_model, source_tokenizer, target_model, target_tokenizer, kit,
                        TransferConfig(), progress=print_progress, target_base_name="tiny:gemma3")
    result.adapter   # a PEFT LoRA on the target base
    result.report    # filter and threshold, acceptance rate, sizes, MMDs, seconds per stage, loss curve, examples
    kit.warnings     # e.g. a discriminator at chance on held-out data

Modules: config (the two torch-free configs), prompts (generator and discriminator prompts), synthesis (draw and
filter loop), discriminator (train it, score with it), calibration (held-out quality, the chance warning, the
calibrated threshold), kit (source time), pipeline (transfer time), similarity (embeddings and MMD), errors
(TransferError). Exports load on first use, so `transfer.config` stays torch-free for the hub.
"""
from lora.lazy import lazy_exports

_EXPORTS = {
    "KitConfig": "transfer.config", "TransferConfig": "transfer.config", "TransferError": "transfer.errors",
    "Kit": "transfer.kit", "make_kit": "transfer.kit", "TransferResult": "transfer.pipeline",
    "trans_lora": "transfer.pipeline", "discriminator_prompt": "transfer.prompts",
    "generator_prompt": "transfer.prompts", "embed": "transfer.similarity",
    "mean_embedding_distance": "transfer.similarity", "mmd": "transfer.similarity",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
