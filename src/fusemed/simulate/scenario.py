"""A scenario = which latents a subject has and how they show in the images (self-registering).

`draw` is the TorchIO `make_params` half: every random choice for a subject is made here and returned
as a flat record (one row of `truth/oracle.csv`). Rendering then only reads the record.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusemed.simulate.anatomy import Anatomy
from fusemed.simulate.config import SimulationConfig
from fusemed.simulate.distributions import ClippedNormal

#: Annual grey-matter loss after 20 (fraction), and ventricle radial expansion per year; see docs.
GM_LOSS_PER_YEAR = 0.0025
VENTRICLE_PER_YEAR = 0.005
#: Given the years above 20: what any structural image shows of age (the oracle scores these too).
GM_ATROPHY = ClippedNormal(0.0, GM_LOSS_PER_YEAR, 0.01, 0.0, 0.3)
VENTRICLE_EXPANSION = ClippedNormal(0.0, VENTRICLE_PER_YEAR, 0.03, 0.0, 0.35)


class Scenario:
    """Base class; subclasses set `name` and register themselves."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Scenario]]] = {}
    #: modality name -> cohort.yaml spec (kind, ...). Order is the manifest order.
    modalities: ClassVar[dict[str, dict[str, Any]]] = {}
    targets: ClassVar[dict[str, dict[str, Any]]] = {}
    clinical_columns: ClassVar[tuple[str, ...]] = ()
    records_cnr: ClassVar[bool] = False
    #: modality name -> the latents an ideal reader of that modality could know (the observed-data oracle's
    #: premise: it ignores measurement noise, so it bounds what any model can extract from the modality).
    carries: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Scenario.registry[cls.name] = cls

    def __init__(self, config: SimulationConfig, anatomy: Anatomy) -> None:
        self.config = config
        self.anatomy = anatomy

    @classmethod
    def create(cls, config: SimulationConfig, anatomy: Anatomy) -> Scenario:
        return cls.registry[config.scenario](config, anatomy)

    # --- parameter drawing -------------------------------------------------------------------
    def draw(self, rng: np.random.Generator, index: int) -> dict[str, Any]:
        """All latents of subject `index` (scenario latents, then anatomy/nuisance parameters)."""
        rec: dict[str, Any] = {"subject": f"sub-{index + 1:03d}"}
        rec.update(self.draw_latents(rng))
        rec.update(draw_anatomy(rng, rec["age"]))
        return rec

    def draw_latents(self, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    # --- rendering hooks ---------------------------------------------------------------------
    def modify(self, fields: dict[str, np.ndarray], xt: np.ndarray, rec: dict[str, Any]) -> None:
        """Plant the subject's effects in tissue `fields` (in place) at template mm `xt` (3, N); set
        `fields["lesion"]` to the lesion weight in [0, 1] (zeros without a lesion)."""
        fields["lesion"] = np.zeros_like(fields["gm"])

    def thickness_factor(self, xt: np.ndarray, rec: dict[str, Any]) -> np.ndarray:
        """Multiplicative change of cortical thickness at vertices (V,) from planted lesions."""
        return np.ones(xt.shape[1], dtype=np.float32)

    def clinical(self, rec: dict[str, Any]) -> dict[str, float]:
        return {c: float(rec[c]) for c in self.clinical_columns}

    def target_values(self, rec: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def mnar_shift(self, rec: dict[str, Any]) -> dict[str, float]:
        """Logit shift of each modality's missingness probability under the MNAR scheme."""
        return {}

    # --- observed-data oracle ----------------------------------------------------------------
    def revealed(self, rec: dict[str, Any]) -> frozenset[str]:
        """The latents carried by the subject's present modalities (:attr:`carries`, ``present_*`` flags)."""
        return frozenset(lat for mod, lats in self.carries.items() if rec.get(f"present_{mod}") for lat in lats)

    def observed_oracle(self, records: list[dict[str, Any]]) -> list[float] | None:
        """``p_observed`` per record: P(target | what its present modalities reveal, its missing pattern),
        or None when the scenario has no outcome probability to condition (then no column is written)."""
        return None


def draw_anatomy(rng: np.random.Generator, age: float) -> dict[str, Any]:
    """Subject anatomy and acquisition nuisances (shared by all scenarios)."""
    years = max(age - 20.0, 0.0)
    rec: dict[str, Any] = {
        "gm_atrophy": GM_ATROPHY.draw(rng, years),
        "ventricle_expansion": VENTRICLE_EXPANSION.draw(rng, years),
        "brain_scale": float(rng.normal(1.0, 0.035)),
        "deform_mm": float(rng.uniform(1.0, 3.0)),
    }
    for axis in "xyz":
        rec[f"head_r{axis}_deg"] = float(rng.normal(0, 3.0))
    for axis in "xyz":
        rec[f"head_t{axis}_mm"] = float(rng.normal(0, 4.0))
    for mod in ("flair", "pet"):
        for axis in "xyz":
            rec[f"{mod}_r{axis}_deg"] = float(rng.normal(0, 0.7))
        for axis in "xyz":
            rec[f"{mod}_t{axis}_mm"] = float(rng.normal(0, 1.0))
    rec["render_seed"] = int(rng.integers(0, 2**31 - 1))
    return rec


def pick_vertex(rng: np.random.Generator, weights: np.ndarray) -> int:
    """Draw a cortical vertex with probability proportional to `weights` (V,)."""
    cdf = np.cumsum(np.asarray(weights, dtype=float))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))
