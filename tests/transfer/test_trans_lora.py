"""trans_lora: an adapter that fits the target base, made from filtered synthetic inputs labelled by the source
adapter as text, reproducibly; loud failures when synthesis cannot succeed; the ablations; cancellation."""
from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from tests.transfer.conftest import SOURCE_NAME, TARGET_NAME, TRANSFER_CONFIG, char_histogram, has_lora
from lora.adapter import Adapter
from lora.bases import module_shapes
from lora.evaluation import generate
from lora.progress import Cancelled
from lora.training import TrainConfig, train_lora
from transfer import TransferConfig, TransferError, trans_lora
from transfer.calibration import quantile
from transfer.discriminator import p_real


def run(source, target, source_adapter, kit, config=TRANSFER_CONFIG, **kwargs):
    (sm, stok), (tm, ttok) = source, target
    return trans_lora(source_adapter, sm, stok, tm, ttok, kit, config, target_base_name=TARGET_NAME, **kwargs)


@pytest.fixture(scope="module")
def result(source, target, source_adapter, kit):
    return run(source, target, source_adapter, kit)


def same_tensors(a: Adapter, b: Adapter) -> bool:
    return a.tensors.keys() == b.tensors.keys() and all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_adapter_fits_the_target_base_and_names_it(result, source, target):
    adapter = result.adapter
    assert adapter.mismatches(module_shapes(target[0])) == []
    assert adapter.mismatches(module_shapes(source[0])) != []  # the bases differ: it is really a target adapter
    assert adapter.base_model == TARGET_NAME
    assert adapter.config["r"] == 8 and adapter.config["lora_alpha"] == 16
    assert {m.rsplit(".", 1)[-1] for m in adapter.modules()} == {"q_proj", "v_proj"}
    assert all(adapter.b(m).abs().sum() > 0 for m in adapter.modules())
    assert not has_lora(source[0]) and not has_lora(target[0])


def test_kept_inputs_pass_the_calibrated_threshold_or_rank_best_of_the_rest(result, source, kit):
    model, tok = source
    report = result.report
    inputs = [p for p, _ in result.synthetic]
    assert len(inputs) == TRANSFER_CONFIG.synthetic_size == report["kept_by_threshold"] + report["kept_by_rank"]
    # the default filter: the threshold is the 0.1-quantile of the kit's held-out real scores
    assert report["filter"] == "calibrated" and report["calibration_quantile"] == 0.1
    assert report["threshold"] == pytest.approx(quantile(kit.report["heldout_real_scores"], 0.1))
    assert report["calibration_size"] == kit.report["heldout_real"] == 5
    scores = p_real(model, tok, kit.discriminator, inputs, kit.task_name).tolist()
    by_threshold, by_rank = scores[:report["kept_by_threshold"]], scores[report["kept_by_threshold"]:]
    assert all(s >= report["threshold"] - 1e-6 for s in by_threshold)
    assert all(s < report["threshold"] + 1e-6 for s in by_rank)
    assert report["acceptance_rate"] == report["accepted"] / report["candidates_judged"]
    assert report["candidates_judged"] + report["candidates_empty"] == report["candidates_drawn"]
    assert report["kept_score_mean"] >= report["candidate_score_mean"]  # the filter moves the set toward "real"


def test_the_papers_fixed_rule_keeps_only_inputs_judged_more_yes_than_no(source, target, source_adapter, kit):
    model, tok = source
    config = TRANSFER_CONFIG.replace(filter="fixed", max_attempts=400, give_up_after=400)
    report = run(source, target, source_adapter, kit, config).report
    inputs = [e["prompt"] for e in report["synthetic"]]
    assert (p_real(model, tok, kit.discriminator, inputs, kit.task_name) > 0.5).all()
    assert report["filter"] == "fixed" and report["threshold"] == 0.5 and report["kept_by_rank"] == 0
    assert 0 < report["acceptance_rate"] < 1  # this discriminator rejects some target-base candidates


def test_a_discriminator_that_rejects_everything_still_yields_the_set_by_rank(source, target, source_adapter,
                                                                             rejecting_kit):
    """The default never ends with "accept nothing": the best-ranked candidates of the pool make up the set."""
    report = run(source, target, source_adapter, rejecting_kit).report
    assert report["train_size"] == TRANSFER_CONFIG.synthetic_size
    assert report["kept_by_rank"] > 0 and report["accepted"] == report["kept_by_threshold"]
    assert report["candidates_drawn"] == 4 * TRANSFER_CONFIG.synthetic_size  # the pool: max_attempts = 4 x wanted


def test_rank_filter_keeps_the_best_scored_candidates_of_its_pool(source, target, source_adapter, kit):
    model, tok = source
    config = TRANSFER_CONFIG.replace(filter="rank", max_attempts=32)
    report = run(source, target, source_adapter, kit, config).report
    assert report["kept_by_rank"] == 6 and report["threshold"] is None and report["candidates_drawn"] == 32
    assert report["kept_score_mean"] >= report["candidate_score_mean"]


def test_a_kit_without_held_out_scores_falls_back_to_the_papers_threshold_with_rank_fill(source, target,
                                                                                         source_adapter, kit):
    report_without = {k: v for k, v in kit.report.items() if k != "heldout_real_scores"}
    old = dataclasses.replace(kit, report=report_without)
    report = run(source, target, source_adapter, old, TRANSFER_CONFIG.replace(steps=1)).report
    assert report["filter"] == "calibrated" and report["threshold"] == 0.5
    assert "no held-out real scores" in report["threshold_source"] and report["train_size"] == 6


def test_the_report_says_whether_candidates_were_sampled_like_the_kits_negatives(result, source, target,
                                                                                 source_adapter, kit):
    assert result.report["sampling_matches_kit"] is False  # the test kit draws 24 tokens, the transfer 16
    config = TRANSFER_CONFIG.replace(max_new_tokens=24, steps=1)
    assert run(source, target, source_adapter, kit, config).report["sampling_matches_kit"] is True


def test_kit_warnings_are_carried_into_the_transfer_report(source, target, source_adapter, kit):
    warned = dataclasses.replace(kit, report={**kit.report, "warnings": ["discriminator at chance on held-out data"]})
    report = run(source, target, source_adapter, warned, TRANSFER_CONFIG.replace(steps=1)).report
    assert report["kit_warnings"] == ["discriminator at chance on held-out data"]


def test_teacher_labels_are_the_source_adapters_greedy_text(result, source, source_adapter):
    """The target has another vocabulary; the labels must be the source's decoded text, not its token ids."""
    model, tok = source
    inputs = [p for p, _ in result.synthetic]
    expected = generate(model, tok, inputs, max_new_tokens=TRANSFER_CONFIG.label_max_new_tokens,
                        adapter=source_adapter)
    assert [c for _, c in result.synthetic] == expected


def test_candidates_come_from_the_target_base_as_text(result, target, kit):
    """Every kept input is a continuation the target base's tokenizer round-trips, none is a seed's copy-by-id."""
    _, ttok = target
    for prompt, _ in result.synthetic:
        ids = ttok(prompt, add_special_tokens=False)["input_ids"]
        assert ttok.decode(ids) == prompt and ttok.unk_token_id not in ids


def test_report_has_counts_stages_losses_and_examples(result):
    report = result.report
    assert report["data"] == "filtered" and report["target_base"] == TARGET_NAME
    assert report["source_base"] == SOURCE_NAME
    assert report["train_size"] == len(report["synthetic"]) == report["synthetic_size"]
    assert report["synthetic_size"] == report["synthetic_size_wanted"] == TRANSFER_CONFIG.synthetic_size
    assert len(report["loss"]) == TRANSFER_CONFIG.steps == len(result.losses)
    assert set(report["seconds"]) == {"generating candidates", "filtering", "teacher labelling", "distilling"}
    assert report["mmd_filtered_to_seeds"] is None  # measure_mmd=False in the test config


def test_same_inputs_twice_give_a_bit_identical_adapter_and_leave_the_callers_rng_alone(
        result, source, target, source_adapter, kit):
    torch.manual_seed(123)
    random.seed(123)
    torch_state, py_state = torch.random.get_rng_state(), random.getstate()
    again = run(source, target, source_adapter, kit)
    assert same_tensors(again.adapter, result.adapter)
    assert again.synthetic == result.synthetic
    assert torch.equal(torch.random.get_rng_state(), torch_state) and random.getstate() == py_state
    other = run(source, target, source_adapter, kit, TRANSFER_CONFIG.replace(seed=1))
    assert not same_tensors(other.adapter, result.adapter)


def test_synthetic_size_defaults_to_the_real_set_size_in_the_kit(source, target, source_adapter, accepting_kit):
    config = TRANSFER_CONFIG.replace(synthetic_size=None, steps=1)
    result = run(source, target, source_adapter, accepting_kit, config)
    assert result.report["synthetic_size_wanted"] == accepting_kit.real_size == 24
    assert result.report["train_size"] == 24


def test_fixed_rule_attempts_cap_raises_naming_the_acceptance_rate(source, target, source_adapter, kit):
    config = TRANSFER_CONFIG.replace(filter="fixed", synthetic_size=40, max_attempts=24)
    with pytest.raises(TransferError, match=r"max_attempts=24: \d+ of \d+ judged candidates accepted "
                                            r"\(acceptance rate \d+\.\d%") as caught:
        run(source, target, source_adapter, kit, config)
    stats = caught.value.stats
    assert stats["drawn"] == 24 and stats["accepted"] < 40
    assert f"acceptance rate {stats['acceptance_rate']:.1%}" in str(caught.value)
    assert not has_lora(source[0]) and not has_lora(target[0])


def test_fixed_rule_with_a_discriminator_that_accepts_nothing_fails_fast(source, target, source_adapter,
                                                                         rejecting_kit):
    config = TRANSFER_CONFIG.replace(filter="fixed", give_up_after=16, candidate_batch_size=8)
    seen = []
    with pytest.raises(TransferError, match="rejected all of the first 16 candidates") as caught:
        run(source, target, source_adapter, rejecting_kit, config,
            progress=lambda stage, done, total, metrics=None: seen.append(stage))
    stats = caught.value.stats
    assert stats["accepted"] == 0 and stats["judged"] == 16
    assert stats["drawn"] == 16  # two batches of 8, not the 6 x 20 = 120 draws max_attempts allows
    assert seen.count("generating candidates") == 2 and "teacher labelling" not in seen


def test_unfiltered_keeps_every_candidate_and_never_runs_the_discriminator(source, target, source_adapter, kit):
    # a discriminator that cannot even be applied to the source base: any use of it would raise
    broken = Adapter.from_modules(SOURCE_NAME, {"model.layers.0.self_attn.q_proj": (torch.ones(8, 5),
                                                                                    torch.ones(7, 8))},
                                  r=8, lora_alpha=16)
    unusable = dataclasses.replace(kit, discriminator=broken)
    seen = []
    config = TRANSFER_CONFIG.replace(data="unfiltered")
    result = run(source, target, source_adapter, unusable, config,
                 progress=lambda stage, done, total, metrics=None: seen.append(stage))
    report = result.report
    assert report["acceptance_rate"] == 1.0 and report["accepted"] == report["candidates_judged"]
    assert report["train_size"] == TRANSFER_CONFIG.synthetic_size and "filtering" not in seen and "filtering" not in report["seconds"]
    with pytest.raises(ValueError, match="discriminator adapter does not fit"):
        run(source, target, source_adapter, unusable)  # the filtered run does use it


def test_seeds_only_trains_on_the_seeds_with_their_real_completions(source, target, source_adapter, kit):
    seen = []
    config = TRANSFER_CONFIG.replace(data="seeds_only")
    result = run(source, target, source_adapter, kit, config,
                 progress=lambda stage, done, total, metrics=None: seen.append(stage))
    assert set(seen) == {"distilling"}
    assert result.synthetic == kit.seeds and result.report["candidates_drawn"] == 0
    assert result.report["acceptance_rate"] is None
    model, tok = target
    direct = train_lora(model, tok, kit.seeds, TrainConfig(steps=config.steps, seed=config.seed),
                        base_name=TARGET_NAME)
    assert same_tensors(result.adapter, direct.adapter)


def test_progress_reports_each_stage_with_its_metrics(source, target, source_adapter, kit):
    calls = []
    run(source, target, source_adapter, kit, progress=lambda *args: calls.append(args))
    stages = [c[0] for c in calls]
    order = list(dict.fromkeys(stages))
    assert order == ["generating candidates", "filtering", "teacher labelling", "distilling"]
    filtering = [c for c in calls if c[0] == "filtering"]
    assert all(0 <= c[3]["acceptance_rate"] <= 1 for c in filtering) and filtering[-1][1:3] == (6, 6)
    distilling = [c for c in calls if c[0] == "distilling"]
    assert [c[1] for c in distilling] == list(range(1, TRANSFER_CONFIG.steps + 1))
    assert all("loss" in c[3] for c in distilling)
    assert [c for c in calls if c[0] == "teacher labelling"][-1][1:3] == (6, 6)


@pytest.mark.parametrize("stage", ["generating candidates", "filtering", "teacher labelling", "distilling"])
def test_cancelling_in_any_stage_propagates_and_leaves_both_bases_unwrapped(source, target, source_adapter, kit,
                                                                             stage):
    def progress(name, done, total, metrics=None):
        if name == stage:
            raise Cancelled()

    with pytest.raises(Cancelled):
        run(source, target, source_adapter, kit, progress=progress)
    for model, _ in (source, target):
        assert not has_lora(model)
        assert not any(p.requires_grad is False for p in model.parameters())


def test_mmd_is_reported_for_filtered_and_unfiltered_inputs_with_an_injected_embedder(source, target,
                                                                                       source_adapter, kit):
    config = TRANSFER_CONFIG.replace(measure_mmd=True)
    report = run(source, target, source_adapter, kit, config, embedder=char_histogram).report
    assert report["mmd_filtered_to_seeds"] > 0 and report["mmd_unfiltered_to_seeds"] > 0
    assert report["mmd_filtered_to_seeds"] != report["mmd_unfiltered_to_seeds"]
    assert "caller's embedder" in report["mmd_kind"]


def test_transfer_refuses_a_source_adapter_on_the_wrong_base(source, target, source_adapter, kit):
    (sm, stok), (tm, ttok) = source, target
    with pytest.raises(ValueError, match="source adapter does not fit"):
        trans_lora(source_adapter, tm, ttok, sm, stok, kit, TRANSFER_CONFIG)


@pytest.mark.parametrize("field, value", [("data", "filter"), ("synthetic_size", -1), ("max_attempts", 1.5),
                                          ("give_up_after", 0), ("label_stop", "\n"), ("steps", 0),
                                          ("measure_mmd", "yes"), ("filter", "loose"),
                                          ("calibration_quantile", 1.0), ("synthetic_multiple", 0), ("seeds", 0),
                                          ("label_temperature", -1)])
def test_transfer_config_refuses_a_bad_field_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        TransferConfig(**{field: value})


def test_transfer_config_round_trips_through_json():
    import json

    config = TransferConfig(data="unfiltered", label_stop=("\n", "###"))
    assert TransferConfig.model_validate(json.loads(config.model_dump_json())) == config


def test_default_mmd_uses_the_installed_minilm_encoder(source, target, source_adapter, kit):
    config = TRANSFER_CONFIG.replace(measure_mmd=True)
    report = run(source, target, source_adapter, kit, config).report
    assert "all-MiniLM-L6-v2" in report["mmd_kind"]
    assert 0 < report["mmd_filtered_to_seeds"] <= 2 and 0 < report["mmd_unfiltered_to_seeds"] <= 2
    assert "mmd" in report["seconds"]
