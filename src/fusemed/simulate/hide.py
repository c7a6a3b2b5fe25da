"""A copy of a complete simulated cohort with modalities hidden, the hidden ones kept for later reveal.

Why: to check what ``fusemed advise`` predicts, the modality it advises on must exist. The simulator writes a
cohort with every modality present (``missing: 0``); this writes a second cohort folder whose manifest
blanks the modalities the simulator *would* have left out at ``missing`` and ``missing_scheme`` (MCAR, or
MNAR driven by severity). The draw is the simulator's own (:func:`draw_cohort`: same seed, same subjects and
latents, the presence stream ``[seed, 2, i]``), so hiding follows exactly the rules of a cohort simulated
with that missingness, derived modalities included (the cortex goes when T1, FLAIR or PET goes). No image
is copied: the manifest points into the complete cohort (``data_root``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import yaml

from fusemed.cohort import Cohort
from fusemed.io import load_yaml
from fusemed.simulate.api import draw_cohort
from fusemed.simulate.config import SimulationConfig
from fusemed.simulate.writer import write_table

log = logging.getLogger(__name__)


def hide_modalities(full: str | Path, out: str | Path, config: SimulationConfig) -> Path:
    """Write ``out``: the cohort ``full`` (simulated by ``config`` with ``missing = 0``) with the modalities
    ``config.missing`` / ``config.missing_scheme`` leave out blanked; ``truth/oracle.csv`` gets the
    observed-data oracle of the hidden patterns. Returns ``out``."""
    full, out = Path(full).resolve(), Path(out)
    cohort = Cohort.load(full)
    _, _, records = draw_cohort(config)
    manifest = pd.read_csv(full / "manifest.csv", dtype=str, keep_default_na=False)
    present = pd.DataFrame(records).set_index("subject")
    out.mkdir(parents=True, exist_ok=True)
    relative = Path(os.path.relpath(full, out.resolve()))
    for name, spec in cohort.spec.modalities.items():
        columns = spec.columns if spec.kind.value == "tabular" else [spec.column or name]
        hidden = ~manifest["subject"].map(present[f"present_{name}"]).astype(bool)
        if spec.kind.value != "tabular":
            shown = manifest[columns[0]] != ""
            manifest.loc[shown, columns[0]] = [(relative / p).as_posix() for p in manifest.loc[shown, columns[0]]]
        manifest.loc[hidden, columns] = ""
    for key, target in cohort.spec.targets.items():  # lesion masks point into the full cohort too
        if target.kind.value in ("mask", "vertex_mask"):
            column = target.column or key
            shown = manifest[column] != ""
            manifest.loc[shown, column] = [(relative / p).as_posix() for p in manifest.loc[shown, column]]
    raw = load_yaml(full / "cohort.yaml")
    raw.update(name=out.name, data_root=relative.as_posix())
    write_table(out / "truth" / "oracle.csv", present.reset_index()[["subject", "p_outcome", "p_observed"]])
    manifest.to_csv(out / "manifest.csv", index=False)
    (out / "cohort.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))  # last: the cohort is complete
    log.info("hid modalities of %s (%s %.0f %%) into %s", full.name, config.missing_scheme, 100 * config.missing, out)
    return out
