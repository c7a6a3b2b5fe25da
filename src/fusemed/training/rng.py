"""Random state saved in every checkpoint and restored on resume, so a killed-and-resumed run draws the
same dropout masks, shuffles and augmentations as an uninterrupted one.

The process-wide generators (python ``random``, numpy, torch CPU and CUDA) travel in the checkpoint as
plain tensors and ints, loadable with ``weights_only=True``. The train loader's shuffle generator is
saved by :class:`~fusemed.training.data.FoldDataModule` and the modality-dropout generator by the module.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def capture() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RngState(L.Callback):
    """Saves the process RNG states with each checkpoint; restores them when training resumes."""

    @property
    def state_key(self) -> str:
        return "fusemed.RngState"

    def state_dict(self) -> dict[str, Any]:
        return capture()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict:
            restore(state_dict)
