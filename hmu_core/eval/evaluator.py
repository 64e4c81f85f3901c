"""The T2M evaluator of Guo et al. 2022 (text-to-motion repo; MoMask, BAMM and HMU copy it).

Three official modules (``reference/humanml3d.md`` §9.3, ``reference/momask.md`` §4.1) with the
official state-dict keys, so the released ``finest.tar`` loads strictly and ours loads into the
official code:

* ``MovementConvEncoder``: normalised features without the 4 foot contacts -> latents, 4x
  shorter in time;
* ``MotionEncoderBiGRUCo``: latents -> one motion embedding per clip;
* ``TextEncoderBiGRUCo``: GloVe word vectors + POS one-hots -> one text embedding per caption.

The official modules pack their GRU inputs with ``enforce_sorted=True``, so the official caller
sorts captions by length and motions by ``m_lens`` and gets rows back in m_len order
(humanml3d.md §11 item 12). ``Evaluator`` sorts internally and returns rows in the caller's order.

Directory layout (official ``checkpoints/t2m/text_mot_match``)::

    text_mot_match/model/finest.tar  {'movement_encoder', 'text_encoder', 'motion_encoder': state
                                      dicts, 'epoch': int}
    text_mot_match/meta/{mean,std}.npy   hmu only: the evaluator's own normalisation
    text_mot_match/opt.txt               hmu only: the sizes (the official wrapper hard-codes them)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from hmu_core.atomic import atomic_directory, save_npy
from hmu_core.errors import ConfigError, DataError, MotionError
from hmu_core.models.checkpoints import (
    CheckpointError,
    load_state_dict_checked,
    read_checkpoint,
    write_checkpoint,
)
from hmu_core.models.opt import OPT_FILE, config_from_opt, config_to_opt, read_opt, write_opt

log = logging.getLogger(__name__)

MATCH_DIR = "text_mot_match"
CHECKPOINT_FILE = Path("model") / "finest.tar"
STATE_KEYS = ("movement_encoder", "text_encoder", "motion_encoder")
# Sibling directories whose meta/ the official evaluation loaders normalise with: MoMask/BAMM
# use Comp_v6_KLD005, text-to-motion (and its evaluator training) Comp_v6_KLD01 (§9.4).
OFFICIAL_META_DIRS = ("Comp_v6_KLD005", "Comp_v6_KLD01")
N_CONTACTS = 4  # the evaluator drops the 4 foot-contact dims: motion[..., :-4]

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class EvaluatorConfig:
    """Sizes of the three modules; field names are the official opt keys, defaults the release.

    The official ``EvaluatorModelWrapper`` forces these values (momask.md §4.1); our own
    evaluators (e.g. for the synthetic set) write them to ``opt.txt``.
    """

    dim_pose: int = field(default=263, metadata={"opt": "optional"})  # 263 HumanML3D, 251 KIT
    dim_movement_enc_hidden: int = field(default=512, metadata={"opt": "optional"})
    dim_movement_latent: int = field(default=512, metadata={"opt": "optional"})
    dim_word: int = field(default=300, metadata={"opt": "optional"})  # GloVe width
    dim_pos_ohot: int = field(default=15, metadata={"opt": "optional"})  # POS_enumerator size
    dim_text_hidden: int = field(default=512, metadata={"opt": "optional"})
    dim_motion_hidden: int = field(default=1024, metadata={"opt": "optional"})
    dim_coemb_hidden: int = field(default=512, metadata={"opt": "optional"})  # embedding width
    unit_length: int = field(default=4, metadata={"opt": "optional"})  # frames per latent step
    max_text_len: int = field(default=20, metadata={"opt": "optional"})  # tokens before sos/eos
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name != "extra" and getattr(self, f.name) < 1:
                raise ConfigError(f"EvaluatorConfig.{f.name} must be >= 1, got "
                                  f"{getattr(self, f.name)}")
        if self.dim_pose <= N_CONTACTS:
            raise ConfigError(f"EvaluatorConfig.dim_pose must exceed {N_CONTACTS} (the contacts "
                              f"are dropped), got {self.dim_pose}")

    @classmethod
    def from_opt(cls, raw: Mapping[str, str],
                 source: str | os.PathLike = "opt.txt") -> EvaluatorConfig:
        return config_from_opt(cls, raw, source=source)

    def to_opt(self) -> dict[str, str]:
        return config_to_opt(self)


def _xavier(module: nn.Module, generator: torch.Generator | None) -> None:
    """Official ``init_weight``: xavier-normal weights, zero biases (Conv1d and Linear)."""
    if isinstance(module, nn.Conv1d | nn.Linear):
        nn.init.xavier_normal_(module.weight, generator=generator)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _reset_gru(gru: nn.GRU, generator: torch.Generator | None) -> None:
    """PyTorch's default GRU init, U(-1/sqrt(h), 1/sqrt(h)), drawn from ``generator``."""
    bound = 1.0 / math.sqrt(gru.hidden_size)
    for param in gru.parameters():
        nn.init.uniform_(param, -bound, bound, generator=generator)


class MovementConvEncoder(nn.Module):
    """(B, T, input_size) -> (B, T//4, output_size); official keys ``main.{0,3}``, ``out_net``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1),
            nn.Dropout(0.2, inplace=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1),
            nn.Dropout(0.2, inplace=True),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.out_net = nn.Linear(output_size, output_size)
        self.apply(lambda m: _xavier(m, generator))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.main(inputs.permute(0, 2, 1)).permute(0, 2, 1)  # (B, T//4, C)
        return self.out_net(outputs)


class _BiGRUCo(nn.Module):
    """Shared tail of the two GRU encoders: learned initial state, packed BiGRU, output MLP."""

    def __init__(self, hidden_size: int, output_size: int,
                 generator: torch.Generator | None) -> None:
        super().__init__()
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(hidden_size * 2, hidden_size),
            nn.LayerNorm(hidden_size),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden_size, output_size),
        )
        self.hidden_size = hidden_size
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size), generator=generator))
        _reset_gru(self.gru, generator)

    def _encode(self, input_embs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``lengths`` must be sorted in descending order (official ``enforce_sorted=True``)."""
        hidden = self.hidden.repeat(1, input_embs.shape[0], 1)
        packed = pack_padded_sequence(input_embs, lengths.cpu(), batch_first=True)
        _, gru_last = self.gru(packed, hidden)  # (2, B, H): forward and backward final states
        return self.output_net(torch.cat([gru_last[0], gru_last[1]], dim=-1))


class TextEncoderBiGRUCo(_BiGRUCo):
    """(B, L, word) word vectors + (B, L, pos) one-hots + cap_lens -> (B, output_size)."""

    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(hidden_size, output_size, generator)
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        for module in (self.input_emb, self.pos_emb, self.output_net):
            module.apply(lambda m: _xavier(m, generator))

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor,
                cap_lens: torch.Tensor) -> torch.Tensor:
        inputs = word_embs + self.pos_emb(pos_onehot)
        return self._encode(self.input_emb(inputs), cap_lens)


class MotionEncoderBiGRUCo(_BiGRUCo):
    """(B, T', input_size) movement latents + lengths in latent steps -> (B, output_size)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(hidden_size, output_size, generator)
        self.input_emb = nn.Linear(input_size, hidden_size)
        for module in (self.input_emb, self.output_net):
            module.apply(lambda m: _xavier(m, generator))

    def forward(self, inputs: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        return self._encode(self.input_emb(inputs), m_lens)


def _array(x: ArrayLike) -> ArrayLike:
    """Tensors stay on their device; anything else (lists too) becomes a numpy array."""
    return x if isinstance(x, torch.Tensor) else np.asarray(x)


def _as_tensor(x: ArrayLike, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
    return tensor.to(device=device, dtype=dtype)


def _lengths(lens: ArrayLike, batch: int, low: int, high: int, what: str,
             error: type[Exception]) -> torch.Tensor:
    values = torch.as_tensor(np.asarray(lens.cpu() if isinstance(lens, torch.Tensor) else lens))
    if values.shape != (batch,) or values.is_floating_point() or values.is_complex():
        raise error(f"{what} must be ({batch},) integers, one per row; got "
                    f"{tuple(values.shape)} {values.dtype}")
    values = values.to(torch.int64)
    if batch and (int(values.min()) < low or int(values.max()) > high):
        raise error(f"{what} must lie in [{low}, {high}], got {values.tolist()}")
    return values


def _sorted_call(lengths: torch.Tensor, run: Any) -> torch.Tensor:
    """Run ``run(order)`` on rows sorted by descending length; return rows in input order."""
    order = torch.argsort(lengths, descending=True, stable=True)
    out = run(order)
    restore = torch.empty_like(order)
    restore[order] = torch.arange(order.numel())
    return out[restore.to(out.device)]


class Evaluator(nn.Module):
    """The three evaluator modules plus the evaluator's own normalisation (mean, std).

    Construction puts the modules in eval mode (dropout off), as the official wrapper does.
    ``encode_*`` return differentiable tensors (for training); ``*_embeddings`` are the
    inference API: no grad, float32 numpy rows in the caller's order.

    Args:
        config: module sizes.
        mean, std: (dim_pose,) statistics the evaluator's inputs are normalised with (the
            official meta statistics: dataset Mean and Std/feat_bias on root and contact dims).
        seed: seeds the initial weights (official init: xavier-normal, randn hidden states).
    """

    def __init__(self, config: EvaluatorConfig = EvaluatorConfig(), *,
                 mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        c = config
        self.movement_encoder = MovementConvEncoder(
            c.dim_pose - N_CONTACTS, c.dim_movement_enc_hidden, c.dim_movement_latent, generator)
        self.text_encoder = TextEncoderBiGRUCo(
            c.dim_word, c.dim_pos_ohot, c.dim_text_hidden, c.dim_coemb_hidden, generator)
        self.motion_encoder = MotionEncoderBiGRUCo(
            c.dim_movement_latent, c.dim_motion_hidden, c.dim_coemb_hidden, generator)
        self.mean, self.std = _check_stats(mean, std, c.dim_pose, "Evaluator")
        self.epoch = -1
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.text_encoder.hidden.device

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """Raw (..., dim_pose) HumanML3D features -> the evaluator's normalised input.

        A generator with other statistics must de-normalise with its own first (§11 item 11);
        zero-pad after this call (zero = the mean).

        Raises:
            ConfigError: the evaluator has no statistics. MotionError: wrong last dimension.
        """
        if self.mean is None or self.std is None:
            raise ConfigError("this evaluator has no mean/std; load it with load_evaluator() or "
                              "pass mean= and std= (the meta statistics) when building it")
        features = np.asarray(features)
        if features.shape[-1:] != (self.config.dim_pose,):
            raise MotionError(f"features must end in {self.config.dim_pose} dims, got "
                              f"{features.shape}")
        return ((features - self.mean) / self.std).astype(np.float32)

    def encode_text(self, word_embs: ArrayLike, pos_ohot: ArrayLike,
                    cap_lens: ArrayLike) -> torch.Tensor:
        """(B, L, dim_word), (B, L, dim_pos_ohot), (B,) lengths incl. sos/eos -> (B, emb).

        Raises:
            DataError: wrong shapes, or a length outside [1, L].
        """
        c = self.config
        word_embs, pos_ohot = _array(word_embs), _array(pos_ohot)
        if not (word_embs.ndim == 3 and tuple(word_embs.shape[2:]) == (c.dim_word,)
                and tuple(pos_ohot.shape) == (*word_embs.shape[:2], c.dim_pos_ohot)):
            raise DataError(
                f"text input must be word_embs (B, L, {c.dim_word}) and pos_ohot (B, L, "
                f"{c.dim_pos_ohot}) of the same B and L; got {tuple(word_embs.shape)} and "
                f"{tuple(pos_ohot.shape)} (build them with hmu_core.eval.word_vectors)")
        batch, length = word_embs.shape[:2]
        lens = _lengths(cap_lens, batch, 1, length, "cap_lens", DataError)
        words = _as_tensor(word_embs, self.device, torch.float32)
        pos = _as_tensor(pos_ohot, self.device, torch.float32)
        return _sorted_call(lens, lambda o: self.text_encoder(words[o.to(words.device)],
                                                               pos[o.to(pos.device)], lens[o]))

    def encode_motion(self, motions: ArrayLike, m_lens: ArrayLike) -> torch.Tensor:
        """(B, T, dim_pose) normalised, zero-padded features + (B,) frame counts -> (B, emb).

        As official, the contacts are dropped and the GRU sees ``m_lens // unit_length`` steps.

        Raises:
            MotionError: wrong shape, or a length < unit_length or > T.
        """
        c = self.config
        motions = _array(motions)
        if motions.ndim != 3 or motions.shape[2] != c.dim_pose:
            raise MotionError(f"motions must be (B, T, {c.dim_pose}) normalised features, got "
                              f"{tuple(motions.shape)}")
        batch, frames = motions.shape[:2]
        high = frames - frames % c.unit_length  # the conv encoder keeps T // unit_length steps
        lens = _lengths(m_lens, batch, c.unit_length, max(high, c.unit_length), "m_lens",
                        MotionError)
        if frames < c.unit_length:
            raise MotionError(f"motions have {frames} frames; at least {c.unit_length} needed")
        x = _as_tensor(motions, self.device, torch.float32)[..., :-N_CONTACTS]

        def run(order: torch.Tensor) -> torch.Tensor:
            movements = self.movement_encoder(x[order.to(x.device)])
            return self.motion_encoder(movements, lens[order] // c.unit_length)

        return _sorted_call(lens, run)

    @torch.no_grad()
    def text_embeddings(self, word_embs: ArrayLike, pos_ohot: ArrayLike,
                        cap_lens: ArrayLike) -> np.ndarray:
        """``encode_text`` without grad: (B, dim_coemb_hidden) float32, caller's row order."""
        return self.encode_text(word_embs, pos_ohot, cap_lens).float().cpu().numpy()

    @torch.no_grad()
    def motion_embeddings(self, motions: ArrayLike, m_lens: ArrayLike) -> np.ndarray:
        """``encode_motion`` without grad: (B, dim_coemb_hidden) float32, caller's row order."""
        return self.encode_motion(motions, m_lens).float().cpu().numpy()


def meta_stats_from_dataset(mean: np.ndarray, std: np.ndarray, feat_bias: float = 5.0,
                            joints_num: int = 22) -> tuple[np.ndarray, np.ndarray]:
    """The official meta statistics from a dataset's Mean.npy/Std.npy (humanml3d.md §6).

    Mean unchanged; Std divided by ``feat_bias`` on the root dims [0:4] and the foot contacts
    (the last 4 dims), as the official training datasets do before saving ``meta/``.
    """
    mean = np.asarray(mean)
    std = np.array(std, copy=True)
    contacts = 4 + (joints_num - 1) * 9 + joints_num * 3
    if mean.shape != std.shape or std.shape != (contacts + N_CONTACTS,):
        raise DataError(f"Mean/Std must both be ({contacts + N_CONTACTS},) for {joints_num} "
                        f"joints; got {mean.shape} and {std.shape}")
    std[0:4] /= feat_bias
    std[contacts:] /= feat_bias
    return mean, std


def _check_stats(mean: np.ndarray | None, std: np.ndarray | None, dim: int,
                 source: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    if (mean is None) != (std is None):
        raise ConfigError(f"{source}: pass both mean and std, or neither")
    if mean is None or std is None:
        return None, None
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if mean.shape != (dim,) or std.shape != (dim,):
        raise CheckpointError(f"{source}: mean {mean.shape} and std {std.shape} must both be "
                              f"({dim},), the evaluator's dim_pose")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise CheckpointError(f"{source}: mean must be finite and std finite and > 0")
    return mean, std


def _find_match_dir(path: Path) -> Path:
    for candidate in (path, path / MATCH_DIR):
        if (candidate / CHECKPOINT_FILE).is_file():
            return candidate
    raise CheckpointError(
        f"no evaluator checkpoint: neither {path / CHECKPOINT_FILE} nor "
        f"{path / MATCH_DIR / CHECKPOINT_FILE} exists. Official releases put it at "
        f"checkpoints/t2m/{MATCH_DIR}/{CHECKPOINT_FILE.as_posix()} (humanml3d_evaluator.zip, "
        f"fetched by momask-codes prepare/download_evaluator.sh); pass that directory"
    )


def _read_stats(match_dir: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    tried = [match_dir / "meta", *(match_dir.parent / d / "meta" for d in OFFICIAL_META_DIRS)]
    for meta in tried:
        if (meta / "mean.npy").is_file() and (meta / "std.npy").is_file():
            try:
                return (np.load(meta / "mean.npy", allow_pickle=False),
                        np.load(meta / "std.npy", allow_pickle=False), meta)
            except (ValueError, OSError, EOFError) as exc:
                raise CheckpointError(f"{meta}: mean.npy/std.npy are not plain .npy arrays "
                                      f"({exc})") from None
    raise CheckpointError(
        "no evaluator statistics: looked for mean.npy and std.npy in "
        + ", ".join(str(t) for t in tried)
        + ". Official releases put them in checkpoints/t2m/Comp_v6_KLD005/meta/ (MoMask) or "
        "Comp_v6_KLD01/meta/ (text-to-motion), beside text_mot_match; or pass mean=/std= "
        "(meta_stats_from_dataset turns a dataset's Mean.npy/Std.npy into them)"
    )


def load_evaluator(path: str | os.PathLike, *, config: EvaluatorConfig | None = None,
                   mean: np.ndarray | None = None, std: np.ndarray | None = None,
                   device: str | torch.device = "cpu") -> Evaluator:
    """Load an evaluator from the official layout (or one written by ``save_evaluator``).

    Args:
        path: the ``text_mot_match`` directory, or its parent (``checkpoints/t2m``).
        config: module sizes; default ``<dir>/opt.txt`` when present, else the released sizes
            (the official wrapper hard-codes them; the release ships no opt.txt).
        mean, std: normalisation; default, first found: ``<dir>/meta/`` (ours), then the
            official ``../Comp_v6_KLD005/meta/`` (MoMask) and ``../Comp_v6_KLD01/meta/``. These
            are the meta statistics (Mean, Std/5 on root and contacts), not the dataset Std.

    Raises:
        CheckpointError: a file is missing or unreadable, or a state dict does not match (the
            message names the key and both shapes). ConfigError: a bad opt.txt.
    """
    match_dir = _find_match_dir(Path(path))
    file = match_dir / CHECKPOINT_FILE
    if config is None:
        opt = match_dir / OPT_FILE
        config = EvaluatorConfig.from_opt(read_opt(opt), opt) if opt.is_file() else \
            EvaluatorConfig()
    if mean is None and std is None:
        mean, std, meta = _read_stats(match_dir)
        log.info("evaluator statistics from %s", meta)
    evaluator = Evaluator(config, mean=mean, std=std)
    ckpt = read_checkpoint(file)
    for key in STATE_KEYS:
        state = ckpt.get(key)
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{file}: entry {key!r} is missing or not a state dict (found "
                                  f"{sorted(ckpt)}); is this a text_mot_match finest.tar?")
        load_state_dict_checked(getattr(evaluator, key), state, source=f"{file}[{key!r}]")
    evaluator.epoch = int(ckpt.get("epoch", -1))
    return evaluator.to(device).eval()


def save_evaluator(path: str | os.PathLike, evaluator: Evaluator, *, epoch: int | None = None,
                   overwrite: bool = False) -> Path:
    """Write ``opt.txt``, ``model/finest.tar`` and ``meta/{mean,std}.npy`` atomically.

    The checkpoint holds the three state dicts and ``epoch``, so the official wrapper loads it
    from ``checkpoints/<ds>/text_mot_match``.

    Raises:
        CheckpointError: the evaluator has no statistics, or ``path`` exists and not
            ``overwrite``.
    """
    if evaluator.mean is None or evaluator.std is None:
        raise CheckpointError("cannot save an evaluator without mean/std: its embeddings mean "
                              "nothing without the normalisation its inputs need")
    target = Path(path)
    payload: dict[str, Any] = {key: getattr(evaluator, key) for key in STATE_KEYS}
    payload["epoch"] = evaluator.epoch if epoch is None else int(epoch)
    try:
        with atomic_directory(target, overwrite=overwrite) as tmp:
            write_opt(tmp / OPT_FILE, evaluator.config)
            write_checkpoint(tmp / CHECKPOINT_FILE, payload)
            save_npy(tmp / "meta" / "mean.npy", evaluator.mean)
            save_npy(tmp / "meta" / "std.npy", evaluator.std)
    except FileExistsError:
        raise CheckpointError(f"{target} already exists; choose a new directory or pass "
                              f"overwrite=True") from None
    return target
