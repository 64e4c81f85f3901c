"""Convolutional encoder/decoder of the MoMask RVQ-VAE, with the official module layout.

Module indices inside the ``nn.Sequential`` containers are part of the state-dict key format
(``encoder.model.2.1.model.0.conv1.weight``), so the order of blocks must not change
(reference/momask.md §1.2, §1.5).
"""

from __future__ import annotations

import torch
from torch import nn

from hmu_core.errors import ConfigError

ACTIVATIONS = ("relu", "silu", "gelu")
NORMS = (None, "None", "LN", "GN", "BN")


class Swish(nn.Module):
    """``x * sigmoid(x)``: the official ``nonlinearity`` used for ``vq_act=silu``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "silu":
        return Swish()
    if name == "gelu":
        return nn.GELU()
    raise ConfigError(f"vq_act {name!r} is not supported; use one of {ACTIVATIONS}")


def _norm(name: str | None, channels: int) -> nn.Module:
    if name == "LN":
        return nn.LayerNorm(channels)
    if name == "GN":
        return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)
    if name == "BN":
        return nn.BatchNorm1d(num_features=channels, eps=1e-6, affine=True)
    if name in (None, "None"):
        # vq_norm "None" (a string after get_opt) means no normalisation (momask.md §1.1).
        return nn.Identity()
    raise ConfigError(f"vq_norm {name!r} is not supported; use one of {NORMS}")


class ResConv1DBlock(nn.Module):
    """Pre-activation residual block: norm -> act -> dilated conv3 -> norm -> act -> conv1
    -> Dropout(0.2), added to the input (momask.md §7 item 1). Input/output (B, C, T)."""

    def __init__(
        self, n_in: int, n_state: int, dilation: int = 1, activation: str = "relu",
        norm: str | None = None, dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.norm = norm
        self.norm1 = _norm(norm, n_in)
        self.norm2 = _norm(norm, n_in)
        self.activation1 = _activation(activation)
        self.activation2 = _activation(activation)
        self.conv1 = nn.Conv1d(n_in, n_state, 3, 1, dilation, dilation)
        self.conv2 = nn.Conv1d(n_state, n_in, 1, 1, 0)
        self.dropout = nn.Dropout(dropout)

    def _norm_act(self, x: torch.Tensor, norm: nn.Module, act: nn.Module) -> torch.Tensor:
        if self.norm == "LN":  # LayerNorm normalises channels, so move them last and back
            return act(norm(x.transpose(-2, -1)).transpose(-2, -1))
        return act(norm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._norm_act(x, self.norm1, self.activation1)
        y = self.conv1(y)
        y = self._norm_act(y, self.norm2, self.activation2)
        y = self.dropout(self.conv2(y))
        return x + y


class Resnet1D(nn.Module):
    """``depth`` ResConv1DBlocks with dilations ``growth**d``, reversed by default.

    The official encoder does not pass ``reverse_dilation`` either, so both encoder and
    decoder use [9, 3, 1] for depth 3 (momask.md §7 item 1).
    """

    def __init__(
        self, n_in: int, n_depth: int, dilation_growth_rate: int = 1,
        reverse_dilation: bool = True, activation: str = "relu", norm: str | None = None,
    ) -> None:
        super().__init__()
        blocks = [
            ResConv1DBlock(n_in, n_in, dilation=dilation_growth_rate**d,
                           activation=activation, norm=norm)
            for d in range(n_depth)
        ]
        if reverse_dilation:
            blocks = blocks[::-1]
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Encoder(nn.Module):
    """(B, input_width, T) -> (B, output_emb_width, T / stride_t**down_t); T is floored."""

    def __init__(
        self, input_emb_width: int = 3, output_emb_width: int = 512, down_t: int = 2,
        stride_t: int = 2, width: int = 512, depth: int = 3, dilation_growth_rate: int = 3,
        activation: str = "relu", norm: str | None = None,
    ) -> None:
        super().__init__()
        filter_t, pad_t = stride_t * 2, stride_t // 2
        blocks: list[nn.Module] = [nn.Conv1d(input_emb_width, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            blocks.append(nn.Sequential(
                nn.Conv1d(width, width, filter_t, stride_t, pad_t),
                Resnet1D(width, depth, dilation_growth_rate, activation=activation, norm=norm),
            ))
        blocks.append(nn.Conv1d(width, output_emb_width, 3, 1, 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """(B, output_emb_width, n) -> (B, 2**down_t * n, input_width), already permuted to NTC.

    The upsampling factor is hard-coded to 2 as upstream (momask.md §7 item 1); a config with
    ``stride_t != 2`` is rejected by ``RVQVAEConfig`` rather than silently mis-sized.
    """

    def __init__(
        self, input_emb_width: int = 3, output_emb_width: int = 512, down_t: int = 2,
        stride_t: int = 2, width: int = 512, depth: int = 3, dilation_growth_rate: int = 3,
        activation: str = "relu", norm: str | None = None,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv1d(output_emb_width, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            blocks.append(nn.Sequential(
                Resnet1D(width, depth, dilation_growth_rate, reverse_dilation=True,
                         activation=activation, norm=norm),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(width, width, 3, 1, 1),
            ))
        blocks += [nn.Conv1d(width, width, 3, 1, 1), nn.ReLU(),
                   nn.Conv1d(width, input_emb_width, 3, 1, 1)]
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).permute(0, 2, 1)
