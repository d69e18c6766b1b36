"""Job kinds run as plain functions with the in-memory LocalContext (no hub, no broker), on tiny models."""
from __future__ import annotations

import pytest

from hub.job_kinds import validate_job
from lora.adapter import Adapter
from lora.bases import load_base, module_shapes
from workers.kinds import runner_for
from workers.kinds.base import JobCancelled, LocalContext

SPEC = "tiny:llama?seed=0"
OUT = {"namespace": "t", "name": "x"}


def train(ctx, **params):
    full = validate_job("train", [], {"base": SPEC, "task": "builtin:caesar_shift?n=64", "rank": 4, "steps": 20,
                                      "lr": 5e-3, "batch_size": 8, **params}, OUT)
    return runner_for("train")(ctx, full)


def test_train_lowers_the_loss_and_fits_the_base():
    ctx = LocalContext()
    (out,) = train(ctx, checkpoint_every=10)
    losses = [d["value"] for kind, d in ctx.events if kind == "metric" and d["name"] == "loss"]
    assert len(losses) == 20 and sum(losses[-5:]) < sum(losses[:5])
    model, _ = load_base(SPEC)
    assert out.adapter.mismatches(module_shapes(model)) == []
    assert sorted(out.extra_files) == [f"checkpoints/step-{s}/{f}" for s in (10, 20)
                                       for f in ("adapter_config.json", "adapter_model.safetensors")]
    assert out.metrics["train/steps"] == 20


def test_train_progress_events_count_the_steps_so_pages_can_show_step_n_of_m():
    ctx = LocalContext()
    train(ctx, steps=6)
    counted = [(d["step"], d["total"]) for kind, d in ctx.events if kind == "progress" and "step" in d]
    assert counted[-1] == (6, 6) and [s for s, _ in counted] == sorted(s for s, _ in counted)
    assert {t for _, t in counted} == {6}


def test_train_stops_when_cancelled():
    class CancelLater(LocalContext):
        def check_cancelled(self):
            if losses(self) >= 3:
                raise JobCancelled("stop")

    def losses(ctx):
        return sum(1 for kind, data in ctx.events if kind == "metric" and data["name"] == "loss")

    ctx = CancelLater()
    with pytest.raises(JobCancelled):
        train(ctx)
    assert losses(ctx) == 3


def test_evaluate_and_merge_on_trained_adapters():
    (a,) = train(LocalContext(), seed=1)
    (b,) = train(LocalContext(), seed=2)
    info = {"base": SPEC}
    ctx = LocalContext(adapters={"t/a@1": (a.adapter, {**info, "ref": "t/a@1"}),
                                 "t/b@1": (b.adapter, {**info, "ref": "t/b@1"})}, inputs=["t/a@1"])
    (scores,) = runner_for("evaluate")(ctx, validate_job("evaluate", ["t/a@1"],
                                                         {"task": "builtin:caesar_shift?n=8&test=8&seed=3"}, None))
    assert 0 <= scores.metrics["eval/caesar_shift/exact_match"] <= 1
    # the job's data adds the per-item scores (for paired comparisons); the version's metrics stay aggregates
    correct = scores.data.pop("eval/caesar_shift/correct")
    assert len(correct) == 8 and set(correct) <= {"0", "1"}
    assert correct.count("1") / 8 == scores.metrics["eval/caesar_shift/exact_match"]
    items_per_s = scores.data.pop("eval/caesar_shift/items_per_s")
    # the same numbers under plain keys, so callers need not match the name-carrying keys by suffix
    plain = scores.data.pop("scores")
    assert plain == {"exact_match": scores.metrics["eval/caesar_shift/exact_match"], "n": 8, "correct": correct,
                     "items_per_s": items_per_s, "source": "caesar_shift", "split": None, "gate": None}
    assert items_per_s > 0 and scores.data == scores.metrics
    ctx.inputs = ["t/a@1", "t/b@1"]
    for method in ("lego", "linear"):
        (merged,) = runner_for("merge")(ctx, validate_job("merge", ctx.inputs, {"method": method, "rank": 4}, OUT))
        assert isinstance(merged.adapter, Adapter) and merged.metrics["merge"]["method"] == method
        assert merged.adapter.config["base_model_name_or_path"] == SPEC
