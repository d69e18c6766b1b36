"""make_kit: a real PEFT discriminator on the source base that tells real inputs from synthetic ones, the seeds
asked for, a report that adds up, and a folder form that loads back to the same kit."""
from __future__ import annotations


import pytest
import torch
from peft import PeftModel

from tests.transfer.conftest import KIT_CONFIG, SOURCE_NAME, has_lora
from lora.bases import module_shapes, tiny_model
from lora.progress import Cancelled
from transfer import Kit, KitConfig, make_kit
from transfer.discriminator import p_real


def test_discriminator_is_a_peft_lora_that_fits_the_source_base(kit, source):
    model, _ = source
    disc = kit.discriminator
    assert disc.mismatches(module_shapes(model)) == []
    assert disc.base_model == SOURCE_NAME
    assert {m.rsplit(".", 1)[-1] for m in disc.modules()} == {"q_proj", "v_proj"}
    assert disc.modules() and all(disc.b(m).abs().sum() > 0 for m in disc.modules())  # trained, not the B=0 init


def test_discriminator_folder_loads_with_peft_and_computes_the_same_probabilities(kit, source, tmp_path):
    model, tok = source
    kit.save(tmp_path)
    fresh, _ = tiny_model("llama", seed=0)  # same weights as the source base; PEFT wraps it in place
    peft_model = PeftModel.from_pretrained(fresh, str(tmp_path / "discriminator"))
    peft_model.eval()
    inputs = [p for p, _ in kit.seeds]
    expected = p_real(model, tok, kit.discriminator, inputs, kit.task_name)
    with torch.no_grad():
        from lora.evaluation import loglik
        from transfer import discriminator_prompt
        prompts = [discriminator_prompt(x, kit.task_name) for x in inputs]
        yes = torch.tensor(loglik(peft_model, tok, [(p, "yes") for p in prompts]))
        no = torch.tensor(loglik(peft_model, tok, [(p, "no") for p in prompts]))
    assert torch.allclose(torch.sigmoid(yes - no), expected, atol=1e-5)


def test_kit_round_trips_through_a_folder(kit, tmp_path):
    kit.save(tmp_path)
    loaded = Kit.load(tmp_path)
    assert loaded.seeds == kit.seeds and loaded.task_name == kit.task_name and loaded.real_size == kit.real_size
    assert loaded.discriminator.tensors.keys() == kit.discriminator.tensors.keys()
    assert all(torch.equal(loaded.discriminator.tensors[k], v) for k, v in kit.discriminator.tensors.items())
    assert loaded.report["heldout_accuracy"] == kit.report["heldout_accuracy"]


@pytest.mark.parametrize("seeds", [5, 7])
def test_seed_count_is_honoured_with_distinct_real_examples(source, source_adapter, real_pairs, seeds):
    model, tok = source
    config = KIT_CONFIG.replace(seeds=seeds, steps=2)
    kit = make_kit(source_adapter, model, tok, real_pairs, config)
    assert len(kit.seeds) == seeds == kit.report["seeds"]
    assert len(set(kit.seeds)) == seeds and set(kit.seeds) <= set(real_pairs)


def test_discriminator_tells_held_out_real_inputs_from_synthetic_ones(kit, real_pairs):
    report = kit.report
    assert report["real_size"] == kit.real_size == len(real_pairs)
    assert report["train_real"] + report["heldout_real"] == len(real_pairs)
    assert report["synthetic_size"] == len(real_pairs)  # synthetic=0: as many negatives as real inputs
    assert report["train_synthetic"] + report["heldout_synthetic"] == report["synthetic_size"]
    assert report["heldout_real"] == report["heldout_synthetic"] == 5  # 20 % of 24, rounded
    assert report["heldout_accuracy"] >= 0.8 and report["heldout_auroc"] >= 0.8
    low, high = report["heldout_balanced_accuracy_ci95"]
    assert low <= report["heldout_balanced_accuracy"] <= high
    assert report["loss"][-1] < report["loss"][0]
    assert set(report["seconds"]) == {"generating synthetic inputs", "training discriminator", "scoring held-out"}


def test_kit_report_carries_the_calibration_a_transfer_thresholds_on(kit):
    report = kit.report
    assert len(report["heldout_real_scores"]) == report["heldout_real"] == 5
    assert len(report["heldout_synthetic_scores"]) == report["heldout_synthetic"] == 5
    assert kit.calibration_scores == report["heldout_real_scores"] == sorted(report["heldout_real_scores"])
    assert [row["quantile"] for row in report["calibration"]] == [0.05, 0.1, 0.25, 0.5]
    thresholds = [row["threshold"] for row in report["calibration"]]
    assert thresholds == sorted(thresholds)  # stricter quantile, higher threshold
    accepted = [row["heldout_synthetic_accepted"] for row in report["calibration"]]
    assert accepted == sorted(accepted, reverse=True)  # ... and fewer synthetic inputs let through


def test_a_discriminator_at_chance_is_flagged_in_the_kit_report(source, source_adapter, real_pairs):
    model, tok = source
    # one step at a tiny learning rate: the LoRA barely moves from the base, whose yes/no does not depend on the
    # input's origin
    config = KIT_CONFIG.replace(steps=1, lr=1e-6)
    kit = make_kit(source_adapter, model, tok, real_pairs, config)
    assert kit.warnings and kit.warnings[0].startswith("discriminator at chance on held-out data")
    assert kit.report["warnings"] == kit.warnings
    assert Kit.from_files(kit.to_files()).warnings == kit.warnings


def test_more_negatives_than_real_inputs_are_balanced_in_training(source, source_adapter, real_pairs):
    from transfer.discriminator import balanced

    assert balanced(["a", "b"], ["x", "y", "z", "w", "v"]) == (["a", "b", "a", "b", "a"], ["x", "y", "z", "w", "v"])
    model, tok = source
    kit = make_kit(source_adapter, model, tok, real_pairs, KIT_CONFIG.replace(synthetic=48, steps=2))
    assert kit.report["synthetic_size"] == 48 and kit.report["train_synthetic"] == 38  # 48 - round(0.2 x 48)


def test_kit_progress_reports_stages_and_cancellation_leaves_the_base_unwrapped(source, source_adapter,
                                                                                 real_pairs):
    model, tok = source
    seen = []

    def progress(stage, done, total, metrics=None):
        seen.append(stage)
        if stage == "training discriminator" and done == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        make_kit(source_adapter, model, tok, real_pairs, KIT_CONFIG, progress=progress)
    assert seen[0] == "generating synthetic inputs" and seen[-1] == "training discriminator"
    assert not has_lora(model)


def test_kit_refuses_an_adapter_for_another_base(target, source_adapter, real_pairs):
    model, tok = target  # gemma3 with another vocabulary: no module there has the llama adapter's path and shape
    with pytest.raises(ValueError, match="source adapter does not fit"):
        make_kit(source_adapter, model, tok, real_pairs, KIT_CONFIG)


def test_kit_refuses_fewer_real_examples_than_seeds(source, source_adapter, real_pairs):
    model, tok = source
    with pytest.raises(ValueError, match="seeds=5 but only 3 real examples"):
        make_kit(source_adapter, model, tok, real_pairs[:3], KIT_CONFIG)


@pytest.mark.parametrize("field, value", [("seeds", 0), ("heldout_fraction", 1.0), ("temperature", 0),
                                          ("top_p", 1.5), ("target_modules", ()), ("task_name", " "),
                                          ("synthetic", -1)])
def test_kit_config_refuses_a_bad_field_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        KitConfig(**{field: value})


def test_kit_config_takes_json_and_refuses_unknown_fields():
    config = KitConfig.model_validate({"seeds": 3, "target_modules": ["q_proj"]})
    assert config == KitConfig(seeds=3, target_modules=("q_proj",))
    assert KitConfig.model_validate(config.model_dump()) == config
    with pytest.raises(ValueError, match="seed_count"):
        KitConfig.model_validate({"seed_count": 3})


def test_kit_files_round_trip_and_refuse_a_plain_adapter(kit):
    from transfer import Kit

    files = kit.to_files()
    again = Kit.from_files(files)
    assert again.seeds == kit.seeds and again.task_name == kit.task_name and again.real_size == kit.real_size
    assert again.discriminator.same_delta(kit.discriminator, atol=0)
    with pytest.raises(ValueError, match="not a transfer kit"):
        Kit.from_files({k: v for k, v in files.items() if not k.startswith("kit/")})
