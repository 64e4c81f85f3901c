"""``hmu train mask | res | bamm``: token transformers over a frozen RVQ-VAE.

Protocol (reference/momask.md §2.6, §3.3; baselines.md §1.4): each batch is (caption,
motion normalised with the **VQ's** meta statistics and zero-padded to 196 frames, length);
``vq.encode`` runs with the VQ in eval mode (a train-mode call would re-initialise its
codebooks, §7 item 2), padded frames included; ``m_lens = length // 4``. MoMask's
M-transformer and BAMM learn layer 0, the R-transformer all layers. The models' own
``forward`` is the official loss (masking, BERT corruption, q schedule, BAMM's teacher forcing
with END). Text features come from a per-run cache (``data.TextFeatureCache``).

Files (official dict keys): ``model/latest.tar`` ``{<state>, opt_<state>, scheduler, ep,
total_it}`` + ours; M/BAMM ``net_best_acc.tar`` (best validation accuracy); R
``net_best_loss.tar`` and ``net_best_fid.tar`` (best validation loss: upstream picks the latter
by the evaluator's FID, which needs the T2M evaluator; recorded as ``hmu_selected_on``).
Loaders take M/BAMM from ``latest.tar`` and R from ``net_best_fid.tar``, as upstream.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hmu_core.data.datasets import TextMotionDataset
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError
from hmu_core.models import build, resolve_kind
from hmu_core.models.checkpoints import load_model_dir, write_checkpoint
from hmu_core.train.data import (
    TextEncoderLike,
    TextFeatureCache,
    collate_pairs,
    opt_updates,
    preset_record,
    resolve_out,
    text_motion_splits,
    write_run_files,
)
from hmu_core.train.loop import (
    LoopState,
    LRSchedule,
    RunOptions,
    adamw,
    prepare_run_dir,
    run_loop,
)
from hmu_core.train.presets import TransformerPreset
from hmu_core.train.runtime import Runtime, init_runtime, maybe_compile, seeded, stream_seed
from hmu_core.train.runtime import wrap_ddp as _wrap
from hmu_core.train.vq import TrainResult

log = logging.getLogger(__name__)

MODEL_KINDS = {"mask": "mask_transformer", "res": "res_transformer", "bamm": "bamm_transformer"}
STATE_KEYS = {"mask": "t2m_transformer", "res": "res_transformer", "bamm": "t2m_transformer"}
VAL_SEED_OFFSET = 100_003  # validation draws masks from its own generator, never the stream


class TransformerTask:
    """A MoMask/BAMM token transformer as a ``loop.TrainTask``."""

    train_columns = ("loss", "acc")
    val_columns = ("val_loss", "val_acc")

    def __init__(self, kind: str, model: nn.Module, vq: nn.Module, preset: TransformerPreset,
                 train: TextMotionDataset, val: TextMotionDataset | None,
                 texts: TextFeatureCache, runtime: Runtime, out_dir: Path, seed: int) -> None:
        self.kind = kind
        self.state_key = STATE_KEYS[kind]
        self.model = model
        self.vq = vq
        self.preset = preset
        self.train = train
        self.val = val
        self.texts = texts
        self.runtime = runtime
        self.out_dir = out_dir
        self.seed = seed
        self.step = _wrap(model, runtime)
        self.optimizer = adamw(model, preset.schedule)

    def num_items(self) -> int:
        return len(self.train)

    def start_epoch(self, epoch: int) -> None:
        self.train.set_epoch(epoch)  # fresh caption, crop and offset draws

    def _batch(self, dataset: TextMotionDataset, indices: list[int]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids, condition vectors, token lengths) on the device."""
        captions, motions, lengths = collate_pairs([dataset[i] for i in indices])
        device = self.runtime.device
        with torch.no_grad():
            code_idx, _ = self.vq.encode(motions.to(device))  # (B, n, Q), VQ in eval mode
        ids = code_idx if self.kind == "res" else code_idx[..., 0]
        m_lens = (lengths // self.preset.unit_length).to(device)
        return ids, self.texts(captions).to(device), m_lens

    def train_step(self, indices: list[int]) -> dict[str, float]:
        ids, cond, m_lens = self._batch(self.train, indices)
        self.model.train()
        with self.runtime.autocast():
            loss, _pred, acc = self.step(ids, cond, m_lens)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "acc": float(acc)}

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        """Validation CE and accuracy with fixed draws (own generator, epoch-0 crops)."""
        del epoch
        if self.val is None:
            return {}
        self.model.eval()
        generator = torch.Generator(device=self.runtime.device)
        generator.manual_seed(self.seed + VAL_SEED_OFFSET)
        size = self.preset.schedule.batch_size
        starts = range(0, len(self.val), size)
        if self.preset.schedule.val_batches:
            starts = starts[: self.preset.schedule.val_batches]
        loss_sum = acc_sum = 0.0
        count = 0
        for start in starts:
            indices = list(range(start, min(start + size, len(self.val))))
            ids, cond, m_lens = self._batch(self.val, indices)
            with self.runtime.autocast():
                loss, _pred, acc = self.model(ids, cond, m_lens, generator=generator)
            loss_sum += loss.item() * len(indices)
            acc_sum += float(acc) * len(indices)
            count += len(indices)
        return {"val_loss": loss_sum / count, "val_acc": acc_sum / count}

    def after_validation(self, epoch: int, total_it: int, val: Mapping[str, float],
                         state: LoopState) -> None:
        if not val:
            return
        payload = {self.state_key: self.model,
                   f"opt_{self.state_key}": self.optimizer.state_dict(), "ep": epoch,
                   "total_it": total_it}
        model_dir = self.out_dir / "model"
        if self.kind == "res":
            if val["val_loss"] < state.best.get("val_loss", float("inf")):
                state.best["val_loss"] = val["val_loss"]
                write_checkpoint(model_dir / "net_best_loss.tar", payload)
                write_checkpoint(model_dir / "net_best_fid.tar",
                                 {self.state_key: self.model, "ep": epoch,
                                  "hmu_selected_on": "val_loss"})
        elif val["val_acc"] > state.best.get("val_acc", float("-inf")):
            state.best["val_acc"] = val["val_acc"]
            write_checkpoint(model_dir / "net_best_acc.tar", payload)

    def task_state(self) -> dict[str, Any]:
        return {}

    def load_task_state(self, state: Mapping[str, Any]) -> None:
        del state


def train_transformer(kind: str, data_dir: str | Path, vq_dir: str | Path,
                      text_encoder: TextEncoderLike, preset: TransformerPreset,
                      options: RunOptions, *, preset_name: str = "custom",
                      runtime: Runtime | None = None, exclude_ids: Collection[str] = (),
                      init: nn.Module | None = None, init_weights: bool = True
                      ) -> TrainResult:
    """Train a ``mask`` (MoMask), ``res`` (residual) or ``bamm`` transformer.

    Args:
        kind: ``mask | res | bamm``.
        data_dir: HumanML3D-layout dataset (train and val splits).
        vq_dir: a trained RVQ-VAE directory (opt.txt, model/*.tar, meta/{mean,std}.npy); its
            meta statistics normalise the motions, as upstream.
        text_encoder: ``name``, ``dim``, ``encode(list[str]) -> (N, dim)``; ``dim`` becomes the
            transformer's ``clip_dim``.
        preset, options, preset_name, runtime: as ``vq.train_vq``.
        exclude_ids: clips left out of training and validation (the forget set, when
            fine-tuning or retraining on the retain set).
        init: a model whose architecture (config) is used instead of the preset's; with
            ``init_weights`` training starts from its weights (fine-tuning), else from a fresh
            seeded initialisation (retraining the same architecture).

    Raises:
        ConfigError: unknown kind, a VQ with a single quantiser for ``res``, an existing run
            without resume. DataError / CheckpointError: bad dataset or VQ directory.
    """
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown transformer {kind!r}; use one of {', '.join(MODEL_KINDS)}")
    runtime = runtime or init_runtime("auto")
    out_dir = resolve_out(options.out_dir)
    options = dataclasses.replace(options, out_dir=out_dir)
    prepare_run_dir(out_dir, options.resume)
    vq_loaded = load_model_dir(vq_dir, "rvqvae", require_meta=True, device=runtime.device)
    vq = vq_loaded.model.eval()  # eval: encode must not touch the codebooks
    vq.requires_grad_(False)
    vq_cfg = vq_loaded.config
    if kind == "res" and vq_cfg.num_quantizers < 2:
        raise ConfigError(f"{vq_dir} has one quantiser; a residual transformer needs >= 2")
    train, val = text_motion_splits(HumanML3D(data_dir), vq_loaded.mean, vq_loaded.std,
                                    preset, options.seed, exclude=exclude_ids)
    captions = [c.text for ds in (train, val) if ds is not None
                for entry in ds.entries for c in entry.captions]
    texts = TextFeatureCache(text_encoder, captions)

    model_kind = MODEL_KINDS[kind]
    _model_cls, cfg_cls = resolve_kind(model_kind)
    derived: dict[str, Any] = dict(code_dim=vq_cfg.code_dim, num_tokens=vq_cfg.nb_code,
                                   clip_dim=int(text_encoder.dim))
    if kind == "res":
        derived.update(num_quantizers=vq_cfg.num_quantizers,
                       shared_codebook=vq_cfg.shared_codebook)
    config = init.config if init is not None else cfg_cls(**preset.model_config(kind), **derived)
    if config.clip_dim != derived["clip_dim"]:
        raise ConfigError(f"the model reads {config.clip_dim}-d text vectors but the text "
                          f"encoder gives {derived['clip_dim']}-d ones; use the model's encoder")
    with seeded(options.seed):
        model = build(model_kind, config).to(runtime.device)
    if init is not None and init_weights:
        model.load_state_dict(init.state_dict())
    maybe_compile([model.seqTransEncoder], runtime)
    if runtime.is_main and not options.resume:
        updates = opt_updates(preset, preset_name, options.seed, vq_name=Path(vq_dir).name,
                              text_encoder=str(getattr(text_encoder, "name", "unknown")),
                              clip_dim=int(text_encoder.dim), code_dim=vq_cfg.code_dim)
        write_run_files(out_dir, config, updates)
    runtime.barrier()
    torch.manual_seed(stream_seed(options.seed, runtime.rank))
    task = TransformerTask(kind, model, vq, preset, train, val, texts, runtime, out_dir,
                           options.seed)
    schedule = LRSchedule(task.optimizer, preset.schedule, step_during_warmup=True)
    started = time.perf_counter()
    state = run_loop(task, schedule, preset.schedule, runtime, options,
                     {"hmu_preset": preset_record(preset, preset_name)})
    return TrainResult(out_dir, state.total_it, state.epoch, time.perf_counter() - started,
                       dict(state.best), model)
