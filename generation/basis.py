"""The low-dimensional ICM-LoRA generator: a CVAE over a family's coordinates in a basis of its own checkpoints.

Why. Every checkpoint a generator learns from lies in a tiny subspace of weight space: the family's mean plus a few
directions (one or two per member, a few more for the drift along each trajectory). The paper's conv CVAE (our
format version 1, removed) had to learn to write all L positions of that subspace through per-position gains and a
full-length offset, so its size grew with L (44 % of the checkpoints it learned from on the benchmark's family);
on a tiny 4-member family it also reconstructed worse (mean relative ΔW error 0.096 against 0.054 here) and
trained 12x slower. Here the subspace is computed, not
learned: the mean flattened checkpoint and its top principal directions (an SVD of the centred checkpoints). The
CVAE is then a small MLP over the coordinates in that basis, and only the basis grows with L.

Storage: the mean is float32 (it holds the bulk of every value: A's random init, B's common part) and the
directions float16 (unit vectors whose entries are ~1/sqrt(L); float16's 11-bit mantissa puts a direction within
~3e-4 of itself, far below how far the family's checkpoints are from one another). The generator then costs
(1 + m/2) float32 adapters for m directions, whatever the number of checkpoints it learned from.

The vector the decoder returns is mean + (coordinates x scale) @ directions, so generate/posterior/to_adapter work
on full-length vectors exactly as with the conv CVAE.
"""
from __future__ import annotations

import torch
from torch import nn

HIDDEN = 64  # MLP width: maps a latent of at most a few dozen dims to as many coordinates; more only adds bytes


def principal_basis(x: torch.Tensor, directions: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean (L,), directions (m, L) orthonormal rows, scale (m,): the RMS coordinate of the rows of x along each)
    for the top m = min(directions, n - 1) principal directions of the rows of x (n, L); at least one direction so
    a one-checkpoint family still has a (zero-scale) coordinate. float64 SVD of the n x n Gram matrix: n is tens of
    checkpoints and L up to millions, so this is cheap where a full SVD of (n, L) is not."""
    x = x.double()
    mean = x.mean(dim=0)
    centred = x - mean
    n = x.shape[0]
    m = max(1, min(directions, n - 1))
    eigenvalues, vectors = torch.linalg.eigh(centred @ centred.T)  # ascending
    eigenvalues, vectors = eigenvalues.flip(0)[:m].clamp(min=0), vectors.flip(1)[:, :m]
    singular = eigenvalues.sqrt()
    rows = (vectors.T @ centred) / singular.clamp(min=1e-300).unsqueeze(1)
    keep = singular > 1e-9 * (singular[0] if singular[0] > 0 else 1.0)
    rows[~keep] = 0.0  # no variation along it: a zero direction (decodes to the mean), not numerical noise
    scale = torch.where(keep, singular / n ** 0.5, torch.ones_like(singular))
    return mean, rows, scale


class BasisCVAE(nn.Module):
    """CVAE over basis coordinates: encoder [coordinates; projected condition] -> MLP -> μ, log σ²; decoder
    [z; projected condition] -> MLP -> coordinates -> full-length vector. The same encode/decode interface
    (full-length normalised vectors in and out) as the conv CVAE it replaced, so generate/posterior are unchanged."""

    def __init__(self, length: int, directions: int, condition_size: int, latent: int):
        super().__init__()
        self.length, self.latent, self.directions = length, latent, directions
        self.register_buffer("mean", torch.zeros(length))
        self.register_buffer("basis", torch.zeros(directions, length, dtype=torch.float16))
        self.register_buffer("coordinate_scale", torch.ones(directions))
        self.register_buffer("condition_center", torch.zeros(condition_size))
        self.register_buffer("condition_scale", torch.ones(()))
        self.condition_proj = nn.Linear(condition_size, latent)
        self.encoder = nn.Sequential(nn.Linear(directions + latent, HIDDEN), nn.LeakyReLU(0.2),
                                     nn.Linear(HIDDEN, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(2 * latent, HIDDEN), nn.LeakyReLU(0.2), nn.Linear(HIDDEN, directions))

    @torch.no_grad()
    def set_basis(self, mean: torch.Tensor, rows: torch.Tensor, scale: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.basis.copy_(rows)
        self.coordinate_scale.copy_(scale)

    def prepare(self, condition: torch.Tensor) -> torch.Tensor:
        """Raw condition(s) (d,) or (n, d) -> centred, scaled, projected (n, latent), what both halves see."""
        condition = condition.reshape(-1, self.condition_center.shape[0]).to(self.mean)
        return self.condition_proj((condition - self.condition_center) / self.condition_scale)

    def coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """(n, L) vectors -> (n, m) unit-scale coordinates in the basis."""
        return ((x.to(self.mean) - self.mean) @ self.basis.to(self.mean).T) / self.coordinate_scale

    def vectors(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(n, m) coordinates -> (n, L) vectors in the span of the basis."""
        return self.mean + (coordinates * self.coordinate_scale) @ self.basis.to(self.mean)

    def encode(self, x: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stats = self.encoder(torch.cat([self.coordinates(x), self.prepare(condition)], dim=1))
        return stats[:, :self.latent], stats[:, self.latent:]

    def decode(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.vectors(self.decoder(torch.cat([z, self.prepare(condition)], dim=1)))


def loss_terms(model: BasisCVAE, x: torch.Tensor, condition: torch.Tensor, noise: torch.Tensor,
               variation: float = 1.0):
    """(reconstruction error, KL per sample summed over latent dims).

    The reconstruction error is the MSE between the decoded and the true flattened checkpoints divided by
    `variation`, the MSE of always answering the mean checkpoint: 1 means "explains none of how checkpoints
    differ", 0 "all of it" (the truncation of the basis puts a floor under it: 1 - report["basis_explained"]). A
    plain per-value MSE is tiny here (checkpoints of one family share most of their values), so β·KL would outweigh
    anything the latent could explain and the posterior would collapse onto the prior.
    `noise` is the reparameterisation ε, drawn by the caller from its seeded generator."""
    mu, logvar = model.encode(x, condition)
    z = mu + torch.exp(0.5 * logvar) * noise
    recon = torch.nn.functional.mse_loss(model.decode(z, condition), x) / variation
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
    return recon, kl
