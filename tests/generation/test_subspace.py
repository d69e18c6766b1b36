"""subspace_fit, the baseline a generator must beat on a held-out member: mixing the seen members' adapters with
weights fitted by gradient descent lowers the loss on the given examples below the plain average."""
from __future__ import annotations

import pytest
import torch

from tests.generation.conftest import BASE
from generation import GenerationError, subspace_fit
from lora.evaluation import loglik
from lora.tasks import make_task
from lora.training import TrainConfig, train_lora


@pytest.fixture(scope="module")
def seen(base):
    model, tok = base
    return [train_lora(model, tok, make_task("add_constant", n=32, seed=0, k=k).pairs(),
                       TrainConfig(steps=20, lr=2e-2, rank=4), base_name=BASE).adapter for k in (1, 4, 7)]


def _mean_loss(model, tok, pairs, adapter) -> float:
    """Mean completion-token negative log-likelihood, computed independently of subspace_fit (lora.evaluation)."""
    return -sum(loglik(model, tok, pairs, adapter=adapter, include_eos=True)) / sum(
        len(tok(c, add_special_tokens=False)["input_ids"]) + 1 for _, c in pairs)


def test_fitted_weights_lower_the_loss_on_the_examples_below_the_plain_average(seen, base):
    model, tok = base
    pairs = make_task("add_constant", n=16, seed=1, k=3).pairs()
    fitted, report = subspace_fit(seen, model, tok, pairs, steps=15, lr=0.1)
    average = type(fitted)(config=fitted.config, tensors={
        k: torch.stack([a.tensors[k] for a in seen]).mean(dim=0) for k in seen[0].tensors})
    before, after = _mean_loss(model, tok, pairs, average), _mean_loss(model, tok, pairs, fitted)
    assert report["loss_average"] == pytest.approx(before, rel=1e-4)  # step 0 is the plain average
    assert report["loss"] == pytest.approx(after, rel=1e-4)
    assert after < before - 0.01, (before, after)
    assert report["weights"] != [pytest.approx(1 / 3)] * 3 and len(report["losses"]) == 16
    assert set(fitted.tensors) == set(seen[0].tensors) and fitted.config["r"] == 4


def test_zero_steps_is_the_plain_average_and_bad_input_is_refused(seen, base):
    model, tok = base
    pairs = make_task("add_constant", n=4, seed=1, k=3).pairs()
    fitted, report = subspace_fit(seen, model, tok, pairs, steps=0)
    assert report["weights"] == [pytest.approx(1 / 3)] * 3
    for key, tensor in fitted.tensors.items():
        torch.testing.assert_close(tensor, torch.stack([a.tensors[key] for a in seen]).mean(dim=0))
    with pytest.raises(GenerationError, match="examples"):
        subspace_fit(seen, model, tok, [])
    with pytest.raises(GenerationError, match="steps"):
        subspace_fit(seen, model, tok, pairs, steps=-1)
