"""Every baseline means what PEFT's LoraModel.add_weighted_adapter means by the same name: merge the same adapters
both ways and compare the ΔW PEFT's merged adapter applies with ours."""
from __future__ import annotations

import contextlib

import pytest
import torch

from lora import Adapter
from merge_inputs import NAMES, peft_with_adapters
from merging import MergeConfig, merge

WEIGHTS = [0.7, -0.4, 1.3]


@pytest.fixture(scope="module")
def peft_model():
    return peft_with_adapters()


def peft_merge(model, new_name, **kwargs):
    model.add_weighted_adapter(NAMES, WEIGHTS, new_name, **kwargs)
    return Adapter.from_peft_model(model, new_name)


@contextlib.contextmanager
def bernoulli_from(seed):
    """DARE's masks drawn from a fresh generator, so PEFT and we get the same masks (PEFT's add_weighted_adapter
    also draws from the global RNG when it initialises the new adapter, so seeding torch alone cannot align them).
    Both draw the masks in the same order: module by module, every input's A, then every input's B."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.bernoulli
    torch.bernoulli = lambda p: real(p, generator=gen)
    try:
        yield
    finally:
        torch.bernoulli = real


def ours(model, **config):
    inputs = [Adapter.from_peft_model(model, n) for n in NAMES]
    return merge(inputs, MergeConfig(weights=WEIGHTS, **config))


def assert_same_delta(mine: Adapter, theirs: Adapter, atol=1e-5):
    assert mine.modules() == theirs.modules()
    for m in mine.modules():
        torch.testing.assert_close(mine.delta_weight(m), theirs.delta_weight(m), atol=atol, rtol=0)


@pytest.mark.parametrize("method", ["linear", "cat", "svd"])
def test_plain_baselines_match_peft(peft_model, method):
    assert_same_delta(ours(peft_model, method=method), peft_merge(peft_model, method, combination_type=method))


def test_svd_with_explicit_rank_matches_peft(peft_model):
    mine = ours(peft_model, method="svd", rank=2)
    assert mine.rank(mine.modules()[0]) == 2
    assert_same_delta(mine, peft_merge(peft_model, "svd2", combination_type="svd", svd_rank=2))


@pytest.mark.parametrize("method, sign", [("ties", "total"), ("ties", "frequency"), ("dare_linear", "total"),
                                          ("dare_ties", "total"), ("dare_ties", "frequency")])
def test_sparsifying_baselines_match_peft_given_the_same_masks(peft_model, method, sign):
    name = f"{method}-{sign}"
    with bernoulli_from(7):
        theirs = peft_merge(peft_model, name, combination_type=method, density=0.5, majority_sign_method=sign)
    with bernoulli_from(7):
        mine = ours(peft_model, method=method, density=0.5, majority_sign_method=sign)
    assert_same_delta(mine, theirs)


def test_dare_masks_depend_on_the_seed_and_do_not_touch_the_callers_rng(peft_model):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = ours(peft_model, method="dare_linear", density=0.5, seed=1)
    assert torch.equal(torch.rand(3), expected_next)
    b = ours(peft_model, method="dare_linear", density=0.5, seed=2)
    assert not a.same_delta(b, atol=1e-5)
    assert a.same_delta(ours(peft_model, method="dare_linear", density=0.5, seed=1), atol=0)


def test_dare_with_density_one_is_linear_and_its_masks_keep_about_density(peft_model):
    assert ours(peft_model, method="dare_linear", density=1.0).same_delta(ours(peft_model, method="linear"), atol=0)
    single = [Adapter.from_peft_model(peft_model, NAMES[0])]
    kept = merge(single, MergeConfig(method="dare_linear", density=0.3, seed=5))
    m = kept.modules()[0]
    fraction = (kept.a(m) != 0).float().mean().item()
    assert 0.2 < fraction < 0.4


def test_cat_of_mixed_ranks_matches_peft_and_is_exact():
    model = peft_with_adapters(ranks=(2, 4, 3), rank_patterns=[{}, {"v_proj": 6}, {}])
    inputs = [Adapter.from_peft_model(model, n) for n in NAMES]
    mine = merge(inputs, MergeConfig(method="cat", weights=WEIGHTS))
    assert_same_delta(mine, peft_merge(model, "cat", combination_type="cat"))
    for m in mine.modules():
        exact = sum(w * ad.delta_weight(m) for w, ad in zip(WEIGHTS, inputs))
        torch.testing.assert_close(mine.delta_weight(m), exact, atol=1e-5, rtol=0)
