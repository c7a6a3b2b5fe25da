"""3D volume encoders `(B, C, X, Y, Z) -> (B, D)`, built from MONAI blocks and nets.

Group norm with one group (per-sample layer norm over channels and space) instead of batch norm: it
works at any batch size, keeps samples independent, and survives the 1-voxel maps a tiny grid reaches.
`regional` has no convolution at all: regional means on a coarse grid and a linear map, for small n.
"""

from __future__ import annotations

import math

import torch.nn as nn
from monai.networks.blocks import Convolution
from monai.networks.nets import DenseNet
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.encoders.base import Encoder

_NORM = ("group", {"num_groups": 1})


class ConvEncoder(Encoder, name="cnn", kind="volume"):
    """A stack of stride-2 MONAI `Convolution` blocks (one per `config.volume_channels`), global
    average pooling, then a linear map to D. ~20k parameters with the defaults; fast on CPU."""

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        channels = (info.shape[0], *config.volume_channels)
        self.features = nn.Sequential(
            *(
                Convolution(3, c_in, c_out, strides=2, kernel_size=3, act="PRELU", norm=_NORM)
                for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
            ),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
        )
        self.project = nn.Linear(channels[-1], config.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, X, Y, Z)` -> `(B, D)`."""
        return self.project(self.features(x))


class DenseNetEncoder(Encoder, name="densenet", kind="volume"):
    """MONAI's 3D `DenseNet` (2 layers per dense block, growth `volume_channels[0]`), its classifier
    replaced by a linear map to D. One dense block per `volume_channels` entry, fewer when the grid is too
    small for the stem (/4) and transitions (/2 each). (MONAI's `ResNet` is not offered: its residual
    blocks hard-code BatchNorm, which mixes the samples of a batch.)"""

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        smallest = min(info.shape[1:])
        if smallest < 4:
            raise ValueError(f"modality {info.name!r}: densenet needs a grid of at least 4^3, got {info.shape[1:]}")
        n_blocks = max(1, min(len(config.volume_channels), int(math.log2(smallest / 4)) + 1))
        width = config.volume_channels[0]
        self.net = DenseNet(
            spatial_dims=3,
            in_channels=info.shape[0],
            out_channels=config.embed_dim,
            init_features=width,
            growth_rate=width,
            block_config=(2,) * n_blocks,
            bn_size=2,
            norm=_NORM,
            dropout_prob=0.0,
        )

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, X, Y, Z)` -> `(B, D)`."""
        return self.net(x)


class RegionalEncoder(Encoder, name="regional", kind="volume"):
    """A low-capacity volume path: average-pool each channel to a `regional_grid`^3 grid of regional means
    (adaptive, so any grid size works; e.g. 4^3 = 64 blocks of about 15 x 18 x 15 voxels for a 61 x 73 x 61
    scan), flatten, dropout, one `Linear(C * g^3, D)`. A linear model on regional means: no normalisation,
    no learned filters, so it cannot overfit texture when there are few patients."""

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        grid = config.regional_grid
        self.pool = nn.AdaptiveAvgPool3d(grid)  # (B, C, X, Y, Z) -> (B, C, g, g, g)
        self.drop = nn.Dropout(config.dropout)
        self.project = nn.Linear(info.shape[0] * grid**3, config.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, X, Y, Z)` -> `(B, D)`."""
        return self.project(self.drop(self.pool(x).flatten(1)))
