"""The protocol command's argument handling (the benchmark itself never runs in CI)."""
import pytest

from bench.quality.__main__ import main, overrides


def test_param_overrides_go_to_the_named_kind_or_the_methods_own():
    assert overrides(["transfer.data=unfiltered", "fit_budget=80", "merge.weights=[0.5, 0.5]"], "merge") == {
        "transfer": {"data": "unfiltered"}, "merge": {"fit_budget": 80, "weights": [0.5, 0.5]}}
    assert overrides(["epochs=3"], "generate") == {"train_generator": {"epochs": 3}}


def test_a_param_without_a_value_is_refused():
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        overrides(["steps"], "merge")


def test_a_bad_task_is_refused_before_any_hub_starts(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["merge", "--cache-dir", str(tmp_path), "--task", f"mine={tmp_path / 'missing.jsonl'},x.jsonl"])
    assert info.value.code == 2 and "missing.jsonl" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no hub data written
