"""The conditional VAE over flattened adapters (methods.md ICM-LoRA step 4).

Encoder: per-position read gains turn the (1, L) vector into (P, L); stride-2 Conv1d blocks take it to
(channels, L / 2**blocks); flattened and concatenated with the condition, one linear layer gives μ and log σ².
Decoder: [z; condition] -> linear -> (channels, L / 2**blocks) -> stride-2 ConvTranspose1d blocks -> (P, L) ->
per-position write gains summed over P -> (L,). Loss: reconstruction MSE over the real (unpadded) positions + β·KL.

What the paper's text does not say, and why we added it (each one measured on the tiny test family, where without
it the posterior collapses and every checkpoint decodes to the family mean):
- A per-position output offset (L parameters), initialised to the mean training vector. Shared conv kernels make
  smooth, repeating patterns and cannot put an arbitrary value at each of ~0.5M positions, yet an adapter's values
  are position-specific (A is its random init plus small updates). The offset holds what all checkpoints share.
- Per-position read and write gains (P x L each, GeneratorConfig.position_channels): what differs between
  checkpoints and tasks is also position-specific (one random-looking direction per task), and a shared kernel can
  neither detect nor produce it. Each write channel is a learned pattern the conv features modulate.
- The residual at unit scale: the encoder sees (x − offset) / s and the decoder's output is multiplied by s, with s
  the RMS of the training vectors around their mean (a buffer). Checkpoints of one family differ by a few percent of
  a tensor's spread; the reconstruction error is measured in the same unit (see loss_terms).
- He initialisation for the convs (PyTorch's default shrinks the signal through 10 blocks) and, in train.py, a KL
  warm-up.
Choices for CPU budgets: block widths double from 2 up to `channels` (the first blocks see the full vector), and the
condition is projected to `latent` dims by one shared linear layer before it is concatenated (a 576-d hidden state
concatenated raw would multiply the size of both heads).

The condition is centred and scaled with statistics of the training conditions, kept as buffers so they travel
with the weights: conditions of related tasks on one base share a large common component (hidden states) or are
unit vectors with small entries (text), and what tells tasks apart is the deviation from the family's mean.
"""
from __future__ import annotations

import torch
from torch import nn

KERNEL = 4  # with stride 2 and padding 1, a Conv1d halves an even length and a ConvTranspose1d doubles it exactly
STRIDE = 2


class CVAE(nn.Module):
    def __init__(self, length: int, condition_size: int, latent: int, channels: int, blocks: int,
                 position_channels: int):
        super().__init__()
        if length % STRIDE ** blocks:
            raise ValueError(f"length {length} is not a multiple of {STRIDE}**{blocks}")
        self.length, self.latent, self.blocks = length, latent, blocks
        self.bottleneck = length // STRIDE ** blocks

        widths = [min(channels, 2 ** (i + 1)) for i in range(blocks)]  # block i's output channels
        features = widths[-1] * self.bottleneck
        # per-position gains: (position_channels, L) weights that read (encoder) and write (decoder) each position
        self.read_gains = nn.Parameter(torch.randn(position_channels, length))
        self.write_gains = nn.Parameter(torch.randn(position_channels, length) / position_channels ** 0.5)
        encoder: list[nn.Module] = []
        for i, width in enumerate(widths):
            c_in = widths[i - 1] if i else position_channels
            encoder += [nn.Conv1d(c_in, width, KERNEL, STRIDE, padding=(KERNEL - STRIDE) // 2), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*encoder)
        self.condition_proj = nn.Linear(condition_size, latent)
        self.to_posterior = nn.Linear(features + latent, 2 * latent)

        self.from_latent = nn.Sequential(nn.Linear(2 * latent, features), nn.LeakyReLU(0.2))
        decoder: list[nn.Module] = []
        for i in reversed(range(blocks)):
            c_out = widths[i - 1] if i else position_channels
            decoder.append(nn.ConvTranspose1d(widths[i], c_out, KERNEL, STRIDE, padding=(KERNEL - STRIDE) // 2))
            if i:
                decoder.append(nn.LeakyReLU(0.2))
        self.decoder = nn.Sequential(*decoder)
        self.offset = nn.Parameter(torch.zeros(length))

        self._init_convs()
        self.register_buffer("residual_scale", torch.ones(()))
        self.register_buffer("condition_center", torch.zeros(condition_size))
        self.register_buffer("condition_scale", torch.ones(()))

    @torch.no_grad()
    def _init_convs(self) -> None:
        """He init for LeakyReLU on the fan each output really sees (stride 2: a ConvTranspose1d output gets
        in_channels x kernel/2 taps). PyTorch's default shrinks the signal ~1.7x per layer, 10 blocks deep the
        decoder's output barely depends on z and training settles on ignoring the latent."""
        gain = nn.init.calculate_gain("leaky_relu", 0.2)
        for module in [*self.encoder, *self.decoder]:
            if isinstance(module, nn.Conv1d):
                fan = module.in_channels * KERNEL
            elif isinstance(module, nn.ConvTranspose1d):
                fan = module.in_channels * KERNEL // STRIDE
            else:
                continue
            module.weight.normal_(0, gain / fan ** 0.5)
            module.bias.zero_()

    def prepare(self, condition: torch.Tensor) -> torch.Tensor:
        """Raw condition(s) (d,) or (n, d) -> centred, scaled, projected (n, latent), what both halves see."""
        condition = condition.reshape(-1, self.condition_center.shape[0]).to(self.offset)
        return self.condition_proj((condition - self.condition_center) / self.condition_scale)

    def encode(self, x: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, L) vectors and raw conditions -> posterior μ, log σ², each (n, latent)."""
        residual = (x - self.offset) / self.residual_scale
        h = self.encoder(residual.unsqueeze(1) * self.read_gains).flatten(1)
        stats = self.to_posterior(torch.cat([h, self.prepare(condition)], dim=1))
        return stats[:, :self.latent], stats[:, self.latent:]

    def decode(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(n, latent) and raw conditions -> (n, L) normalised vectors."""
        h = self.from_latent(torch.cat([z, self.prepare(condition)], dim=1))
        residual = (self.decoder(h.view(h.shape[0], -1, self.bottleneck)) * self.write_gains).sum(dim=1)
        return self.offset + self.residual_scale * residual


def loss_terms(model: CVAE, x: torch.Tensor, condition: torch.Tensor, real: int, noise: torch.Tensor,
               variation: float = 1.0):
    """(reconstruction error, KL per sample summed over latent dims).

    The reconstruction error is the MSE over the first `real` positions divided by `variation`, the MSE of always
    answering the mean training vector: 1 means "explains none of how checkpoints differ", 0 "all of it". A plain
    per-value MSE is tiny here (checkpoints of one family share most of their values, and the offset holds those),
    so β·KL would outweigh anything the latent could explain and the posterior would collapse onto the prior.
    `noise` is the reparameterisation ε, drawn by the caller from its seeded generator."""
    mu, logvar = model.encode(x, condition)
    z = mu + torch.exp(0.5 * logvar) * noise
    recon = torch.nn.functional.mse_loss(model.decode(z, condition)[:, :real], x[:, :real]) / variation
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
    return recon, kl
