"""``hmu train evaluator``: the T2M evaluator's two official training stages (humanml3d.md §9.5).

1. Movement autoencoder (``train_decomp_v3.py``): ``MovementConvEncoder`` + ``MovementConvDecoder``
   on random 24-frame windows normalised with the meta statistics (Std/5 on root and contacts);
   loss ``L1(recon, x) + 0.001·mean|z| + 0.001·L1(z[1:], z[:-1])``; Adam.
2. Text-motion matching (``train_tex_mot_match.py``): the movement encoder is frozen (eval mode,
   no gradient); the text and motion encoders learn with Adam, grad-norm clipping 0.5 per
   encoder, and the Hadsell contrastive loss (margin 10) on matched pairs plus pairs whose
   motions are rolled by ``randint(0, B-1)``: a shift of 0 is possible, as official, and then the
   "negatives" equal the positives for that step. The best validation loss is ``finest.tar``.

Both stages run on ``hmu_core.train.loop.run_loop`` (seeded, resumable bit for bit on the CPU).
Word vectors: the official GloVe files when given, else our own (``fit_word_vectors`` on the
train captions), saved beside the evaluator so evaluation uses the same ones.

Output directory, mirroring the official ``checkpoints/<dataset>/``::

    OUT/text_mot_match/            the evaluator (save_evaluator: opt.txt, model/finest.tar, meta/)
    OUT/glove/                     own word vectors (word_vectors.{json,npz}), when fitted
    OUT/Decomp_SP001_SM001_H512/   stage 1 run: model/{latest,finest}.tar, train_log.csv
    OUT/text_mot_match_run/        stage 2 run: model/{latest,finest}.tar, train_log.csv
    OUT/evaluator.json             dataset, preset, seed, word-vector source, best values
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.atomic import write_json
from hmu_core.data.datasets import (
    MotionWindowDataset,
    TextMotionDataset,
    caption_tokens,
    meta_stats,
)
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.eval.evaluator import (
    N_CONTACTS,
    STATE_KEYS,
    Evaluator,
    EvaluatorConfig,
    MovementConvEncoder,
    save_evaluator,
)
from hmu_core.eval.metrics import r_precision_counts
from hmu_core.eval.word_vectors import (
    WordVectorizer,
    encode_batch,
    fit_word_vectors,
    load_word_vectors,
)
from hmu_core.models.checkpoints import read_checkpoint, write_checkpoint
from hmu_core.train.data import preset_record, resolve_out, text_motion_splits
from hmu_core.train.loop import (
    LoopState,
    LRSchedule,
    RunOptions,
    prepare_run_dir,
    run_loop,
    val_window_picks,
)
from hmu_core.train.presets import PRESET_NAMES, Schedule
from hmu_core.train.runtime import Runtime, init_runtime, seeded, stream_seed
from hmu_core.train.vq import TrainResult

log = logging.getLogger(__name__)

MATCH_DIR = "text_mot_match"
MOVEMENT_DIR = "Decomp_SP001_SM001_H512"  # the official name of the stage-1 run
MATCH_RUN_DIR = "text_mot_match_run"
GLOVE_DIR = "glove"
RECORD_FILE = "evaluator.json"


@dataclass(frozen=True)
class EvaluatorPreset:
    """Both stages' schedules (``schedule`` is stage 2, the one CLI overrides change), the
    module widths (EvaluatorConfig names) and the official loss weights and data limits."""

    schedule: Schedule  # text-motion matching
    movement: Schedule  # movement autoencoder
    dim_movement_enc_hidden: int
    dim_movement_latent: int
    dim_movement_dec_hidden: int
    dim_text_hidden: int
    dim_motion_hidden: int
    dim_coemb_hidden: int
    dim_word: int = 300  # width of fitted word vectors; GloVe's own width wins
    window_size: int = 24
    lambda_sparsity: float = 0.001
    lambda_smooth: float = 0.001
    negative_margin: float = 10.0
    grad_clip: float = 0.5
    feat_bias: float = 5.0
    unit_length: int = 4
    max_motion_length: int = 196
    min_motion_length: int = 40
    max_text_len: int = 20

    def model_config(self, dim_pose: int, dim_word: int) -> EvaluatorConfig:
        return EvaluatorConfig(
            dim_pose=dim_pose, dim_movement_enc_hidden=self.dim_movement_enc_hidden,
            dim_movement_latent=self.dim_movement_latent, dim_word=dim_word,
            dim_text_hidden=self.dim_text_hidden, dim_motion_hidden=self.dim_motion_hidden,
            dim_coemb_hidden=self.dim_coemb_hidden, unit_length=self.unit_length,
            max_text_len=self.max_text_len)


def _adam_schedule(**values: Any) -> Schedule:
    """Plain Adam at a constant rate, as the official evaluator trainers (no warm-up, no decay)."""
    return Schedule(warm_up_iter=0, milestones=(), gamma=1.0, weight_decay=0.0, **values)


_PRESETS = {
    # Released widths (§9.3); batch 128 / 32 and lr 1e-4 as official. The epoch counts are
    # ours: upstream trains matching "up to 300 epochs" and keeps the best validation loss.
    "humanml3d": EvaluatorPreset(
        schedule=_adam_schedule(batch_size=32, lr=1e-4, max_epoch=300, save_latest=500,
                                log_every=50),
        movement=_adam_schedule(batch_size=128, lr=1e-4, max_epoch=100, save_latest=500,
                                log_every=50),
        dim_movement_enc_hidden=512, dim_movement_latent=512, dim_movement_dec_hidden=512,
        dim_text_hidden=512, dim_motion_hidden=1024, dim_coemb_hidden=512),
    # 2 CPU cores, synthetic 'small' set: both stages in a few minutes (about 0.4 s per
    # matching step, 6 epochs). The embedding width (64) stays below the 96 samples of three
    # batches, so FID covariances of small subsets are not all rank-deficient.
    "tiny": EvaluatorPreset(
        schedule=_adam_schedule(batch_size=32, lr=1e-3, max_epoch=1000, max_iters=500,
                                save_latest=250, log_every=25),
        movement=_adam_schedule(batch_size=64, lr=1e-3, max_epoch=1000, max_iters=300,
                                save_latest=300, log_every=25, val_batches=8),
        dim_movement_enc_hidden=128, dim_movement_latent=64, dim_movement_dec_hidden=128,
        dim_text_hidden=96, dim_motion_hidden=128, dim_coemb_hidden=64),
}


def evaluator_preset(name: str) -> EvaluatorPreset:
    """The ``tiny`` or ``humanml3d`` preset. Raises ConfigError on another name."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown evaluator preset {name!r}; use one of "
                          f"{', '.join(PRESET_NAMES)}")
    return _PRESETS[name]


# --------------------------------------------------------------------------- stage 1


def _xavier_all(module: nn.Module) -> None:
    """Official ``init_weight`` (Conv1d, ConvTranspose1d, Linear: xavier-normal, zero bias)."""
    if isinstance(module, nn.Conv1d | nn.ConvTranspose1d | nn.Linear):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MovementConvDecoder(nn.Module):
    """(B, T', latent) -> (B, 4 T', dim_pose); official keys ``main.{0,2}``, ``out_net``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose1d(input_size, hidden_size, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose1d(hidden_size, output_size, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.out_net = nn.Linear(output_size, output_size)
        self.apply(_xavier_all)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.out_net(self.main(inputs.permute(0, 2, 1)).permute(0, 2, 1))


class MovementAutoencoder(nn.Module):
    """Encoder and decoder under the official checkpoint names ``movement_enc``/``movement_dec``."""

    def __init__(self, config: EvaluatorConfig, dec_hidden: int) -> None:
        super().__init__()
        self.movement_enc = MovementConvEncoder(config.dim_pose - N_CONTACTS,
                                                config.dim_movement_enc_hidden,
                                                config.dim_movement_latent)
        self.movement_dec = MovementConvDecoder(config.dim_movement_latent, dec_hidden,
                                                config.dim_pose)
        self.apply(_xavier_all)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latents = self.movement_enc(x[..., :-N_CONTACTS])  # the contacts are never encoded
        return self.movement_dec(latents), latents


class MovementTask:
    """Stage 1 as a ``loop.TrainTask``."""

    state_key = "movement_autoencoder"
    train_columns = ("loss", "loss_rec", "loss_sparsity", "loss_smooth")
    val_columns = ("val_loss_rec",)

    def __init__(self, model: MovementAutoencoder, preset: EvaluatorPreset,
                 train: MotionWindowDataset, val: MotionWindowDataset | None, runtime: Runtime,
                 out_dir: Path) -> None:
        self.model, self.preset, self.train, self.val = model, preset, train, val
        self.runtime, self.out_dir = runtime, out_dir
        self.optimizer = torch.optim.Adam(model.parameters(), lr=preset.movement.lr)

    def num_items(self) -> int:
        return len(self.train)

    def start_epoch(self, epoch: int) -> None:
        del epoch

    def train_step(self, indices: list[int]) -> dict[str, float]:
        x = torch.stack([self.train[i] for i in indices]).to(self.runtime.device)
        self.model.train()
        recon, z = self.model(x)
        loss_rec = F.l1_loss(recon, x)
        loss_sparsity = z.abs().mean()
        loss_smooth = F.l1_loss(z[:, 1:], z[:, :-1])
        loss = (loss_rec + self.preset.lambda_sparsity * loss_sparsity
                + self.preset.lambda_smooth * loss_smooth)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "loss_rec": loss_rec.item(),
                "loss_sparsity": loss_sparsity.item(), "loss_smooth": loss_smooth.item()}

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        """L1 reconstruction of evenly spaced val windows in eval mode (no RNG)."""
        del epoch
        if self.val is None:
            return {}
        self.model.eval()
        picks = val_window_picks(len(self.val), self.preset.movement.val_batches)
        x = torch.stack([self.val[int(i)] for i in picks]).to(self.runtime.device)
        return {"val_loss_rec": F.l1_loss(self.model(x)[0], x).item()}

    def after_validation(self, epoch: int, total_it: int, val: Mapping[str, float],
                         state: LoopState) -> None:
        if not val or val["val_loss_rec"] >= state.best.get("val_loss_rec", float("inf")):
            return
        state.best["val_loss_rec"] = val["val_loss_rec"]
        write_checkpoint(self.out_dir / "model" / "finest.tar",
                         {"movement_enc": self.model.movement_enc,
                          "movement_dec": self.model.movement_dec, "ep": epoch,
                          "total_it": total_it})

    def task_state(self) -> dict[str, Any]:
        return {}

    def load_task_state(self, state: Mapping[str, Any]) -> None:
        del state


# --------------------------------------------------------------------------- stage 2


def contrastive_loss(text_emb: torch.Tensor, motion_emb: torch.Tensor, negative: bool,
                     margin: float) -> torch.Tensor:
    """Official ``ContrastiveLoss``: mean of d² (matched) or max(0, margin − d)² (mismatched)."""
    d = F.pairwise_distance(text_emb, motion_emb, keepdim=True)
    if negative:
        return torch.clamp(margin - d, min=0.0).pow(2).mean()
    return d.pow(2).mean()


def text_motion_batch(dataset: TextMotionDataset, indices: list[int],
                      vectorizer: WordVectorizer, max_text_len: int) -> tuple[np.ndarray, ...]:
    """Items -> ``(word_embs, pos_ohot, cap_lens, motions (B, T, D) normalised, m_lens)``."""
    items = [dataset[i] for i in indices]
    tokens = [caption_tokens(dataset, i, item[0]) for i, item in zip(indices, items, strict=True)]
    words, pos, cap_lens = encode_batch(tokens, vectorizer, max_text_len)
    motions = np.stack([item[1].numpy() for item in items])
    return words, pos, cap_lens, motions, np.array([item[2] for item in items], np.int64)


class MatchTask:
    """Stage 2 as a ``loop.TrainTask``; the model is the whole ``Evaluator``."""

    state_key = "evaluator"
    train_columns = ("loss", "loss_pos", "loss_neg")
    val_columns = ("val_loss", "val_loss_pos", "val_loss_neg", "val_top1")

    def __init__(self, evaluator: Evaluator, preset: EvaluatorPreset, train: TextMotionDataset,
                 val: TextMotionDataset | None, vectorizer: WordVectorizer, runtime: Runtime,
                 out_dir: Path) -> None:
        self.model, self.preset, self.train, self.val = evaluator, preset, train, val
        self.vectorizer, self.runtime, self.out_dir = vectorizer, runtime, out_dir
        evaluator.movement_encoder.requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            [*evaluator.text_encoder.parameters(), *evaluator.motion_encoder.parameters()],
            lr=preset.schedule.lr)

    def num_items(self) -> int:
        return len(self.train)

    def start_epoch(self, epoch: int) -> None:
        self.train.set_epoch(epoch)  # fresh caption and crop draws, as the official loader

    def _losses(self, dataset: TextMotionDataset, indices: list[int], shift: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        words, pos, cap_lens, motions, m_lens = text_motion_batch(
            dataset, indices, self.vectorizer, self.preset.max_text_len)
        text_emb = self.model.encode_text(words, pos, cap_lens)
        motion_emb = self.model.encode_motion(motions, m_lens)
        margin = self.preset.negative_margin
        loss_pos = contrastive_loss(text_emb, motion_emb, False, margin)
        loss_neg = contrastive_loss(text_emb, torch.roll(motion_emb, -shift, dims=0), True,
                                    margin)  # row i meets motion (i + shift) % B
        hits = r_precision_counts(text_emb.detach().cpu().numpy(),
                                  motion_emb.detach().cpu().numpy(), 1)[0]
        return loss_pos + loss_neg, loss_pos, loss_neg, torch.tensor(hits / len(indices))

    def train_step(self, indices: list[int]) -> dict[str, float]:
        self.model.text_encoder.train()
        self.model.motion_encoder.train()
        self.model.movement_encoder.eval()  # frozen: dropout off, no gradient
        shift = int(torch.randint(0, len(indices) - 1, ()))  # official randint(0, B-1)
        loss, loss_pos, loss_neg, _ = self._losses(self.train, indices, shift)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for module in (self.model.text_encoder, self.model.motion_encoder):
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.preset.grad_clip)
        self.optimizer.step()
        return {"loss": loss.item(), "loss_pos": loss_pos.item(), "loss_neg": loss_neg.item()}

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        """Losses and top-1 retrieval over the whole val set in fixed order (shift from a
        generator seeded the same each time, so the value only moves with the weights)."""
        del epoch
        if self.val is None:
            return {}
        self.model.eval()
        size = min(self.preset.schedule.batch_size, len(self.val))
        generator = torch.Generator().manual_seed(0)
        sums = np.zeros(4)
        count = 0
        for start in range(0, len(self.val) - size + 1, size):
            shift = int(torch.randint(0, max(size - 1, 1), (), generator=generator))
            values = self._losses(self.val, list(range(start, start + size)), shift)
            sums += [float(v) for v in values]
            count += 1
        return dict(zip(self.val_columns, (sums / count).tolist(), strict=True))

    def after_validation(self, epoch: int, total_it: int, val: Mapping[str, float],
                         state: LoopState) -> None:
        if not val or val["val_loss"] >= state.best.get("val_loss", float("inf")):
            return
        state.best["val_loss"] = val["val_loss"]
        state.best["val_top1"] = val["val_top1"]
        write_checkpoint(self.out_dir / "model" / "finest.tar",
                         {**{k: getattr(self.model, k) for k in STATE_KEYS}, "epoch": epoch,
                          "total_it": total_it})

    def task_state(self) -> dict[str, Any]:
        return {}

    def load_task_state(self, state: Mapping[str, Any]) -> None:
        del state


# --------------------------------------------------------------------------- driver


def dataset_word_vectors(dataset: HumanML3D, dim: int, seed: int) -> WordVectorizer:
    """Own word vectors fitted on every caption of the train split."""
    captions = [c.tokens for i in dataset.ids("train") for c in dataset.captions(i)]
    if not captions:
        raise DataError(f"{dataset.root}: the train split has no captions to fit word vectors")
    return fit_word_vectors(captions, dim=dim, seed=seed)


def _word_vectors(dataset: HumanML3D, out_dir: Path, glove_dir: Path | None,
                  preset: EvaluatorPreset, options: RunOptions) -> tuple[WordVectorizer, str]:
    saved = out_dir / GLOVE_DIR
    if glove_dir is not None:
        return load_word_vectors(glove_dir), str(glove_dir)
    if options.resume and saved.is_dir():
        return load_word_vectors(saved), str(saved)
    vectorizer = dataset_word_vectors(dataset, preset.dim_word, options.seed)
    vectorizer.save(saved, {"fitted_on": str(dataset.root), "split": "train",
                            "seed": options.seed})
    return vectorizer, str(saved)


def _stage_options(options: RunOptions, run_dir: Path) -> RunOptions:
    """Resume a stage only where it left a checkpoint (stage 2 may not have started)."""
    resume = options.resume and (run_dir / "model" / "latest.tar").is_file()
    return dataclasses.replace(options, out_dir=run_dir, resume=resume)


def train_evaluator(data_dir: str | Path, preset: EvaluatorPreset, options: RunOptions, *,
                    glove_dir: str | Path | None = None, preset_name: str = "custom",
                    runtime: Runtime | None = None) -> TrainResult:
    """Train the evaluator on ``data_dir``'s train split (val split for model selection).

    Args:
        data_dir: HumanML3D-layout dataset with Mean.npy/Std.npy and train/val split files.
        preset: widths and both stages' schedules (``evaluator_preset("tiny")``).
        options: ``out_dir`` (the layout in the module docstring), seed, resume, progress.
        glove_dir: official ``glove/`` (or own word vectors); None fits our own.

    Returns:
        ``TrainResult`` of stage 2 (its ``out_dir`` is OUT; ``model`` the best evaluator).

    Raises:
        DataError: missing files, no usable clips or captions. ConfigError: OUT already holds
            a run and no resume, or a resume with another preset.
    """
    runtime = runtime or init_runtime("auto")
    out_dir = resolve_out(options.out_dir)
    if not options.resume and out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} is not empty; choose a new --out directory or pass "
                          f"--resume to continue the run in it")
    started = time.perf_counter()
    dataset = HumanML3D(data_dir)
    mean, std = meta_stats(dataset.mean(), dataset.std(), preset.feat_bias)
    vectorizer, vectors_from = _word_vectors(dataset, out_dir, None if glove_dir is None
                                             else Path(glove_dir), preset, options)
    config = preset.model_config(dataset.feature_dim, vectorizer.dim)
    record = preset_record(preset, preset_name)

    # Stage 1: movement autoencoder.
    opts1 = _stage_options(options, out_dir / MOVEMENT_DIR)
    prepare_run_dir(opts1.out_dir, opts1.resume)
    windows = MotionWindowDataset(dataset, dataset.ids("train"), mean, std, preset.window_size)
    try:
        val_windows: MotionWindowDataset | None = MotionWindowDataset(
            dataset, dataset.ids("val"), mean, std, preset.window_size)
    except DataError as error:
        log.warning("no validation windows (%s); stage 1 keeps its last weights", error)
        val_windows = None
    with seeded(options.seed):
        autoencoder = MovementAutoencoder(config, preset.dim_movement_dec_hidden)
    autoencoder.to(runtime.device)
    torch.manual_seed(stream_seed(options.seed, runtime.rank))
    task1 = MovementTask(autoencoder, preset, windows, val_windows, runtime, opts1.out_dir)
    run_loop(task1, LRSchedule(task1.optimizer, preset.movement, step_during_warmup=True),
             preset.movement, runtime, opts1, {"hmu_preset": record})
    finest1 = opts1.out_dir / "model" / "finest.tar"
    movement_state = read_checkpoint(finest1)["movement_enc"] if finest1.is_file() else \
        autoencoder.movement_enc.state_dict()

    # Stage 2: text-motion matching with the frozen movement encoder.
    opts2 = _stage_options(options, out_dir / MATCH_RUN_DIR)
    prepare_run_dir(opts2.out_dir, opts2.resume)
    train_ds, val_ds = text_motion_splits(dataset, mean, std, preset, options.seed)
    evaluator = Evaluator(config, mean=mean, std=std, seed=options.seed).to(runtime.device)
    evaluator.movement_encoder.load_state_dict(movement_state)
    torch.manual_seed(stream_seed(options.seed + 1, runtime.rank))
    task2 = MatchTask(evaluator, preset, train_ds, val_ds, vectorizer, runtime, opts2.out_dir)
    state = run_loop(task2, LRSchedule(task2.optimizer, preset.schedule, step_during_warmup=True),
                     preset.schedule, runtime, opts2, {"hmu_preset": record})
    finest2 = opts2.out_dir / "model" / "finest.tar"
    epoch = state.epoch
    if finest2.is_file():
        best = read_checkpoint(finest2)
        for key in STATE_KEYS:
            getattr(evaluator, key).load_state_dict(best[key])
        epoch = int(best["epoch"])
    evaluator.eval()
    save_evaluator(out_dir / MATCH_DIR, evaluator, epoch=epoch, overwrite=True)
    seconds = time.perf_counter() - started
    write_json(out_dir / RECORD_FILE, {
        "format": "hmu-evaluator", "version": 1, "dataset": str(Path(data_dir).resolve()),
        "preset": record, "seed": options.seed, "word_vectors": vectors_from,
        "best": dict(state.best), "iterations": {"movement": _stage_iterations(opts1.out_dir),
                                                 "matching": state.total_it},
        "seconds": round(seconds, 1)})
    return TrainResult(out_dir, state.total_it, state.epoch, seconds, dict(state.best), evaluator)


def _stage_iterations(run_dir: Path) -> int:
    """Iterations stage 1 reached (from its latest checkpoint)."""
    return int(read_checkpoint(run_dir / "model" / "latest.tar")["total_it"])
