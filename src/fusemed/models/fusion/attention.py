"""Attention fusion: a transformer over one token per modality, missing tokens masked out."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.fusion.base import Fusion, masked_mean


class AttentionFusion(Fusion, name="attention"):
    """Tokens `e_m + t_m` (learned modality-type embedding `t_m`) through `nn.TransformerEncoder` with a
    key-padding mask (missing tokens are never attended to), then the mean of the present tokens.

    As in MulT / mmFormer; Ma et al. (CVPR 2022) show transformers are not robust to missing modalities
    by themselves, so train with ModDrop.
    """

    mechanism = "transformer over modality tokens, mean of the present tokens"
    on_missing = "key-padding mask: never attended to"
    source = "MulT; mmFormer (MICCAI 2022)"

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__(modalities, config)
        d = config.embed_dim
        self.type_embedding = nn.Parameter(torch.randn(len(self.streams), d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d,
            config.attention_heads,
            dim_feedforward=2 * d,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, config.attention_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        tokens = self.stack(embeddings, present) + self.type_embedding
        tokens = self.transformer(tokens, src_key_padding_mask=~present)
        return masked_mean(tokens, present)
