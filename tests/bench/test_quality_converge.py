"""Converged inputs: train on to twice the steps (continuing the last candidate) until the train split's exact
match stops improving, is solved, or the next budget passes the cap; the best candidate is the input. The hub is a
fake that answers from a table."""
from dataclasses import replace

import pytest

from bench.quality.protocol import Run
from bench.quality.report import Report
from bench.quality.scales import SCALES
from bench.quality.tasks import Task

TASK = Task("t", tuple({"prompt": f"p{i}", "completion": " c"} for i in range(10)),
            tuple({"prompt": f"q{i}", "completion": " c"} for i in range(10)), "builtin:t")


class FakeHub:
    """train jobs succeed (version = total steps: a continued input's plus the job's own); evaluate answers
    `train_acc[steps]` right out of 10 items."""

    def __init__(self, train_acc: dict[int, int], fail_at: int | None = None):
        self.train_acc, self.fail_at, self.bodies = train_acc, fail_at, []

    def dataset(self, name, rows):
        return f"{name}@1"

    def job(self, body, label=""):
        self.bodies.append(body)
        if body["kind"] == "train":
            steps = total_steps(body)
            if steps == self.fail_at:
                return {"state": "failed", "error": {"message": "out of memory"}, "wall_s": 1}
            return {"state": "succeeded", "results": [f"q/x@{steps}"], "wall_s": 1.0}
        steps = int(body["inputs"][0].split("@")[1])
        right = self.train_acc[steps] if body["params"]["dataset"].startswith("q/t-train") else 5
        return {"state": "succeeded", "wall_s": 1.0, "id": "j",
                "result": {"eval/q.t/correct": "1" * right + "0" * (10 - right), "eval/q.t/items_per_s": 10.0}}


def run_with(hub, tmp_path, **scale):
    return Run(hub, replace(SCALES["smoke"], start_steps=4, max_steps=32, plateau=0.02, **scale),
               Report("merge", "smoke", out_dir=tmp_path))


def total_steps(body) -> int:
    return body["params"]["steps"] + sum(int(ref.split("@")[1]) for ref in body.get("inputs", []))


def steps_trained(hub):
    """Each candidate's total steps."""
    return [total_steps(b) for b in hub.bodies if b["kind"] == "train"]


def test_each_doubling_continues_the_last_candidate_for_as_many_steps_again(tmp_path):
    hub = FakeHub({4: 1, 8: 2, 16: 3, 32: 4})
    run_with(hub, tmp_path).converged("b", TASK, "x")
    trains = [b for b in hub.bodies if b["kind"] == "train"]
    assert [(b.get("inputs", []), b["params"]["steps"]) for b in trains] == [
        ([], 4), (["q/x@4"], 4), (["q/x@8"], 8), (["q/x@16"], 16)]


def test_doubling_stops_when_train_accuracy_plateaus(tmp_path):
    hub = FakeHub({4: 3, 8: 6, 16: 6})
    c = run_with(hub, tmp_path).converged("b", TASK, "x")
    assert steps_trained(hub) == [4, 8, 16] and c.steps == 16 and c.ref == "q/x@16" and c.why.startswith("plateau")


def test_a_worse_longer_run_keeps_the_better_shorter_one(tmp_path):
    hub = FakeHub({4: 3, 8: 7, 16: 5})
    c = run_with(hub, tmp_path).converged("b", TASK, "x")
    assert c.ref == "q/x@8" and c.steps == 8 and sum(c.train) == 7 and len(c.test) == 10


def test_a_solved_train_split_stops_at_once_and_the_cap_bounds_the_rest(tmp_path):
    solved = FakeHub({4: 10})
    assert run_with(solved, tmp_path).converged("b", TASK, "x").why.startswith("train split solved")
    assert steps_trained(solved) == [4]
    climbing = FakeHub({4: 1, 8: 2, 16: 3, 32: 4})
    c = run_with(climbing, tmp_path).converged("b", TASK, "x")
    assert steps_trained(climbing) == [4, 8, 16, 32] and c.why == "step cap 32"


def test_the_report_shows_each_input_with_train_and_test_accuracy(tmp_path):
    run = run_with(FakeHub({4: 3, 8: 3}), tmp_path)
    run.converged("b", TASK, "x", checkpoints=2)
    (entry,) = run.report.data["inputs"]
    assert entry["train"]["value"] == 0.3 and entry["test"]["n"] == 10 and entry["steps"] == 8  # a tie: the longer run
    trains = [b for b in run.svc.bodies if b["kind"] == "train"]
    assert [b["params"].get("checkpoint_every") for b in trains] == [2, 4]
    assert [b.get("inputs", []) for b in trains] == [[], []]  # a trajectory is one run's checkpoints: never continued


def test_a_failed_training_gives_no_input_and_says_why(tmp_path):
    c = run_with(FakeHub({4: 3}, fail_at=8), tmp_path).converged("b", TASK, "x")
    assert c.ref is None and "out of memory" in c.why


@pytest.mark.parametrize("limit", [None, 4])
def test_score_reads_per_item_results_and_counts_evaluate_cost(tmp_path, limit):
    hub = FakeHub({4: 3})
    run = run_with(hub, tmp_path)
    assert run.correct(TASK, "train", version="q/x@4", limit=limit) == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert hub.bodies[-1]["params"].get("limit") == limit
    assert run.eval_costs()["evaluate_items_per_s_median"] == 10.0
