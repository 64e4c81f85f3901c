"""Which VQ codes the dataset's motions use: the statistics LCR ranks codes by.

The official sample protocol (baselines.md §4.1, LCR step 1): one sample per caption entry
(a clip's whole-clip captions form one entry, every timed caption its own entry over its span,
exactly the transformer training entries of ``TextMotionDataset``), each drawn ``repeats``
times with a fresh random crop (the official unit crop and offset), normalised with the VQ's
meta statistics, zero-padded to 196 frames and encoded by the RVQ encoder. With
``pad_to_max`` (the official behaviour) the codes of the padded tail count too; they are the
same for forget and retain samples, so they rarely rank.

Encoding is the slow part (minutes on a real dataset), the selection is instant, so the codes
of every sample and layer are cached in ``<model>/cache/`` under a key made of the VQ
checkpoint, the dataset content of the ids used and the protocol: a second run with another
``r``, concept or safe-code rule reads the cache.

``N_k(D)`` (:meth:`CodeSamples.presence_counts`) is the number of samples of ``D`` whose
token sequence contains code ``k`` at least once (a document frequency), computed with one
scatter into a boolean (samples x codes) matrix, no Python loop over tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hmu_core.atomic import save_npz
from hmu_core.data.datasets import TextMotionDataset
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.progress import Progress, no_progress, track

log = logging.getLogger(__name__)

CACHE_SUBDIR = "cache"
CACHE_VERSION = 1

@dataclass(frozen=True)
class SampleProtocol:
    """How motions become code samples (official defaults: 20 random crops per entry)."""

    repeats: int = 20
    seed: int = 0
    pad_to_max: bool = True
    batch_size: int = 64
    unit_length: int = 4
    max_motion_length: int = 196
    min_motion_length: int = 40

    def __post_init__(self) -> None:
        for name in ("repeats", "batch_size", "unit_length", "max_motion_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sample protocol: {name} must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CodeSamples:
    """Codes of every encoded sample.

    Attributes:
        codes: (samples, tokens, layers) int16 code ids; -1 where a token does not count
            (past the crop when ``pad_to_max`` is off).
        sample_motion: (samples,) index into ``motion_ids`` of each sample's clip.
        motion_ids: the clips, in dataset order.
        nb_code: codebook size.
    """

    codes: np.ndarray
    sample_motion: np.ndarray
    motion_ids: tuple[str, ...]
    nb_code: int

    def mask_for(self, ids: Iterable[str]) -> np.ndarray:
        """(samples,) bool: samples whose clip is in ``ids``."""
        wanted = set(ids)
        clip_in = np.array([m in wanted for m in self.motion_ids], dtype=bool)
        return clip_in[self.sample_motion] if clip_in.size else np.zeros(0, bool)

    def presence_counts(self, mask: np.ndarray, layer: int = 0) -> np.ndarray:
        """``N_k``: for each code, how many of the masked samples contain it (int64)."""
        samples, codes = self._presence_pairs(layer)
        return np.bincount(codes[mask[samples]], minlength=self.nb_code).astype(np.int64)

    def _presence_pairs(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Every distinct (sample, code) pair of ``layer``, -1 tokens left out: computed once
        per layer, so each mask's counts are one bincount (selection with several concepts
        and layers stays well under a second)."""
        if not 0 <= layer < self.codes.shape[2]:
            raise ConfigError(f"layer {layer} out of range: the VQ has {self.codes.shape[2]} "
                              f"quantizer layers (0..{self.codes.shape[2] - 1})")
        cache = self.__dict__.setdefault("_pairs", {})
        if layer not in cache:
            codes = self.codes[:, :, layer]
            valid = codes >= 0
            rows = np.broadcast_to(np.arange(codes.shape[0])[:, None], codes.shape)
            present = np.zeros((codes.shape[0], self.nb_code), dtype=bool)
            present[rows[valid], codes[valid]] = True
            cache[layer] = np.nonzero(present)
        return cache[layer]


def encode_samples(vq: nn.Module, dataset: HumanML3D, ids: Sequence[str], mean: np.ndarray,
                   std: np.ndarray, protocol: SampleProtocol,
                   progress: Progress = no_progress) -> CodeSamples:
    """Encode every caption entry of ``ids`` ``protocol.repeats`` times (VQ in eval mode).

    The random crops are drawn first and each distinct crop (clip, start, length) is encoded
    once: a clip shorter than ~200 frames has only a dozen possible crops, so the official 20
    draws per entry repeat most of them (about a third are distinct on the synthetic set) and
    encoding only those gives the same codes several times faster.

    Raises:
        DataError: no clip of ``ids`` has a caption span of a usable length.
    """
    pairs = TextMotionDataset(dataset, ids, mean, std, unit_length=protocol.unit_length,
                              max_motion_length=protocol.max_motion_length,
                              min_motion_length=protocol.min_motion_length, seed=protocol.seed)
    motion_ids = tuple(pairs.motions)
    position = {m: i for i, m in enumerate(motion_ids)}
    entry_motion = np.array([position[e.motion_id] for e in pairs.entries], dtype=np.int32)
    n = len(pairs)
    crops: dict[tuple[str, int, int], int] = {}  # (clip, start, length) -> distinct crop row
    sample_crop = np.empty(protocol.repeats * n, dtype=np.int64)
    for repeat in range(protocol.repeats):
        pairs.set_epoch(repeat)
        for i, entry in enumerate(pairs.entries):
            _, start, length = pairs.draw(i)
            sample_crop[repeat * n + i] = crops.setdefault((entry.motion_id, start, length),
                                                           len(crops))
    distinct = list(crops)
    vq = vq.eval()
    device = next(vq.parameters()).device
    size = protocol.batch_size
    chunks: list[np.ndarray] = []
    starts = range(0, len(distinct), size)
    for first in track(starts, progress, "encoding motions"):
        batch = distinct[first:first + size]
        motions = torch.stack([pairs.crop(*crop) for crop in batch]).to(device)
        with torch.no_grad():
            code_idx, _ = vq.encode(motions)
        codes = code_idx.cpu().numpy().astype(np.int16)
        if not protocol.pad_to_max:
            tokens = np.array([length // protocol.unit_length for _, _, length in batch])
            codes[np.arange(codes.shape[1])[None, :] >= tokens[:, None]] = -1
        chunks.append(codes)
    log.info("encoded %d distinct crops for %d samples", len(distinct), sample_crop.size)
    return CodeSamples(codes=np.concatenate(chunks)[sample_crop],
                       nb_code=int(vq.quantizer.layers[0].nb_code),
                       sample_motion=np.tile(entry_motion, protocol.repeats),
                       motion_ids=motion_ids)


def file_digest(path: Path, digest: Any) -> None:
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)


def cache_key(vq_checkpoint: Path, meta_dir: Path, dataset: HumanML3D, ids: Sequence[str],
              protocol: SampleProtocol) -> str:
    """sha256 over the VQ checkpoint and meta files, the features and captions of ``ids``, and
    the protocol: any change to what the codes depend on gives a new key."""
    digest = hashlib.sha256(f"hmu-lcr-codes/{CACHE_VERSION}".encode())
    digest.update(json.dumps(protocol.to_dict(), sort_keys=True).encode())
    for path in (vq_checkpoint, meta_dir / "mean.npy", meta_dir / "std.npy"):
        file_digest(path, digest)
    for motion_id in ids:
        digest.update(motion_id.encode() + b"\0")
        for path in (dataset.root / "new_joint_vecs" / f"{motion_id}.npy",
                     dataset.root / "texts" / f"{motion_id}.txt"):
            if path.is_file():
                file_digest(path, digest)
    return digest.hexdigest()


def load_or_encode(cache_dir: Path, key: str, encode: Callable[[], CodeSamples]) -> CodeSamples:
    """The cached samples of ``key`` under ``cache_dir``, else ``encode()`` and cache them."""
    path = cache_dir / f"lcr_codes_{key[:24]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) == key:
                    log.info("code statistics from cache %s", path)
                    return CodeSamples(codes=data["codes"], sample_motion=data["sample_motion"],
                                       motion_ids=tuple(str(m) for m in data["motion_ids"]),
                                       nb_code=int(data["nb_code"]))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable cache %s (%s); encoding again", path, exc)
    samples = encode()
    try:
        save_npz(path, codes=samples.codes, sample_motion=samples.sample_motion,
                 motion_ids=np.array(samples.motion_ids, dtype=np.str_),
                 nb_code=np.int64(samples.nb_code), key=np.str_(key))
    except OSError as exc:  # a read-only model directory still gets its edit
        log.warning("could not cache code statistics in %s (%s)", cache_dir, exc)
    return samples


def check_forget_retain(samples: CodeSamples, forget_ids: Sequence[str],
                        retain_ids: Sequence[str], concept: str) -> tuple[np.ndarray, np.ndarray]:
    """Sample masks of the forget and retain clips, both non-empty.

    Raises:
        DataError: no encoded forget (or retain) sample for ``concept``.
    """
    forget, retain = samples.mask_for(forget_ids), samples.mask_for(retain_ids)
    for name, mask, count in (("forget", forget, len(forget_ids)),
                              ("retain", retain, len(retain_ids))):
        if not mask.any():
            raise DataError(f"concept {concept!r}: no {name} samples to count codes on "
                            f"({count} {name} clips in train_val, none with a usable caption "
                            f"span); check the concept's keywords and the dataset")
    return forget, retain
