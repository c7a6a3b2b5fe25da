"""Product of Gaussian experts: each present modality votes with a mean and a precision."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.fusion.base import Fusion


class PoEFusion(Fusion, name="poe"):
    """Wu & Goodman 2018 (MVAE), U-HVED (MICCAI 2019): modality m gives `N(mu_m, sigma_m^2)`; with a
    prior expert `N(0, 1)` the product is Gaussian with precision `T = 1 + sum_m T_m` and mean
    `sum_m T_m mu_m / T`. An absent expert simply drops out of the sums; with nothing present the prior
    remains, so the product is always defined. Output `[z | log sigma^2]` `(B, 2D)`: the head also sees
    how certain the joint posterior is. `z` is a reparameterised sample in training
    (`config.poe_sample`), the mean in eval.
    """

    mechanism = "product of Gaussian experts with an N(0, 1) prior expert"
    on_missing = "the expert drops out of the product"
    source = "Wu & Goodman 2018 (MVAE); U-HVED (MICCAI 2019)"

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__(modalities, config)
        d = config.embed_dim
        self.experts = nn.ModuleDict({m.name: nn.Linear(d, 2 * d) for m in self.streams})
        self.sample = config.poe_sample
        self.out_dim = 2 * d

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        params = torch.stack([self.experts[name](embeddings[name]) for name in self.stream_names], dim=1)
        mu, logvar = params.chunk(2, dim=-1)  # (B, S, D) each
        precision = torch.exp(-logvar.clamp(-8.0, 8.0))
        mask = present.unsqueeze(-1)
        precision = torch.where(mask, precision, precision.new_zeros(()))
        weighted = torch.where(mask, mu * precision, mu.new_zeros(()))
        total = 1.0 + precision.sum(dim=1)  # prior expert: precision 1, mean 0
        mean = weighted.sum(dim=1) / total
        joint_logvar = -torch.log(total)
        z = mean
        if self.training and self.sample:
            z = mean + torch.exp(0.5 * joint_logvar) * torch.randn_like(mean)
        return torch.cat([z, joint_logvar], dim=-1)
