"""A training fold's fingerprint (what the data is) and the plan derived from it (how to train on it).

The rules are nnU-Net-style heuristics written down once, not tuned per dataset: small cohorts get small,
strongly regularised networks with low-capacity encoders (an edge readout for connectomes, a linear map
for tables, regional summaries for volumes when n is tiny), and enough epochs for a fixed number of
optimiser steps. Any key the user set explicitly (``TrainConfig.pinned``) is left as the user set it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: the size below which a cohort counts as small (most imaging studies in this field)
SMALL_N = 150
#: optimiser steps a plan aims for (epochs = steps / batches per epoch, clipped)
TARGET_STEPS = 400


@dataclass(frozen=True)
class Fingerprint:
    """What self-configuration looks at (counts only: no label value of any test subject is read).

    Attributes:
        n: subjects in the training fold (train + validation splits).
        task: "binary" | "multiclass" | "survival".
        n_classes: classes (1 for survival).
        smallest_class: subjects in the rarest class (events for survival).
        modalities: name -> {"kind", "shape", "present"} (share of the fold's subjects that have it).
    """

    n: int
    task: str
    n_classes: int
    smallest_class: int
    modalities: dict[str, dict[str, Any]]

    @property
    def missing_rate(self) -> float:
        """Mean share of absent modalities over the fold's subjects."""
        return float(np.mean([1.0 - m["present"] for m in self.modalities.values()])) if self.modalities else 0.0

    @property
    def n_features(self) -> int:
        """Length of the classical feature vector (edges, columns, regions): what a baseline must fit."""
        sizes = {"graph": lambda s: s[0] * (s[0] - 1) // 2 + max(0, s[1] - s[0]),
                 "tabular": lambda s: s[0], "volume": lambda s: 64 * s[0], "surface": lambda s: 324 * s[1]}
        return int(sum(sizes[m["kind"]](m["shape"]) for m in self.modalities.values()))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "missing_rate": self.missing_rate, "n_features": self.n_features}


def fingerprint(task: Any, slots: list[Any], present: np.ndarray, targets: np.ndarray) -> Fingerprint:
    """Fingerprint of a fold from its task, slots, ``(n, M)`` presence mask and ``(n,)``/``(n, 2)`` targets."""
    targets = np.asarray(targets)
    if task.kind == "survival":
        smallest = int(targets[:, 1].sum())
    else:
        smallest = int(np.bincount(targets.astype(int), minlength=task.n_classes).min())
    mods = {s.name: {"kind": s.kind, "shape": list(s.shape), "present": float(present[:, j].mean())}
            for j, s in enumerate(slots)}
    return Fingerprint(int(len(targets)), task.kind, int(task.n_classes), smallest, mods)


def plan(fp: Fingerprint) -> dict[str, Any]:
    """TrainConfig keys for the deep candidates of this fold (``model`` holds ModelConfig keys)."""
    small = fp.n < SMALL_N
    batch = 8 if fp.n < 100 else 16
    batches = max(1, math.ceil(0.6 * fp.n / batch))  # inner training split of the fold
    epochs = int(np.clip(math.ceil(TARGET_STEPS / batches), 15, 100))
    width = 16 if small else 32
    edges = max((m["shape"][0] * (m["shape"][0] - 1) // 2 for m in fp.modalities.values() if m["kind"] == "graph"),
                default=0)
    model = {
        "embed_dim": width,
        "hidden": width,
        # an edge vector holds more weights than there are subjects: strong input dropout, and a low-rank
        # bilinear readout once it has thousands of entries (docs/models.md measures both)
        "dropout": 0.5 if small else 0.2,
        "graph_encoder": "edge",
        "edge_rank": 2 if edges > 2000 else 0,
        "tabular_encoder": "linear" if small else "mlp",
        "volume_encoder": "regional" if fp.n < 60 else "cnn",
        "volume_channels": [4, 8, 16] if small else [8, 16, 32],
    }
    return {
        "epochs": epochs,
        "patience": max(5, epochs // 5),
        "batch_size": batch,
        "lr": 3e-3,
        "weight_decay": 1e-2 if small else 1e-3,
        "moddrop": 0.2 if fp.missing_rate > 0.05 and len(fp.modalities) > 1 else 0.0,
        "model": model,
    }
