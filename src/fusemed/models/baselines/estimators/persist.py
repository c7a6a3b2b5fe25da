"""Saving a fitted scikit-learn object without pickle: skops.io with an explicit trusted-type list.

Why: a pickle runs arbitrary code when loaded, and run folders get shared. skops stores the object as
a schema and refuses to build any type it is not told to trust; we trust scikit-learn's own defaults
plus exactly the few extra types our pipelines contain, and refuse a file that asks for anything else.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

from fusemed.io import atomic_save

log = logging.getLogger(__name__)

#: types (beyond skops' defaults) that a baseline's fitted pipeline may contain
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.model_selection._split.StratifiedKFold",  # LogisticRegressionCV keeps its seeded splitter
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
    "sklearn.tree._tree.Tree",  # rsf: scikit-survival's forest of survival trees
    "sksurv.ensemble.forest.RandomSurvivalForest",
    "sksurv.tree.tree.SurvivalTree",
)


def save_estimator(path: str | Path, estimator: Any) -> Path:
    """Write ``estimator`` to ``path`` (a ``.skops`` file) atomically."""
    import skops.io as sio

    return atomic_save(path, lambda tmp: sio.dump(estimator, tmp, compression=zipfile.ZIP_DEFLATED))


def load_estimator(path: str | Path) -> Any:
    """Read a ``.skops`` file, refusing it if it needs any type outside skops' defaults and ``TRUSTED_TYPES``."""
    import skops.io as sio

    path = Path(path)
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ValueError(f"{path}: refusing to load types that no baseline uses: {unexpected}")
    log.debug("loading %s (trusting %s)", path, untrusted)
    return sio.load(path, trusted=untrusted)
