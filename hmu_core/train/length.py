"""``hmu train length``: the text -> motion-length estimator (reference/momask.md §2.7).

Upstream never published the released estimator's recipe; ``LengthEstTrainer`` (CE, Adam,
grad-norm clip 0.5) is what the repository holds, and we follow it. Each (caption, clip span)
pair of the train split is one example; the target is the span's token length
``min(frames, max_motion_length) // unit_length`` (50 classes, as ``gen_t2m`` samples them).
Text features are encoded once per run.

Files: ``model/finest.tar`` ``{'estimator', 'epoch', 'niter'}`` (best validation loss, the
official name and keys), ``model/latest.tar`` for resuming, ``opt.txt`` with the encoder's
``input_size`` (the released folder has none; ``load_model_dir`` then assumes 512).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hmu_core.data.datasets import TextMotionDataset, meta_stats
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError
from hmu_core.models import build
from hmu_core.models.checkpoints import write_checkpoint
from hmu_core.models.length_estimator import LengthEstimator, LengthEstimatorConfig
from hmu_core.train.data import (
    TextEncoderLike,
    TextFeatureCache,
    opt_updates,
    preset_record,
    resolve_out,
    text_motion_splits,
    write_run_files,
)
from hmu_core.train.loop import LoopState, LRSchedule, RunOptions, prepare_run_dir, run_loop
from hmu_core.train.presets import LengthPreset
from hmu_core.train.runtime import Runtime, init_runtime, seeded, stream_seed
from hmu_core.train.runtime import wrap_ddp as _wrap
from hmu_core.train.vq import TrainResult

log = logging.getLogger(__name__)


def length_pairs(dataset: TextMotionDataset, preset: LengthPreset) -> tuple[list[str],
                                                                            torch.Tensor]:
    """Every (caption, token length) pair of ``dataset``'s entries.

    Returns ``(captions, targets (N,) int64)``, targets clamped to ``output_size - 1``.
    """
    captions: list[str] = []
    targets: list[int] = []
    for entry in dataset.entries:
        frames = min(entry.end - entry.begin, preset.max_motion_length)
        token_len = min(frames // preset.unit_length, preset.output_size - 1)
        for caption in entry.captions:
            captions.append(caption.text)
            targets.append(token_len)
    return captions, torch.tensor(targets, dtype=torch.long)


class LengthTask:
    """The length estimator as a ``loop.TrainTask`` (inputs: cached text features)."""

    state_key = "estimator"
    train_columns = ("loss", "acc")
    val_columns = ("val_loss", "val_acc")

    def __init__(self, model: LengthEstimator, preset: LengthPreset,
                 train: tuple[torch.Tensor, torch.Tensor],
                 val: tuple[torch.Tensor, torch.Tensor] | None, runtime: Runtime,
                 out_dir: Path) -> None:
        self.model = model
        self.preset = preset
        self.train = train
        self.val = val
        self.runtime = runtime
        self.out_dir = out_dir
        self.step = _wrap(model, runtime)
        # LengthEstTrainer: plain Adam (no weight decay term) at the preset's lr.
        self.optimizer = torch.optim.Adam(model.parameters(), lr=preset.schedule.lr)

    def num_items(self) -> int:
        return len(self.train[1])

    def start_epoch(self, epoch: int) -> None:
        del epoch

    def train_step(self, indices: list[int]) -> dict[str, float]:
        feats = self.train[0][indices].to(self.runtime.device)
        target = self.train[1][indices].to(self.runtime.device)
        self.model.train()
        with self.runtime.autocast():
            logits = self.step(feats)
        loss = F.cross_entropy(logits.float(), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.preset.grad_clip)
        self.optimizer.step()
        acc = (logits.argmax(-1) == target).float().mean().item()
        return {"loss": loss.item(), "acc": acc}

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        del epoch
        if self.val is None:
            return {}
        self.model.eval()
        logits = self.model(self.val[0].to(self.runtime.device)).float()
        target = self.val[1].to(self.runtime.device)
        return {"val_loss": F.cross_entropy(logits, target).item(),
                "val_acc": (logits.argmax(-1) == target).float().mean().item()}

    def after_validation(self, epoch: int, total_it: int, val: Mapping[str, float],
                         state: LoopState) -> None:
        if not val or val["val_loss"] >= state.best.get("val_loss", float("inf")):
            return
        state.best["val_loss"] = val["val_loss"]
        write_checkpoint(self.out_dir / "model" / "finest.tar",
                         {"estimator": self.model, "epoch": epoch, "niter": total_it})

    def task_state(self) -> dict[str, Any]:
        return {}

    def load_task_state(self, state: Mapping[str, Any]) -> None:
        del state


def train_length(data_dir: str | Path, text_encoder: TextEncoderLike, preset: LengthPreset,
                 options: RunOptions, *, preset_name: str = "custom",
                 runtime: Runtime | None = None) -> TrainResult:
    """Train a length estimator on ``data_dir``'s train split (features from ``text_encoder``).

    Raises:
        DataError: no caption span of usable length. ConfigError: existing run without
            resume, or a resume with another preset.
    """
    runtime = runtime or init_runtime("auto")
    out_dir = resolve_out(options.out_dir)
    options = dataclasses.replace(options, out_dir=out_dir)
    prepare_run_dir(out_dir, options.resume)
    dataset = HumanML3D(data_dir)
    mean, std = meta_stats(dataset.mean(), dataset.std())
    train_ds, val_ds = text_motion_splits(dataset, mean, std, preset, options.seed)
    train_caps, train_y = length_pairs(train_ds, preset)
    val_pairs = length_pairs(val_ds, preset) if val_ds is not None else None
    texts = TextFeatureCache(text_encoder, train_caps + (val_pairs[0] if val_pairs else []))
    if len(train_y) < preset.schedule.batch_size * runtime.world_size:
        raise ConfigError(f"{len(train_y)} caption pairs are fewer than one batch of "
                          f"{preset.schedule.batch_size} per rank; lower the batch size")
    config = LengthEstimatorConfig(input_size=int(text_encoder.dim),
                                   output_size=preset.output_size)
    with seeded(options.seed):
        model = build("length_estimator", config).to(runtime.device)
    if runtime.is_main and not options.resume:
        write_run_files(out_dir, config, opt_updates(
            preset, preset_name, options.seed,
            text_encoder=str(getattr(text_encoder, "name", "unknown"))))
    runtime.barrier()
    torch.manual_seed(stream_seed(options.seed, runtime.rank))
    val = (texts(val_pairs[0]), val_pairs[1]) if val_pairs else None
    task = LengthTask(model, preset, (texts(train_caps), train_y), val, runtime, out_dir)
    schedule = LRSchedule(task.optimizer, preset.schedule, step_during_warmup=True)
    started = time.perf_counter()
    state = run_loop(task, schedule, preset.schedule, runtime, options,
                     {"hmu_preset": preset_record(preset, preset_name)})
    return TrainResult(out_dir, state.total_it, state.epoch, time.perf_counter() - started,
                       dict(state.best), model)
