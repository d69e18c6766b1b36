"""Inputs that must keep the unlearning gate shut, for calibrating it when the caller gives few or none.

The calibrated gate (lora.gating.fit_gate) needs negatives: inputs the unlearning LoRA must not touch. Sources, all
used together:
  - the caller's reference inputs (the `reference` of an unlearn job: retained data), when given;
  - GENERIC_PROMPTS below: everyday requests of many kinds (questions, instructions, code, arithmetic in words),
    written for this project, so a gate is never calibrated against nothing;
  - prompts of the built-in procedural tasks (lora.tasks), drawn with a seed of their own: short structured prompts
    ("sort: ant cat =", "(3+4)*2 ="), the kind of input a generic sentence says nothing about.
A built-in task can itself be what is being forgotten. Such a task is not a negative: `builtin_reference` leaves
out every task whose median input a gate fitted without any built-in task would open for (weight ≥ 0.5: the
detector puts the task with the held-out forget inputs, so calling it "retained" would contradict them), and says
which it left out.
"""
from __future__ import annotations

import numpy as np

BUILTIN_SEED = 7919  # not a seed the benchmarks or the tests draw their tasks with
BUILTIN_PER_TASK = 24

GENERIC_PROMPTS = [
    "What is the capital of Australia?",
    "Write a short poem about the sea at night.",
    "Explain how a refrigerator keeps food cold.",
    "Translate 'good morning' into Spanish.",
    "Summarise the plot of a detective story in two sentences.",
    "How do I boil an egg so that the yolk stays soft?",
    "List three benefits of regular exercise.",
    "Write a Python function that reverses a string.",
    "What is the difference between weather and climate?",
    "Give me a name for a small bakery.",
    "Why is the sky blue during the day?",
    "Draft a polite email asking to reschedule a meeting.",
    "What does a database index do?",
    "Describe the smell of rain in one sentence.",
    "How many legs does a spider have?",
    "Suggest a vegetarian dinner for four people.",
    "What year did the first person walk on the moon?",
    "Explain recursion to a ten-year-old.",
    "Write a haiku about autumn leaves.",
    "What is twelve plus seven, written in words?",
    "How should I store fresh basil?",
    "Name a famous painting and its painter.",
    "What is photosynthesis?",
    "Give two tips for a job interview.",
    "Convert 30 degrees Celsius to Fahrenheit.",
    "What causes ocean tides?",
    "Write a SQL query that counts rows in a table called orders.",
    "Tell me a fun fact about octopuses.",
    "How do vaccines train the immune system?",
    "Recommend a book for someone who likes science fiction.",
    "What is the plural of 'mouse'?",
    "Describe a sunrise over the mountains.",
    "How does a bicycle stay upright while moving?",
    "Write a limerick about a cat who loves cheese.",
    "What is the boiling point of water at sea level?",
    "Explain what inflation means for savings.",
    "Give an example of a metaphor.",
    "Which planet is closest to the sun?",
    "How do I center a div in CSS?",
    "What should I pack for a weekend hiking trip?",
    "Who wrote the play Romeo and Juliet?",
    "Explain the rules of chess in three sentences.",
    "What is a prime number?",
    "Write a thank-you note to a neighbour who watered my plants.",
    "How long does it take light from the sun to reach the earth?",
    "Describe the taste of a ripe mango.",
    "What is the difference between a list and a tuple in Python?",
    "Give me a riddle and its answer.",
]


def builtin_prompts() -> dict[str, list[str]]:
    """task name -> BUILTIN_PER_TASK prompts of every built-in task (default parameters, a seed of our own)."""
    from lora.tasks import list_tasks, make_task

    return {name: [e["prompt"] for e in make_task(name, n=BUILTIN_PER_TASK, test=1, seed=BUILTIN_SEED).train]
            for name in list_tasks()}


def builtin_reference(weights_by_task: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """(kept, left_out) task names, given each task's weights under a gate fitted without the built-in tasks: a task
    whose median weight is ≥ 0.5 is left out."""
    kept, left_out = [], []
    for name, weights in sorted(weights_by_task.items()):
        (left_out if float(np.median(weights)) >= 0.5 else kept).append(name)
    return kept, left_out
