"""`surface-gnn`: a MELD-like graph network on per-vertex cortical features (fsaverage5).

MELD Graph (JAMA Neurology 2025) classifies every vertex of the cortical surface from MELD's
features (thickness, grey/white contrast, FLAIR and PET sampled at the vertex, ...) normalised
against controls. We keep the recipe at a small scale: inputs are each feature z-scored over the
training cohort AND per vertex against the training controls (2F channels), a GraphSAGE network
(PyTorch Geometric) on the mesh edges, DiceFocal loss against the tiny lesion fraction (trained on
the shared Lightning trainer, `fusemed.diagnosis.training`), and MC dropout
(`fusemed.uncertainty.MCDropout`) for the per-vertex uncertainty (variance of the passes).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
from torch_geometric.nn.models import GraphSAGE

from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.detectors.base import DetectionMaps, Detector, mc_passes
from fusemed.diagnosis.training import SegmentationObjective
from fusemed.models.mesh import Mesh, load_mesh

log = logging.getLogger(__name__)


class VertexObjective(SegmentationObjective):
    """The graph net on one subject's surface, (1, V, F) -> (1, 1, V) logits, scored by DiceFocal."""

    def __init__(self, net: torch.nn.Module, edge_index: torch.Tensor) -> None:
        super().__init__(net)
        self.register_buffer("edge_index", edge_index, persistent=False)  # moves to the trainer's device

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.net(inputs["x"][0], self.edge_index)[:, 0][None, None]

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_focal(output, target[:, None])


class SurfaceGNNDetector(Detector):
    """Per-vertex lesion probability from surface features with a GraphSAGE network."""

    name = "surface-gnn"
    space: ClassVar[str] = "surface"
    default_modalities: ClassVar[tuple[str, ...]] = ("cortex",)
    defaults: ClassVar[dict[str, Any]] = {"hidden": 32, "layers": 4, "dropout": 0.2, "epochs": 40,
                                          "lr": 5e-3, "mc_samples": 8, "threshold": 0.5, "mesh": "fsaverage5"}

    @property
    def mesh(self) -> Mesh:
        """The mesh named by the `mesh` parameter (cached)."""
        return load_mesh(self.params["mesh"])

    def _features(self, case: DetectionCase) -> torch.Tensor:
        if case.surface is None:
            raise ValueError(f"subject {case.subject}: no surface features (modality {self.modalities[0]!r})")
        f = np.asarray(case.surface, np.float32)
        if f.ndim == 1:
            f = f[:, None]
        if f.shape[0] != self.mesh.n_vertices:
            raise ValueError(f"subject {case.subject}: surface features have {f.shape[0]} vertices, "
                             f"expected {self.mesh.n_vertices} ({self.params['mesh']})")
        g = (f - self.global_mean_) / self.global_sd_
        v = (f - self.vertex_mean_) / self.vertex_sd_
        return torch.from_numpy(np.concatenate([g, v], axis=1).astype(np.float32))

    def _build(self, n_in: int) -> GraphSAGE:
        p = self.params
        return GraphSAGE(n_in, p["hidden"], p["layers"], out_channels=1, dropout=p["dropout"])

    def _fit(self, cases: list[DetectionCase]) -> None:
        p = self.params
        feats = np.stack([np.asarray(c.surface, np.float32).reshape(self.mesh.n_vertices, -1) for c in cases])
        self.global_mean_ = feats.mean((0, 1))
        self.global_sd_ = feats.std((0, 1)) + 1e-6
        controls = feats[[not c.is_patient for c in cases]]
        ref = controls if len(controls) >= 2 else feats
        self.decisions_.update(normative=len(controls) >= 2, normative_reason=(
            f"per-vertex z-scores against the fit split's {len(controls)} controls" if len(controls) >= 2 else
            f"the fit split has {len(controls)} controls (< 2): per-vertex z-scores against all {len(feats)} "
            f"fitting subjects"))
        self.vertex_mean_ = ref.mean(0)
        self.vertex_sd_ = np.sqrt(ref.var(0) + (0.5 * self.global_sd_) ** 2)
        xs = [self._features(c) for c in cases]
        ys = [torch.from_numpy(np.asarray(c.vertex_labels if c.vertex_labels is not None
                                          else np.zeros(self.mesh.n_vertices), np.float32) > 0).float()
              for c in cases]
        self.net_ = self._build(xs[0].shape[1])
        x, y = torch.stack(xs), torch.stack(ys)  # (N, V, 2F), (N, V)

        def draw(rng: np.random.Generator) -> dict[str, Any]:
            """Every subject once an epoch, one graph a step (the loader shuffles them)."""
            return {"inputs": {"x": x}, "present": torch.ones(len(x), 1, dtype=torch.bool), "target": y}

        self.train_net(VertexObjective(self.net_, self.mesh.edge_index), draw, epochs=int(p["epochs"]),
                       batch_size=1, lr=float(p["lr"]))
        self.net_.eval()
        self.threshold_ = float(p["threshold"])

    @torch.no_grad()
    def predict(self, case: DetectionCase) -> DetectionMaps:
        """Per-vertex probability (V,) and MC-dropout variance (V,)."""
        self._check()
        x, ei = self._features(case), self.mesh.edge_index
        outs = torch.sigmoid(mc_passes(self.net_, int(self.params["mc_samples"]), self.seed)(x, ei)[..., 0]).numpy()
        return DetectionMaps(outs.mean(0), outs.var(0), "surface")

    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        t = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        for k in ("global_mean", "global_sd", "vertex_mean", "vertex_sd"):
            t[f"norm.{k}"] = torch.from_numpy(np.ascontiguousarray(getattr(self, f"{k}_"), np.float32))
        return {"n_in": int(2 * self.global_mean_.shape[0])}, t

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        for k in ("global_mean", "global_sd", "vertex_mean", "vertex_sd"):
            setattr(self, f"{k}_", tensors[f"norm.{k}"].numpy())
        self.net_ = self._build(meta["n_in"])
        self.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net_.eval()
