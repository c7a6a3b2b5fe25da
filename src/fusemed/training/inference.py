"""Plain-PyTorch prediction of a trained fold (rank 0 only; no Trainer, so DDP never splits it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fusemed.training.data import CaseDataset, Collate, loader


@torch.no_grad()
def predict_logits(forward: Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor], dataset: CaseDataset,
                   collate: Collate, batch_size: int = 8, device: torch.device | str = "cpu") -> np.ndarray:
    """``(K, n, C)`` logits in dataset order; ``forward(inputs, present) -> (K, B, C)`` is the uncertainty
    method's view of the fold's networks (one pass, MC-dropout passes, ensemble members)."""
    chunks = []
    for batch in loader(dataset, collate, batch_size):
        inputs = {m: x.to(device) for m, x in batch["inputs"].items()}
        out = forward(inputs, batch["present"].to(device)).float().cpu().numpy()
        chunks.append(out.reshape(out.shape[0], out.shape[1], -1))
    return np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0, 1))


def save_weights(model: nn.Module, path: Path, meta: dict) -> None:
    """``model.pt`` (state dict only, loadable with ``weights_only=True``) + ``model.json``."""
    from fusemed.training.io import atomic_save, atomic_write_json

    atomic_save(path, lambda tmp: torch.save(model.state_dict(), tmp))
    atomic_write_json(path.with_suffix(".json"), meta)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model
