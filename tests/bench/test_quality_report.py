"""The protocol's report files and task loading: the JSON shape scripts rely on, and own data loaded or refused."""
import json

import pytest

from bench.quality.report import Report
from bench.quality.stats import Goal, accuracy, check
from bench.quality.tasks import load_jsonl, parse


def test_report_json_has_accuracies_with_intervals_and_a_flat_goals_list(tmp_path):
    report = Report("merge", "smoke", out_dir=tmp_path, stamp="20260101-000000", config={"rank": 8})
    single, merged = [1] * 30 + [0] * 10, [1] * 12 + [0] * 28
    report.input("single:t", "t", 40, train=accuracy([1] * 8), test=accuracy(single), why="plateau")
    report.table("Merged vs singles", ["t"], [{"system": "single", "scores": {"t": accuracy(single)}},
                                              {"system": "lego", "scores": {"t": accuracy(merged)}, "merge_s": 0.2}])
    report.details("Merge jobs", {"lego": {"merge_s": 0.25, "rank": 8}, "ties": {"merge_s": 0.5}})
    report.goals(check(Goal("lego >= single", ("lego", "single"), lambda m: m["lego"] - m["single"]),
                       {"t": {"lego": merged, "single": single}}))
    path = report.write("done")
    data = json.loads((tmp_path / "quality-merge-smoke-20260101-000000.json").read_text())
    assert path == tmp_path / "quality-merge-smoke-20260101-000000.md" and path.exists()
    assert data["status"] == "done" and data["config"] == {"rank": 8}
    acc = data["tables"][0]["rows"][1]["scores"]["t"]
    assert set(acc) == {"value", "ci_low", "ci_high", "n"} and acc["n"] == 40 and acc["value"] == 0.3
    (goal,) = data["goals"]
    assert set(goal) == {"goal", "task", "verdict", "diff", "ci_low", "ci_high"}
    assert goal["task"] == "t" and goal["verdict"] == "not held" and goal["diff"] == pytest.approx(-0.45)
    text = path.read_text()
    assert "| merge_s | 0.250 | 0.500 |" in text and "| rank | 8 | — |" in text
    assert "0 held, 0 undecided, 1 not held" in text and "t (n=40)" in text and "| lego | 0.300 [" in text


def test_report_rewrites_the_same_files_as_a_run_goes_on(tmp_path):
    report = Report("unlearn", "cpu", out_dir=tmp_path)
    report.write()
    report.note("request 1 done")
    report.write("done")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and json.loads((tmp_path / files[0]).read_text())["notes"] == ["request 1 done"]


def test_own_jsonl_task_loads_both_splits(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"prompt": "2+2 =", "completion": " 4"}\n\n'
                                          '{"prompt": "3+3 =", "completion": " 6"}\n')
    (tmp_path / "test.jsonl").write_text('{"prompt": "1+1 =", "completion": " 2"}\n')
    task = parse(f"sums={tmp_path / 'train.jsonl'},{tmp_path / 'test.jsonl'}", n_train=999, n_test=999)
    assert task.name == "sums" and len(task.train) == 2 and task.rows("test") == [{"prompt": "1+1 =",
                                                                                   "completion": " 2"}]


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "a"}', 'string "prompt" and "completion"'),
    ("not json", "not JSON"),
    ('{"prompt": "", "completion": " x"}', "empty prompt"),
])
def test_bad_jsonl_names_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok", "completion": " 1"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        load_jsonl(path)
    assert f"{path}:2" in str(info.value)


def test_own_task_whose_test_prompts_are_in_train_is_refused(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"prompt": "p", "completion": " 1"}\n')
    with pytest.raises(ValueError, match="also in the train split"):
        parse(f"dup={tmp_path / 'a.jsonl'},{tmp_path / 'a.jsonl'}", 1, 1)


def test_builtin_task_takes_its_sizes_and_integer_parameters():
    task = parse("caesar_shift?k=5", n_train=12, n_test=7)
    assert task.name == "caesar_shift-k5" and len(task.train) == 12 and len(task.test) == 7
    assert task.source == "builtin:caesar_shift?n=12&test=7&seed=0&k=5"
    assert not {r["prompt"] for r in task.train} & {r["prompt"] for r in task.test}
    with pytest.raises(ValueError, match="unknown task"):
        parse("no_such_task", 4, 4)
    with pytest.raises(ValueError, match="must be an integer"):
        parse("caesar_shift?k=five", 4, 4)
