"""Temperature scaling repairs an over-confident model and refuses to run unfitted."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from fusemed.evaluation.uncertainty_metrics import ece, nll
from fusemed.uncertainty import TemperatureScaler, logits_to_probs


def _overconfident(rng: np.random.Generator, n: int, n_classes: int, factor: float = 4.0):
    """Labels drawn from softmax(z); the model reports factor·z (4× over-confident)."""
    z = rng.normal(scale=1.5, size=(n, n_classes))
    true = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > true.cumsum(1)).sum(1)
    return factor * z, y


@pytest.mark.parametrize("shape", ["binary_1d", "binary_col", "multiclass"])
def test_temperature_lowers_ece_and_nll(shape: str) -> None:
    rng = np.random.default_rng(0)
    n_classes = 3 if shape == "multiclass" else 2
    z_cal, y_cal = _overconfident(rng, 1500, n_classes)
    z_test, y_test = _overconfident(rng, 3000, n_classes)
    if shape != "multiclass":  # binary logit of class 1 = z1 − z0
        z_cal, z_test = z_cal[:, 1] - z_cal[:, 0], z_test[:, 1] - z_test[:, 0]
        if shape == "binary_col":
            z_cal, z_test = z_cal[:, None], z_test[:, None]
    scaler = TemperatureScaler().fit(z_cal, y_cal)
    assert 3.0 < scaler.temperature_ < 5.5  # recovers the over-confidence factor 4
    before, after = logits_to_probs(z_test), scaler.predict_proba(z_test)
    assert after.shape == before.shape
    assert ece(y_test, after) < 0.5 * ece(y_test, before)
    assert nll(y_test, after) < nll(y_test, before) - 0.1
    # the ranking (hence AUROC) is untouched
    if shape != "multiclass":
        np.testing.assert_array_equal(np.argsort(after.ravel()), np.argsort(before.ravel()))


def test_member_axis_calibrates_the_averaged_prediction() -> None:
    rng = np.random.default_rng(1)
    z, y = _overconfident(rng, 1000, 2)
    members = np.stack([z + rng.normal(scale=0.3, size=z.shape) for _ in range(5)])  # (K, n, C)
    scaler = TemperatureScaler().fit(members, y, member_axis=True)
    probs = scaler.predict_proba(members).mean(axis=0)
    assert scaler.transform(members).shape == members.shape
    assert nll(y, probs) < nll(y, logits_to_probs(members).mean(axis=0))


def test_unfitted_scaler_raises() -> None:
    with pytest.raises(NotFittedError):
        TemperatureScaler().transform(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="subjects"):
        TemperatureScaler().fit(np.zeros((3, 2)), np.zeros(4, int))
