"""What a detector sees of one subject: its present volumes, surface features and (optional) truth.

Detectors take `DetectionCase` records rather than cohort rows so tests and notebooks can build
them from any NIfTI images; `cases_from_cohort` adapts a `fusemed.cohort.Cohort`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class DetectionCase:
    """One subject. `volumes` holds PRESENT modalities only (a missing one is an absent key).

    Attributes:
        subject: subject id.
        volumes: modality name -> NIfTI image (any orientation).
        reference: name of the volume whose grid the output maps use (the lesion target's reference).
        lesion: voxel lesion mask on the reference grid (all zero for controls), None when unknown.
        label: 1 patient, 0 control, None when unknown.
        surface: (V, F) per-vertex features on fsaverage5, None when absent.
        vertex_labels: (V,) lesion labels on the surface, None when unknown.
        to_template: (4, 4) subject world mm -> template world mm (RAS), when already known (e.g. from
            your own registration); volume detectors estimate and store it otherwise.
    """

    subject: str
    volumes: dict[str, nib.Nifti1Image] = field(default_factory=dict)
    reference: str = "t1"
    lesion: nib.Nifti1Image | None = None
    label: int | None = None
    surface: np.ndarray | None = None
    vertex_labels: np.ndarray | None = None
    to_template: np.ndarray | None = None

    @property
    def reference_image(self) -> nib.Nifti1Image:
        """The image whose shape and affine the output maps copy (first present volume as fallback)."""
        if self.reference in self.volumes:
            return self.volumes[self.reference]
        if self.lesion is not None:
            return self.lesion
        if not self.volumes:
            raise ValueError(f"subject {self.subject}: no volume present to define the output grid")
        return next(iter(self.volumes.values()))

    @property
    def is_patient(self) -> bool:
        if self.label is not None:
            return bool(self.label)
        if self.lesion is not None:
            return bool(np.asarray(self.lesion.dataobj).any())
        if self.vertex_labels is not None:
            return bool(np.asarray(self.vertex_labels).any())
        return False


def cases_from_cohort(cohort_dir: str | Path, target: str = "lesion", diagnosis: str = "diagnosis",
                      surface_target: str = "lesion_surface",
                      subjects: list[str] | None = None) -> list[DetectionCase]:
    """Build `DetectionCase`s from a cohort folder (volumes lazy; targets read when present)."""
    from fusemed.cohort import Cohort

    cohort = Cohort.load(cohort_dir)
    spec = cohort.spec
    vol_names = [n for n, m in spec.modalities.items() if str(getattr(m.kind, "value", m.kind)) == "volume"]
    surf_names = [n for n, m in spec.modalities.items() if str(getattr(m.kind, "value", m.kind)) == "surface"]
    reference = "t1"
    if target in spec.targets and getattr(spec.targets[target], "reference", None):
        reference = spec.targets[target].reference
    wanted = set(subjects) if subjects is not None else None
    out = []
    for case in cohort.cases:
        if wanted is not None and case.subject not in wanted:
            continue
        vols = {n: case.load(n) for n in vol_names if case.has(n)}
        lesion = case.load_target(target) if target in case.targets else None
        label = case.targets.get(diagnosis)
        surface = case.load(surf_names[0]) if surf_names and case.has(surf_names[0]) else None
        vlab = case.load_target(surface_target) if surface_target in case.targets else None
        out.append(DetectionCase(subject=case.subject, volumes=vols, reference=reference, lesion=lesion,
                                 label=None if label is None else int(label), surface=surface,
                                 vertex_labels=None if vlab is None else np.asarray(vlab)))
    if wanted is not None and len(out) != len(wanted):
        missing = sorted(wanted - {c.subject for c in out})
        raise KeyError(f"{cohort_dir}: subjects not in the cohort: {missing[:5]}")
    log.info("loaded %d detection cases from %s", len(out), cohort_dir)
    return out
