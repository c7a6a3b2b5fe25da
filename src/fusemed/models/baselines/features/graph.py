"""Graph features: the upper-triangle edge weights, plus the node features averaged over nodes.

Why: the classical connectome baseline is "every edge is a feature" (penalised regression on the
edge vector); a symmetric adjacency holds each edge twice and a zero diagonal, so only ``i < j`` is
kept. Node features (``F > 0``) enter as their means over nodes, a cheap global summary that does not
multiply the width by N.
"""

from __future__ import annotations

import numpy as np

from fusemed.models.baselines.features.base import ModalityFeatures, nanmean


class GraphFeatures(ModalityFeatures, kind="graph"):
    """``(N, N + F)`` = [adjacency | node features] -> ``(N(N-1)/2 + F,)``."""

    rank = 2

    def _validate_shape(self) -> None:
        n, width = self.shape
        if width < n:
            raise ValueError(f"modality {self.name!r}: graph shape {self.shape} is not (N, N + F)")

    def _names(self) -> list[str]:
        n, width = self.shape
        rows, cols = np.triu_indices(n, k=1)
        edges = [f"e{i}_{j}" for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]
        return edges + [f"node_mean_f{k}" for k in range(width - n)]

    def _extract(self, sample: np.ndarray) -> np.ndarray:
        n = sample.shape[0]
        edges = sample[:, :n][np.triu_indices(n, k=1)]
        features = sample[:, n:]
        if features.shape[1] == 0:
            return edges
        return np.concatenate([edges, nanmean(features, axis=0)])

