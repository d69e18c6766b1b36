"""evaluate names a split: a built-in task's train split, or the rows of one dataset whose "split" field matches
(one dataset holds a task's train and test rows instead of one upload per split); the split shows in the metric
name, and the scores come back under plain keys too."""
from __future__ import annotations

import pytest

from hub.job_kinds import JobParamsError, validate_job
from lora.tasks import make_task
from workers.kinds import runner_for
from workers.kinds.base import LocalContext

SPEC = "tiny:llama?seed=0"
TASK = make_task("word_sorting", n=6, test=3, seed=2)
ROWS = [{**e, "split": "train"} for e in TASK.train] + [{**e, "split": "test"} for e in TASK.test]


def _evaluate(ctx, **params):
    (out,) = runner_for("evaluate")(ctx, validate_job("evaluate", [], {"base": SPEC, **params}, None))
    return out


def test_a_dataset_split_scores_only_its_rows_and_names_itself():
    ctx = LocalContext(datasets={"d/sets@1": ROWS})
    test = _evaluate(ctx, dataset="d/sets@1", split="test")
    assert test.data["scores"]["n"] == 3 and test.data["scores"]["split"] == "test"
    assert set(test.metrics) == {"eval/d.sets.test/exact_match", "eval/d.sets.test/n"}
    whole = _evaluate(ctx, dataset="d/sets@1")
    assert whole.metrics["eval/d.sets/n"] == 9


def test_a_builtin_tasks_train_split_is_scored_under_its_own_name():
    out = _evaluate(LocalContext(), task="builtin:word_sorting?n=6&test=3&seed=2", split="train")
    assert out.metrics["eval/word_sorting.train/n"] == 6
    assert _evaluate(LocalContext(), task="builtin:word_sorting?n=6&test=3&seed=2").metrics["eval/word_sorting/n"] == 3


def test_a_split_no_row_has_fails_naming_the_splits_there_are():
    with pytest.raises(ValueError, match="no rows with \"split\": 'dev' \\(its splits: test, train\\)"):
        _evaluate(LocalContext(datasets={"d/sets@1": ROWS}), dataset="d/sets@1", split="dev")


@pytest.mark.parametrize("params, fragment", [
    ({"task": "builtin:word_sorting?n=6", "split": "validation"}, "train and test"),
    ({"dataset": "d/sets@1", "split": "a b"}, "split"),
])
def test_bad_splits_are_refused_before_anything_runs(params, fragment):
    with pytest.raises(JobParamsError, match=fragment):
        validate_job("evaluate", [], {"base": SPEC, **params}, None)
