"""How forget examples are relabelled: a refusal from the fixed list, or a different option found by the documented
rules (explicit options, config options, lettered options in the prompt, True/False and yes/no)."""
from __future__ import annotations

import pytest

from unlearning import REFUSALS, relabel
from unlearning.relabelling import as_example, find_options


def test_wrong_option_flips_boolean_answers_and_keeps_the_leading_space():
    examples = [{"prompt": "True and False =", "completion": " False"},
                {"prompt": "True or False =", "completion": " True"}]
    assert relabel(examples, "wrong_option") == [("True and False =", " True"), ("True or False =", " False")]


def test_wrong_option_never_returns_the_original_and_stays_within_the_options():
    examples = [{"prompt": f"q{i}", "completion": " b", "options": ["a", "b", "c", "d"]} for i in range(40)]
    new = [c.strip() for _, c in relabel(examples, "wrong_option", seed=3)]
    assert set(new) <= {"a", "c", "d"} and len(set(new)) == 3  # all three wrong options get drawn


def test_wrong_option_reads_lettered_options_from_the_prompt():
    prompt = "Which is a fruit?\nA. dog\nB. pear\nC. rock\nAnswer:"
    assert find_options({"prompt": prompt, "completion": " B"}) == ["A", "B", "C"]
    (_, new), = relabel([{"prompt": prompt, "completion": " B"}], "wrong_option")
    assert new in (" A", " C")


def test_config_options_apply_to_every_example():
    examples = [{"prompt": "colour?", "completion": " red"}]
    (_, new), = relabel(examples, "wrong_option", options=("red", "green"))
    assert new == " green"


def test_wrong_option_without_findable_options_names_the_example():
    examples = [{"prompt": "True =", "completion": " True"}, {"prompt": "capital of France?", "completion": " Paris"}]
    with pytest.raises(ValueError, match="forget example 1"):
        relabel(examples, "wrong_option")


def test_refusal_draws_from_the_fixed_list_and_is_seeded():
    examples = [{"prompt": f"secret {i}?", "completion": " 42"} for i in range(20)]
    first = relabel(examples, "refusal", seed=0)
    assert all(c.startswith(" ") and c[1:] in REFUSALS for _, c in first)
    assert relabel(examples, "refusal", seed=0) == first
    assert relabel(examples, "refusal", seed=1) != first


def test_unknown_relabel_mode_is_refused():
    with pytest.raises(ValueError, match="relabel"):
        relabel([{"prompt": "p", "completion": " c"}], "forget_harder")


def test_forget_examples_may_be_pairs_or_dicts_but_nothing_else():
    assert as_example(("p", " c"), 0) == {"prompt": "p", "completion": " c"}
    assert as_example({"prompt": "p", "completion": " c", "options": ["c", "d"]}, 0)["options"] == ["c", "d"]
    with pytest.raises(ValueError, match="forget example 3"):
        as_example({"prompt": "p"}, 3)
