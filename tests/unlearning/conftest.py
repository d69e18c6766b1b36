"""Shared, module-cached O3 runs on a tiny Llama: a task adapter, a first request, two second requests (λ = 0.1 and
λ = 0) and a repeat of the first for determinism. The detector encoder is the real MiniLM with one training step,
so a full request takes a second or two on a quiet CPU."""
from __future__ import annotations


import pytest
import torch

from lora.bases import load_base
from lora.tasks import make_task
from lora.training import TrainConfig, train_lora
from unlearning import UnlearnConfig, unlearn

BASE = "tiny:llama?seed=0"
# few steps everywhere: these runs pin down mechanics (shapes, files, gating, continuation), not quality
FAST = UnlearnConfig(relabel="wrong_option", steps=8, lr=1e-2, batch_size=4, detector_steps=1,
                     detector_batch_size=4, detector_max_len=32)


@pytest.fixture(scope="session")
def base():
    return load_base(BASE)


@pytest.fixture(scope="session")
def task():
    return make_task("boolean_expressions", n=48, test=8, seed=0)


@pytest.fixture(scope="session")
def task_adapter(base, task):
    model, tok = base
    return train_lora(model, tok, task.pairs(), TrainConfig(steps=4, batch_size=8, lr=5e-3, seed=0),
                      base_name=BASE).adapter


@pytest.fixture(scope="session")
def forget_sets(task):
    pairs = task.pairs()
    return pairs[:12], pairs[12:24]


@pytest.fixture(scope="session")
def reference_prompts():
    return [e["prompt"] for e in make_task("word_sorting", n=12, seed=1).train]


@pytest.fixture(scope="session")
def first(base, task_adapter, forget_sets, reference_prompts):
    """The first request, with the caller's torch RNG state before and after it."""
    model, tok = base
    before = torch.random.get_rng_state()
    result = unlearn(task_adapter, model, tok, forget_sets[0], FAST, base_name=BASE,
                     reference_inputs=reference_prompts)
    return result, before, torch.random.get_rng_state()


@pytest.fixture(scope="session")
def second(base, first, forget_sets):
    model, tok = base
    return unlearn(first[0].state, model, tok, forget_sets[1], FAST, base_name=BASE)


@pytest.fixture(scope="session")
def second_without_orth(base, first, forget_sets):
    model, tok = base
    return unlearn(first[0].state, model, tok, forget_sets[1], FAST.replace(lambda_orth=0.0),
                   base_name=BASE)
