"""Relabelling the forget set: what the model should say instead of the answer it is to forget (O3 uses no retained
data, so the forget set with new completions is all the unlearning LoRA trains on).

Two modes:
- "refusal" (free text): the completion becomes a refusal drawn from REFUSALS.
- "wrong_option" (multiple choice): the completion becomes a different option, drawn at random. The options of an
  example are found in this order, first match wins:
    1. the example's own "options" field (forget examples may be dicts {"prompt", "completion", "options"});
    2. UnlearnConfig.options, one list for the whole forget set;
    3. lettered options listed in the prompt ("A. ...", "(B) ...", "C) ...", "D: ..." at the start of a line),
       when the completion is one of those letters: the options are the letters found;
    4. a known closed answer set the completion belongs to: True/False (the built-in boolean_expressions task),
       yes/no.
  An example whose options cannot be found, or whose completion is not one of its options, is refused with the
  example's index: guessing a "wrong" answer for an open question would teach nothing.
The completion's leading whitespace is kept (the built-in tasks' completions start with a space, the usual BPE
convention), so the new target tokenises like the old one.
"""
from __future__ import annotations

import random
import re

REFUSALS = (
    "I'm sorry, but I can't help with that.",
    "I can't provide that information.",
    "I'm not able to answer that.",
    "Sorry, I don't have an answer for that.",
    "I can't share that.",
    "That is something I can't help with.",
)
KNOWN_OPTION_SETS = (("True", "False"), ("yes", "no"), ("Yes", "No"))
_LETTERED = re.compile(r"^\s*\(?([A-Z])(?:[.):]|\s*\))\s", re.MULTILINE)


def as_example(item, index: int) -> dict:
    """A forget example as {"prompt", "completion"[, "options"]}, from a (prompt, completion) pair or a dict."""
    if isinstance(item, dict):
        if not isinstance(item.get("prompt"), str) or not isinstance(item.get("completion"), str):
            raise ValueError(f"forget example {index} needs string 'prompt' and 'completion' fields")
        example = {"prompt": item["prompt"], "completion": item["completion"]}
        if item.get("options") is not None:
            example["options"] = [str(o) for o in item["options"]]
        return example
    if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item):
        return {"prompt": item[0], "completion": item[1]}
    raise ValueError(f"forget example {index} must be a (prompt, completion) pair or a dict with those fields")


def find_options(example: dict, options: tuple[str, ...] = ()) -> list[str] | None:
    """The options of a multiple-choice example (stripped), or None when none of the rules above applies."""
    answer = example["completion"].strip()
    if example.get("options"):
        return [o.strip() for o in example["options"]]
    if options:
        return [o.strip() for o in options]
    letters = list(dict.fromkeys(_LETTERED.findall(example["prompt"])))
    if len(letters) >= 2 and answer in letters:
        return letters
    for known in KNOWN_OPTION_SETS:
        if answer in known:
            return list(known)
    return None


def _leading_space(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def relabel(examples: list[dict], mode: str, seed: int = 0, options: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(prompt, new completion) for every forget example; seeded, so the same request relabels the same way."""
    rng = random.Random(f"relabel|{seed}")
    pairs = []
    for i, example in enumerate(examples):
        lead = _leading_space(example["completion"])
        if mode == "refusal":
            pairs.append((example["prompt"], lead + rng.choice(REFUSALS)))
        elif mode == "wrong_option":
            found = find_options(example, options)
            answer = example["completion"].strip()
            if found is None:
                raise ValueError(f"forget example {i}: cannot find its options for relabel='wrong_option' "
                                 f"(give an 'options' field, config options, lettered options in the prompt, "
                                 f"or use relabel='refusal')")
            if answer not in found:
                raise ValueError(f"forget example {i}: completion {answer!r} is not one of its options {found}")
            wrong = [o for o in dict.fromkeys(found) if o != answer]
            if not wrong:
                raise ValueError(f"forget example {i}: no option other than {answer!r} to relabel to")
            pairs.append((example["prompt"], lead + rng.choice(wrong)))
        else:
            raise ValueError(f"relabel must be one of ['refusal', 'wrong_option'], got {mode!r}")
    return pairs
