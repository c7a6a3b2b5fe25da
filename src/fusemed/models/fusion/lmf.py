"""Low-rank multimodal fusion: the tensor-fusion outer product, factorised, with learned placeholders."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.fusion.base import Fusion


class LMFFusion(Fusion, name="lmf"):
    """Liu et al., ACL 2018: TFN's `(D+1)^M` outer product `⊗_m [e_m, 1]` projected to D, computed as
    `sum_r w_r prod_m ([e_m, 1] W_m^(r)) + b` with rank-R factors `W_m^(r)` `(D+1, D)`. LMF has no
    native notion of a missing modality (a zero factor would zero the whole product), so a missing
    `e_m` is replaced by a learned placeholder.
    """

    mechanism = "low-rank factorisation of the tensor-fusion outer product"
    on_missing = "none natively: learned placeholder"
    source = "Liu et al., ACL 2018; TFN (Zadeh 2017)"

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__(modalities, config)
        n, d, rank = len(self.streams), config.embed_dim, config.lmf_rank
        self.placeholder = nn.Parameter(torch.randn(n, d) * 0.02)
        # Start near the additive (unimodal) terms of the TFN product: the row that multiplies the
        # appended 1 is 1, the rest small, so prod_m (1 + e_m W_m) ~ 1 + sum_m e_m W_m at first. A
        # random init makes a product of M factors heavy-tailed (M = 6 for the coma cohort) and slow to train.
        factors = torch.randn(n, rank, d + 1, d) / d
        factors[:, :, d, :] = 1.0
        self.factors = nn.Parameter(factors)
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(d))
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(config.dropout)

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        stacked = self.stack(embeddings, present, fill=self.placeholder)  # (B, S, D)
        ones = stacked.new_ones(*stacked.shape[:2], 1)
        augmented = torch.cat([stacked, ones], dim=-1)  # (B, S, D+1)
        per_modality = torch.einsum("bsi,srio->sbro", augmented, self.factors)  # (S, B, R, D)
        fused = torch.einsum("bro,r->bo", per_modality.prod(dim=0), self.rank_weights) + self.bias
        return self.drop(self.norm(fused))
