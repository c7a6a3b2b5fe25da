"""Self-configuration (nnU-Net's idea for multimodal prognosis): fingerprint the training fold, derive a plan
of capacity, regularisation and schedule from it, then choose among a small declared search space — the
classical baselines and the fusion strategies — by inner cross-validation on the training fold only."""

from __future__ import annotations

from fusemed.configure.fingerprint import Fingerprint, fingerprint, plan
from fusemed.configure.space import SearchSpace

__all__ = ["Fingerprint", "SearchSpace", "fingerprint", "plan"]
