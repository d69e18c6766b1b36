"""train_generator: the CVAE learns the trajectory it sees, is seeded, reports honestly and can be cancelled."""
from __future__ import annotations

import pytest
import torch

from tests.generation.conftest import SMALL
from generation import GenerationError, GeneratorConfig, Member, train_generator
from generation.train import kept_checkpoints, safetensors_bytes
from lora.progress import Cancelled


def _relative_error(adapter, target: dict[str, torch.Tensor]) -> float:
    """‖ΔW − ΔW_target‖_F / ‖ΔW_target‖_F over all modules together."""
    num = sum((adapter.delta_weight(m) - t).pow(2).sum() for m, t in target.items())
    den = sum(t.pow(2).sum() for t in target.values())
    return (num / den).sqrt().item()


def test_decoding_the_posterior_mean_reconstructs_each_trained_checkpoint(generator, trajectory, condition):
    """Tolerance: relative Frobenius error of ΔW below 0.15 for every kept checkpoint (measured 0.02-0.10), and on
    average below half the error of the trajectory's mean ΔW (measured ~0.4x). The first bound says the decoded
    adapter is the checkpoint up to a small error; the second that the latent carries WHICH checkpoint it is: a
    collapsed posterior decodes the family mean for every input, which meets neither (its errors reach 0.3)."""
    kept = [a for _, a in trajectory.checkpoints][-8:]
    mean_delta = {m: torch.stack([a.delta_weight(m) for a in kept]).mean(0) for m in kept[0].modules()}
    errors, baseline = [], []
    for checkpoint in kept:
        mu, _ = generator.posterior(checkpoint, condition)
        decoded = generator.decode(mu.unsqueeze(0), condition)[0]
        errors.append(_relative_error(decoded, checkpoint.delta_weights()))
        baseline.append((sum((mean_delta[m] - checkpoint.delta_weight(m)).pow(2).sum() for m in mean_delta)
                         / sum(checkpoint.delta_weight(m).pow(2).sum() for m in mean_delta)).sqrt().item())
    assert max(errors) < 0.15, errors
    assert sum(errors) < 0.5 * sum(baseline), (errors, baseline)


def test_training_report_has_the_loss_curve_and_measured_sizes(generator, trajectory):
    report = generator.report
    assert [e["epoch"] for e in report["epochs"]] == list(range(1, 201))
    assert {"recon", "kl", "loss", "beta"} <= set(report["epochs"][0])
    assert report["epochs"][-1]["recon"] < 0.5 * report["epochs"][0]["recon"]  # it learned
    kept = [a for _, a in trajectory.checkpoints][-8:]
    assert report["checkpoints_given"] == 15 and report["checkpoints_used"] == 8
    assert report["checkpoint_bytes"] == sum(len(a.to_bytes()[1]) for a in kept)
    assert report["generator_bytes"] == sum(len(b) for b in generator.to_files().values())
    assert report["size_ratio"] == pytest.approx(report["generator_bytes"] / report["checkpoint_bytes"])
    assert report["seconds"] > 0 and report["parameters"] == sum(p.numel() for p in generator.model.parameters())


def test_keep_takes_the_later_part_of_each_trajectory_in_numeric_step_order(trajectory):
    pairs = trajectory.checkpoints[:10]  # steps 2..20
    shuffled = [pairs[i] for i in (9, 0, 4, 1, 8, 2, 7, 3, 6, 5)]  # "10" < "2" as strings; we sort as numbers
    kept = kept_checkpoints(Member("m", shuffled, torch.zeros(1)), keep=0.3)
    assert [id(a) for a in kept] == [id(a) for _, a in pairs[-3:]]
    assert len(kept_checkpoints(Member("m", [a for _, a in pairs], torch.zeros(1)), keep=0.01)) == 1


def _small_members(trajectory, condition):
    return [Member("a", trajectory.checkpoints[-4:], condition),
            Member("b", trajectory.checkpoints[-8:-4], condition + 1)]


def test_training_is_seeded_and_leaves_the_callers_random_stream_alone(trajectory, condition):
    config = GeneratorConfig(epochs=3, batch_size=2, **SMALL)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = train_generator(_small_members(trajectory, condition), config)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = train_generator(_small_members(trajectory, condition), config)
    assert first.to_files() == second.to_files()
    other = train_generator(_small_members(trajectory, condition), GeneratorConfig(epochs=3, batch_size=2, seed=1,
                                                                                   **SMALL))
    assert other.to_files()["generator.safetensors"] != first.to_files()["generator.safetensors"]


def test_progress_is_called_after_every_step_and_cancelled_propagates(trajectory, condition):
    calls = []
    # 2 members x 4 checkpoints, keep=0.5: 4 used; batches of 3: 2 steps per epoch, 4 in all
    config = GeneratorConfig(epochs=2, batch_size=3, **SMALL)
    train_generator(_small_members(trajectory, condition), config, progress=lambda *a: calls.append(a))
    assert [(s, d, t) for s, d, t, _ in calls] == [("training", i, 4) for i in range(1, 5)]
    assert {"loss", "recon", "kl"} <= set(calls[0][3])

    def cancel(stage, done, total, metrics=None):
        if done == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        train_generator(_small_members(trajectory, condition), config, progress=cancel)


def test_conditions_must_be_one_size_and_names_unique(trajectory, condition):
    members = _small_members(trajectory, condition)
    with pytest.raises(GenerationError, match="differ in size"):
        train_generator([members[0], Member("b", members[1].checkpoints, condition[:10])], GeneratorConfig(epochs=1))
    with pytest.raises(GenerationError, match="unique"):
        train_generator([members[0], Member("a", members[1].checkpoints, condition)], GeneratorConfig(epochs=1))


def test_generator_records_base_adapter_config_and_condition(generator, trajectory, condition):
    cfg = generator.config
    last = trajectory.checkpoints[-1][1]
    assert cfg["base_model"] == "tiny:llama?seed=0" and cfg["rank"] == 8
    assert sorted(cfg["target_modules"]) == ["q_proj", "v_proj"]
    assert cfg["condition"] == {"kind": "hidden_state", "size": condition.numel(), "examples": 8,
                                "with_adapter": False, "encoder": "base last layer, last position"}
    assert [t["key"] for t in cfg["layout"]["tensors"]] == generator.layout.keys()
    assert set(generator.layout.keys()) == set(last.tensors)
    assert cfg["layout"]["padded"] == cfg["layout"]["length"] == cfg["architecture"]["length"]  # no padding
    assert safetensors_bytes(last) == len(last.to_bytes()[1])
