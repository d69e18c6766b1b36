"""Shared inputs for the generation tests: one tiny-Llama LoRA trajectory and one generator trained on it.

Both are session-scoped: training them is the slow part (a few seconds each on 2 cores), and every test only reads
them. The generator is the default basis one (latent 16, capped at its 7 directions); it trains in about a second."""
from __future__ import annotations

import pytest
import torch

from generation import GeneratorConfig, Member, hidden_state_condition, train_generator
from lora.bases import load_base
from lora.tasks import make_task
from lora.training import TrainConfig, train_lora

BASE = "tiny:llama?seed=0"
STEPS, EVERY = 30, 2  # 15 checkpoints; keep=0.5 keeps the last 8
SMALL = dict(latent=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine two threads per process thrash:
    the trajectory and generator fixtures took 78 s with 2 threads and 2 s with 1 under the same load. Restored
    after each module so tests elsewhere in the same run keep their setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def base():
    return load_base(BASE)


@pytest.fixture(scope="session")
def task():
    return make_task("word_sorting", n=32, seed=0)


@pytest.fixture(scope="session")
def trajectory(base, task):
    model, tok = base
    return train_lora(model, tok, task.pairs(), TrainConfig(steps=STEPS, checkpoint_every=EVERY, lr=5e-3),
                      base_name=BASE)


@pytest.fixture(scope="session")
def condition(base, task):
    model, tok = base
    return hidden_state_condition(model, tok, [p + c for p, c in task.pairs()[:8]])


@pytest.fixture(scope="session")
def generator(trajectory, condition):
    config = GeneratorConfig(epochs=200, **SMALL)
    return train_generator([Member("word_sorting", trajectory.checkpoints, condition)], config)
