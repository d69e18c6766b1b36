"""Bad merge requests fail with MergeError (a ValueError, so the hub answers 4xx) naming what is wrong."""
from __future__ import annotations

import pytest

from lora import Adapter
from merge_inputs import random_adapter
from merging import MergeConfig, MergeError, merge


def test_adapters_on_different_bases_are_refused():
    with pytest.raises(MergeError, match="different base models"):
        merge([random_adapter(1), random_adapter(2, base="other-base")], MergeConfig(method="cat"))


def test_same_module_with_different_shapes_is_refused():
    with pytest.raises(MergeError, match="disagree on the module's shape"):
        merge([random_adapter(1), random_adapter(2, shape=(64, 32))], MergeConfig(method="svd"))


def test_linear_ties_dare_refuse_different_ranks_but_cat_svd_lego_take_them():
    mixed = [random_adapter(1, r=4), random_adapter(2, r=2)]
    for method in ("linear", "ties", "dare_linear", "dare_ties"):
        with pytest.raises(MergeError, match="needs equal ranks"):
            merge(mixed, MergeConfig(method=method, density=0.5))
    for method in ("cat", "svd", "lego"):
        assert merge(mixed, MergeConfig(method=method)).modules() == mixed[0].modules()


def test_fewer_units_than_k_is_refused():
    with pytest.raises(MergeError, match="fewer than k=9"):
        merge([random_adapter(1, r=4), random_adapter(2, r=4)], MergeConfig(method="lego", rank=9))


def test_weights_length_mismatch_is_refused():
    with pytest.raises(MergeError, match="2 weights for 3 adapters"):
        merge([random_adapter(s) for s in (1, 2, 3)], MergeConfig(method="linear", weights=[1.0, 1.0]))


def test_unknown_method_and_bad_fields_are_refused_when_the_config_is_made():
    """The config is the merge job's params too: what it refuses here, the API refuses at submit."""
    with pytest.raises(ValueError, match="method"):
        MergeConfig(method="average")
    with pytest.raises(ValueError, match="density in \\(0, 1\\]"):
        MergeConfig(method="ties")
    with pytest.raises(ValueError, match="majority_sign_method"):
        MergeConfig(method="ties", density=0.5, majority_sign_method="mean")
    with pytest.raises(ValueError, match="k\n.*Extra inputs are not permitted"):
        MergeConfig.model_validate({"method": "lego", "k": 3})
    with pytest.raises(ValueError, match='"cluster" needs method "lego"'):
        MergeConfig(method="linear", fit_granularity="cluster")
    with pytest.raises(MergeError, match="at least one adapter"):
        merge([], MergeConfig())


def test_each_method_that_needs_a_param_declares_it_in_the_registry():
    from merging.registry import METHODS

    needing = {name for name, method in METHODS.items() if "density" in method.needs}
    assert {"ties", "dare_linear", "dare_ties"} <= needing
    for name in needing:
        assert MergeConfig(method=name, density=0.5).method == name


def test_a_refused_merge_leaves_its_inputs_unchanged():
    inputs = [random_adapter(1, r=4), random_adapter(2, r=2)]
    before = [Adapter(dict(a.config), {k: v.clone() for k, v in a.tensors.items()}) for a in inputs]
    with pytest.raises(MergeError):
        merge(inputs, MergeConfig(method="linear"))
    merge(inputs, MergeConfig(method="lego"))
    for a, b in zip(inputs, before):
        assert a.config == b.config and a.same_delta(b, atol=0)
