"""MoMask length estimator (official ``models/vq/model.LengthEstimator``).

An MLP from a CLIP text feature (512-d) to logits over token lengths 0..49 (motion frames =
4·token length). ``gen_t2m`` samples the length from ``softmax(logits)`` instead of taking the
argmax (reference/momask.md §2.7, §7 item 17); ``sample_token_lengths`` does the same with an
explicit generator.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from hmu_core.errors import ConfigError
from hmu_core.models.opt import config_from_opt, config_to_opt

HIDDEN = 512  # hard-coded ``nd`` upstream


@dataclass(frozen=True)
class LengthEstimatorConfig:
    """Constructor arguments of the official module; defaults = the released estimator.

    The released ``length_estimator`` folder has no opt.txt; ``from_opt``/``to_opt`` exist so
    our own directories can carry one.
    """

    input_size: int = 512  # CLIP ViT-B/32 text feature width
    output_size: int = 50  # token-length classes
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    CONSTRUCTOR_KEYS: ClassVar[tuple[str, ...]] = ("input_size", "output_size")
    OPT_ALIASES: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LengthEstimator {name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_opt(cls, raw: Mapping[str, str], source: str | os.PathLike = "opt.txt",
                 overrides: Mapping[str, Any] | None = None) -> LengthEstimatorConfig:
        return config_from_opt(cls, raw, cls.OPT_ALIASES, source=source, overrides=overrides)

    def to_opt(self) -> dict[str, str]:
        return config_to_opt(self)

    def replace(self, **changes: Any) -> LengthEstimatorConfig:
        return dataclasses.replace(self, **changes)


class LengthEstimator(nn.Module):
    """(B, input_size) text features -> (B, output_size) logits over token lengths.

    Layout of ``output`` (indices are state-dict keys): Linear, LN, LeakyReLU(0.2), Dropout(0.2)
    ×2 (512 -> 256), then Linear, LN, LeakyReLU (-> 128), Linear (-> output_size).
    """

    def __init__(self, config: LengthEstimatorConfig) -> None:
        super().__init__()
        self.config = config
        nd = HIDDEN
        self.output = nn.Sequential(
            nn.Linear(config.input_size, nd), nn.LayerNorm(nd),
            nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.2),
            nn.Linear(nd, nd // 2), nn.LayerNorm(nd // 2),
            nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.2),
            nn.Linear(nd // 2, nd // 4), nn.LayerNorm(nd // 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(nd // 4, config.output_size),
        )
        self.output.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """Official init: Linear N(0, 0.02) with zero bias, LayerNorm (1, 0)."""
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def forward(self, text_emb: torch.Tensor) -> torch.Tensor:
        """(B, input_size) float -> (B, output_size) logits."""
        if text_emb.ndim != 2 or text_emb.shape[-1] != self.config.input_size:
            raise ConfigError(
                f"LengthEstimator expects (B, {self.config.input_size}) text features, got "
                f"{tuple(text_emb.shape)}; pass the pooled CLIP text feature"
            )
        return self.output(text_emb)

    @torch.no_grad()
    def sample_token_lengths(
        self, text_emb: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw token lengths (B,) int64 from ``softmax(logits)``, as ``gen_t2m`` does.

        Frames are ``unit_length`` (4) × the token length. Call in eval mode.
        """
        probs = torch.softmax(self(text_emb), dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
