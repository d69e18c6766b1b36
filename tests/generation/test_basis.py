"""The basis decoder: the generator decodes into the span of its family's checkpoints, so it is small, picks the
member its condition names, and stays bit-for-bit what it was after a trip through its files."""
from __future__ import annotations

import json

import pytest
import torch

from tests.generation.conftest import BASE, SMALL
from generation import GenerateConfig, GenerationError, Generator, GeneratorConfig, Member, generate, train_generator
from generation.basis import principal_basis
from generation.train import kept_checkpoints, safetensors_bytes
from lora.tasks import make_task
from lora.training import TrainConfig, train_lora


def test_principal_basis_is_orthonormal_ordered_and_spans_the_rows():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 300, generator=gen, dtype=torch.float64) * torch.tensor([5, 3, 2, 1, 1, 1]).unsqueeze(1)
    mean, rows, scale = principal_basis(x, directions=8)
    assert rows.shape == (5, 300)  # capped at n - 1: six centred rows span at most five directions
    torch.testing.assert_close(rows @ rows.T, torch.eye(5, dtype=torch.float64))
    assert all(scale[i] >= scale[i + 1] for i in range(4))
    coordinates = (x - mean) @ rows.T
    torch.testing.assert_close(mean + coordinates @ rows, x)  # all directions kept: exact
    torch.testing.assert_close(coordinates.pow(2).mean(dim=0).sqrt(), scale)
    _, two, _ = principal_basis(x, directions=2)
    torch.testing.assert_close(two, rows[:2])


def test_a_single_checkpoint_gets_one_zero_direction_that_decodes_to_itself():
    x = torch.randn(1, 50, dtype=torch.float64)
    mean, rows, scale = principal_basis(x, directions=4)
    assert rows.shape == (1, 50) and torch.count_nonzero(rows) == 0 and scale.item() == 1.0
    torch.testing.assert_close(mean, x[0])


@pytest.fixture(scope="module")
def two_members(base):
    """Two caesar_shift members (k = 1 and 7) with trajectories on the tiny base, and their base-alone conditions."""
    from generation import hidden_state_condition

    model, tok = base
    members = []
    for k in (1, 7):
        task = make_task("caesar_shift", n=32, seed=0, k=k)
        run = train_lora(model, tok, task.pairs(), TrainConfig(steps=24, checkpoint_every=2, lr=2e-2, rank=4),
                         base_name=BASE)
        members.append(Member(f"shift-{k}", run.checkpoints, hidden_state_condition(
            model, tok, [p + c for p, c in task.pairs()[:8]]), order=k))
    return members


def _distance(a, b) -> float:
    return sum((a.delta_weight(m) - b.delta_weight(m)).pow(2).sum() for m in b.modules()).sqrt().item()


def test_each_members_condition_generates_that_member_not_the_other(two_members):
    """The condition carries which member is asked for: decoding at the prior mean (temperature 0) with member i's
    condition lands nearer member i's last checkpoint than member j's, by a wide margin (measured ~10x)."""
    generator = train_generator(two_members, GeneratorConfig(epochs=200, **SMALL))
    last = [m.ordered_checkpoints()[-1] for m in two_members]
    for i, member in enumerate(two_members):
        adapter = generate(generator, member.condition, GenerateConfig(temperature=0.0)).adapter
        own, other = _distance(adapter, last[i]), _distance(adapter, last[1 - i])
        assert own < 0.3 * other, (member.name, own, other)


def test_the_generator_costs_about_one_and_a_half_adapters_whatever_the_checkpoints(two_members):
    """Mean float32 + m float16 directions + a small MLP: its bytes do not grow with the number of checkpoints, so
    the ratio to what it learned from falls as (1 + m/2) / checkpoints used."""
    config = GeneratorConfig(epochs=1, basis=1, **SMALL)
    generator = train_generator(two_members, config)
    one = safetensors_bytes(two_members[0].ordered_checkpoints()[-1])
    report = generator.report
    assert report["basis_directions"] == 1 and generator.latent == 1  # latent capped at the directions
    assert report["checkpoint_bytes"] == report["checkpoints_used"] * one == 12 * one
    weights = len(generator.to_files()["generator.safetensors"])
    mlp_and_statistics = 4 * (report["parameters"] + generator.condition_size + 2)
    assert weights < 1.5 * one + mlp_and_statistics + 1024  # 1 + 1/2 adapters (+ the safetensors header)
    assert report["size_ratio"] < 0.2  # the JSON layout is the rest
    more = train_generator(two_members, GeneratorConfig(epochs=1, basis=1, keep=1.0, **SMALL))
    assert len(more.to_files()["generator.safetensors"]) == weights
    assert more.report["size_ratio"] < 0.55 * report["size_ratio"]  # twice the checkpoints, about half the ratio


def test_report_says_how_much_of_the_variation_the_basis_keeps(two_members):
    full = train_generator(two_members, GeneratorConfig(epochs=1, basis=64, **SMALL)).report
    narrow = train_generator(two_members, GeneratorConfig(epochs=1, basis=1, **SMALL)).report
    assert full["basis_directions"] == full["checkpoints_used"] - 1
    assert full["basis_explained"] == pytest.approx(1.0, abs=1e-3)  # float16 directions: not exactly 1
    assert 0 < narrow["basis_explained"] < full["basis_explained"]


def test_a_format_version_1_generator_is_refused_asking_for_a_retrain(generator):
    files = generator.to_files()
    config = json.loads(files["generator_config.json"])
    config["format_version"] = 1
    with pytest.raises(GenerationError, match="train it again"):
        Generator.from_files({**files, "generator_config.json": json.dumps(config).encode()})


def test_the_member_order_must_be_given_for_all_members_or_none(two_members):
    mixed = [two_members[0], Member("x", two_members[1].checkpoints, two_members[1].condition)]
    with pytest.raises(GenerationError, match="order"):
        train_generator(mixed, GeneratorConfig(epochs=1, **SMALL))
    assert kept_checkpoints(two_members[0], 0.5)  # the members themselves are fine
