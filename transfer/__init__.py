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
(TransferError).
"""
from transfer.config import KitConfig, TransferConfig
from transfer.errors import TransferError
from transfer.kit import Kit, make_kit
from transfer.pipeline import TransferResult, trans_lora
from transfer.prompts import discriminator_prompt, generator_prompt
from transfer.similarity import embed, mean_embedding_distance, mmd

__all__ = ["Kit", "KitConfig", "TransferConfig", "TransferError", "TransferResult", "discriminator_prompt", "embed",
           "generator_prompt", "make_kit", "mean_embedding_distance", "mmd", "trans_lora"]
