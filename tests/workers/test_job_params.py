"""Job parameters are checked per kind before anything is queued, with messages that name the field."""
from __future__ import annotations

import pytest

from hub.job_kinds import queue_for, validate_job
from hub.job_params import BUILTIN_TASKS, JobParamsError

OUT = {"namespace": "team", "name": "result"}


def test_builtin_task_names_match_the_lora_task_suite():
    from lora.tasks import list_tasks

    assert sorted(BUILTIN_TASKS) == list_tasks()


def test_train_defaults_are_filled_in():
    params = validate_job("train", [], {"base": "b", "task": "builtin:word_sorting?n=32"}, OUT)
    assert params["steps"] == 100 and params["rank"] == 8 and params["target_modules"] == ["q_proj", "v_proj"]


@pytest.mark.parametrize("kind, inputs, params, output, fragment", [
    ("teleport", [], {}, None, "unknown job kind 'teleport'"),
    ("train", [], {"base": "b", "task": "builtin:word_sorting", "steps": "many"}, OUT, "params.steps"),
    ("train", [], {"base": "b", "task": "builtin:word_sorting", "stepz": 3}, OUT, "params.stepz"),
    ("train", [], {"base": "b"}, OUT, "exactly one of 'task'"),
    ("train", [], {"base": "b", "task": "builtin:chess"}, OUT, "unknown built-in task 'chess'"),
    ("train", [], {"base": "b", "task": "builtin:word_sorting"}, None, "needs output"),
    ("train", [], {"base": "b", "task": "builtin:word_sorting"}, {"namespace": "a..b", "name": "x"}, "output.namespace"),
    ("train", ["a/b@1", "a/c@1"], {"base": "b", "task": "builtin:word_sorting"}, OUT, "0 to 1 input"),
    ("train", ["a/b@1"], {"base": "b", "task": "builtin:word_sorting", "transfer_kit": True}, OUT, "transfer_kit"),
    ("evaluate", [], {"task": "builtin:word_sorting"}, None, "or no input and params.base"),
    ("evaluate", ["a/b@1"], {"task": "builtin:word_sorting", "base": "b"}, None, "or no input and params.base"),
    ("evaluate", ["not a ref"], {"task": "builtin:word_sorting"}, None, "namespace/name"),
    ("evaluate", ["a/b"], {"task": "builtin:word_sorting"}, OUT, "drop 'output'"),
    ("merge", ["a/b@1"], {"method": "lego"}, OUT, "2 to 64 input"),
    ("merge", ["a/b@1", "a/c"], {"method": "average"}, OUT, "params.method"),
    ("merge", ["a/b@1", "a/c"], {"method": "ties", "density": 2}, OUT, "params.density"),
    ("merge", ["a/b@1", "a/c"], {"method": "linear", "weights": [1.0]}, OUT, "1 entries for 2 inputs"),
])
def test_bad_jobs_are_refused_with_the_field_named(kind, inputs, params, output, fragment):
    with pytest.raises(JobParamsError) as info:
        validate_job(kind, inputs, params, output)
    assert fragment in str(info.value)


def test_queue_routing_defaults_and_overrides():
    assert queue_for("train") == "gpu" and queue_for("merge") == "cpu"
    assert queue_for("merge", "merge=gpu, train=cpu") == "gpu"
    assert queue_for("train", "merge=gpu, train=cpu") == "cpu"
