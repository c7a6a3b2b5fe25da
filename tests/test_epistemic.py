"""Epistemic uncertainty: the entropy decomposition, MC dropout, ensembles and the evidential head.

The behavioural checks train tiny models inside the test: three "modalities" of 4 features each, early
fused by zero-filling a missing modality and appending presence flags; trained on complete subjects only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fusemed.uncertainty import (
    Ensemble,
    EvidentialHead,
    MCDropout,
    decompose,
    dirichlet_members,
    dirichlet_uncertainty,
    evidential_loss,
    summarize_members,
)

N_MOD, N_FEAT = 3, 4


def test_decompose_extremes_and_identity() -> None:
    agree = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])  # (K=2, n=1, C=2): both unsure -> aleatoric only
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # both sure, of opposite classes -> epistemic only
    total, alea, epi = decompose(agree)
    assert alea[0] == pytest.approx(np.log(2)) and epi[0] == pytest.approx(0.0)
    total, alea, epi = decompose(disagree)
    assert alea[0] == pytest.approx(0.0, abs=1e-9) and epi[0] == pytest.approx(np.log(2))
    rng = np.random.default_rng(0)
    members = rng.dirichlet(np.ones(4), size=(7, 50))
    total, alea, epi = decompose(members)
    np.testing.assert_allclose(total, alea + epi)
    assert (epi >= 0).all()


def test_summarize_members_interval() -> None:
    rng = np.random.default_rng(1)
    p1 = rng.uniform(size=(50, 30))  # (K, n) binary P(class 1)
    out = summarize_members(p1, interval=0.9)
    np.testing.assert_allclose(out["p"], p1.mean(0))
    np.testing.assert_allclose(out["p_low"], np.quantile(p1, 0.05, axis=0))
    assert (out["p_low"] <= out["p_high"]).all()
    single = summarize_members(p1[:1])
    np.testing.assert_allclose(single["p_low"], single["p_high"])
    np.testing.assert_allclose(single["epistemic"], 0.0, atol=1e-12)


def _data(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Complete subjects: every modality carries the outcome signal."""
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, N_MOD, N_FEAT)) + 1.0 * (2 * y[:, None, None] - 1)
    return _fuse(x, np.ones((n, N_MOD), bool)), torch.tensor(y)


def _fuse(x: np.ndarray, present: np.ndarray) -> torch.Tensor:
    """Zero-fill missing modalities and append presence flags: `(n, M, F)` → `(n, M·F + M)`."""
    x = np.where(present[:, :, None], x, 0.0).reshape(len(x), -1)
    return torch.tensor(np.concatenate([x, present.astype(float)], axis=1), dtype=torch.float32)


def _mlp(seed: int, dropout: float) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(N_MOD * N_FEAT + N_MOD, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(64, 2),
    )


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained() -> dict[str, object]:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x, y = _data(400, rng)
    mc = _train(_mlp(0, dropout=0.3), x, y)
    ens = [_train(_mlp(seed, dropout=0.0), x, y) for seed in range(5)]
    # probe subjects: the same 100 subjects complete, with two modalities missing, and far away
    raw = rng.normal(size=(100, N_MOD, N_FEAT)) + 1.0 * (2 * rng.integers(0, 2, size=100)[:, None, None] - 1)
    complete = np.ones((100, N_MOD), bool)
    one_left = complete.copy()
    one_left[:, 1:] = False
    probes = {
        "complete": _fuse(raw, complete),
        "two_missing": _fuse(raw, one_left),
        "far": _fuse(raw + rng.normal(scale=6.0, size=raw.shape), complete),  # 6 SD of noise added
    }
    return {"mc": mc, "ensemble": ens, "probes": probes}


def _epistemic(members: torch.Tensor) -> np.ndarray:
    return decompose(members.softmax(-1).numpy())[2]


@pytest.mark.parametrize("method", ["mc_dropout", "ensemble"])
def test_epistemic_grows_with_missing_modalities_and_distance(trained: dict, method: str) -> None:
    if method == "mc_dropout":
        wrapper = MCDropout(trained["mc"], n_samples=30, seed=0)
    else:
        wrapper = Ensemble(trained["ensemble"])
    epi = {name: _epistemic(wrapper(x)) for name, x in trained["probes"].items()}
    mean = {name: float(v.mean()) for name, v in epi.items()}
    # the same subjects: nearly every one is less certain with two modalities missing
    assert np.mean(epi["two_missing"] > epi["complete"]) >= 0.9, mean
    assert mean["two_missing"] > 10 * mean["complete"], mean
    # ReLU nets stay confident on some far-away inputs, so this one is on average
    assert mean["far"] > 10 * mean["complete"], mean


def test_mc_dropout_samples_dropout_only_and_restores_modes(trained: dict) -> None:
    model = trained["mc"]
    bn = model[1]
    running_mean = bn.running_mean.clone()
    x = trained["probes"]["complete"]
    passes = MCDropout(model, n_samples=4, seed=0)(x)
    assert passes.shape == (4, 100, 2)
    assert not torch.allclose(passes[0], passes[1])  # dropout is sampled
    torch.testing.assert_close(bn.running_mean, running_mean)  # batch norm stayed in eval mode
    assert not model.training and not model[3].training  # modes restored
    torch.testing.assert_close(MCDropout(model, n_samples=4, seed=0)(x), passes)  # seeded
    with pytest.raises(ValueError, match="no dropout"):
        MCDropout(nn.Linear(3, 2))


def test_evidential_head_learns_and_splits_uncertainty() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = _data(300, rng)
    body = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU())
    head = EvidentialHead(32, n_classes=2)
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for epoch in range(60):
        opt.zero_grad()
        loss = evidential_loss(head(body(x)), y, epoch=epoch, annealing_epochs=20)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        log_alpha = head(body(x))
    accuracy = (log_alpha.softmax(-1).argmax(-1) == y).float().mean()
    assert accuracy > 0.9  # softmax(log α) is the Dirichlet mean: usable as ordinary logits
    unc = dirichlet_uncertainty(log_alpha)
    torch.testing.assert_close(unc["total"], unc["aleatoric"] + unc["epistemic"])
    assert ((unc["vacuity"] > 0) & (unc["vacuity"] <= 1)).all()
    # sampled members reproduce the closed-form mutual information
    samples = dirichlet_members(log_alpha[:20], n_samples=4000).exp().numpy()
    np.testing.assert_allclose(decompose(samples)[2], unc["epistemic"][:20].numpy(), atol=0.01)
