"""A character-level tokenizer made locally, for the tiny test models.

Tests and the built-in tasks must run without a model hub. One token per printable ASCII character (plus newline
and tab) keeps the vocabulary at ~100, so tiny models have tiny embedding matrices, and exact-match on short
completions is meaningful. It is wrapped in transformers' PreTrainedTokenizerFast so every code path (batching,
padding, decode, save_pretrained) is the same one real tokenizers go through.
"""
from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
CHARS = ["\n", "\t"] + [chr(c) for c in range(32, 127)]


def char_tokenizer() -> PreTrainedTokenizerFast:
    """Deterministic: the same ids on every machine (fixed vocabulary order, no training)."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()  # characters are joined with nothing between them
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
        padding_side="left",  # generation appends on the right, so batches pad on the left
    )
    return tok
