"""The training loop every ``hmu train`` verb shares: schedule, batches, checkpoints, logs.

- Schedule (reference/momask.md §1.4, §2.6, §7 item 16): AdamW; linear warm-up
  ``lr·(it+1)/(warm_up_iter+1)`` while ``it < warm_up_iter``; ``MultiStepLR`` stepped after
  warm-up only (VQ) or every iteration (transformers: warm-up overrides the lr directly).
- Batches: a ``DistributedSampler`` permutation per epoch (seed + epoch), ``drop_last``, so a
  run is a pure function of (seed, epoch, batch index) and a resumed run can skip straight to
  the batch where the last checkpoint was taken.
- Checkpoints: ``model/latest.tar`` holds the official keys (``<state>``, ``opt_<state>``,
  ``scheduler``, ``ep``, ``total_it``) plus ours (``hmu_*``: position in the epoch, RNG state
  of every rank, task state such as the VQ's EMA statistics, best validation values), written
  atomically. Resuming from it reproduces an uninterrupted run bit for bit on the CPU.
- Logs: ``train_log.csv`` (training losses averaged over ``log_every`` iterations, validation
  metrics each epoch) and, when the package is importable, TensorBoard under ``tb/``.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from hmu_core.atomic import write_text
from hmu_core.errors import ConfigError
from hmu_core.models.checkpoints import read_checkpoint, write_checkpoint
from hmu_core.train.presets import Schedule
from hmu_core.train.runtime import Runtime, gather_rng_states, restore_rng_states

log = logging.getLogger(__name__)

LATEST = "latest.tar"
LOG_FILE = "train_log.csv"
LOG_COLUMNS = ("iter", "epoch", "phase", "lr", "seconds")


@dataclass
class RunOptions:
    """How to run (not what to train): output, seed, resume, logging, test hooks.

    Attributes:
        out_dir: the model directory to create (official layout) or resume.
        seed: fixes initial weights, batch order, masks and dropout.
        resume: continue from ``out_dir/model/latest.tar``.
        tensorboard: also log to ``out_dir/tb`` (needs the ``tensorboard`` package).
        progress: show a tqdm bar (the CLI turns it on; library calls stay quiet).
        on_step: called with the iteration count after each step (tests use it to simulate a
            kill by raising).
    """

    out_dir: Path
    seed: int = 0
    resume: bool = False
    tensorboard: bool = False
    progress: bool = False
    on_step: Callable[[int], None] | None = None


@dataclass
class LoopState:
    """Where a run stands; saved in ``latest.tar``."""

    epoch: int = 0
    batch_in_epoch: int = 0
    total_it: int = 0
    best: dict[str, float] = field(default_factory=dict)
    # training losses summed since the last CSV row (so a resumed run logs the same means)
    pending: dict[str, float] = field(default_factory=dict)
    pending_count: int = 0
    seconds: float = 0.0  # training wall time before this process (resumed runs)


class TrainTask(Protocol):
    """What a trainer gives the loop."""

    state_key: str  # official checkpoint key: vq_model, t2m_transformer, res_transformer, ...
    model: nn.Module  # the module saved under state_key
    optimizer: torch.optim.Optimizer
    train_columns: tuple[str, ...]
    val_columns: tuple[str, ...]

    def num_items(self) -> int: ...
    def start_epoch(self, epoch: int) -> None: ...
    def train_step(self, indices: list[int]) -> dict[str, float]: ...
    def validate(self, epoch: int) -> dict[str, float]: ...
    def after_validation(self, epoch: int, total_it: int, val: Mapping[str, float],
                         state: LoopState) -> None: ...
    def task_state(self) -> dict[str, Any]: ...
    def load_task_state(self, state: Mapping[str, Any]) -> None: ...


def prepare_run_dir(out_dir: Path, resume: bool) -> None:
    """Refuse to start a new run over an existing one, or to resume a run that is not there.

    Raises:
        ConfigError: with the fix (``--resume`` or another directory).
    """
    latest = Path(out_dir) / "model" / LATEST
    if resume and not latest.is_file():
        raise ConfigError(f"nothing to resume: {latest} does not exist; drop --resume to start "
                          "a new run")
    if not resume and latest.exists():
        raise ConfigError(f"{out_dir} already holds a training run ({latest}); pass --resume to "
                          "continue it or choose another --out directory")


def warmup_lr(base_lr: float, it: int, warm_up_iter: int) -> float:
    """Official ``update_lr_warm_up``: ``base_lr·(it+1)/(warm_up_iter+1)``."""
    return base_lr * (it + 1) / (warm_up_iter + 1)


class LRSchedule:
    """Warm-up then ``MultiStepLR`` (milestones in iterations), as the official trainers.

    Args:
        step_during_warmup: True for the transformers (scheduler stepped every iteration),
            False for the VQ (stepped only once ``it >= warm_up_iter``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Schedule,
                 step_during_warmup: bool) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self.step_during_warmup = step_during_warmup
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(schedule.milestones), gamma=schedule.gamma)

    def before_step(self, it: int) -> None:
        if it < self.schedule.warm_up_iter:
            lr = warmup_lr(self.schedule.lr, it, self.schedule.warm_up_iter)
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def after_step(self, it: int) -> None:
        if self.step_during_warmup or it >= self.schedule.warm_up_iter:
            self.scheduler.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


def adamw(model: nn.Module, schedule: Schedule) -> torch.optim.AdamW:
    """The official optimiser: AdamW(lr, betas (0.9, 0.99), weight_decay)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                             lr=schedule.lr, betas=(0.9, 0.99),
                             weight_decay=schedule.weight_decay)


VAL_BATCH = 32
"""Windows per validation batch of the window-based trainers (VQ, movement autoencoder)."""


def val_window_picks(num_windows: int, val_batches: int) -> np.ndarray:
    """Indices of the validation windows to score: ``val_batches * VAL_BATCH`` of them (all
    when ``val_batches`` is 0), evenly spaced, so validation needs no RNG and is comparable
    across epochs."""
    cap = val_batches * VAL_BATCH or num_windows
    return np.unique(np.linspace(0, num_windows - 1, min(cap, num_windows)).astype(int))


def epoch_batches(num_items: int, batch_size: int, seed: int, epoch: int,
                  runtime: Runtime) -> list[list[int]]:
    """This rank's batches of epoch ``epoch``: shuffled by (seed, epoch), ``drop_last``."""
    sampler = DistributedSampler(range(num_items), num_replicas=runtime.world_size,
                                 rank=runtime.rank, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    order = list(sampler)
    count = len(order) // batch_size
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(count)]


class MetricLog:
    """``train_log.csv`` (+ TensorBoard) on rank 0; a no-op on other ranks."""

    def __init__(self, out_dir: Path, columns: tuple[str, ...], runtime: Runtime,
                 tensorboard: bool, resume_it: int | None) -> None:
        self.path = out_dir / LOG_FILE
        self.columns = (*LOG_COLUMNS, *columns)
        self.enabled = runtime.is_main
        self.writer = None
        if not self.enabled:
            return
        if resume_it is not None and self.path.is_file():
            self._truncate(resume_it)
        elif not self.path.is_file() or resume_it is None:
            write_text(self.path, ",".join(self.columns) + "\n")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("TensorBoard logging asked for, but the tensorboard package is not "
                            "installed (pip install tensorboard); logging to %s only", self.path)
            else:
                self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=resume_it)

    def _truncate(self, resume_it: int) -> None:
        """Drop rows written after the checkpoint we resume from (they will be redone)."""
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows or tuple(rows[0]) != self.columns:
            raise ConfigError(f"{self.path} has columns {rows[:1]}, expected {self.columns}; "
                              "it belongs to another kind of run")
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= resume_it]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(kept)
        write_text(self.path, buffer.getvalue())

    def write(self, it: int, epoch: int, phase: str, lr: float, seconds: float,
              values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        row = {"iter": it, "epoch": epoch, "phase": phase, "lr": f"{lr:.6g}",
               "seconds": f"{seconds:.1f}", **{k: f"{v:.6g}" for k, v in values.items()}}
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerow(
                [row.get(c, "") for c in self.columns])
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{phase}/{key}", value, it)
            self.writer.add_scalar(f"{phase}/lr", lr, it)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def save_latest(task: TrainTask, lr_schedule: LRSchedule, state: LoopState, runtime: Runtime,
                out_dir: Path, extra: Mapping[str, Any]) -> None:
    """Write ``model/latest.tar`` atomically (rank 0); every rank contributes its RNG state."""
    rng = gather_rng_states(runtime)
    if runtime.is_main:
        payload = {
            task.state_key: task.model,
            f"opt_{task.state_key}": task.optimizer.state_dict(),
            "scheduler": lr_schedule.scheduler.state_dict(),
            "ep": state.epoch, "total_it": state.total_it,
            "hmu_batch_in_epoch": state.batch_in_epoch, "hmu_best": dict(state.best),
            "hmu_pending": dict(state.pending), "hmu_pending_count": state.pending_count,
            "hmu_seconds": state.seconds,
            "hmu_rng": rng, "hmu_task": task.task_state(), **extra,
        }
        write_checkpoint(out_dir / "model" / LATEST, payload)
    runtime.barrier()


def _budget_free(record: Mapping[str, Any]) -> dict[str, Any]:
    """A preset record without the iteration/epoch budget (which a resume may extend)."""
    out = dict(record)
    if isinstance(out.get("schedule"), Mapping):
        out["schedule"] = {k: v for k, v in out["schedule"].items()
                           if k not in ("max_iters", "max_epoch")}
    return out


def load_latest(task: TrainTask, lr_schedule: LRSchedule, runtime: Runtime,
                out_dir: Path, preset: Mapping[str, Any] | None = None) -> LoopState:
    """Restore model, optimiser, scheduler, task state and RNG from ``model/latest.tar``.

    Raises:
        ConfigError: no checkpoint, one from another trainer, or one trained with other
            hyperparameters than ``preset`` (the budget may differ).
    """
    path = out_dir / "model" / LATEST
    if not path.is_file():
        raise ConfigError(f"nothing to resume: {path} does not exist; drop --resume to start "
                          "a new run")
    ckpt = read_checkpoint(path)
    saved = ckpt.get("hmu_preset")
    if preset is not None and isinstance(saved, Mapping) and \
            _budget_free(saved) != _budget_free(preset):
        raise ConfigError(f"{path} was trained with {_budget_free(saved)}, this run asks for "
                          f"{_budget_free(preset)}; resume with the same preset (only "
                          "--max-iters/--epochs may change)")
    missing = [k for k in (task.state_key, f"opt_{task.state_key}", "scheduler", "total_it",
                           "hmu_rng", "hmu_task") if k not in ckpt]
    if missing:
        raise ConfigError(f"{path} lacks {missing}: it was not written by hmu train (or by "
                          "another trainer); start a new run in another directory")
    task.model.load_state_dict(ckpt[task.state_key])
    task.optimizer.load_state_dict(ckpt[f"opt_{task.state_key}"])
    lr_schedule.scheduler.load_state_dict(ckpt["scheduler"])
    task.load_task_state(ckpt["hmu_task"])
    restore_rng_states(list(ckpt["hmu_rng"]), runtime)
    state = LoopState(epoch=int(ckpt["ep"]), batch_in_epoch=int(ckpt["hmu_batch_in_epoch"]),
                      total_it=int(ckpt["total_it"]), best=dict(ckpt.get("hmu_best", {})),
                      pending=dict(ckpt.get("hmu_pending", {})),
                      pending_count=int(ckpt.get("hmu_pending_count", 0)),
                      seconds=float(ckpt.get("hmu_seconds", 0.0)))
    log.info("resuming %s at iteration %d (epoch %d, batch %d)", path, state.total_it,
             state.epoch, state.batch_in_epoch)
    return state


def run_loop(task: TrainTask, lr_schedule: LRSchedule, schedule: Schedule, runtime: Runtime,
             options: RunOptions, extra: Mapping[str, Any] | None = None) -> LoopState:
    """Train ``task`` until ``max_iters`` or ``max_epoch``; returns the final state.

    ``extra`` entries are added to every ``latest.tar`` (e.g. the preset, for resume checks).
    """
    out_dir = Path(options.out_dir)
    extra = dict(extra or {})
    state = LoopState()
    if options.resume:
        state = load_latest(task, lr_schedule, runtime, out_dir, extra.get("hmu_preset"))
    metrics = MetricLog(out_dir, (*task.train_columns, *task.val_columns), runtime,
                        options.tensorboard, state.total_it if options.resume else None)
    max_iters = schedule.max_iters or None
    started = time.perf_counter() - state.seconds  # the CSV's clock continues over resumes
    bar = None
    if options.progress and runtime.is_main:
        from tqdm import tqdm

        total = max_iters or schedule.max_epoch * (task.num_items() // (
            schedule.batch_size * runtime.world_size))
        bar = tqdm(total=total, initial=state.total_it, unit="it", desc=task.state_key)

    def done() -> bool:
        return max_iters is not None and state.total_it >= max_iters

    last_val = -1

    def validate() -> None:
        nonlocal last_val
        val = task.validate(state.epoch)
        metrics.write(state.total_it, state.epoch, "val", lr_schedule.lr,
                      time.perf_counter() - started, val)
        if runtime.is_main:
            task.after_validation(state.epoch, state.total_it, val, state)
        runtime.barrier()
        last_val = state.total_it

    try:
        while state.epoch < schedule.max_epoch and not done():
            batches = epoch_batches(task.num_items(), schedule.batch_size, options.seed,
                                    state.epoch, runtime)
            if not batches:
                raise ConfigError(f"{task.num_items()} training items give no full batch of "
                                  f"{schedule.batch_size} per rank; lower the batch size")
            task.start_epoch(state.epoch)
            while state.batch_in_epoch < len(batches) and not done():
                lr_schedule.before_step(state.total_it + 1)
                values = task.train_step(batches[state.batch_in_epoch])
                state.total_it += 1
                state.batch_in_epoch += 1
                lr_schedule.after_step(state.total_it)
                for key, value in values.items():
                    state.pending[key] = state.pending.get(key, 0.0) + value
                state.pending_count += 1
                if state.total_it % schedule.log_every == 0:
                    means = {k: v / state.pending_count for k, v in state.pending.items()}
                    metrics.write(state.total_it, state.epoch, "train", lr_schedule.lr,
                                  time.perf_counter() - started, means)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in list(means.items())[:3]})
                    state.pending, state.pending_count = {}, 0
                if bar is not None:
                    bar.update(1)
                if schedule.val_every and state.total_it % schedule.val_every == 0:
                    validate()
                state.seconds = time.perf_counter() - started
                if state.total_it % schedule.save_latest == 0:
                    save_latest(task, lr_schedule, state, runtime, out_dir, extra)
                if options.on_step is not None:
                    options.on_step(state.total_it)
            if state.batch_in_epoch >= len(batches):
                if last_val != state.total_it:
                    validate()
                state.epoch += 1
                state.batch_in_epoch = 0
        if last_val != state.total_it:
            validate()
        state.seconds = time.perf_counter() - started
        save_latest(task, lr_schedule, state, runtime, out_dir, extra)
    finally:
        if bar is not None:
            bar.close()
        metrics.close()
    return state
