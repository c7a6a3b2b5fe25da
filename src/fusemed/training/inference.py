"""Plain-PyTorch prediction of a trained fold (rank 0 only; no Trainer, so DDP never splits it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from fusemed.training.data import CaseDataset, Collate, loader


def enable_dropout(model: nn.Module) -> None:
    """Eval mode everywhere except dropout layers (MC dropout)."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()


@torch.no_grad()
def predict_logits(model: nn.Module, dataset: CaseDataset, collate: Collate, batch_size: int = 8,
                   mc_samples: int = 0, seed: int = 0) -> np.ndarray:
    """``(n, C)`` logits in dataset order, or ``(K, n, C)`` with ``K = mc_samples`` dropout passes."""
    passes = max(1, mc_samples)
    if mc_samples:
        torch.manual_seed(seed)
        enable_dropout(model)
    else:
        model.eval()
    device = next(model.parameters()).device
    out = []
    for _ in range(passes):
        chunks = []
        for batch in loader(dataset, collate, batch_size):
            inputs = {m: x.to(device) for m, x in batch["inputs"].items()}
            chunks.append(model(inputs, batch["present"].to(device)).float().cpu().numpy())
        logits = np.concatenate(chunks) if chunks else np.zeros((0, 1))
        out.append(logits.reshape(len(logits), -1))
    model.eval()
    return np.stack(out) if mc_samples else out[0]


def save_weights(model: nn.Module, path: Path, meta: dict) -> None:
    """``model.pt`` (state dict only, loadable with ``weights_only=True``) + ``model.json``."""
    from fusemed.training.io import atomic_save, atomic_write_json

    atomic_save(path, lambda tmp: torch.save(model.state_dict(), tmp))
    atomic_write_json(path.with_suffix(".json"), meta)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model
