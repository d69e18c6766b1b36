"""The MMD between sets of texts: 0 for the same set, positive for different ones, and with the real
all-MiniLM-L6-v2 encoder a set of paraphrases is closer than a set on another topic."""
from __future__ import annotations

import pytest
import torch

from tests.transfer.conftest import char_histogram
from transfer import embed, mean_embedding_distance, mmd

ARITHMETIC = ["What is 3 plus 4?", "Compute 12 minus 5.", "How much is 6 times 7?", "Add 9 and 10."]
MORE_ARITHMETIC = ["What is 8 plus 2?", "Compute 20 minus 9.", "How much is 3 times 5?", "Add 4 and 11."]
COOKING = ["Preheat the oven and butter the pan.", "Chop the onions finely.", "Simmer the soup for an hour.",
           "Whisk the eggs with sugar."]


def test_mean_embedding_distance_is_the_distance_between_the_means():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0]])
    assert mean_embedding_distance(a, b) == pytest.approx(((0.5 - 1) ** 2 + 0.5 ** 2) ** 0.5)
    assert mean_embedding_distance(a, a.flip(0)) == 0.0  # order does not matter
    with pytest.raises(ValueError, match="at least one text"):
        mean_embedding_distance(a, b[:0])


def test_mmd_with_an_injected_embedder_is_zero_for_the_same_set_and_positive_otherwise():
    assert mmd(ARITHMETIC, list(reversed(ARITHMETIC)), embedder=char_histogram) == pytest.approx(0, abs=1e-7)
    assert mmd(ARITHMETIC, COOKING, embedder=char_histogram) > 0.05


def test_real_encoder_gives_unit_vectors_and_ranks_paraphrases_closer_than_another_topic():
    vectors = embed(ARITHMETIC + COOKING)
    assert vectors.shape == (8, 384)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(8), atol=1e-5)
    assert mmd(ARITHMETIC, ARITHMETIC) == pytest.approx(0, abs=1e-6)
    near, far = mmd(ARITHMETIC, MORE_ARITHMETIC), mmd(ARITHMETIC, COOKING)
    assert 0 < near < far
    # one sentence embeds the same alone or in a padded batch (mean pooling skips padding)
    assert torch.allclose(embed([COOKING[0]])[0], vectors[4], atol=1e-5)
