"""3D volume encoders `(B, C, X, Y, Z) -> (B, D)`, built from MONAI blocks and nets.

Group norm with one group (per-sample layer norm over channels and space) instead of batch norm: it
works at any batch size, keeps samples independent, and survives the 1-voxel maps a tiny grid reaches.
"""

from __future__ import annotations

import torch.nn as nn
from monai.networks.blocks import Convolution
from monai.networks.nets import ResNet
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


class ResNetEncoder(Encoder, name="resnet", kind="volume"):
    """MONAI's 3D `ResNet` with one basic block per stage, widths `config.volume_channels` (padded to four
    stages by doubling), its classifier replaced by a linear map to D."""

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        widths = list(config.volume_channels)
        while len(widths) < 4:
            widths.append(widths[-1] * 2)
        self.net = ResNet(
            block="basic",
            layers=[1, 1, 1, 1],
            block_inplanes=widths[:4],
            spatial_dims=3,
            n_input_channels=info.shape[0],
            conv1_t_size=3,
            conv1_t_stride=2,
            no_max_pool=True,
            num_classes=config.embed_dim,
            norm=_NORM,
        )

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, X, Y, Z)` -> `(B, D)`."""
        return self.net(x)
