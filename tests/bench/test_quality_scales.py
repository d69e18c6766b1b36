"""Every job body a scale configures passes the hub's own params validation, so a renamed or re-bounded param
fails here rather than an hour into a cpu-scale run."""
import pytest

from bench.quality.scales import SCALES
from hub.job_kinds import JobParamsError, validate_job

OUT = {"namespace": "q", "name": "out"}


def bodies(s):
    t, g = s.transfer, s.generate
    yield "train", [], {"base": "b", "dataset": "q/t-train@1", "steps": s.max_steps, **s.lora}
    yield "transfer_kit", ["q/x@1"], {"dataset": "q/t-train@1", "task_name": "t", **s.lora, **t["kit"]}
    for mode in ["filtered", *t["ablations"]]:
        yield "transfer", ["q/x@1"], {"target_base": "g", "kit": "q/k@1", "data": mode, **s.lora, **t["job"]}
    yield "unlearn", ["q/x@1"], {"forget": "q/t-train@1", "reference": "q/r@1", **s.lora, **s.unlearn["job"]}
    yield "train_generator", ["q/a@1", "q/b@1"], {**g["generator"], "condition": "hidden_state"}
    yield "generate", ["q/g@1"], {"seed": 0, "examples": "q/t-train@1", "samples": g["samples"], "select": "likelihood"}
    yield "merge", ["q/a@1"] * 3, {"method": "linear", **g["subspace_fit"], "fit": ["q/e@1"] * 3}
    yield "evaluate", ["q/x@1"], {"dataset": "q/t-test@1", "limit": s.converge_items, "gate": "off"}
    for name, params in s.merge["merges"].items():
        n = len(s.merge["tasks"])
        yield "merge", ["q/a@1"] * n, {**params, **({"fit": ["q/e@1"] * n} if params.get("fit") else {})}


@pytest.mark.parametrize("scale", list(SCALES))
def test_every_configured_job_is_valid_for_the_hub(scale):
    s = SCALES[scale]
    assert s.n_test >= 200 or scale == "smoke"  # the deciding scales score >= 200 items per task
    for kind, inputs, params in bodies(s):
        validate_job(kind, inputs, params, None if kind == "evaluate" else OUT)


def test_the_validation_used_here_does_refuse_a_bad_param():
    with pytest.raises(JobParamsError):
        validate_job("train", [], {"base": "b", "dataset": "q/t@1", "steps": 0}, OUT)
