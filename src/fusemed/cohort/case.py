"""One subject of a cohort: a keyed record where a missing modality is an absent key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import nibabel as nib
import numpy as np

from fusemed.cohort.readers import read_graph, read_surface, read_vertex_labels, read_volume
from fusemed.cohort.spec import CohortSpec, ModalityKind, TargetKind


class Survival(NamedTuple):
    """A censored time-to-event target: follow-up ``time`` and whether the ``event`` was observed."""

    time: float
    event: bool


@dataclass(frozen=True)
class Case:
    """A subject: id, site, the modalities it has and its targets. Images load lazily.

    ``sources`` maps each *present* modality to its file (volume, graph, surface) or its values
    (tabular, ``(F,)`` float32 with NaN for empty cells). A modality the subject lacks is simply absent.
    """

    subject: str
    site: str | None
    spec: CohortSpec = field(repr=False)
    sources: Mapping[str, Path | np.ndarray] = field(repr=False)
    targets: Mapping[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Present modalities, in the order the cohort declares them."""
        return tuple(m for m in self.spec.modalities if m in self.sources)

    @property
    def pattern(self) -> str:
        """Present modalities joined by ``+``: the missing-modality pattern this subject belongs to."""
        return "+".join(self.modalities)

    def has(self, name: str) -> bool:
        return name in self.sources

    def kind(self, name: str) -> ModalityKind:
        return self.spec.modalities[name].kind

    def path(self, name: str) -> Path:
        source = self.sources[name]
        if not isinstance(source, Path):
            raise TypeError(f"modality {name!r} is tabular: its values live in the manifest")
        return source

    def load(self, name: str) -> Any:
        """Load one present modality (``KeyError`` naming what is present when it is missing).

        Returns a lazy ``nibabel.Nifti1Image`` for volumes, a :class:`~fusemed.cohort.readers.Graph`
        for graphs, ``(V, F)`` float32 for surfaces and ``(F,)`` float32 (NaN = empty) for tabular.
        """
        if name not in self.sources:
            raise KeyError(f"subject {self.subject} has no {name!r}; present: {', '.join(self.modalities)}")
        spec = self.spec.modalities[name]
        source = self.sources[name]
        if spec.kind is ModalityKind.TABULAR:
            return np.asarray(source, dtype=np.float32)
        if spec.kind is ModalityKind.VOLUME:
            return read_volume(source)  # type: ignore[arg-type]
        if spec.kind is ModalityKind.GRAPH:
            return read_graph(source)  # type: ignore[arg-type]
        return read_surface(source, spec.mesh)  # type: ignore[arg-type]

    def load_target(self, name: str) -> Any:
        """The target's value; masks are read from disk (NIfTI image / per-vertex labels)."""
        value = self.targets[name]
        kind = self.spec.targets[name].kind
        if kind is TargetKind.MASK:
            return read_volume(value)
        if kind is TargetKind.VERTEX_MASK:
            return read_vertex_labels(value, self.spec.targets[name].mesh)
        return value

    def volume_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Convenience: ``(data (X, Y, Z) float32, affine (4, 4))`` of a present volume."""
        img: nib.Nifti1Image = self.load(name)
        return np.asarray(img.dataobj, dtype=np.float32), img.affine
