"""The quality protocol's statistics: bootstrap intervals, paired goal verdicts, and how goals read score sets."""
import numpy as np
import pytest

from bench.quality.stats import HELD, NOT_HELD, UNDECIDED, Goal, accuracy, check, fixed, paired_bootstrap, verdict


def test_accuracy_carries_n_and_an_interval_that_narrows_with_more_items():
    small = accuracy([1, 0] * 10)
    large = accuracy([1, 0] * 100)
    assert small["value"] == large["value"] == 0.5 and small["n"] == 20 and large["n"] == 200
    assert small["ci_low"] < 0.5 < small["ci_high"]
    assert large["ci_high"] - large["ci_low"] < 0.6 * (small["ci_high"] - small["ci_low"])
    assert 0.12 < large["ci_high"] - large["ci_low"] < 0.16  # ±1.96·sqrt(.25/200) = ±0.069


def test_accuracy_of_nothing_is_an_error_not_zero():
    with pytest.raises(ValueError, match="non-empty"):
        accuracy([])


def test_accuracy_is_reproducible_for_a_seed():
    items = np.random.default_rng(1).integers(0, 2, 50)
    assert accuracy(items, seed=3) == accuracy(items, seed=3)


def test_verdict_reads_the_interval_against_zero():
    assert verdict(0.0, 0.2) == HELD
    assert verdict(-0.3, -0.01) == NOT_HELD
    assert verdict(-0.05, 0.1) == UNDECIDED


def test_identical_systems_tie_exactly_and_the_tie_holds_a_greater_or_equal_goal():
    items = [1, 0, 1, 1, 0] * 8
    result = paired_bootstrap({"t": {"a": items, "b": items}}, lambda m: m["t"]["a"] - m["t"]["b"])
    assert result == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "verdict": HELD}


def test_pairing_decides_a_small_consistent_gain_that_separate_intervals_cannot():
    rng = np.random.default_rng(0)
    b = rng.integers(0, 2, 200)
    a = b.copy()
    a[np.flatnonzero(b == 0)[:10]] = 1  # a = b plus 10 more items right: +0.05
    separate = accuracy(a), accuracy(b)
    assert separate[0]["ci_low"] < separate[1]["ci_high"]  # the two intervals overlap
    paired = paired_bootstrap({"t": {"a": a, "b": b}}, lambda m: m["t"]["a"] - m["t"]["b"])
    assert paired["diff"] == pytest.approx(0.05) and paired["verdict"] == HELD and paired["ci_low"] > 0


def test_clear_loss_is_not_held_and_a_noisy_small_one_is_undecided():
    worse = paired_bootstrap({"t": {"a": [0] * 30 + [1] * 10, "b": [1] * 40}}, lambda m: m["t"]["a"] - m["t"]["b"])
    assert worse["verdict"] == NOT_HELD and worse["diff"] == pytest.approx(-0.75)
    a = [1, 0, 0, 1, 1, 0, 1, 0, 0, 1]
    b = [0, 1, 0, 1, 1, 0, 1, 0, 1, 1]
    noisy = paired_bootstrap({"t": {"a": a, "b": b}}, lambda m: m["t"]["a"] - m["t"]["b"])
    assert noisy["verdict"] == UNDECIDED and noisy["ci_low"] < 0 < noisy["ci_high"]


def test_paired_bootstrap_refuses_systems_scored_on_different_items():
    with pytest.raises(ValueError, match="same non-empty items"):
        paired_bootstrap({"t": {"a": [1, 0], "b": [1, 0, 1]}}, lambda m: 0.0)


def test_a_goal_over_tasks_resamples_each_task_on_its_own():
    # task x: merged = single on every item; task y: merged loses half of single's right answers.
    scores = {"x": {"merged": [1] * 20 + [0] * 20, "single": [1] * 20 + [0] * 20},
              "y": {"merged": [1] * 10 + [0] * 30, "single": [1] * 20 + [0] * 20}}
    mean_ratio = Goal("merged >= 0.7 x singles' mean", ("merged", "single"),
                      lambda m: (sum(t["merged"] for t in m.values()) - 0.7 * sum(t["single"] for t in m.values()))
                      / len(m), per_task=False)
    (entry,) = check(mean_ratio, scores)
    assert entry["task"] is None and entry["diff"] == pytest.approx((0.75 - 0.7) * 0.5)
    per_task = Goal("merged >= single", ("merged", "single"), lambda m: m["merged"] - m["single"])
    by_task = {e["task"]: e for e in check(per_task, scores)}
    assert by_task["x"]["verdict"] == HELD and by_task["y"]["verdict"] == NOT_HELD


def test_a_goal_whose_scores_are_missing_is_not_held_and_names_them():
    goal = Goal("transferred >= source", ("transferred", "source"), lambda m: m["transferred"] - m["source"])
    entries = check(goal, {"a": {"source": [1, 0]}, "b": {"unrelated": [1]}})
    assert entries == [{"goal": "transferred >= source", "task": "a", "verdict": NOT_HELD, "diff": None,
                        "ci_low": None, "ci_high": None, "missing": ["transferred"]}]


def test_a_fixed_number_goal_has_its_point_as_interval():
    assert fixed("generator <= 5 % of checkpoints", 0.05 - 0.02)["verdict"] == HELD
    entry = fixed("generator <= 5 % of checkpoints", 0.05 - 0.44, task="caesar_shift")
    assert entry["verdict"] == NOT_HELD and entry["ci_low"] == entry["ci_high"] == entry["diff"]


def test_a_goal_nothing_was_measured_for_still_appears_as_not_held():
    goal = Goal("routed merge >= 95 % of the singles' mean", ("route", "single"), lambda m: 0.0, per_task=False)
    (entry,) = check(goal, {"t": {"lego": [1, 0]}})
    assert entry["verdict"] == NOT_HELD and entry["task"] is None and entry["missing"] == ["route", "single"]
    per_task = Goal("fitted above 0", ("fit",), lambda m: m["fit"])
    assert check(per_task, {"t": {"lego": [1]}})[0]["missing"] == ["fit"]
