"""The generation report's explanation of its two bounded goals: the best mix of seen members per held-out member,
and the size share the generator's layout implies."""
from types import SimpleNamespace

import pytest

from bench.quality.generate import DELTA_AVERAGE, _why_notes
from bench.quality.report import Report


def _run(tmp_path):
    return SimpleNamespace(report=Report("generate", "smoke", out_dir=tmp_path))


def test_why_notes_name_the_best_mix_of_seen_members_for_each_held_out_member(tmp_path):
    r = _run(tmp_path)
    tasks = {3: SimpleNamespace(name="add_constant-k3"), 5: SimpleNamespace(name="add_constant-k5")}
    scores = {"add_constant-k3": {"trained": [1] * 10, "neighbour average": [1] * 2 + [0] * 8,
                                  DELTA_AVERAGE: [0] * 10, "subspace fit": [1] + [0] * 9},
              "add_constant-k5": {"trained": [1] * 9 + [0], DELTA_AVERAGE: [1] * 4 + [0] * 6}}
    _why_notes(r, "add_constant", [3, 5], tasks, scores, {})
    (note,) = r.report.data["notes"]
    assert "k=3 neighbour average 0.200 (trained 1.000)" in note
    assert f"k=5 {DELTA_AVERAGE} 0.400 (trained 0.900)" in note


def test_why_notes_derive_the_size_share_from_the_basis_and_the_checkpoints_used(tmp_path):
    r = _run(tmp_path)
    _why_notes(r, "caesar_shift", [], {}, {}, {"basis_directions": 8, "checkpoints_used": 30, "size_ratio": 0.168})
    (note,) = r.report.data["notes"]
    assert "(2 + 8) / (2 x 30) = 16.7%" in note and "measured 16.8%" in note and "5 % needs 100 kept" in note


@pytest.mark.parametrize("generator", [{}, {"basis_directions": 8, "checkpoints_used": 30}])
def test_why_notes_stay_silent_without_the_numbers_they_explain(tmp_path, generator):
    r = _run(tmp_path)
    _why_notes(r, "f", [2], {2: SimpleNamespace(name="f-k2")}, {"f-k2": {"trained": [1]}}, generator)
    assert r.report.data["notes"] == []
