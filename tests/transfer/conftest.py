"""Shared tiny setup: a source adapter on tiny llama, a target tiny gemma3 with a tokenizer of its own, and a kit.

The tiny bases of lora.bases all use the same character tokenizer, so on their own they would not catch a token id
passed from one model to the other. The target here gets a different vocabulary: 40 unused tokens after the
specials and the characters in reverse order, so every character has another id than in the source vocabulary and
most target ids do not exist in the source's embedding table. Only text can cross between the two models. The target
also has other widths and depth than the source, so an adapter fits one base or the other, never both.
"""
from __future__ import annotations

import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from lora.bases import tiny_model
from lora.tasks import load_task
from lora.tokenizer import BOS, CHARS, EOS, PAD, SPECIALS, UNK
from lora.training import TrainConfig, train_lora
from transfer import KitConfig, TransferConfig, make_kit

torch.set_num_threads(1)
SOURCE_NAME, TARGET_NAME = "tiny:llama?seed=0", "tiny:gemma3-shifted?seed=1"


def shifted_char_tokenizer(unused: int = 40) -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + [f"<unused{i}>" for i in range(unused)] + CHARS[::-1])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B",
                                                        special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK, clean_up_tokenization_spaces=False, padding_side="left")


def has_lora(model) -> bool:
    return hasattr(model, "peft_config") or any("lora" in name for name, _ in model.named_modules())


def char_histogram(texts: list[str]) -> torch.Tensor:
    """A cheap stand-in embedder (unit-norm character counts) for tests where the real encoder is not the point."""
    rows = torch.zeros((len(texts), 128))
    for i, text in enumerate(texts):
        for ch in text:
            rows[i, min(ord(ch), 127)] += 1
    return torch.nn.functional.normalize(rows + 1e-3, dim=-1)


@pytest.fixture(scope="session")
def source():
    return tiny_model("llama", seed=0)


@pytest.fixture(scope="session")
def target():
    tok = shifted_char_tokenizer()
    model, _ = tiny_model("gemma3", seed=1, vocab_size=len(tok), hidden_size=96, intermediate_size=160,
                          num_hidden_layers=3)
    return model, tok


@pytest.fixture(scope="session")
def real_pairs():
    return load_task("builtin:word_sorting?n=24&test=8&seed=0").pairs()


@pytest.fixture(scope="session")
def source_adapter(source, real_pairs):
    model, tok = source
    config = TrainConfig(steps=20, lr=3e-2, batch_size=8)
    return train_lora(model, tok, real_pairs, config, base_name=SOURCE_NAME).adapter


KIT_CONFIG = KitConfig(steps=30, lr=1e-2, max_new_tokens=24)
# small and fast: 6 synthetic examples, short candidates and labels, a few student steps
TRANSFER_CONFIG = TransferConfig(synthetic_size=6, max_new_tokens=16, label_max_new_tokens=12, steps=6,
                                 candidate_batch_size=16, measure_mmd=False)


@pytest.fixture(scope="session")
def kit(source, source_adapter, real_pairs):
    model, tok = source
    return make_kit(source_adapter, model, tok, real_pairs, KIT_CONFIG)


def constant_discriminator(source, real_pairs, answer: str):
    """A discriminator trained to give `answer` to everything (real inputs and random strings alike)."""
    import random

    from transfer import discriminator_prompt

    model, tok = source
    rng = random.Random(answer)
    noise = ["".join(rng.choice(CHARS) for _ in range(rng.randint(1, 24))) for _ in range(48)]
    inputs = [p for p, _ in real_pairs] + noise
    pairs = [(discriminator_prompt(x, KIT_CONFIG.task_name), answer) for x in inputs]
    config = TrainConfig(steps=40, lr=3e-2, batch_size=16)
    return train_lora(model, tok, pairs, config, base_name=SOURCE_NAME).adapter


@pytest.fixture(scope="session")
def rejecting_kit(kit, source, real_pairs):
    from dataclasses import replace

    return replace(kit, discriminator=constant_discriminator(source, real_pairs, "no"))


@pytest.fixture(scope="session")
def accepting_kit(kit, source, real_pairs):
    from dataclasses import replace

    return replace(kit, discriminator=constant_discriminator(source, real_pairs, "yes"))
