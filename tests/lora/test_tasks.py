"""Built-in tasks: deterministic per seed, disjoint splits, correct answers, clear errors for bad specs."""
import pytest

from lora.tasks import TASKS, list_tasks, load_task


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_spec_same_examples_and_disjoint_splits(name):
    one = load_task(f"builtin:{name}?n=40&seed=3")
    two = load_task(f"builtin:{name}?n=40&seed=3")
    other = load_task(f"builtin:{name}?n=40&seed=4")
    assert one.train == two.train and one.test == two.test
    assert one.train != other.train
    assert len(one.train) == 40 and len(one.test) == 10  # test defaults to n // 4
    assert not {e["prompt"] for e in one.train} & {e["prompt"] for e in one.test}
    assert all(set(e) == {"prompt", "completion"} and e["completion"] for e in one.train + one.test)
    assert one.params == {"n": 40, "test": 10, "seed": 3} or name == "caesar_shift"
    assert one.description


def test_answers_are_computed_correctly():
    for e in load_task("builtin:two_step_arithmetic?n=20").train:
        assert " " + str(eval(e["prompt"].rstrip(" ="))) == e["completion"]
    for e in load_task("builtin:word_sorting?n=20").train:
        assert e["completion"].startswith(" ") and e["completion"].split() == sorted(e["prompt"][len("sort: "):].rstrip(" =").split())
    for e in load_task("builtin:boolean_expressions?n=20").train:
        assert e["completion"] in (" True", " False") and e["prompt"].endswith(" =")
    for e in load_task("builtin:object_counting?n=20").train:
        items, question = e["prompt"].split(". how many ")
        pool = ["apple", "pear", "plum", "fig", "lime"] if question.startswith("fruits") else ["cat", "dog", "cow", "hen", "pig"]
        assert int(e["completion"]) == sum(i in pool for i in items.split(", "))


def test_caesar_shift_is_parameterised_by_k():
    k1 = load_task("builtin:caesar_shift?n=10&k=1&test=5")
    k5 = load_task("builtin:caesar_shift?n=10&k=5&test=5")
    assert k1.params["k"] == 1 and len(k1.test) == 5
    for task, k in ((k1, 1), (k5, 5)):
        for e in task.train:
            letters = e["prompt"][len("shift: "):].rstrip(" =").split(" ")  # one token per letter
            assert all(len(c) == 1 for c in letters) and 3 <= len(letters) <= 5
            assert e["completion"] == " " + " ".join(chr((ord(c) - 97 + k) % 26 + 97) for c in letters)
    assert "by 5" in k5.description


def test_bad_specs_are_refused_with_the_reason():
    assert list_tasks() == sorted(TASKS) and "caesar_shift" in list_tasks()
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        load_task("builtin:nope?n=4")
    with pytest.raises(ValueError, match="must start with 'builtin:'"):
        load_task("boolean_expressions")
    with pytest.raises(ValueError, match="'n' must be an integer"):
        load_task("builtin:word_sorting?n=many")
    with pytest.raises(ValueError, match="bad parameters"):
        load_task("builtin:word_sorting?n=4&k=2")
    with pytest.raises(ValueError, match="distinct examples"):
        load_task("builtin:boolean_expressions?n=3000")  # only 256 + 2048 distinct prompts exist
