"""Training presets: the official MoMask/BAMM hyperparameters and a CPU-sized ``tiny`` set.

``humanml3d`` restates the released runs (reference/momask.md §1.1, §2.1, §2.6;
baselines.md §1.4): RVQ ``rvq_nq6_dc512_nc512_noshare_qdp0.2`` (batch 256, window 64, AdamW
2e-4, warm-up 2000, milestones 150k/250k, gamma 0.05, 50 epochs), transformers ``ld384 ff1024
8 layers 6 heads`` (batch 64, AdamW 2e-4 wd 1e-5, warm-up 2000, milestone 50k, gamma 0.1,
500 epochs). The length estimator's recipe is undetermined upstream (§2.7); we use the
``LengthEstTrainer`` settings (CE, Adam 1e-4, grad clip 0.5) with a documented epoch count.

``tiny`` is sized for the synthetic ``small`` set on 2 CPU cores: VQ + mask (or BAMM) +
residual in about 30 minutes in total. Widths, codes and quantisers are small and the
iteration budgets are fixed (``max_iters``), with warm-up and milestones scaled to them.

Presets are frozen; ``dataclasses.replace`` (or ``.replace``) derives a variant, e.g. the
``--max-iters`` override of the CLI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hmu_core.errors import ConfigError

PRESET_NAMES = ("tiny", "humanml3d")
TRAIN_KINDS = ("vq", "mask", "res", "bamm", "length")


@dataclass(frozen=True)
class Schedule:
    """Optimiser and schedule shared by every trainer (official names where they exist).

    ``max_iters`` 0 means "until ``max_epoch``"; with both set, training stops at the first.
    """

    batch_size: int
    lr: float
    warm_up_iter: int  # linear warm-up lr*(it+1)/(warm_up_iter+1) while it < warm_up_iter
    milestones: tuple[int, ...]  # MultiStepLR milestones (iterations)
    gamma: float
    weight_decay: float
    max_epoch: int
    max_iters: int = 0
    save_latest: int = 500  # write model/latest.tar every this many iterations
    log_every: int = 10  # CSV row of averaged training losses every this many iterations
    val_batches: int = 0  # cap on validation batches (0: the whole val split)
    val_every: int = 0  # also validate every this many iterations (0: at epoch ends only)

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_epoch", "save_latest", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warm_up_iter", "max_iters", "val_batches", "val_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"milestones must be increasing, got {list(self.milestones)}")

    def replace(self, **changes: Any) -> Schedule:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class VQPreset:
    """RVQ-VAE architecture (``RVQVAEConfig`` fields) plus its training losses and data window."""

    schedule: Schedule
    nb_code: int
    code_dim: int
    width: int
    depth: int
    down_t: int = 2
    dilation_growth_rate: int = 3
    num_quantizers: int = 6
    quantize_dropout_prob: float = 0.2
    mu: float = 0.99
    window_size: int = 64
    commit: float = 0.02  # weight of the commitment loss
    loss_vel: float = 0.5  # weight of the SmoothL1 on the ric joint positions [4:67]
    recons_loss: str = "l1_smooth"
    feat_bias: float = 5.0  # meta std = Std with [0:4] and [-4:] divided by this, once

    def replace(self, **changes: Any) -> VQPreset:
        return dataclasses.replace(self, **changes)

    def model_config(self, input_width: int) -> dict[str, Any]:
        """Keyword arguments of ``RVQVAEConfig`` for features of ``input_width`` dims."""
        return dict(nb_code=self.nb_code, code_dim=self.code_dim, output_emb_width=self.code_dim,
                    width=self.width, depth=self.depth, down_t=self.down_t, stride_t=2,
                    dilation_growth_rate=self.dilation_growth_rate,
                    num_quantizers=self.num_quantizers,
                    quantize_dropout_prob=self.quantize_dropout_prob, mu=self.mu,
                    input_width=input_width)


@dataclass(frozen=True)
class TransformerPreset:
    """Token transformer widths (official opt keys) plus schedule and data protocol."""

    schedule: Schedule
    latent_dim: int
    ff_size: int
    num_layers: int
    num_heads: int
    dropout: float = 0.2
    cond_drop_prob: float = 0.1
    share_weight: bool = True  # residual transformer only
    max_motion_length: int = 196  # frames; 49 tokens (BAMM's generate assumes 49 slots)
    min_motion_length: int = 40
    unit_length: int = 4

    def replace(self, **changes: Any) -> TransformerPreset:
        return dataclasses.replace(self, **changes)

    def model_config(self, kind: str) -> dict[str, Any]:
        """Architecture keyword arguments for ``mask``, ``res`` or ``bamm`` (the VQ- and
        encoder-derived ones, ``code_dim``/``num_tokens``/``clip_dim``, are added by the trainer).
        """
        config: dict[str, Any] = dict(latent_dim=self.latent_dim, ff_size=self.ff_size,
                                      num_layers=self.num_layers, num_heads=self.num_heads,
                                      dropout=self.dropout, cond_drop_prob=self.cond_drop_prob)
        if kind == "res":
            config["share_weight"] = self.share_weight
        return config


@dataclass(frozen=True)
class LengthPreset:
    """Length estimator: CE over ``output_size`` token-length classes, Adam, grad clipping."""

    schedule: Schedule
    output_size: int = 50
    grad_clip: float = 0.5
    max_motion_length: int = 196
    min_motion_length: int = 40
    unit_length: int = 4

    def replace(self, **changes: Any) -> LengthPreset:
        return dataclasses.replace(self, **changes)


Preset = VQPreset | TransformerPreset | LengthPreset

_OFFICIAL_TRANS = Schedule(batch_size=64, lr=2e-4, warm_up_iter=2000, milestones=(50_000,),
                           gamma=0.1, weight_decay=1e-5, max_epoch=500, save_latest=500,
                           log_every=50)
# Tiny: 2 CPU cores, the synthetic 'small' set (about 0.12 s per VQ step and 0.25 s per mask
# step on 2 idle cores). On synth small (scripts/eval_family_match.py --vq-only), held-out clips
# sent through the VQ keep their action family for the ground-truth classifier 92.9 % of the
# time after 3600 VQ steps (90.4 % after 1800; real clips 98.2 %), and the tiny MoMask / BAMM
# sets built on it match the caption's family for 82.5 % / 80.0 % of held-out captions
# (scripts/train_tiny_models.sh; VQ + transformer + residual about 22 min each). More
# transformer steps helped little in an earlier run, so the VQ gets the larger share.
_TINY_TRANS = Schedule(batch_size=64, lr=1e-3, warm_up_iter=100, milestones=(1600,),
                       gamma=0.2, weight_decay=1e-5, max_epoch=1000, max_iters=2000,
                       save_latest=250, log_every=25, val_batches=8)

_PRESETS: dict[tuple[str, str], Preset] = {
    ("vq", "humanml3d"): VQPreset(
        schedule=Schedule(batch_size=256, lr=2e-4, warm_up_iter=2000,
                          milestones=(150_000, 250_000), gamma=0.05, weight_decay=0.0,
                          max_epoch=50, save_latest=500, log_every=10),
        nb_code=512, code_dim=512, width=512, depth=3, num_quantizers=6),
    ("vq", "tiny"): VQPreset(
        schedule=Schedule(batch_size=64, lr=1e-3, warm_up_iter=100, milestones=(1500,),
                          gamma=0.2, weight_decay=0.0, max_epoch=1000, max_iters=3600,
                          save_latest=250, log_every=25, val_batches=8),
        nb_code=256, code_dim=64, width=96, depth=2, num_quantizers=4),
    ("mask", "humanml3d"): TransformerPreset(
        schedule=_OFFICIAL_TRANS, latent_dim=384, ff_size=1024, num_layers=8, num_heads=6,
        dropout=0.2, cond_drop_prob=0.1),
    ("mask", "tiny"): TransformerPreset(
        schedule=_TINY_TRANS, latent_dim=128, ff_size=256, num_layers=3, num_heads=4,
        dropout=0.1, cond_drop_prob=0.1),
    ("res", "humanml3d"): TransformerPreset(
        schedule=_OFFICIAL_TRANS, latent_dim=384, ff_size=1024, num_layers=8, num_heads=6,
        dropout=0.2, cond_drop_prob=0.2, share_weight=True),
    ("res", "tiny"): TransformerPreset(
        schedule=_TINY_TRANS.replace(max_iters=1200, milestones=(1000,)), latent_dim=128,
        ff_size=256, num_layers=2, num_heads=4, dropout=0.1, cond_drop_prob=0.2,
        share_weight=True),
    ("bamm", "humanml3d"): TransformerPreset(
        schedule=_OFFICIAL_TRANS, latent_dim=384, ff_size=1024, num_layers=8, num_heads=6,
        dropout=0.2, cond_drop_prob=0.1),
    ("bamm", "tiny"): TransformerPreset(
        schedule=_TINY_TRANS, latent_dim=128, ff_size=256, num_layers=3, num_heads=4,
        dropout=0.1, cond_drop_prob=0.1),
    ("length", "humanml3d"): LengthPreset(
        schedule=Schedule(batch_size=64, lr=1e-4, warm_up_iter=0, milestones=(), gamma=1.0,
                          weight_decay=0.0, max_epoch=100, save_latest=500, log_every=50)),
    ("length", "tiny"): LengthPreset(
        schedule=Schedule(batch_size=64, lr=1e-3, warm_up_iter=0, milestones=(), gamma=1.0,
                          weight_decay=0.0, max_epoch=30, save_latest=250, log_every=25)),
}


def get_preset(kind: str, name: str) -> Preset:
    """The preset for trainer ``kind`` (vq | mask | res | bamm | length) and ``name``.

    Raises:
        ConfigError: unknown kind or preset name (both lists are in the message).
    """
    if kind not in TRAIN_KINDS:
        raise ConfigError(f"unknown trainer {kind!r}; use one of {', '.join(TRAIN_KINDS)}")
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {name!r}; use one of {', '.join(PRESET_NAMES)}")
    return _PRESETS[(kind, name)]


def with_overrides(preset: Any, *, max_iters: int | None = None,
                   epochs: int | None = None, batch_size: int | None = None) -> Any:
    """``preset`` with the iteration/epoch budget or batch size of every training stage
    replaced: each of its ``Schedule`` fields (the evaluator has two stages, movement and
    matching; a budget that capped only one would leave the other running its full length)."""
    changes: dict[str, int] = {}
    if max_iters is not None:
        changes["max_iters"] = max_iters
    if epochs is not None:
        changes["max_epoch"] = epochs
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if not changes:
        return preset
    stages = {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)
              if isinstance(getattr(preset, f.name), Schedule)}
    return dataclasses.replace(preset, **{name: stage.replace(**changes)
                                          for name, stage in stages.items()})
