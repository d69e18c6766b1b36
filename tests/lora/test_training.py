"""train_lora: learns, counts only completion tokens, is reproducible, and leaves the shared base untouched."""
import threading

import pytest
import torch

from lora.bases import tiny_model
from lora.evaluation import evaluate_task
from lora.tasks import load_task
from lora.progress import Cancelled
from lora.training import IGNORE, TrainConfig, encode_pair, train_lora
from lora.wrapping import wrapped

torch.set_num_threads(1)
ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def base():
    return tiny_model("llama", seed=0)


@pytest.fixture(scope="module")
def task():
    return load_task("builtin:boolean_expressions?n=64&test=32&seed=0")


@pytest.fixture(scope="module")
def trained(base, task):
    model, tok = base
    config = TrainConfig(steps=60, lr=3e-2, batch_size=16, rank=8, target_modules=ALL, checkpoint_every=20)
    return train_lora(model, tok, task.pairs(), config, base_name="tiny:llama")


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_reduces_loss_and_improves_exact_match(base, task, trained):
    model, tok = base
    first, last = trained.losses[0], sum(trained.losses[-5:]) / 5
    assert last < 0.3 * first
    before = evaluate_task(model, tok, None, task.test)["exact_match"]
    after = evaluate_task(model, tok, trained.adapter, task.test)["exact_match"]
    assert after > before and after >= 0.5
    assert trained.adapter.base_model == "tiny:llama"


def test_checkpoints_every_n_steps_along_the_trajectory(trained):
    assert [step for step, _ in trained.checkpoints] == [20, 40, 60]
    (_, c20), (_, c40), (_, c60) = trained.checkpoints
    assert not c20.same_delta(c40, atol=1e-4)
    assert c60.same_delta(trained.adapter, atol=0)


def test_labels_cover_completion_and_eos_only(base):
    _, tok = base
    ids, labels = encode_pair(tok, "abc = ", "xy", max_len=64)
    prompt_len = len(tok("abc = ")["input_ids"])
    assert labels[:prompt_len] == [IGNORE] * prompt_len
    assert labels[prompt_len:] == ids[prompt_len:] == tok("xy", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids, labels = encode_pair(tok, "a long prompt here", "xy", max_len=5)  # truncation drops prompt, not answer
    assert len(ids) == 5 and labels[-3:] == ids[-3:] and labels[:2] == [IGNORE, IGNORE]


def test_reported_loss_is_cross_entropy_over_completion_tokens_only(base):
    """At step 1 LoRA B is zero, so the reported loss must be the base model's mean CE on completion tokens;
    prompt positions (however badly predicted) must not count."""
    model, tok = base
    pairs = [("the prompt one = ", "ab"), ("two = ", "cde")]
    result = train_lora(model, tok, pairs, TrainConfig(steps=1, batch_size=2, target_modules=("q_proj",)))
    total, count = 0.0, 0
    with torch.no_grad():
        for prompt, completion in pairs:
            ids, labels = encode_pair(tok, prompt, completion, 64)
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
            for pos in range(len(prompt) + 1, len(ids)):  # char tokenizer: BOS + one token per prompt char
                total -= logp[pos - 1, ids[pos]].item()
                count += 1
    assert count == 2 + 1 + 3 + 1
    assert result.losses[0] == pytest.approx(total / count, rel=1e-4)


def test_same_seed_same_adapter_other_seed_differs(base, task):
    model, tok = base
    config = TrainConfig(steps=3, batch_size=4, rank=2, lr=1e-2)
    one = train_lora(model, tok, task.pairs()[:16], config)
    two = train_lora(model, tok, task.pairs()[:16], config)
    other = train_lora(model, tok, task.pairs()[:16], TrainConfig(steps=3, batch_size=4, rank=2, lr=1e-2, seed=1))
    assert one.losses == two.losses and one.adapter.same_delta(two.adapter, atol=0)
    assert not one.adapter.same_delta(other.adapter, atol=1e-6)


def test_gradient_accumulation_matches_one_big_batch(base, task):
    model, tok = base
    pairs = task.pairs()[:16]
    big = train_lora(model, tok, pairs, TrainConfig(steps=2, batch_size=8, grad_accum=1, rank=2, lr=1e-2))
    acc = train_lora(model, tok, pairs, TrainConfig(steps=2, batch_size=4, grad_accum=2, rank=2, lr=1e-2))
    assert acc.losses == pytest.approx(big.losses, rel=1e-5)
    assert acc.adapter.same_delta(big.adapter, atol=1e-5)


def test_base_model_unchanged_after_training_and_after_cancel(base, task):
    model, tok = base
    before = snapshot(model)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    ids = tok(["True or False = "], return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    train_lora(model, tok, task.pairs()[:8], TrainConfig(steps=2, batch_size=4, lr=1e-1))

    def cancel(stage, done, total, metrics=None):
        raise Cancelled()

    with pytest.raises(Cancelled):
        train_lora(model, tok, task.pairs()[:8], TrainConfig(steps=5, batch_size=4, lr=1e-1), progress=cancel)
    after = snapshot(model)
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert not any("lora" in name for name, _ in model.named_modules())
    assert not model.training and not hasattr(model, "peft_config")
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, logits)


def test_progress_gets_step_loss_and_linear_schedule_lr(base, task):
    model, tok = base
    seen = []
    result = train_lora(model, tok, task.pairs()[:8], TrainConfig(steps=6, warmup=2, lr=1e-3, batch_size=4),
                        progress=lambda stage, step, total, m: seen.append((step, m["loss"], m["lr"])))
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [l for _, l, _ in seen] == result.losses
    assert [lr for _, _, lr in seen] == pytest.approx([0, 5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4])


def test_init_resumes_from_an_adapter(base, task, trained):
    model, tok = base
    resumed = train_lora(model, tok, task.pairs()[:8], TrainConfig(steps=1, lr=0.0, batch_size=4),
                         init=trained.adapter)
    assert resumed.adapter.same_delta(trained.adapter, atol=0)  # lr 0: weights pass through unchanged
    assert resumed.losses[0] < 0.5 * trained.losses[0]  # and the run starts from the trained model, not from B = 0


def test_extra_loss_is_added_and_recorded(base, task):
    model, tok = base
    config = TrainConfig(steps=5, batch_size=4, lr=1e-2, rank=4)

    def a_norm(peft_model):
        return 10.0 * sum((p ** 2).sum() for n, p in peft_model.named_parameters() if "lora_A" in n)

    plain = train_lora(model, tok, task.pairs()[:8], config)
    shrunk = train_lora(model, tok, task.pairs()[:8], config, extra_loss=a_norm)
    assert len(shrunk.extra_losses) == 5 and plain.extra_losses == []
    norm = lambda ad: sum(ad.a(m).norm() ** 2 for m in ad.modules())  # noqa: E731
    assert norm(shrunk.adapter) < norm(plain.adapter)


def test_bad_training_input_is_refused(base):
    model, tok = base
    with pytest.raises(ValueError, match="no training examples"):
        train_lora(model, tok, [], TrainConfig(steps=1))
    bad = [(dict(steps=0), "steps"), (dict(rank=2.5), "rank"), (dict(lr=-1.0), "lr"), (dict(warmup=5, steps=2), "warmup"),
           (dict(target_modules="q_proj"), "target_modules"), (dict(checkpoint_every=0), "checkpoint_every")]
    for fields, name in bad:
        with pytest.raises(ValueError, match=name):
            TrainConfig(**fields)


def test_threads_sharing_a_base_take_turns_and_nesting_is_refused(base, task):
    model, tok = base
    before = snapshot(model)
    results, errors = [], []

    def run(seed):
        try:
            results.append(train_lora(model, tok, task.pairs()[:8], TrainConfig(steps=3, batch_size=4, seed=seed)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with wrapped(model, TrainConfig().lora_config()):
        with pytest.raises(RuntimeError, match="already carries"):
            train_lora(model, tok, task.pairs()[:4], TrainConfig(steps=1))


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_the_loss_from_labelled_positions_only_equals_the_loss_over_every_position(family):
    """completion_loss_sum projects only positions whose next token is labelled (labelled_logits); the loss and
    loglik must be what the full logits give, for rows of different lengths and completion offsets."""
    from lora.evaluation import loglik
    from lora.training import collate, completion_loss_sum

    model, tok = tiny_model(family, seed=0)
    pairs = [("1 + 2 =", " 3"), ("a much longer prompt with many words in it and then =", " yes no"), ("x", " y z w")]
    batch = collate([encode_pair(tok, p, c, 1024) for p, c in pairs], tok.pad_token_id or tok.eos_token_id)
    with torch.no_grad():
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        targets = batch["labels"][:, 1:]
        expected = torch.nn.functional.cross_entropy(full.reshape(-1, full.shape[-1]), targets.reshape(-1),
                                                     ignore_index=IGNORE, reduction="none").view(targets.shape)
        loss, n = completion_loss_sum(model, batch)
    assert n == int((targets != IGNORE).sum()) and n > 0
    assert torch.allclose(loss, expected.sum(), rtol=1e-5, atol=1e-4)
    row_sums = [-float(expected[i].sum()) for i in range(len(pairs))]  # loglik counts EOS only when asked
    got = loglik(model, tok, pairs, include_eos=True)
    assert got == pytest.approx(row_sums, rel=1e-5, abs=1e-4)
