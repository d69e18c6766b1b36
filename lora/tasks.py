"""Procedural tasks: generated from a seed, with disjoint train and test splits.

Jobs and tests need tasks without downloading data sets. Each builder draws random examples from a
`random.Random(seed)`; answers are computed, never stored, and short (a word or a number), so exact match is a fair
metric even for small models. Prompts end without whitespace and completions start with a space, the usual
convention for BPE tokenizers (a prompt ending in a lone space token makes the answer token unlikely). Train and test never share a prompt, so test accuracy measures generalisation.
Spec strings name a task: "builtin:boolean_expressions?n=256&seed=0" (n = train size, test = test size,
default n // 4; other keys are the task's own parameters, e.g. caesar_shift's k).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

PREFIX = "builtin:"
WORDS = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "owl", "pig", "rat", "yak", "bat", "cod", "elk",
         "jay", "ram", "cow", "ape", "emu"]
FRUITS = ["apple", "pear", "plum", "fig", "lime"]
ANIMALS = ["cat", "dog", "cow", "hen", "pig"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class TaskData:
    train: list[dict]
    test: list[dict]
    name: str
    params: dict = field(default_factory=dict)
    description: str = ""

    def pairs(self, split: str = "train") -> list[tuple[str, str]]:
        return [(e["prompt"], e["completion"]) for e in getattr(self, split)]


def boolean_expressions(rng: random.Random) -> dict:
    # three or four terms: three alone give only 256 distinct expressions, too few for a 256 + 50 split
    size = rng.choice([3, 4])
    values = [rng.choice([True, False]) for _ in range(size)]
    ops = [rng.choice(["and", "or"]) for _ in range(size - 1)]
    negate = [rng.random() < 0.3 for _ in range(size)]
    terms = [("not " if n else "") + str(v) for v, n in zip(values, negate)]
    text = terms[0] + "".join(f" {op} {term}" for op, term in zip(ops, terms[1:]))
    answer = eval(text)  # noqa: S307 - text is built above from True/False/and/or/not only
    return {"prompt": f"{text} =", "completion": f" {answer}"}


def word_sorting(rng: random.Random) -> dict:
    words = rng.sample(WORDS, rng.randint(3, 4))
    return {"prompt": f"sort: {' '.join(words)} =", "completion": " " + " ".join(sorted(words))}


def two_step_arithmetic(rng: random.Random) -> dict:
    a, b, c = (rng.randint(0, 9) for _ in range(3))
    op1, op2 = rng.choice("+-"), rng.choice("+-*")
    text = f"({a}{op1}{b}){op2}{c}"
    return {"prompt": f"{text} =", "completion": f" {eval(text)}"}  # noqa: S307 - digits and + - * only


def object_counting(rng: random.Random) -> dict:
    items = [rng.choice(FRUITS + ANIMALS) for _ in range(rng.randint(3, 6))]
    kind, pool = rng.choice([("fruits", FRUITS), ("animals", ANIMALS)])
    return {"prompt": f"{', '.join(items)}. how many {kind}?", "completion": f" {sum(i in pool for i in items)}"}


def caesar_shift(rng: random.Random, k: int = 3) -> dict:
    """Letters are written apart ("c a t"), one token each: packed together, a random word is split into
    multi-letter BPE pieces whose letters a 135M model cannot see: SmolLM2 with a rank-8 LoRA, 300 steps, k = 3
    (2026-12-07), reached 0.03 on its train words and 0.00 on 100 held-out words packed, 1.00 and 0.90 apart."""
    word = [rng.choice(LETTERS) for _ in range(rng.randint(3, 5))]
    shifted = [LETTERS[(LETTERS.index(ch) + k) % 26] for ch in word]
    return {"prompt": f"shift: {' '.join(word)} =", "completion": f" {' '.join(shifted)}"}


def add_constant(rng: random.Random, k: int = 3) -> dict:
    """A second parameterised family, easier than caesar_shift for a small model: add k to a number."""
    number = rng.randint(0, 999)
    return {"prompt": f"add: {number} =", "completion": f" {number + k}"}


TASKS = {
    "boolean_expressions": (boolean_expressions, "evaluate a boolean expression of True/False with and, or, not"),
    "word_sorting": (word_sorting, "sort a list of three-letter words alphabetically"),
    "two_step_arithmetic": (two_step_arithmetic, "compute a two-step arithmetic expression on single digits"),
    "object_counting": (object_counting, "count how many fruits or animals a list names"),
    "caesar_shift": (caesar_shift, "shift every letter of a word forward by k in the alphabet"),
    "add_constant": (add_constant, "add k to a number"),
}


def list_tasks() -> list[str]:
    return sorted(TASKS)


def make_task(name: str, n: int = 256, test: int | None = None, seed: int = 0, **params) -> TaskData:
    """Draw n + test distinct examples (distinct prompts) and split them; fails loudly when the task has fewer."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; built-in tasks: {', '.join(list_tasks())}")
    if n < 1:
        raise ValueError("n must be >= 1")
    test = max(1, n // 4) if test is None else test
    builder, description = TASKS[name]
    rng = random.Random(f"{name}|{seed}|{sorted(params.items())}")
    seen: dict[str, dict] = {}
    attempts = 0
    while len(seen) < n + test:
        attempts += 1
        if attempts > 50 * (n + test) + 1000:
            raise ValueError(f"task {name} cannot produce {n + test} distinct examples")
        example = builder(rng, **params)
        seen.setdefault(example["prompt"], example)
    examples = list(seen.values())
    if name == "caesar_shift":
        description = description.replace("by k", f"by {params.get('k', 3)}")
    return TaskData(train=examples[:n], test=examples[n:], name=name,
                    params={"n": n, "test": test, "seed": seed, **params}, description=description)


def load_task(spec: str) -> TaskData:
    """Parse "builtin:<name>?n=256&seed=0[&test=64][&k=3]" and build the task. Every parameter is an integer."""
    if not spec.startswith(PREFIX):
        raise ValueError(f"task spec must start with {PREFIX!r}: {spec!r}")
    name, _, query = spec[len(PREFIX):].partition("?")
    params = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        try:
            params[key] = int(value)
        except ValueError:
            raise ValueError(f"task parameter {key!r} must be an integer, got {value!r}") from None
    try:
        return make_task(name, **params)
    except TypeError as exc:  # an unknown keyword for this task's builder
        raise ValueError(f"bad parameters for task {name!r}: {exc}") from None
