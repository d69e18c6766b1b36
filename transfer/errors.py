"""The one error a Trans-LoRA run raises when it cannot produce its synthetic data, with the numbers that say why."""
from __future__ import annotations


class TransferError(RuntimeError):
    """Synthesis stopped short: the attempts cap was hit, or the discriminator accepted nothing.

    Bad inputs (a config field, an adapter that does not fit its base) raise ValueError instead; this is the
    failure of a well-formed run. `stats` holds the counts at the moment it stopped (drawn, judged, accepted,
    acceptance_rate, wanted), so a job can store them next to the message."""

    def __init__(self, message: str, stats: dict | None = None):
        super().__init__(message)
        self.stats = dict(stats or {})
