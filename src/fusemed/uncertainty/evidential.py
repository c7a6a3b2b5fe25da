"""Evidential deep learning: a head that outputs a Dirichlet over class probabilities (Sensoy et al. 2018).

The head maps an embedding `(B, D)` to non-negative evidence e (softplus), α = e + 1, and returns
**log α** `(B, C)`. Returning log α keeps it a drop-in "logits" head: `softmax(log α) = α / S` is the
Dirichlet mean, so code that softmaxes logits gets the right expected probability, and
`evidential_loss` / `dirichlet_uncertainty` read α back with `exp`.

Uncertainty of a Dirichlet splits exactly like an ensemble's (Malinin & Gales 2018), with S = Σ α:
* total     = H[α / S]
* aleatoric = E_{p~Dir(α)} H[p] = Σ_c (α_c / S) (ψ(S + 1) − ψ(α_c + 1))
* epistemic = total − aleatoric (mutual information); plus Sensoy's vacuity u = C / S.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EvidentialHead(nn.Module):
    """Linear layer → softplus evidence → log α `(B, C)`, C ≥ 2 (binary tasks use C = 2)."""

    def __init__(self, in_features: int, n_classes: int = 2) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"an evidential head needs n_classes ≥ 2 (binary: 2); got {n_classes}")
        self.linear = nn.Linear(in_features, n_classes)
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, D)` → log α `(B, C)`."""
        return torch.log(F.softplus(self.linear(x)) + 1.0)


def evidential_loss(
    log_alpha: torch.Tensor, y: torch.Tensor, epoch: int = 0, annealing_epochs: int = 10
) -> torch.Tensor:
    """Sensoy et al. 2018, eq. 5 + KL regulariser: the mean over the batch of

    Σ_c (y_c − p̂_c)² + p̂_c(1 − p̂_c)/(S + 1)  +  λ_t · KL(Dir(α̃) ‖ Dir(1)),

    with p̂ = α/S, α̃ = y + (1 − y)·α (the misleading evidence only) and λ_t = min(1, epoch/annealing_epochs).

    Args:
        log_alpha: `(B, C)` output of `EvidentialHead`.
        y: `(B,)` integer class labels.
        epoch: current epoch (for the KL annealing).
        annealing_epochs: epochs until the KL term reaches full weight.
    """
    alpha = log_alpha.exp()
    n_classes = alpha.shape[-1]
    onehot = F.one_hot(y.long(), n_classes).to(alpha.dtype)
    strength = alpha.sum(-1, keepdim=True)
    p = alpha / strength
    mse = ((onehot - p) ** 2 + p * (1 - p) / (strength + 1)).sum(-1)
    alpha_tilde = onehot + (1 - onehot) * alpha
    kl = _kl_to_uniform(alpha_tilde)
    weight = min(1.0, epoch / annealing_epochs) if annealing_epochs > 0 else 1.0
    return (mse + weight * kl).mean()


def _kl_to_uniform(alpha: torch.Tensor) -> torch.Tensor:
    """KL(Dir(α) ‖ Dir(1, …, 1)) per row, `(B, C)` → `(B,)`."""
    ones = torch.ones_like(alpha)
    return torch.distributions.kl_divergence(torch.distributions.Dirichlet(alpha), torch.distributions.Dirichlet(ones))


def dirichlet_uncertainty(log_alpha: torch.Tensor) -> dict[str, torch.Tensor]:
    """Closed-form uncertainty of Dir(α): `total`, `aleatoric`, `epistemic` (nats), `vacuity`; each `(B,)`."""
    alpha = log_alpha.exp()
    strength = alpha.sum(-1, keepdim=True)
    p = alpha / strength
    total = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
    aleatoric = (p * (torch.digamma(strength + 1) - torch.digamma(alpha + 1))).sum(-1)
    return {
        "total": total,
        "aleatoric": aleatoric,
        "epistemic": (total - aleatoric).clamp_min(0.0),
        "vacuity": alpha.shape[-1] / strength.squeeze(-1),
    }


def dirichlet_members(log_alpha: torch.Tensor, n_samples: int = 50, seed: int = 0) -> torch.Tensor:
    """Sample K probability vectors from Dir(α): `(B, C)` → `(K, B, C)` log-probabilities.

    Lets an evidential model feed the same member-based pipeline (`Posthoc`) as MC dropout and
    ensembles; the sampled mutual information converges to `dirichlet_uncertainty`'s epistemic term.
    """
    alpha = log_alpha.detach().exp().cpu().double()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probs = torch.distributions.Dirichlet(alpha).sample((n_samples,))
    return torch.log(probs.clamp_min(1e-12))
