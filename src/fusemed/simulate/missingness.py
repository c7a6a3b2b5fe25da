"""Which modalities each subject has: MCAR, MNAR (driven by the latents) or site protocols.

A subject is never left with nothing: if every modality was drawn missing, the clinical table (or the
first modality) is kept. The cortex is derived from T1, FLAIR and PET, so it is present exactly when
all three are (its own draw is ignored): derived modalities go missing together, as in real studies.
"""

from __future__ import annotations

import numpy as np

from fusemed.simulate.config import SimulationConfig
from fusemed.simulate.sites import Site


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def missing_probability(rate: float, shift: float | np.ndarray) -> float | np.ndarray:
    """`rate` moved on the logit scale by `shift` (0 stays 0); elementwise for an array of shifts."""
    if rate <= 0:
        return 0.0 if np.ndim(shift) == 0 else np.zeros(np.shape(shift))
    p = 1 / (1 + np.exp(-(_logit(rate) + np.asarray(shift, dtype=float))))
    return float(p) if np.ndim(p) == 0 else p


def draw_present(
    rng: np.random.Generator,
    modalities: tuple[str, ...],
    config: SimulationConfig,
    site: Site,
    mnar_shift: dict[str, float],
) -> dict[str, bool]:
    """Present/absent per modality; one uniform draw per modality whatever the scheme (stable streams)."""
    u = rng.random(len(modalities))
    present = {}
    for m, ui in zip(modalities, u, strict=True):
        shift = mnar_shift.get(m, 0.0) if config.missing_scheme == "mnar" else 0.0
        present[m] = bool(ui >= missing_probability(config.missing, shift))
    if config.missing_scheme == "site":
        present["flair"] = present.get("flair", False) and site.has_flair
        present["pet"] = present.get("pet", False) and site.has_pet
    if "cortex" in present:  # derived from T1, FLAIR and PET sampled on the surface (MELD-like)
        present["cortex"] = all(present.get(m, False) for m in ("t1", "flair", "pet"))
    if not any(present.values()):
        keep = "clinical" if "clinical" in present else modalities[0]
        present[keep] = True
    return present
