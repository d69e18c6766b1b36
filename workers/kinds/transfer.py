"""`transfer`: Trans-LoRA — the source adapter moved to `target_base` through synthetic inputs the target base
writes, filtered by the kit's discriminator and labelled (as text) by the source adapter. Publishes the student
adapter, transferred_from the source and filtered_by the kit, with the transfer report (and an evaluation on the
target base when asked) in its metrics and the synthetic training set as transfer/synthetic.jsonl."""
from __future__ import annotations

import json

from lora.evaluation import evaluate_task
from transfer import Kit, TransferConfig, trans_lora
from workers.kinds.base import JobContext, Output, config_from, eval_examples, method_progress

STAGES = {"generating candidates": (0.05, 0.4), "filtering": (0.05, 0.4), "teacher labelling": (0.4, 0.5),
          "distilling": (0.5, 0.9)}


def log_filter(ctx: JobContext, report: dict) -> None:
    """What the filter did (threshold and where it came from, acceptance rate, kept by threshold and by rank), as
    log lines: the CLI prints them while it waits."""
    if report.get("filter"):
        threshold = report["threshold"]
        ctx.log(f"filter {report['filter']}: threshold "
                + (f"{threshold:.3f} ({report['threshold_source']})" if threshold is not None else "none (ranked)")
                + f"; acceptance rate {report['acceptance_rate']:.1%} of {report['candidates_judged']} candidates; "
                f"kept {report['kept_by_threshold']} by threshold + {report['kept_by_rank']} by rank")
    ctx.log(f"{report['train_size']} training examples ({report['data']})")


def run(ctx: JobContext, params: dict) -> list[Output]:
    (ref,) = ctx.inputs
    source, info = ctx.load_adapter(ref)
    kit = Kit.from_files(ctx.load_files(params["kit"]))
    if params.get("data", "filtered") == "filtered":  # said first: it bears on everything the filter does
        for warning in kit.warnings:
            ctx.log(f"warning: kit {params['kit']}: {warning}")
    ctx.progress(0.0, "loading bases")
    source_model, source_tokenizer = ctx.load_base(info["base"])
    target_model, target_tokenizer = ctx.load_base(params["target_base"])
    result = trans_lora(source, source_model, source_tokenizer, target_model, target_tokenizer, kit,
                        config_from(TransferConfig, params), progress=method_progress(ctx, stages=STAGES),
                        target_base_name=params["target_base"])
    report = {k: v for k, v in result.report.items() if k not in ("synthetic", "config")}
    log_filter(ctx, report)
    metrics = {"transfer": report}
    if params.get("evaluate"):
        ctx.progress(0.92, "evaluating")
        examples, name = eval_examples(ctx, params["evaluate"])
        examples = examples[: params.get("eval_limit") or len(examples)]
        scores = evaluate_task(target_model, target_tokenizer, result.adapter, examples)
        metrics[f"eval/{name}/exact_match"], metrics[f"eval/{name}/n"] = scores["exact_match"], scores["n"]
        ctx.metric(f"eval/{name}/exact_match", scores["exact_match"])
    synthetic = "".join(json.dumps(row) + "\n" for row in result.report["synthetic"]).encode()
    return [Output(adapter=result.adapter, metrics=metrics, extra_files={"transfer/synthetic.jsonl": synthetic})]
