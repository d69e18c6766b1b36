"""Transfer reports that each ran some tasks join into one: per-task numbers as measured, the goal over all tasks
recomputed from the per-task verdicts, and reports of different experiments or with a task twice refused."""
import json

import pytest

from bench.quality import transfer
from bench.quality.combine import combine, main
from bench.quality.report import Report
from bench.quality.stats import accuracy, check

CONFIG = {"scale": "cpu", "base": "smollm2", "target": "gemma3-270m", "lora": {"rank": 8}, "overrides": []}


def _run(tmp_path, stamp, tasks: dict[str, tuple[list[int], list[int], list[int]]], config=CONFIG) -> dict:
    """A transfer report as a `--task` run writes it: task -> per-item scores of (transferred, source, target)."""
    report = Report("transfer", "cpu", out_dir=tmp_path, stamp=stamp, config={**config, "tasks": list(tasks)})
    scores = {t: {"transferred": a, "source": b, "target alone": c} for t, (a, b, c) in tasks.items()}
    report.table("smollm2 -> gemma3-270m: exact match", list(tasks),
                 [{"system": s, "scores": {t: accuracy(scores[t][s]) for t in tasks}} for s in scores[next(iter(tasks))]])
    report.details("Kits and transfers", {t: {"acceptance": 0.5} for t in tasks})
    goals = check(transfer.LOSSLESS, scores)
    report.goals(goals + [transfer.tasks_goal(goals, len(tasks))])
    report.write("done")
    return json.loads(report.path.with_suffix(".json").read_text())


GOOD = ([1] * 40, [1] * 30 + [0] * 10, [0] * 40)  # transferred clearly above both: held
BAD = ([0] * 40, [1] * 40, [0] * 40)  # clearly below the source: not held


def test_combined_report_has_every_task_and_recomputes_the_goal_over_all_tasks(tmp_path):
    a = _run(tmp_path, "20261207-000001", {"t1": GOOD, "t2": GOOD})
    b = _run(tmp_path, "20261207-000002", {"t3": BAD})
    assert [g["verdict"] for g in a["goals"]][-1] == "held" and b["goals"][-1]["verdict"] == "not held"
    data = combine([a, b], stamp="20261207-000003")
    (table,) = data["tables"]
    assert table["columns"] == ["t1", "t2", "t3"]
    source = next(r for r in table["rows"] if r["system"] == "source")
    assert source["scores"]["t3"] == b["tables"][0]["rows"][1]["scores"]["t3"]  # taken as measured
    assert set(data["details"][0]["columns"]) == {"t1", "t2", "t3"}
    lossless = [g for g in data["goals"] if g["goal"] == transfer.LOSSLESS.text]
    assert [g["task"] for g in lossless] == ["t1", "t2", "t3"]
    overall = data["goals"][-1]
    # 2 of 3 tasks kept where ceil(0.8 * 3) = 3 are needed: not held, though each part on its own said otherwise
    assert overall["goal"] == "lossless held or undecided on >= 3 of 3 tasks" and overall["verdict"] == "not held"
    assert sum(g["task"] is None for g in data["goals"]) == 1
    assert data["config"]["combined_from"] == [a["stamp"], b["stamp"]] and data["config"]["tasks"] == ["t1", "t2", "t3"]


def test_reports_of_different_experiments_or_with_a_task_twice_are_refused(tmp_path):
    a = _run(tmp_path, "20261207-000001", {"t1": GOOD})
    other = _run(tmp_path, "20261207-000002", {"t2": GOOD}, config={**CONFIG, "overrides": ["transfer.data=unfiltered"]})
    again = _run(tmp_path, "20261207-000003", {"t1": BAD})
    with pytest.raises(ValueError, match="config differs"):
        combine([a, other])
    with pytest.raises(ValueError, match="'t1' is in both"):
        combine([a, again])
    with pytest.raises(ValueError, match="at least two"):
        combine([a])


def test_the_command_writes_the_combined_report_files(tmp_path, capsys):
    _run(tmp_path, "20261207-000001", {"t1": GOOD})
    _run(tmp_path, "20261207-000002", {"t2": GOOD})
    out = tmp_path / "combined"
    assert main([str(tmp_path / "quality-transfer-cpu-20261207-000001.json"),
                 str(tmp_path / "quality-transfer-cpu-20261207-000002.json"), "--out", str(out)]) == 0
    (md,) = out.glob("*.md")
    text = md.read_text()
    assert "t1 (n=40)" in text and "t2 (n=40)" in text and "lossless held or undecided on >= 2 of 2 tasks" in text
    assert json.loads(md.with_suffix(".json").read_text())["status"] == "done"
