"""MoMask RVQ-VAE (official ``models/vq/model.RVQVAE``) and its opt.txt-backed config.

State-dict keys and shapes match the official module exactly (reference/momask.md §1.5), and
``encode`` / ``forward`` / ``forward_decoder`` keep their official names, arguments and
return values, so code written against the official module runs against this one.
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
from hmu_core.models.rvq.encdec import ACTIVATIONS, NORMS, Decoder, Encoder
from hmu_core.models.rvq.residual_vq import ResidualVQ

# dim_pose per dataset name, as the official get_opt derives it (momask.md §2.1; Mamiglia fork
# adds HumanML3D / Motion-X with the same 263-d features, §0.1 item 3).
DIM_POSE = {"t2m": 263, "humanml3d": 263, "HumanML3D": 263, "Motion-X": 263, "kit": 251}


@dataclass(frozen=True)
class RVQVAEConfig:
    """RVQ-VAE architecture, spelled as the official opt.txt keys; defaults = released
    ``rvq_nq6_dc512_nc512_noshare_qdp0.2`` (momask.md §1.1). Training keys of the file
    (``lr``, ``milestones``, ...) stay raw in ``extra``."""

    dataset_name: str = "t2m"
    nb_code: int = 512  # codes per quantiser layer
    code_dim: int = 512  # latent / code width
    output_emb_width: int = 512  # must equal code_dim (asserted upstream)
    width: int = 512  # conv channels
    depth: int = 3  # residual blocks per Resnet1D
    down_t: int = 2  # number of ×2 temporal down/upsampling stages
    stride_t: int = 2
    dilation_growth_rate: int = 3
    vq_act: str = "relu"
    vq_norm: str | None = None  # "None" in opt.txt
    num_quantizers: int = 6
    shared_codebook: bool = False
    quantize_dropout_prob: float = 0.2
    mu: float = 0.99  # EMA decay of the codebooks
    # Feature width; not in opt.txt, derived from dataset_name like the official get_opt.
    input_width: int = field(default=263, metadata={"opt": "derived"})
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)
    opt_key_names: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    OPT_ALIASES: ClassVar[dict[str, str]] = {"lr_scheduler": "milestones"}
    # Keys of the official RVQVAE constructor (fixture JSON "constructor", args flattened),
    # and how they map to our field names.
    CONSTRUCTOR_KEYS: ClassVar[tuple[str, ...]] = (
        "num_quantizers", "shared_codebook", "quantize_dropout_prob", "mu", "input_width",
        "nb_code", "code_dim", "output_emb_width", "down_t", "stride_t", "width", "depth",
        "dilation_growth_rate", "activation", "norm",
    )
    CONSTRUCTOR_ALIASES: ClassVar[dict[str, str]] = {"activation": "vq_act", "norm": "vq_norm"}

    def __post_init__(self) -> None:
        if self.output_emb_width != self.code_dim:
            raise ConfigError(
                f"output_emb_width ({self.output_emb_width}) must equal code_dim "
                f"({self.code_dim}), as the official RVQVAE asserts"
            )
        if self.stride_t != 2:
            raise ConfigError(
                f"stride_t={self.stride_t} is not supported: the official decoder upsamples by "
                f"a hard-coded 2 (momask.md §7 item 1), so only stride_t=2 round-trips"
            )
        if self.vq_act not in ACTIVATIONS:
            raise ConfigError(f"vq_act {self.vq_act!r} unknown; use one of {ACTIVATIONS}")
        if self.vq_norm not in NORMS:
            raise ConfigError(f"vq_norm {self.vq_norm!r} unknown; use one of {NORMS}")
        for name in ("nb_code", "code_dim", "width", "depth", "down_t", "num_quantizers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.quantize_dropout_prob <= 1.0:
            raise ConfigError(
                f"quantize_dropout_prob must lie in [0, 1], got {self.quantize_dropout_prob}"
            )

    @property
    def unit_length(self) -> int:
        """Frames per token (4 for the released model)."""
        return 2**self.down_t

    @classmethod
    def from_opt(cls, raw: Mapping[str, str], source: str | os.PathLike = "opt.txt",
                 overrides: Mapping[str, Any] | None = None) -> RVQVAEConfig:
        """Config from ``read_opt`` output; ``input_width`` follows ``dataset_name``."""
        overrides = dict(overrides or {})
        if "input_width" not in overrides:
            name = raw.get("dataset_name", cls.dataset_name)
            if name not in DIM_POSE:
                raise ConfigError(
                    f"{source}: dataset_name {name!r} has no known feature width "
                    f"(known: {sorted(DIM_POSE)}); pass input_width explicitly"
                )
            overrides["input_width"] = DIM_POSE[name]
        return config_from_opt(cls, raw, cls.OPT_ALIASES, source=source, overrides=overrides)

    def to_opt(self) -> dict[str, str]:
        """Raw opt.txt key -> value strings (write them with ``write_opt``)."""
        return config_to_opt(self)

    def replace(self, **changes: Any) -> RVQVAEConfig:
        return dataclasses.replace(self, **changes)


class RVQVAE(nn.Module):
    """Conv encoder -> residual VQ -> conv decoder over HumanML3D features.

    Shapes: motion (B, T, input_width) normalised features, T a multiple of ``unit_length``
    (otherwise floored); tokens (B, T / 4, num_quantizers).
    """

    def __init__(self, config: RVQVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.code_dim = config.code_dim
        self.num_code = config.nb_code
        conv = dict(
            down_t=config.down_t, stride_t=config.stride_t, width=config.width,
            depth=config.depth, dilation_growth_rate=config.dilation_growth_rate,
            activation=config.vq_act, norm=config.vq_norm,
        )
        self.encoder = Encoder(config.input_width, config.output_emb_width, **conv)
        self.decoder = Decoder(config.input_width, config.output_emb_width, **conv)
        self.quantizer = ResidualVQ(
            config.num_quantizers, config.shared_codebook, config.quantize_dropout_prob, 0,
            nb_code=config.nb_code, code_dim=config.code_dim, mu=config.mu,
        )

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, D, T) float32."""
        return x.permute(0, 2, 1).float()

    def postprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> (B, T, D)."""
        return x.permute(0, 2, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) motion -> ``(code_idx (B, T/4, Q) int64, all_codes (Q, B, C, T/4))``.

        Deterministic (argmax) even in training mode, but a training-mode call also runs the
        EMA update, so keep the VQ in ``eval()`` (momask.md §7 item 2).
        """
        x_encoder = self.encoder(self.preprocess(x))
        return self.quantizer.quantize(x_encoder, return_latent=True)

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) -> ``(reconstruction (B, T, D), commit_loss, perplexity)``.

        Training mode quantises with Gumbel noise at τ = 0.5 and applies quantize dropout
        (momask.md §7 item 3); ``generator`` drives both, so a training step is reproducible.
        """
        x_encoder = self.encoder(self.preprocess(x))
        x_quantized, _ids, commit_loss, perplexity = self.quantizer(
            x_encoder, sample_codebook_temp=0.5, generator=generator
        )
        return self.decoder(x_quantized), commit_loss, perplexity

    def forward_decoder(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n, q) token ids, q ≤ Q, −1 = none -> (B, 4n, D) motion.

        Missing layers and −1 ids decode as zero vectors; padded positions are decoded too,
        so the output length is 4·n (momask.md §7 item 5).
        """
        x_d = self.quantizer.get_codes_from_indices(x)  # (Q, B, n, C)
        return self.decoder(x_d.sum(dim=0).permute(0, 2, 1))
