"""Post-hoc temperature scaling (Guo et al. 2017): one scalar T > 0 divides the logits.

Fitted on a held-out calibration split by minimising the negative log-likelihood over log T (SciPy's bounded
Brent search: one scalar needs no gradient, and torch's optimisers stay in the Lightning trainer); it changes
confidence, never the ranking (AUROC is unchanged). Unlike torch-uncertainty's scaler, using it unfitted
raises `sklearn.exceptions.NotFittedError` instead of silently returning uncalibrated output.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from sklearn.exceptions import NotFittedError

log = logging.getLogger(__name__)

T_RANGE = (0.05, 20.0)  # a fitted T outside this range means a degenerate calibration split; it is clipped


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double()
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


class TemperatureScaler:
    """Fit T on calibration logits; `transform` returns logits / T.

    Logits: binary `(n,)` or `(n, 1)` (the logit of class 1), or multiclass `(n, C)`. With
    `member_axis=True` the logits carry a leading member axis `(K, n, ...)` (MC dropout / ensemble) and T
    minimises the NLL of the members' *averaged* probability: the ensemble prediction is what is scored.

    Args:
        max_iter: iterations of the bounded scalar search.
    """

    def __init__(self, max_iter: int = 100) -> None:
        self.max_iter = max_iter

    def fit(
        self, logits: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, member_axis: bool = False
    ) -> TemperatureScaler:
        """Fit T on a calibration split: logits `([K,] n[, C])`, labels `(n,)` integers."""
        z = _as_tensor(logits)
        if not member_axis:
            z = z.unsqueeze(0)
        if z.shape[1] != len(y):
            raise ValueError(f"calibration logits describe {z.shape[1]} subjects but y has {len(y)} labels")
        temperature = fit_pooled_temperature([(z, y)], self.max_iter)
        if not T_RANGE[0] <= temperature <= T_RANGE[1]:  # separable or label-independent calibration data
            log.warning(
                "temperature %.3g outside %s: clipped (is the calibration split degenerate?)",
                temperature,
                T_RANGE,
            )
        self.temperature_ = float(np.clip(temperature, *T_RANGE))
        log.info("temperature scaling: T = %.3f on %d calibration subjects", self.temperature_, z.shape[1])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "temperature_"):
            raise NotFittedError(
                "This TemperatureScaler is not fitted yet: call fit(calibration_logits, y) before transform."
            )

    def transform(self, logits: np.ndarray | torch.Tensor) -> np.ndarray:
        """Scaled logits, same shape as the input (any leading member axis is kept)."""
        self._check_fitted()
        return np.asarray(_as_tensor(logits) / self.temperature_)

    def predict_proba(self, logits: np.ndarray | torch.Tensor) -> np.ndarray:
        """Calibrated probabilities: `(…, n)` / `(…, n, 1)` → P(class 1) `(…, n)`; `(…, n, C)` → softmax."""
        return logits_to_probs(self.transform(logits))


def fit_pooled_temperature(groups: list[tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]],
                           max_iter: int = 100) -> float:
    """The T (unclipped) minimising the NLL of member-averaged probabilities over several groups of subjects.

    Each group is ``(logits (K, n, C'), labels (n,))`` scored by its own model (e.g. one per CV fold; K may
    differ between groups); the objective is the mean NLL over every subject of every group. The search
    spans T in [1e-3, 1e3], wider than ``T_RANGE``, so that a degenerate split shows as a T outside it.
    """
    data = [(_as_tensor(z), _as_tensor(y).long()) for z, y in groups]
    total = sum(len(y) for _, y in data)

    def objective(log_t: float) -> float:
        return float(sum(_nll(z / np.exp(log_t), y) * len(y) for z, y in data) / total)

    result = minimize_scalar(objective, bounds=(np.log(1e-3), np.log(1e3)), method="bounded",
                             options={"maxiter": max_iter, "xatol": 1e-6})
    return float(np.exp(result.x))


def logits_to_probs(logits: np.ndarray | torch.Tensor, binary: bool | None = None) -> np.ndarray:
    """Sigmoid for binary logits (trailing dim absent or 1), softmax over the last axis otherwise."""
    z = _as_tensor(logits)
    if binary is None:
        binary = z.ndim == 1 or z.shape[-1] == 1
    if binary:
        return np.asarray(torch.sigmoid(z.squeeze(-1) if z.ndim > 1 and z.shape[-1] == 1 else z))
    return np.asarray(torch.softmax(z, dim=-1))


def _nll(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """NLL of the member-averaged probability; z `(K, n)`, `(K, n, 1)` or `(K, n, C)`."""
    if z.ndim == 2 or z.shape[-1] == 1:
        z = z.reshape(z.shape[0], z.shape[1])
        log_p1 = F.logsigmoid(z)
        log_p0 = F.logsigmoid(-z)
        log_probs = torch.stack([log_p0, log_p1], dim=-1)
    else:
        log_probs = torch.log_softmax(z, dim=-1)
    log_mean = torch.logsumexp(log_probs, dim=0) - np.log(z.shape[0])
    return -log_mean.gather(-1, y.view(-1, 1)).mean()
