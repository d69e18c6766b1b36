"""train_generator: a family's checkpoint trajectories and conditions in, a trained Generator out.

A plain loop (nanoGPT-style): keep the later part of every trajectory, check the family, fit the layout, flatten,
then Adam on MSE + β·KL (β warmed up from 0) over shuffled mini-batches for a number of epochs. Everything random
(the network init, the batch order, the reparameterisation noise) comes from the config's seed inside
torch.random.fork_rng or from an explicit torch.Generator, so the caller's random stream is untouched and CPU reruns
are bit-identical.
"""
from __future__ import annotations

import copy
import math
import time

import torch
from safetensors.torch import save as save_safetensors

from generation.config import GeneratorConfig
from generation.conditions import TEXT_ENCODER, condition_separability
from generation.basis import BasisCVAE, loss_terms, principal_basis
from generation.errors import GenerationError
from generation.family import check_family
from generation.flatten import fit_layout, flatten
from generation.generator import FORMAT, FORMAT_VERSION, Generator, Member
from lora import Adapter
from lora.device import current
from lora.progress import Progress


def kept_checkpoints(member: Member, keep: float) -> list[Adapter]:
    """The later `keep` fraction of a member's trajectory (at least one checkpoint, rounded up)."""
    ordered = member.ordered_checkpoints()
    if not ordered:
        raise GenerationError(f"member {member.name} has no checkpoints")
    return ordered[-max(1, math.ceil(keep * len(ordered))):]


def _conditions(members: list[Member]) -> torch.Tensor:
    rows = []
    for m in members:
        c = torch.as_tensor(m.condition).detach().float().cpu()
        if c.dim() != 1 or c.numel() == 0 or not torch.isfinite(c).all():
            raise GenerationError(f"member {m.name}: the condition must be a finite 1-D vector, got "
                                  f"shape {tuple(c.shape)}")
        rows.append(c)
    sizes = {c.numel() for c in rows}
    if len(sizes) != 1:
        raise GenerationError(f"members' conditions differ in size: {sorted(sizes)}")
    return torch.stack(rows)


def _condition_stats(conditions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre = mean member condition; scale = RMS of the deviations from it (per member, not per checkpoint, so a
    long trajectory does not pull the centre). With one member, or identical ones, there is no spread to measure and
    the scale falls back to the RMS of the condition itself."""
    center = conditions.mean(dim=0)
    spread = (conditions - center).pow(2).mean().sqrt()
    if spread <= 1e-6 * center.pow(2).mean().sqrt() or spread == 0:
        spread = center.pow(2).mean().sqrt()
    return center, spread if spread > 0 else torch.tensor(1.0)


def safetensors_bytes(adapter: Adapter) -> int:
    """Size of the adapter's adapter_model.safetensors, exactly as PEFT would store it."""
    return len(save_safetensors({k: v.contiguous() for k, v in adapter.tensors.items()}, metadata={"format": "pt"}))


def train_generator(members: list[Member], config: GeneratorConfig, progress: Progress | None = None,
                    base_name: str | None = None, device: str | torch.device | None = None) -> Generator:
    """Train an ICM-LoRA CVAE on the members' kept checkpoints; `generator.report` holds the loss curve per epoch,
    sizes (generator bytes vs the checkpoints it was trained on) and seconds.

    progress("training", step, steps, {"loss", "recon", "kl", "beta"}) after each optimizer step (lora.progress
    protocol; recon is the fraction of the checkpoints' variation left unexplained, beta the warmed-up KL weight);
    raise lora.progress.Cancelled in it to stop. base_name names the base in the generator and in every adapter it
    generates (default: the checkpoints' base_model_name_or_path). device: where to train (default: the process's
    device, lora.device.current(), so a GPU worker trains on its GPU); the trained generator is returned on CPU."""
    start = time.perf_counter()
    if not members:
        raise GenerationError("train_generator needs at least one member")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise GenerationError(f"member names must be unique, got {names}")
    given = sum(len(m.checkpoints) for m in members)
    kept = [(i, a) for i, m in enumerate(members) for a in kept_checkpoints(m, config.keep)]
    adapters = [a for _, a in kept]
    problems = check_family({f"{members[i].name} checkpoint {n}": a for n, (i, a) in enumerate(kept)})
    if problems:
        raise GenerationError("the checkpoints are not one family: " + " | ".join(problems))
    member_conditions = _conditions(members)

    layout = fit_layout(adapters, 1)  # no padding: the basis decoder has no strides to divide the length
    x = torch.stack([flatten(a, layout) for a in adapters]).float()
    c = member_conditions[[i for i, _ in kept]]
    device = torch.device(device) if device is not None else current().device

    # the MSE of always answering the mean vector: the scale of what the latent can explain (see basis.loss_terms)
    variation = (x - x.mean(dim=0)).pow(2).mean().item() or 1.0
    model, architecture = _build(config, layout, x, int(c.shape[1]), device)
    center, scale = _condition_stats(member_conditions)
    with torch.no_grad():
        model.condition_center.copy_(center)
        model.condition_scale.copy_(scale)
    model.to(device)
    curve = _fit(model, x, c, variation, config, device, progress)
    model.to("cpu").eval()

    adapter_config = copy.deepcopy(adapters[-1].config)
    base = base_name if base_name is not None else adapters[-1].base_model
    adapter_config["base_model_name_or_path"] = base
    adapter_config["inference_mode"] = True  # as PEFT's save_pretrained writes it
    generator = Generator(config={
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "base_model": base,
        "rank": adapter_config.get("r"),
        "target_modules": adapter_config.get("target_modules"),
        "adapter_config": adapter_config,
        "architecture": architecture,
        "condition": {"kind": config.condition, "size": int(c.shape[1]), "examples": config.condition_examples,
                      "with_adapter": config.condition == "hidden_state" and config.condition_with_adapter,
                      "encoder": TEXT_ENCODER if config.condition == "text" else "base last layer, last position"},
        "layout": layout.to_json(),
        "training": {"config": config.model_dump(), "members": names},
    }, model=model)

    files = generator.to_files()
    generator_bytes = sum(len(b) for b in files.values())
    checkpoint_bytes = sum(safetensors_bytes(a) for a in adapters)
    with torch.no_grad():  # how well the posterior mean reproduces the training checkpoints, in z-score units
        mu, _ = model.encode(x, c)
        final_recon = torch.nn.functional.mse_loss(model.decode(mu, c), x)
        final_recon = final_recon / variation
    generator.report = {
        "epochs": curve,
        # recon values are fractions of the checkpoints' variation around their mean left unexplained (1 = none)
        "final_recon_posterior_mean": final_recon.item(),
        "variation": variation,
        "members": len(members),
        "checkpoints_given": given,
        "checkpoints_used": len(adapters),
        "vector_length": layout.length,
        "parameters": sum(p.numel() for p in model.parameters()),
        "generator_bytes": generator_bytes,
        "checkpoint_bytes": checkpoint_bytes,
        "size_ratio": generator_bytes / checkpoint_bytes,
        "basis_directions": architecture["directions"],
        # the share of the checkpoints' variation the basis can represent at all (1 - what truncation loses)
        "basis_explained": _explained(model, x, variation),
        "condition": config.condition,
        "conditions": {"names": names, **condition_separability(member_conditions, _order(members))},
        "condition_with_adapter": generator.config["condition"]["with_adapter"],
        "seconds": time.perf_counter() - start,
    }
    return generator


def _order(members: list[Member]) -> list[float] | None:
    given = [m.order for m in members]
    if all(o is None for o in given):
        return None
    if any(o is None for o in given):
        raise GenerationError("give every member an order, or none")
    return [float(o) for o in given]


@torch.no_grad()
def _explained(model: BasisCVAE, x: torch.Tensor, variation: float) -> float:
    projected = model.vectors(model.coordinates(x))
    return 1.0 - (projected - x).pow(2).mean().item() / variation


def _build(config: GeneratorConfig, layout, x: torch.Tensor, condition_size: int,
           device) -> tuple[BasisCVAE, dict]:
    """The network, its basis computed from the training vectors, and its architecture record."""
    mean, rows, scale = principal_basis(x, config.basis)
    latent = min(config.latent, rows.shape[0])  # z cannot carry more than the coordinates it decodes to
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model = BasisCVAE(layout.length, rows.shape[0], condition_size, latent)
    model.set_basis(mean, rows, scale)
    return model, {"decoder": "basis", "length": layout.length, "condition_size": condition_size, "latent": latent,
                   "directions": int(rows.shape[0])}


def _fit(model: BasisCVAE, x: torch.Tensor, c: torch.Tensor, variation: float, config: GeneratorConfig,
         device, progress: Progress | None) -> list[dict]:
    """The optimisation loop; returns per-epoch means of the loss terms."""
    rng = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    n = x.shape[0]
    per_epoch = math.ceil(n / config.batch_size)
    steps, step, curve = config.epochs * per_epoch, 0, []
    warmup = config.beta_warmup * steps
    model.train()
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(n, generator=rng)
        sums = {"recon": 0.0, "kl": 0.0, "loss": 0.0, "beta": 0.0}
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            noise = torch.randn(len(idx), model.latent, generator=rng)
            recon, kl = loss_terms(model, x[idx].to(device), c[idx].to(device), noise.to(device), variation)
            beta = config.beta * min(1.0, step / warmup) if warmup > 0 else config.beta
            loss = recon + beta * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            metrics = {"loss": loss.item(), "recon": recon.item(), "kl": kl.item(), "beta": beta}
            for k, v in metrics.items():
                sums[k] += v * len(idx)
            if progress is not None:
                progress("training", step, steps, metrics)
        curve.append({"epoch": epoch, **{k: v / n for k, v in sums.items()}})
    return curve
