"""Cross-validated training of multimodal models on Lightning, and applying trained runs.

Public API: :class:`TrainConfig`, :func:`train_run`, :func:`evaluate_run`, :func:`predict_run`,
:func:`predict_cohort`.
"""

from __future__ import annotations

import lazy_loader

# lazy (SPEC 1): importing a submodule (e.g. a config) does not import torch, MONAI or Lightning
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["TrainConfig"],
        "predict": ["evaluate_run", "predict_cohort", "predict_run"],
        "runner": ["train_run"],
    },
)
