"""The two prompts Trans-LoRA is built on, in one place so kit time and transfer time can never disagree.

- The generator prompt shows the seed inputs as a numbered list and opens the next item; a base model continues the
  list with a new input of the same kind, and the next item number marks where that input ends.
- The discriminator prompt asks whether an input comes from the task's dataset; the answer is the completion
  "yes" or "no", so a LoRA learns it with the ordinary SFT loop and lora.evaluation.yes_no_prob scores it.
"""
from __future__ import annotations

import random

YES, NO = "yes", "no"


def discriminator_prompt(x: str, task_name: str) -> str:
    """methods.md's t(x): the input, then the question on its own line."""
    return f"{x}\nIs the above question from the {task_name} dataset?"


def generator_prompt(seed_inputs: list[str]) -> str:
    """ "Here are 10 examples:\\n1. <x1>\\n...\\n5. <x5>\\n6." for 5 seeds.

    The header promises twice as many examples as are shown (10 for the paper's 5), so the list reads as unfinished
    and the model's likeliest move is another item. Inputs are shown as given (a multi-line input stays multi-line)."""
    if not seed_inputs:
        raise ValueError("the generator prompt needs at least one seed input")
    lines = [f"Here are {2 * len(seed_inputs)} examples:"]
    lines += [f"{i}. {x}" for i, x in enumerate(seed_inputs, 1)]
    return "\n".join(lines) + f"\n{len(seed_inputs) + 1}."


def next_item_stop(n_seeds: int) -> str:
    """Where a generated item ends: the number of the item after it, at the start of a line."""
    return f"\n{n_seeds + 2}."


def shuffled_prompts(seed_inputs: list[str], n: int, rng: random.Random) -> list[str]:
    """n generator prompts, each with the seeds in a fresh random order: the same five inputs in the same order
    every time would make every draw condition on the same last example, and the candidates less varied."""
    prompts = []
    for _ in range(n):
        order = list(seed_inputs)
        rng.shuffle(order)
        prompts.append(generator_prompt(order))
    return prompts
