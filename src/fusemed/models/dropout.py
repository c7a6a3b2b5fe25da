"""ModDrop (Neverova et al. 2015): drop whole modalities at random in training so that every subset
the model meets at test time has been seen; never drops a sample's last modality."""

from __future__ import annotations

import torch
from torch import Tensor


def modality_dropout(present: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Mark each present modality missing with probability `p`, keeping at least one per sample.

    Args:
        present: `(B, M)` bool, which modalities each sample has (each row needs at least one).
        p: drop probability per present modality, in [0, 1].
        generator: for reproducible draws; on the device of `present`.

    Returns:
        `(B, M)` bool, a subset of `present`; a sample whose draws dropped everything keeps one of
        its modalities, chosen uniformly.

    Examples:
        >>> present = torch.ones(4, 3, dtype=torch.bool)
        >>> dropped = modality_dropout(present, 0.5, torch.Generator().manual_seed(0))
        >>> bool((dropped.sum(1) >= 1).all())
        True
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"modality dropout p must be in [0, 1], got {p}")
    present = present.bool()
    if not bool(present.any(dim=1).all()):
        raise ValueError("modality_dropout: some samples have no modality present to begin with")
    if p == 0.0:
        return present.clone()
    draws = torch.rand(present.shape, generator=generator, device=present.device)
    kept = present & (draws >= p)
    emptied = ~kept.any(dim=1)
    if bool(emptied.any()):
        scores = torch.rand(present.shape, generator=generator, device=present.device)
        scores = torch.where(present, scores, torch.full_like(scores, -1.0))
        rescue = torch.zeros_like(present)
        rescue[torch.arange(present.shape[0], device=present.device), scores.argmax(dim=1)] = True
        kept = kept | (rescue & emptied.unsqueeze(1))
    return kept
