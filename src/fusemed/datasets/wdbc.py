"""``wdbc``: Wisconsin Diagnostic Breast Cancer, 569 fine-needle aspirates, benign vs malignant.

Source
    Street WN, Wolberg WH, Mangasarian OL. *Nuclear feature extraction for breast tumor diagnosis.*
    IS&T/SPIE Electronic Imaging 1905:861-870 (1993). UCI Machine Learning Repository,
    doi:10.24432/C5DW2B, licence CC BY 4.0. Shipped with scikit-learn
    (``sklearn.datasets.load_breast_cancer``, BSD-3-Clause package).

What the numbers are
    Ten properties of the cell nuclei segmented in a digitised image of each aspirate (radius, texture,
    perimeter, area, smoothness, compactness, concavity, concave points, symmetry, fractal dimension),
    each summarised over the nuclei of the image as the mean, the standard error and the "worst"
    (mean of the three largest values).

Cohort layout (569 subjects ``wdbc-0001`` … ``wdbc-0569``; 212 malignant, 357 benign)
    * ``mean``, ``se``, ``worst`` (tabular, 10 columns each): ``mean_radius`` … ``mean_fractal_dimension``,
      ``se_radius`` …, ``worst_radius`` …
    * ``malignant`` (binary): 1 = malignant (scikit-learn codes malignant as 0; flipped here).
    * ``missing > 0``: each view is dropped independently for that share of subjects (MCAR, seeded);
      a subject drawn missing in all three gets one back, so the realised share is slightly lower at
      high rates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusemed.datasets._common import DATASETS, blank, check_missing, mcar_views, write_tables

VIEWS = ["mean", "se", "worst"]
PROPERTIES = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
              "concave points", "symmetry", "fractal dimension"]


def _source_column(view: str, prop: str) -> str:
    return f"{prop} error" if view == "se" else f"{view} {prop}"


def _column(view: str, prop: str) -> str:
    return f"{view}_{prop.replace(' ', '_')}"


def load_wdbc(out: str | Path, *, seed: int = 0, missing: float = 0.0) -> Path:
    """Write WDBC as a cohort folder in ``out``; see the module docstring."""
    from sklearn.datasets import load_breast_cancer

    missing = check_missing(missing)
    data = load_breast_cancer(as_frame=True)
    x = data.frame
    if list(data.target_names) != ["malignant", "benign"]:
        raise ValueError(f"wdbc: unexpected class names {list(data.target_names)}")
    manifest = pd.DataFrame({"subject": [f"wdbc-{i + 1:04d}" for i in range(len(x))]})
    columns = {view: [_column(view, p) for p in PROPERTIES] for view in VIEWS}
    for view in VIEWS:
        for prop in PROPERTIES:
            manifest[_column(view, prop)] = x[_source_column(view, prop)].to_numpy(float)
    manifest["malignant"] = (data.target.to_numpy() == 0).astype(int)
    dropped = mcar_views(np.random.default_rng(seed), len(manifest), VIEWS, missing)
    for view, rows in dropped.items():
        blank(manifest, columns[view], rows)
    return write_tables(out, "wdbc", manifest, columns, {"malignant": {"kind": "binary"}})


DATASETS.register("wdbc", load_wdbc)
