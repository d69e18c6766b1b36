"""Tasks for the protocol: built-in names or a user's own JSONL files, as {"prompt", "completion"} train/test rows.

A task is given on the command line as a built-in name with optional integer parameters (`caesar_shift?k=5`), or
as NAME=TRAIN.jsonl,TEST.jsonl for your own data. The protocol uploads both splits as datasets, so every method
trains on the train split and is scored on the test split through the same `evaluate` jobs, whatever the source.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from lora.tasks import TASKS, make_task

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Task:
    name: str  # also the dataset names' stem: letters, digits, _ . -
    train: tuple[dict, ...]
    test: tuple[dict, ...]
    source: str  # "builtin:..." or the two file paths, for the report

    def rows(self, split: str) -> list[dict]:
        return list(getattr(self, split))


def load_jsonl(path: Path | str) -> list[dict]:
    """{"prompt", "completion"} rows of a JSONL file; blank lines skipped, anything else is an error naming the
    line, so a typo in someone's data fails before a single job runs."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("prompt", "completion")):
                raise ValueError(f'{path}:{number}: each line must be an object with string "prompt" and '
                                 f'"completion"')
            if not row["prompt"] or not row["completion"].strip():
                raise ValueError(f"{path}:{number}: empty prompt or completion")
            rows.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def builtin(spec: str, n_train: int, n_test: int, seed: int = 0) -> Task:
    """A built-in task ("caesar_shift?k=5") with n_train/n_test rows; its name carries its parameters."""
    name, _, query = spec.partition("?")
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: give a built-in name ({', '.join(sorted(TASKS))}) or "
                         f"NAME=TRAIN.jsonl,TEST.jsonl")
    params = {}
    for key, value in parse_qsl(query):
        if not value.lstrip("-").isdigit():
            raise ValueError(f"task {spec!r}: parameter {key!r} must be an integer")
        params[key] = int(value)
    data = make_task(name, n=n_train, test=n_test, seed=seed, **params)
    label = name + "".join(f"-{k}{v}" for k, v in sorted(params.items()))
    query = "".join(f"&{k}={v}" for k, v in sorted(params.items()))
    return Task(label, tuple(data.train), tuple(data.test), f"builtin:{name}?n={n_train}&test={n_test}&seed={seed}"
                + query)


def parse(spec: str, n_train: int, n_test: int, seed: int = 0) -> Task:
    """A task from its command-line form. Own data is used as given (all its rows, not n_train/n_test): the
    protocol's sizes are for the built-in tasks, which can draw as many as asked."""
    if "=" in spec.partition("?")[0]:
        name, _, files = spec.partition("=")
        if not _NAME.fullmatch(name):
            raise ValueError(f"task name {name!r}: letters, digits, _ . - (at most 64)")
        paths = files.split(",")
        if len(paths) != 2:
            raise ValueError(f"task {name!r}: give NAME=TRAIN.jsonl,TEST.jsonl")
        train, test = (load_jsonl(p) for p in paths)
        overlap = {r["prompt"] for r in train} & {r["prompt"] for r in test}
        if overlap:
            raise ValueError(f"task {name!r}: {len(overlap)} test prompts are also in the train split (e.g. "
                             f"{sorted(overlap)[0]!r}); test accuracy would not measure generalisation")
        return Task(name, tuple(train), tuple(test), f"{paths[0]},{paths[1]}")
    return builtin(spec, n_train, n_test, seed)
