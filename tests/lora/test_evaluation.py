"""Generation, scoring and gating on a tiny model with a random (non-zero) adapter."""
import pytest
import torch

from lora.adapter import Adapter
from lora.bases import module_shapes, tiny_model
from lora.evaluation import applied, cut_at_stop, evaluate_task, exact_match, generate, hidden_state_mean, loglik, yes_no_prob
from lora.gating import lora_delta_scale
from lora.training import TrainConfig, train_lora

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def base():
    return tiny_model("qwen2", seed=3)


@pytest.fixture(scope="module")
def adapter(base):
    model, _ = base
    g = torch.Generator().manual_seed(0)
    modules = {}
    for name, (d_in, d_out) in module_shapes(model).items():
        if name.endswith(("q_proj", "v_proj", "down_proj")):
            modules[name] = (torch.randn(4, d_in, generator=g) * 0.3, torch.randn(d_out, 4, generator=g) * 0.3)
    return Adapter.from_modules("tiny:qwen2?seed=3", modules, r=4, lora_alpha=8)


def test_generation_stops_before_the_first_stop_string(base):
    model, tok = base
    full = generate(model, tok, ["abc"], max_new_tokens=12, stop=())[0]
    assert len(full) == 12  # char tokenizer: one char per token, nothing cut
    stop = full[5]
    cut = generate(model, tok, ["abc"], max_new_tokens=12, stop=(stop,))[0]
    assert cut == full[: full.index(stop)] and stop not in cut
    assert cut_at_stop("12\n34. 5", ("\n", ".")) == "12"


def test_batched_left_padded_generation_equals_one_at_a_time(base, adapter):
    model, tok = base
    prompts = ["a", "a much longer prompt", "mid size"]
    batched = generate(model, tok, prompts, max_new_tokens=6, stop=(), adapter=adapter)
    single = [generate(model, tok, [p], max_new_tokens=6, stop=(), adapter=adapter)[0] for p in prompts]
    assert batched == single


def test_batches_of_mixed_lengths_and_stops_equal_one_at_a_time_greedy(base, adapter):
    """Length-sorted batches of 2 out of 7 prompts, each row with its own stop string: every output is what the
    prompt alone gives, in the caller's order."""
    model, tok = base
    prompts = ["q", "a much longer prompt here", "mid", "zz top", "b", "another fairly long one", "xy"]
    alone = [generate(model, tok, [p], max_new_tokens=10, stop=(), adapter=adapter)[0] for p in prompts]
    stops = [(text[4],) for text in alone]  # a character each row really produces, different per row
    batched = generate(model, tok, prompts, max_new_tokens=10, stop=stops, adapter=adapter, batch_size=2)
    assert batched == [cut_at_stop(text, stop) for text, stop in zip(alone, stops)]
    assert any(len(b) < len(a) for a, b in zip(alone, batched))  # the stops did cut rows


def test_per_row_stops_must_match_the_prompts(base):
    model, tok = base
    with pytest.raises(ValueError, match="2 rows of them for 3 prompts"):
        generate(model, tok, ["a", "b", "c"], max_new_tokens=2, stop=[("x",), ("y",)])


def test_evaluate_task_scores_every_item(base, adapter):
    model, tok = base
    prompts = ["ab", "cd", "ef"]
    outputs = generate(model, tok, prompts, max_new_tokens=4, adapter=adapter, stop=("\n",))
    examples = [{"prompt": prompts[0], "completion": " " + outputs[0] + " "},
                {"prompt": prompts[1], "completion": "surely not this"},
                {"prompt": prompts[2], "completion": outputs[2]}]
    scores = evaluate_task(model, tok, adapter, examples, max_new_tokens=4)
    assert scores["correct"] == [1, 0, 1] and scores["n"] == 3 and scores["exact_match"] == pytest.approx(2 / 3)
    assert scores["items_per_s"] > 0 and scores["seconds"] > 0


def test_sampling_is_seeded(base):
    model, tok = base
    prompts = ["x", "y"]
    one = generate(model, tok, prompts, max_new_tokens=8, do_sample=True, temperature=1.5, stop=(), seed=7)
    two = generate(model, tok, prompts, max_new_tokens=8, do_sample=True, temperature=1.5, stop=(), seed=7)
    other = generate(model, tok, prompts, max_new_tokens=8, do_sample=True, temperature=1.5, stop=(), seed=8)
    assert one == two and one != other


def test_applied_changes_outputs_only_inside_the_block(base, adapter):
    model, tok = base
    ids = tok(["hello"], return_tensors="pt").input_ids
    with torch.no_grad():
        before = model(input_ids=ids).logits
        with applied(model, adapter) as m:
            inside = m(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert not torch.allclose(inside, before, atol=1e-3)
    assert torch.equal(before, after)


def test_loglik_is_the_sum_of_completion_token_log_probs(base, adapter):
    model, tok = base
    got = loglik(model, tok, [("ab = ", "xyz"), ("q", "r")], adapter=adapter)
    with torch.no_grad(), applied(model, adapter) as m:
        ids = tok("ab = xyz", return_tensors="pt").input_ids  # BOS + 8 chars
        logp = torch.log_softmax(m(input_ids=ids).logits[0], -1)
        by_hand = sum(logp[pos - 1, ids[0, pos]].item() for pos in range(6, 9))
    assert got[0] == pytest.approx(by_hand, rel=1e-5)
    assert len(got) == 2 and all(x < 0 for x in got)


def test_yes_no_prob_follows_a_trained_classifier(base):
    model, tok = base
    pairs = [(f"{w} ok?", "yes") for w in ["aa", "ab", "ac", "ad"]] + [(f"{w} ok?", "no") for w in ["ba", "bb", "bc", "bd"]]
    disc = train_lora(model, tok, pairs, TrainConfig(steps=40, lr=3e-2, batch_size=8, rank=4)).adapter
    p = yes_no_prob(model, tok, ["aa ok?", "ac ok?", "bb ok?", "bd ok?"], adapter=disc)
    assert p.shape == (4,)
    assert (p[:2] > 0.5).all() and (p[2:] < 0.5).all()


def test_exact_match_strips_whitespace_and_checks_lengths():
    assert exact_match(["True ", "no"], ["True", "yes"]) == 0.5
    with pytest.raises(ValueError):
        exact_match(["a"], [])


def test_hidden_state_mean_is_one_vector_per_call(base, adapter):
    model, tok = base
    v = hidden_state_mean(model, tok, ["abc", "de"], adapter=adapter)
    assert v.shape == (model.config.hidden_size,) and v.dtype == torch.float32
    assert not torch.allclose(v, hidden_state_mean(model, tok, ["abc", "de"]))


def test_gate_zero_is_base_one_is_adapter_and_rows_are_independent(base, adapter):
    model, tok = base
    enc = tok(["same text", "same text", "same text"], return_tensors="pt")
    with torch.no_grad():
        plain = model(**enc).logits
        with applied(model, adapter) as m:
            full = m(**enc).logits
            with lora_delta_scale(m, torch.tensor([0.0, 1.0, 0.5])):
                gated = m(**enc).logits
            after = m(**enc).logits
    assert torch.allclose(gated[0], plain[0], atol=1e-5)
    assert torch.allclose(gated[1], full[1], atol=1e-5)
    assert not torch.allclose(gated[2], plain[2], atol=1e-3) and not torch.allclose(gated[2], full[2], atol=1e-3)
    assert torch.equal(after, full)  # hooks removed on exit


def test_gate_works_through_generation_and_rejects_wrong_batch(base, adapter):
    model, tok = base
    with applied(model, adapter) as m:
        with lora_delta_scale(m, torch.tensor([0.0, 1.0])):
            gated = generate(m, tok, ["abc", "abc"], max_new_tokens=6, stop=())
        with lora_delta_scale(m, torch.tensor([1.0])), pytest.raises(ValueError, match="1 weights"):
            m(**tok(["a", "b"], return_tensors="pt"))
    assert gated[0] == generate(model, tok, ["abc"], max_new_tokens=6, stop=())[0]
    assert gated[1] == generate(model, tok, ["abc"], max_new_tokens=6, stop=(), adapter=adapter)[0]


def test_applying_an_adapter_leaves_the_callers_random_stream_alone(base, adapter):
    model, _ = base
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with applied(model, adapter):
        pass
    assert torch.equal(torch.rand(3), expected)
