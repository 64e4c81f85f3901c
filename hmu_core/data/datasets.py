"""torch Datasets over a HumanML3D-layout directory: VQ training windows and text-motion pairs.

Both normalise with a *given* mean/std, so the caller decides which statistics a model sees.
MoMask's models see the **meta** statistics: ``Std`` with the root dims ``[0:4]`` and the foot
contact dims ``[259:263]`` divided by ``feat_bias = 5`` (the evaluator's ``meta/std.npy``).
:func:`meta_stats` applies that division exactly once and returns new arrays.

The /25 trap (``reference/momask.md`` §3.2): the official ``MotionDataset`` and
``Text2MotionDataset`` divide ``std`` by ``feat_bias`` *in place* in ``__init__``; the training
scripts build the train and the val dataset from the same array, so the division happens twice
(÷25), and the second constructor overwrites ``meta/std.npy`` with that version. The released
meta files are byte-identical to the evaluator's. Here nothing is modified in place: the
datasets copy the statistics they are given, and building any number of datasets from one
array leaves it unchanged (a test checks this). To load released checkpoints, pass their
``meta/{mean,std}.npy`` directly, never ``Std.npy / 5``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from hmu_core.data.humanml3d import FPS, Caption, HumanML3D
from hmu_core.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FEAT_BIAS = 5.0
"""Divisor of the root and foot-contact stds in the official meta statistics."""


def meta_stats(
    mean: np.ndarray, std: np.ndarray, feat_bias: float = FEAT_BIAS
) -> tuple[np.ndarray, np.ndarray]:
    """The official meta statistics from the dataset ``Mean.npy``/``Std.npy``, bias applied once.

    Args:
        mean: (D,) dataset mean; returned as a float32 copy.
        std: (D,) dataset std; the copy has ``[0:4]`` and the last 4 dims (``[259:263]`` for
            D = 263: foot contacts) divided by ``feat_bias``. The input is not modified.

    Note that the released checkpoints' meta files also differ from ``Mean.npy`` by up to 0.028
    (they were computed on a different frame set), so for released weights use their files.
    """
    mean = np.asarray(mean, dtype=np.float32)
    std = np.array(std, dtype=np.float32, copy=True)
    if mean.shape != std.shape or std.ndim != 1 or std.shape[0] < 8:
        raise DataError(f"meta_stats: mean {mean.shape} and std {std.shape} must be equal (D,)")
    if feat_bias <= 0:
        raise ConfigError(f"feat_bias must be > 0, got {feat_bias}")
    std[0:4] /= feat_bias
    std[-4:] /= feat_bias
    return mean.copy(), std


def _checked_stats(mean: np.ndarray, std: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array(mean, dtype=np.float32, copy=True)
    std = np.array(std, dtype=np.float32, copy=True)
    if mean.shape != (dim,) or std.shape != (dim,):
        raise DataError(f"normalisation stats must have shape ({dim},); got mean {mean.shape},"
                        f" std {std.shape}")
    if not (np.isfinite(std).all() and (std > 0).all()):
        raise DataError("every std entry must be finite and > 0")
    return mean, std


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(..., D) features -> (x - mean) / std, float32."""
    return ((x - mean) / std).astype(np.float32)


def denormalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize`."""
    return (x * std + mean).astype(np.float32)


def _load_finite(dataset: HumanML3D, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Features of ``ids``; clips with NaN/inf (official 007975) are left out with a warning."""
    motions: dict[str, np.ndarray] = {}
    bad: list[str] = []
    for motion_id in ids:
        features = dataset.features(motion_id, check_finite=False)
        if np.isfinite(features).all():
            motions[motion_id] = features
        else:
            bad.append(motion_id)
    if bad:
        log.warning("left out %d clips with non-finite features: %s", len(bad), ", ".join(bad[:5]))
    return motions


class MotionWindowDataset(Dataset):
    """Fixed-length normalised windows for RVQ-VAE training (official ``MotionDataset``).

    Every clip with at least ``window_size`` frames contributes ``len - window_size`` windows
    (the official count: the last possible start is never used, and a clip of exactly
    ``window_size`` frames contributes none). Item ``i`` is a (window_size, D) float32 tensor.

    Args:
        dataset: the reader.
        ids: clip ids (e.g. ``dataset.ids("train")``).
        mean, std: (D,) statistics to normalise with (usually :func:`meta_stats`); copied.
        window_size: frames per window (64 in the released config).

    Raises:
        DataError: no clip is long enough, or a motion file is missing/malformed.
    """

    def __init__(self, dataset: HumanML3D, ids: Sequence[str], mean: np.ndarray,
                 std: np.ndarray, window_size: int = 64) -> None:
        if window_size < 1:
            raise ConfigError(f"window_size must be >= 1, got {window_size}")
        self.mean, self.std = _checked_stats(mean, std, dataset.feature_dim)
        self.window_size = window_size
        motions = _load_finite(dataset, ids)
        self.ids = [i for i, m in motions.items() if len(m) > window_size]
        if not self.ids:
            raise DataError(f"{dataset.root}: no clip of {len(ids)} has more than {window_size}"
                            " frames; lower window_size")
        self.motions = [motions[i] for i in self.ids]
        counts = [len(m) - window_size for m in self.motions]
        self._starts = np.cumsum([0, *counts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        clip = int(np.searchsorted(self._starts, index, side="right")) - 1
        offset = index - int(self._starts[clip])
        window = self.motions[clip][offset : offset + self.window_size]
        return torch.from_numpy(normalize(window, self.mean, self.std))


@dataclass(frozen=True)
class PairEntry:
    """One item source of :class:`TextMotionDataset`.

    Attributes:
        name: the clip id, or ``<id>#<line>`` for a timed caption made its own item (the
            official loaders use a random-letter prefix instead).
        motion_id: the clip id.
        begin, end: [begin, end) feature frames of the clip.
        captions: the captions to choose from.
    """

    name: str
    motion_id: str
    begin: int
    end: int
    captions: tuple[Caption, ...]


class TextMotionDataset(Dataset):
    """(caption, motion, length) triples for transformer training (official
    ``Text2MotionDataset``, ``reference/momask.md`` §3.3).

    Clips shorter than ``min_motion_length`` or of ``max_source_length`` frames or more are left
    out. Whole-clip captions (both time tags 0) go to the clip's entry; a timed caption
    becomes its own entry over ``motion[int(start*fps):int(end*fps)]``, kept under the same
    length rule. An item draws one caption, crops the length to a multiple of ``unit_length``
    (one unit shorter with probability 1/3 when unit_length < 10), draws a start offset,
    normalises and zero-pads to ``max_motion_length``.

    Randomness is a function of (seed, epoch, index), so items are reproducible and DataLoader
    workers do not repeat each other; call :meth:`set_epoch` each epoch for fresh draws.

    Item: ``(caption: str, motion: (max_motion_length, D) float32 tensor, length: int)``;
    rows at and after ``length`` are zeros (the mean, in normalised space).
    """

    def __init__(
        self,
        dataset: HumanML3D,
        ids: Sequence[str],
        mean: np.ndarray,
        std: np.ndarray,
        unit_length: int = 4,
        max_motion_length: int = 196,
        min_motion_length: int = 40,
        max_source_length: int = 200,
        fps: int = FPS,
        seed: int = 0,
    ) -> None:
        if unit_length < 1 or max_motion_length < unit_length:
            raise ConfigError(f"need 1 <= unit_length ({unit_length}) <= max_motion_length"
                              f" ({max_motion_length})")
        if min_motion_length < unit_length:
            raise ConfigError(f"min_motion_length ({min_motion_length}) must be >= unit_length"
                              f" ({unit_length}) so every crop keeps at least one unit")
        self.mean, self.std = _checked_stats(mean, std, dataset.feature_dim)
        self.unit_length = unit_length
        self.max_motion_length = max_motion_length
        self.seed = seed
        self.epoch = 0
        self.motions = _load_finite(dataset, ids)
        self.entries: list[PairEntry] = []

        def keep(n: int) -> bool:
            return min_motion_length <= n < max_source_length

        for motion_id, motion in self.motions.items():
            whole: list[Caption] = []
            for line, caption in enumerate(dataset.captions(motion_id), 1):
                if caption.whole_clip:
                    whole.append(caption)
                    continue
                begin, end = caption.frame_span(len(motion), fps)
                if keep(end - begin):
                    self.entries.append(
                        PairEntry(f"{motion_id}#{line}", motion_id, begin, end, (caption,)))
            if whole and keep(len(motion)):
                self.entries.append(PairEntry(motion_id, motion_id, 0, len(motion), tuple(whole)))
        if not self.entries:
            raise DataError(f"{dataset.root}: none of {len(ids)} clips has a caption span of"
                            f" {min_motion_length} to {max_source_length - 1} frames")

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws (caption, crop, offset) for a new epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.entries)

    def crop_length(self, n_frames: int, rng: np.random.Generator) -> int:
        """Length after the official unit crop: ``(n//u)*u``, or ``(n//u - 1)*u`` w.p. 1/3."""
        units = n_frames // self.unit_length
        if self.unit_length < 10 and rng.integers(3) == 2 and units > 1:
            units -= 1
        return min(units * self.unit_length, self.max_motion_length)

    def draw(self, index: int) -> tuple[Caption, int, int]:
        """The item's random choices in this epoch: ``(caption, start, length)``, ``start``
        in the clip's frames. Callers that only need the crop (``code_stats`` encodes each
        distinct crop once) get it without building the padded motion."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        entry = self.entries[index]
        caption = entry.captions[int(rng.integers(len(entry.captions)))]
        length = self.crop_length(entry.end - entry.begin, rng)
        start = int(rng.integers(entry.end - entry.begin - length + 1))
        return caption, entry.begin + start, length

    def crop(self, motion_id: str, start: int, length: int) -> torch.Tensor:
        """Frames ``[start, start + length)`` of a clip, normalised, zero-padded to
        ``max_motion_length``."""
        motion = self.motions[motion_id]
        out = np.zeros((self.max_motion_length, motion.shape[1]), dtype=np.float32)
        out[:length] = normalize(motion[start : start + length], self.mean, self.std)
        return torch.from_numpy(out)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor, int]:
        caption, start, length = self.draw(index)
        return caption.text, self.crop(self.entries[index].motion_id, start, length), length


def caption_tokens(dataset: TextMotionDataset, index: int, text: str) -> tuple:
    """The tokens of the caption the item drew (items carry only its text)."""
    for caption in dataset.entries[index].captions:
        if caption.text == text:
            return caption.tokens
    raise AssertionError(f"item {index} drew a caption its entry does not hold: {text!r}")
