"""Device and dtype per worker (issue 11), pinned on CPU: the --device/--dtype selection, the worker refusing what it
cannot honour, bases placed in the worker's dtype with float32 LoRA weights, and the bounded LRU base cache."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lora import bases, device
from lora.bases import cache_info, load_base, model_bytes, set_cache_limit
from lora.device import Placement, resolve
from lora.evaluation import generate, loglik
from lora.training import TrainConfig, train_lora

ROOT = Path(__file__).parents[2]
PAIRS = [("1+1=", " 2"), ("2+2=", " 4"), ("3+3=", " 6"), ("4+4=", " 8")]

torch.set_num_threads(1)


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty, unbounded base cache and the default placement (CPU/float32), restored afterwards."""
    monkeypatch.setattr(bases, "_cache", {})
    monkeypatch.setattr(bases, "_limit", {"bytes": None, "count": None})
    monkeypatch.setattr(device, "_current", device.current())
    return bases


def _cpu_env(**extra) -> dict:
    # CUDA hidden: the subprocess sees the CPU-only host these tests are about, whatever machine runs them
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", **extra}


# ------------------------------------------------------------------ selection


def test_auto_picks_cuda_when_torch_sees_it_and_cpu_float32_otherwise():
    chosen = resolve("auto", "auto")
    if torch.cuda.is_available():
        assert chosen.device.type == "cuda"
        assert chosen.dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)
    else:
        assert chosen == Placement(torch.device("cpu"), torch.float32)
    assert resolve(None, None) == chosen  # unset flags mean auto


def test_explicit_cpu_and_dtypes_are_honoured_case_and_space_insensitively():
    assert resolve("cpu", "float32") == Placement(torch.device("cpu"), torch.float32)
    assert resolve(" CPU ", "BFloat16").dtype == torch.bfloat16
    assert resolve("cpu", "float16").dtype == torch.float16
    assert resolve("cpu", "auto").dtype == torch.float32  # no half precision on CPU unless asked for


def test_a_cuda_device_this_host_lacks_is_refused_with_a_reason():
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU; on a CPU host, any CUDA device
    with pytest.raises(ValueError, match="CUDA device"):
        resolve(missing, "auto")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            resolve("cuda", "float32")


@pytest.mark.parametrize("dev,dtype,listed", [
    ("bogus", "auto", "auto, cpu, cuda or cuda:N"),
    ("cuda:x", "auto", "auto, cpu, cuda or cuda:N"),
    ("gpu", "auto", "auto, cpu, cuda or cuda:N"),
    ("cpu", "int8", "auto, float32, bfloat16, float16"),
    ("cpu", "fp32", "auto, float32, bfloat16, float16"),
])
def test_unknown_values_are_refused_listing_the_accepted_ones(dev, dtype, listed):
    with pytest.raises(ValueError, match="unknown") as caught:
        resolve(dev, dtype)
    assert listed in str(caught.value)


@pytest.mark.parametrize("args,message", [
    (["--device", "bogus"], "unknown device 'bogus': use auto, cpu, cuda or cuda:N"),
    (["--device", "cpu", "--dtype", "int8"], "unknown dtype 'int8': use auto, float32, bfloat16, float16"),
    (["--device", "cuda"], "torch sees no CUDA device"),
    (["--device", "cpu", "--base-cache-bases", "-2"], "the base cache count must be a non-negative whole number"),
])
def test_worker_cli_exits_non_zero_naming_the_bad_value_before_starting(args, message):
    done = subprocess.run([sys.executable, "-m", "hub.cli", "worker", "--queues", "cpu", *args], cwd=ROOT,
                          env=_cpu_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert message in " ".join(done.stderr.split())  # rich may wrap the line
    assert "celery@" not in done.stdout + done.stderr  # refused before Celery started


def test_worker_cli_reads_the_device_from_the_environment():
    done = subprocess.run([sys.executable, "-m", "hub.cli", "worker", "--queues", "cpu"], cwd=ROOT,
                          env=_cpu_env(ADAPTARIUM_DEVICE="tpu"), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "unknown device 'tpu'" in done.stderr


def test_worker_prepare_applies_the_placement_and_the_cache_bound(fresh_cache):
    from workers.main import WorkerSetupError, prepare

    placement = prepare("cpu", "bfloat16", 0.5)
    assert device.current() == placement == Placement(torch.device("cpu"), torch.bfloat16)
    assert bases._limit == {"bytes": 2**29, "count": None}
    prepare("cpu", "bfloat16", 0, base_cache_bases=2)
    assert bases._limit == {"bytes": None, "count": 2}
    with pytest.raises(WorkerSetupError, match="non-negative"):
        prepare("cpu", "float32", float("nan"))
    with pytest.raises(WorkerSetupError, match="whole number"):
        prepare("cpu", "float32", 0, base_cache_bases=-1)
    with pytest.raises(WorkerSetupError, match="unknown dtype"):
        prepare("cpu", "double", 0)
    assert device.current() == placement  # a refused setup changes nothing


# ------------------------------------------------------------------ placement of bases and LoRA weights


def test_a_bf16_base_on_cpu_trains_a_lora_saved_in_float32(fresh_cache, tmp_path):
    device.use(resolve("cpu", "bfloat16"))
    model, tok = load_base("tiny:llama?seed=7")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {b.dtype for b in model.buffers()} == {torch.float32}  # rotary inv_freq keeps its precision
    result = train_lora(model, tok, PAIRS, TrainConfig(steps=6, batch_size=4, lr=5e-3, rank=4))
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert result.losses[-1] < result.losses[0]
    assert {t.dtype for t in result.adapter.tensors.values()} == {torch.float32}
    result.adapter.save(tmp_path)
    with safe_open(str(tmp_path / "adapter_model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}
    # the base is left as it was (still bf16, no LoRA layers), and inference with the adapter runs on it
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16} and not hasattr(model, "peft_config")
    assert len(generate(model, tok, ["1+1="], adapter=result.adapter, max_new_tokens=2)) == 1
    with_adapter, = loglik(model, tok, [("1+1=", " 2")], adapter=result.adapter)
    alone, = loglik(model, tok, [("1+1=", " 2")])
    assert with_adapter > alone


def test_the_cache_keeps_one_copy_per_placement(fresh_cache):
    fp32, _ = load_base("tiny:llama?seed=3")
    device.use(resolve("cpu", "bfloat16"))
    bf16, _ = load_base("tiny:llama?seed=3")
    assert bf16 is not fp32 and next(bf16.parameters()).dtype == torch.bfloat16
    assert next(fp32.parameters()).dtype == torch.float32  # the other placement's copy is untouched
    assert load_base("tiny:llama?seed=3")[0] is bf16
    assert [(e["spec"], e["dtype"]) for e in cache_info()] == [("tiny:llama?seed=3", "float32"),
                                                                ("tiny:llama?seed=3", "bfloat16")]
    assert cache_info()[1]["bytes"] < cache_info()[0]["bytes"]


# ------------------------------------------------------------------ bounded cache


def _specs(*seeds):
    return [f"tiny:llama?seed={s}" for s in seeds]


def test_a_byte_bound_that_fits_two_evicts_the_least_recently_used(fresh_cache):
    a, b, c = _specs(11, 12, 13)
    size = model_bytes(load_base(a)[0])
    set_cache_limit(max_bytes=int(2.5 * size))
    first_b = load_base(b)[0]
    load_base(a)  # a used again: b is now the least recently used
    load_base(c)
    assert [e["spec"] for e in cache_info()] == [a, c]
    assert load_base(b)[0] is not first_b  # b was dropped: loading it again builds a new copy ...
    assert [e["spec"] for e in cache_info()] == [c, b]  # ... and evicts a, the least recently used now


def test_a_count_bound_evicts_in_lru_order_and_a_reused_base_stays(fresh_cache):
    a, b, c, d = _specs(21, 22, 23, 24)
    set_cache_limit(max_count=2)
    kept = load_base(a)[0]
    load_base(b)
    for spec in (c, d):
        assert load_base(a)[0] is kept  # used before each new load: always the most recently used
        load_base(spec)
    assert [e["spec"] for e in cache_info()] == [a, d]


def test_the_bound_is_computed_in_the_worker_dtype(fresh_cache):
    device.use(resolve("cpu", "bfloat16"))
    a, b = _specs(31, 32)
    size = model_bytes(load_base(a)[0])
    fp32_size = model_bytes(bases.tiny_model("llama", seed=32)[0])
    assert size < fp32_size
    set_cache_limit(max_bytes=2 * size)  # two bf16 copies fit, though one float32 copy is more than half of it
    load_base(b)
    assert [e["spec"] for e in cache_info()] == [a, b]


def test_lowering_the_bound_evicts_at_once_and_an_oversized_base_still_loads(fresh_cache):
    a, b = _specs(41, 42)
    load_base(a)
    load_base(b)
    set_cache_limit(max_count=1)
    assert [e["spec"] for e in cache_info()] == [b]
    set_cache_limit(max_bytes=1)  # smaller than any base: the job still gets its base, cached alone
    model, _ = load_base(a)
    assert next(model.parameters()).numel() > 0 and [e["spec"] for e in cache_info()] == [a]
    with pytest.raises(ValueError, match="max_count"):
        set_cache_limit(max_count=-1)


# ------------------------------------------------------------------ bench/gpu_check.py


def test_gpu_check_without_cuda_says_so_and_exits_zero():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], cwd=ROOT, env=_cpu_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no CUDA device: nothing to check"
