"""The training baselines: fine-tune (FT) and retrain on the retain set (D_r).

FT continues training the set's transformers (base, then residual) from their weights on the
dataset's train/val clips minus the forget clips, for a few epochs; D_r trains the same
architectures from a fresh seeded initialisation on the same clips, with the full preset
schedule, which is the paper's "model that never saw the concept" reference. In both the VQ is
frozen in eval mode (its codebook is a buffer that a train-mode forward would re-initialise)
and is copied unchanged, as is the length estimator.

Training runs go to a scratch directory beside the output and are removed afterwards; the
record keeps each run's iterations, epochs, time and best validation numbers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from hmu_core.atomic import scratch_dir
from hmu_core.data.concept_data import ConceptData
from hmu_core.errors import ConfigError
from hmu_core.models.model_set import LoadedModelSet
from hmu_core.train.loop import RunOptions
from hmu_core.train.presets import get_preset, with_overrides
from hmu_core.train.runtime import Runtime
from hmu_core.train.transformers import train_transformer

METHODS = ("finetune", "retrain")
TRAIN_KIND = {"mask_transformer": "mask", "bamm_transformer": "bamm",
              "res_transformer": "res"}


@dataclass(frozen=True)
class TrainBaselineConfig:
    """What to train: preset schedule, an epoch or iteration budget, the seed, a learning rate."""

    method: str
    preset: str = "tiny"
    epochs: int | None = None
    max_iters: int | None = None
    lr: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown training baseline {self.method!r}; use one of {METHODS}")
        for name in ("epochs", "max_iters"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "preset": self.preset, "epochs": self.epochs,
                "max_iters": self.max_iters, "lr": self.lr, "seed": self.seed}


def _preset(kind: str, config: TrainBaselineConfig) -> Any:
    preset = with_overrides(get_preset(kind, config.preset), epochs=config.epochs,
                            max_iters=config.max_iters)
    if config.epochs is not None and config.max_iters is None:
        # An epoch budget alone means "this many epochs", not "the preset's iterations".
        preset = with_overrides(preset, max_iters=0)
    if config.lr is not None:
        preset = preset.replace(schedule=preset.schedule.replace(lr=config.lr))
    return preset


def train_baseline(loaded: LoadedModelSet, data: ConceptData, text_encoder: Any,
                   config: TrainBaselineConfig, runtime: Runtime, scratch_parent: Path,
                   progress: bool = False) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Fine-tune or retrain the set's transformers; returns (part -> model, per-part results).

    Raises:
        ConfigError / DataError: a bad budget, no train pairs left after removing the forget
            clips, a text encoder of the wrong width.
    """
    parts = [p for p in ("trans", "res") if p in loaded.parts]
    trained: dict[str, nn.Module] = {}
    results: dict[str, Any] = {}
    scratch = scratch_dir(scratch_parent, "train")
    try:
        for part in parts:
            source = loaded.parts[part]
            kind = TRAIN_KIND[source.kind]
            options = RunOptions(out_dir=scratch / part, seed=config.seed, progress=progress)
            result = train_transformer(
                kind, data.dataset.root, loaded.models.vq, text_encoder,
                _preset(kind, config), options, preset_name=config.preset, runtime=runtime,
                exclude_ids=data.forget_ids, init=source.model,
                init_weights=config.method == "finetune")
            trained[part] = result.model.eval()
            results[part] = {"iterations": result.total_it, "epochs": result.epoch,
                             "seconds": round(result.seconds, 3), "best": result.best}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return trained, results
