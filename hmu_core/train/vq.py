"""``hmu train vq``: train the RVQ-VAE as the official ``train_vq.py`` / ``RVQTokenizerTrainer``.

Loss (reference/momask.md §1.4): ``SmoothL1(x̂, x) + loss_vel·SmoothL1 on the ric joint
positions [4:67] + commit·L_commit``; the codebooks learn by EMA only (Gumbel τ = 0.5 and
quantize dropout in training, §7 item 3). Data: every training clip longer than the window
gives ``len − window`` windows, z-normalised with the meta statistics (``Std`` with the root
and foot-contact dims divided by ``feat_bias`` once, §3.2), saved as ``meta/{mean,std}.npy``.

Checkpoints: ``model/latest.tar`` (official keys + ours, including the EMA statistics that the
official code never saves, so a resumed run is identical) and ``model/net_best_fid.tar``
``{'vq_model', 'ep'}``. Upstream selects that file by the evaluator's FID; without an evaluator
here it is selected by the validation reconstruction loss (recorded as ``hmu_selected_on``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from hmu_core.data.datasets import MotionWindowDataset, denormalize, meta_stats
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.models import build
from hmu_core.models.checkpoints import write_checkpoint
from hmu_core.models.rvq.model import RVQVAE, RVQVAEConfig
from hmu_core.motion.features import features_to_joints
from hmu_core.train.data import opt_updates, preset_record, resolve_out, write_run_files
from hmu_core.train.loop import (
    VAL_BATCH,
    LoopState,
    LRSchedule,
    RunOptions,
    adamw,
    prepare_run_dir,
    run_loop,
    val_window_picks,
)
from hmu_core.train.presets import VQPreset
from hmu_core.train.runtime import Runtime, init_runtime, maybe_compile, seeded, stream_seed
from hmu_core.train.runtime import wrap_ddp as _wrap

log = logging.getLogger(__name__)

RIC = slice(4, 4 + 21 * 3)  # root-relative joint positions of the 22-joint skeleton
# Official ``ReConsLoss`` choices (``--recons_loss``).
RECONS_LOSSES = {"l1": F.l1_loss, "l1_smooth": F.smooth_l1_loss, "l2": F.mse_loss}


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or budget-stopped) run reached."""

    out_dir: Path
    total_it: int
    epoch: int
    seconds: float
    best: dict[str, float]
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # this rank's


class VQStep(nn.Module):
    """One training forward of the VQ: the module DDP wraps, so gradients are all-reduced.

    The encoder and decoder run under the runtime's autocast; the quantiser always runs in
    float32 (EMA sums and distances lose too much in bf16). Without autocast this is exactly
    ``RVQVAE.forward`` (encoder -> quantiser(τ = 0.5) -> decoder).
    """

    def __init__(self, vq: RVQVAE, runtime: Runtime) -> None:
        super().__init__()
        self.vq = vq
        self.runtime = runtime

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with self.runtime.autocast():
            latent = self.vq.encoder(self.vq.preprocess(x))
        quantized, _ids, commit, perplexity = self.vq.quantizer(latent.float(),
                                                                sample_codebook_temp=0.5)
        with self.runtime.autocast():
            recon = self.vq.decoder(quantized)
        return recon.float(), commit, perplexity


def sync_codebooks(vq: RVQVAE, runtime: Runtime) -> None:
    """Make every rank's codebooks equal after a step (DDP only).

    The EMA statistics are linear in the batch, so averaging ``code_sum``/``code_count`` over
    the ranks whose layer is initialised gives the EMA of their mean batch statistics; used
    codes become ``sum/count``, dead codes take the lowest such rank's random reset vector.
    (Quantize dropout may leave a layer uninitialised on one rank in the first steps.)
    """
    if not runtime.distributed:
        return
    layers = list(dict.fromkeys(vq.quantizer.layers))  # unique layers (shared codebook)
    device = layers[0].codebook.device
    flags = torch.tensor([int(layer.init) for layer in layers], device=device)
    gathered = [torch.zeros_like(flags) for _ in range(runtime.world_size)]
    dist.all_gather(gathered, flags)
    table = torch.stack(gathered)  # (world, layers)
    for index, layer in enumerate(layers):
        owners = table[:, index].nonzero().flatten().tolist()
        if not owners:
            continue
        if not layer.init:
            layer.code_sum = torch.zeros_like(layer.codebook)
            layer.code_count = torch.zeros(layer.nb_code, device=device)
        dist.all_reduce(layer.code_sum)
        dist.all_reduce(layer.code_count)
        layer.code_sum /= len(owners)
        layer.code_count /= len(owners)
        codebook = layer.codebook.contiguous().clone()
        dist.broadcast(codebook, src=owners[0])
        usage = (layer.code_count >= 1.0).unsqueeze(1)
        layer.codebook = torch.where(usage, layer.code_sum / layer.code_count.unsqueeze(1),
                                     codebook)
        layer.init = True


class VQTask:
    """The RVQ-VAE as a ``loop.TrainTask``."""

    state_key = "vq_model"
    train_columns = ("loss", "loss_rec", "loss_vel", "loss_commit", "perplexity")
    val_columns = ("val_loss_rec", "val_loss_commit", "val_perplexity", "val_mpjpe_mm")

    def __init__(self, vq: RVQVAE, preset: VQPreset, train: MotionWindowDataset,
                 val: MotionWindowDataset | None, runtime: Runtime, out_dir: Path) -> None:
        self.model = vq
        self.preset = preset
        self.train = train
        self.val = val
        self.runtime = runtime
        self.out_dir = out_dir
        self.step = _wrap(VQStep(vq, runtime), runtime)
        self.optimizer = adamw(vq, preset.schedule)

    def num_items(self) -> int:
        return len(self.train)

    def start_epoch(self, epoch: int) -> None:
        del epoch  # windows are fixed; the loop reshuffles them per epoch

    def loss(self, x: torch.Tensor, recon: torch.Tensor, commit: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Official loss: reconstruction + loss_vel·ric term + commit·commitment."""
        criterion = RECONS_LOSSES[self.preset.recons_loss]
        loss_rec = criterion(recon, x)
        loss_vel = criterion(recon[..., RIC], x[..., RIC])
        loss = loss_rec + self.preset.loss_vel * loss_vel + self.preset.commit * commit
        return loss, loss_rec, loss_vel

    def train_step(self, indices: list[int]) -> dict[str, float]:
        x = torch.stack([self.train[i] for i in indices]).to(self.runtime.device)
        self.model.train()
        recon, commit, perplexity = self.step(x)
        loss, loss_rec, loss_vel = self.loss(x, recon, commit)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        sync_codebooks(self.model, self.runtime)
        return {"loss": loss.item(), "loss_rec": loss_rec.item(), "loss_vel": loss_vel.item(),
                "loss_commit": commit.item(), "perplexity": float(perplexity)}

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        """Eval-mode reconstruction of evenly spaced val windows (deterministic, no RNG)."""
        del epoch
        if self.val is None:
            return {}
        self.model.eval()
        picks = val_window_picks(len(self.val), self.preset.schedule.val_batches)
        rec_sum = commit_sum = ppl_sum = err_sum = 0.0
        batches = 0
        poses = 0
        for start in range(0, len(picks), VAL_BATCH):
            x = torch.stack([self.val[int(i)] for i in picks[start:start + VAL_BATCH]])
            x = x.to(self.runtime.device)
            recon, commit, perplexity = self.model(x)
            rec_sum += F.smooth_l1_loss(recon, x).item()
            commit_sum += float(commit)
            ppl_sum += float(perplexity)
            batches += 1
            for a, b in zip(x.cpu().numpy(), recon.float().cpu().numpy(), strict=True):
                ja = features_to_joints(denormalize(a, self.val.mean, self.val.std))
                jb = features_to_joints(denormalize(b, self.val.mean, self.val.std))
                ja, jb = ja - ja[:, :1], jb - jb[:, :1]  # root-relative (official MPJPE)
                err_sum += float(np.linalg.norm(ja - jb, axis=-1).mean(axis=-1).sum())
                poses += len(ja)
        return {"val_loss_rec": rec_sum / batches, "val_loss_commit": commit_sum / batches,
                "val_perplexity": ppl_sum / batches, "val_mpjpe_mm": 1000.0 * err_sum / poses}

    def after_validation(self, epoch: int, total_it: int, val: Mapping[str, float],
                         state: LoopState) -> None:
        score = val.get("val_loss_rec")
        if score is None or score >= state.best.get("val_loss_rec", float("inf")):
            return
        state.best["val_loss_rec"] = score
        write_checkpoint(self.out_dir / "model" / "net_best_fid.tar",
                         {"vq_model": self.model, "ep": epoch, "total_it": total_it,
                          "hmu_selected_on": "val_loss_rec"})

    def task_state(self) -> dict[str, Any]:
        """The EMA statistics of every codebook (plain attributes upstream, never saved)."""
        return {"ema": [{"init": layer.init, "code_sum": layer.code_sum,
                         "code_count": layer.code_count} for layer in self.model.quantizer.layers]}

    def load_task_state(self, state: Mapping[str, Any]) -> None:
        device = self.runtime.device
        for layer, ema in zip(self.model.quantizer.layers, state["ema"], strict=True):
            layer.init = bool(ema["init"])
            layer.code_sum = None if ema["code_sum"] is None else ema["code_sum"].to(device)
            layer.code_count = None if ema["code_count"] is None else \
                ema["code_count"].to(device)


def train_vq(data_dir: str | Path, preset: VQPreset, options: RunOptions, *,
             preset_name: str = "custom", runtime: Runtime | None = None) -> TrainResult:
    """Train an RVQ-VAE on ``data_dir``'s train split into ``options.out_dir``.

    Args:
        data_dir: a HumanML3D-layout dataset with ``Mean.npy``/``Std.npy`` and split files.
        preset: architecture, losses and schedule (``presets.get_preset("vq", ...)``).
        options: output directory, seed, resume, logging.
        preset_name: recorded in opt.txt and the checkpoint.
        runtime: device/DDP setup; default ``init_runtime("auto")``.

    Raises:
        DataError: the dataset is missing files or has no clip longer than the window.
        ConfigError: the output directory already holds a run (without resume), or a resumed
            run used another preset.
    """
    if preset.recons_loss not in RECONS_LOSSES:
        raise ConfigError(f"recons_loss {preset.recons_loss!r} unknown; use one of "
                          f"{', '.join(RECONS_LOSSES)}")
    runtime = runtime or init_runtime("auto")
    out_dir = resolve_out(options.out_dir)
    options = dataclasses.replace(options, out_dir=out_dir)
    prepare_run_dir(out_dir, options.resume)
    dataset = HumanML3D(data_dir)
    mean, std = meta_stats(dataset.mean(), dataset.std(), preset.feat_bias)
    train = MotionWindowDataset(dataset, dataset.ids("train"), mean, std, preset.window_size)
    try:
        val: MotionWindowDataset | None = MotionWindowDataset(
            dataset, dataset.ids("val"), mean, std, preset.window_size)
    except DataError as error:
        log.warning("no validation windows (%s); net_best_fid.tar will not be written", error)
        val = None
    if len(train) < preset.schedule.batch_size * runtime.world_size:
        raise ConfigError(f"{len(train)} training windows are fewer than one batch of "
                          f"{preset.schedule.batch_size} per rank; lower the batch size")
    config = RVQVAEConfig(**preset.model_config(dataset.feature_dim))
    with seeded(options.seed):
        vq = build("rvqvae", config).to(runtime.device)
    maybe_compile([vq.encoder, vq.decoder], runtime)
    if runtime.is_main and not options.resume:
        write_run_files(out_dir, config, opt_updates(preset, preset_name, options.seed),
                        mean, std)
    runtime.barrier()
    torch.manual_seed(stream_seed(options.seed, runtime.rank))
    task = VQTask(vq, preset, train, val, runtime, out_dir)
    schedule = LRSchedule(task.optimizer, preset.schedule, step_during_warmup=False)
    started = time.perf_counter()
    state = run_loop(task, schedule, preset.schedule, runtime, options,
                     {"hmu_preset": preset_record(preset, preset_name)})
    return TrainResult(out_dir, state.total_it, state.epoch, time.perf_counter() - started,
                       dict(state.best), vq)
