"""condition_separability: measured before any training, so a family whose conditions cannot tell its members apart
(or do not follow its order) is visible on the generator's report, not discovered from its outputs."""
from __future__ import annotations

import pytest
import torch

from tests.generation.conftest import SMALL
from generation import GenerationError, GeneratorConfig, Member, condition_separability, train_generator


def _family(order, noise=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    common, direction = torch.randn(32, generator=gen) * 10, torch.randn(32, generator=gen)
    return torch.stack([common + k * direction + noise * torch.randn(32, generator=gen) for k in order])


def test_conditions_on_a_line_in_the_familys_order_are_fully_ordered():
    report = condition_separability(_family([1, 2, 3, 4, 5]), order=[1, 2, 3, 4, 5])
    assert report["pc1_spearman"] == pytest.approx(1.0) and report["pc1_explained"] == pytest.approx(1.0)
    assert 0 < report["spread"] < 0.3  # a large common part, small differences: what hidden states look like
    assert report["nearest"] == pytest.approx(1 / 2 ** 0.5, rel=1e-6)  # unit steps, RMS distance sqrt(2)
    assert len(report["pc1"]) == 5


def test_conditions_out_of_the_familys_order_score_low():
    shuffled = condition_separability(_family([3, 1, 5, 2, 4]), order=[1, 2, 3, 4, 5])
    assert shuffled["pc1_spearman"] < 0.5
    by_position = condition_separability(_family([1, 2, 3, 4, 5]))  # no order given: the list's order
    assert by_position["pc1_spearman"] == pytest.approx(1.0) and by_position["order"] == [0, 1, 2, 3, 4]


def test_identical_conditions_have_no_spread_and_nothing_to_order():
    same = torch.ones(4, 8)
    report = condition_separability(same)
    assert report["spread"] == 0 and report["pc1_spearman"] is None and report["nearest"] is None


def test_two_members_that_coincide_show_in_nearest_even_when_the_family_spreads():
    conditions = _family([1, 1, 9])
    assert condition_separability(conditions)["nearest"] == pytest.approx(0.0, abs=1e-9)


def test_an_order_of_the_wrong_length_is_refused():
    with pytest.raises(GenerationError, match="order"):
        condition_separability(_family([1, 2, 3]), order=[1, 2])


def test_the_generators_report_carries_the_separability_of_its_training_conditions(trajectory, condition):
    members = [Member(f"m{k}", trajectory.checkpoints[-4:], condition + k * 0.1, order=k) for k in (3, 1, 2)]
    report = train_generator(members, GeneratorConfig(epochs=1, **SMALL)).report["conditions"]
    assert report["names"] == ["m3", "m1", "m2"] and report["members"] == 3 and report["order"] == [3.0, 1.0, 2.0]
    assert report["pc1_spearman"] == pytest.approx(1.0)
    expected = condition_separability(torch.stack([m.condition for m in members]), order=[3, 1, 2])
    assert report["spread"] == pytest.approx(expected["spread"])
