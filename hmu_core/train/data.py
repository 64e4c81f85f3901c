"""Data helpers shared by the trainers: cached text features, batch collation, run metadata.

Text features are computed once per run for every distinct caption (sorted, in chunks) and
looked up per batch, so a text encoder such as CLIP never runs inside the training loop.
The encoder is any object with ``name``, ``dim`` and ``encode(list[str]) -> (N, dim)``
float32 (``hmu_core.text.registry.load_text_encoder`` builds them).
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from hmu_core.atomic import save_npy
from hmu_core.data.datasets import TextMotionDataset
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.models.checkpoints import MODEL_SUBDIR, official_opt
from hmu_core.models.opt import config_to_opt, format_opt_value, write_opt

log = logging.getLogger(__name__)

ENCODE_CHUNK = 256


class TextEncoderLike(Protocol):
    """What the trainers need from a text encoder."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor: ...


class TextFeatureCache:
    """Every distinct caption encoded once; ``cache(texts)`` -> (B, dim) float32 on the CPU.

    Raises:
        ConfigError: the encoder returns the wrong shape or non-finite values.
    """

    def __init__(self, encoder: TextEncoderLike, texts: Iterable[str]) -> None:
        unique = sorted(set(texts))
        if not unique:
            raise ConfigError("no captions to encode; the dataset split has no captions")
        dim = int(getattr(encoder, "dim", 0))
        chunks = []
        for start in range(0, len(unique), ENCODE_CHUNK):
            part = unique[start:start + ENCODE_CHUNK]
            feats = ENCODED_CHUNKS.encode(encoder, part)
            if feats.shape != (len(part), dim):
                raise ConfigError(
                    f"text encoder {getattr(encoder, 'name', encoder)!r} returned shape "
                    f"{tuple(feats.shape)} for {len(part)} texts; expected "
                    f"({len(part)}, {dim}) (its dim attribute)")
            chunks.append(feats)
        self.table = torch.cat(chunks)
        if not bool(torch.isfinite(self.table).all()):
            raise ConfigError(f"text encoder {getattr(encoder, 'name', encoder)!r} returned "
                              "non-finite features")
        self.index = {text: i for i, text in enumerate(unique)}
        self.dim = dim
        log.info("encoded %d distinct captions (%d-d)", len(unique), dim)

    def __len__(self) -> int:
        return len(self.index)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        try:
            rows = [self.index[t] for t in texts]
        except KeyError as error:
            raise ConfigError(f"caption {error.args[0]!r} was not encoded up front") from None
        return self.table[rows]


class EncodedChunks:
    """The features of the caption chunks this process has encoded, per encoder object, the
    least recently used dropped past ``max_bytes``.

    Training the base and the residual transformer on one dataset (``hmu train mask`` then
    ``res`` in one process, fine-tuning or retraining both) encodes the same sorted chunks of
    the same captions with the same encoder: the second time costs nothing. An answer depends
    only on the encoder and the chunk (the same list in the same order), so it is the one a
    second ``encode`` would give. Encoders are held weakly: a dropped encoder's chunks are
    never answered again and age out.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._chunks: OrderedDict[tuple[weakref.ref, tuple[str, ...]], torch.Tensor] = \
            OrderedDict()
        self._bytes = 0

    def encode(self, encoder: TextEncoderLike, texts: list[str]) -> torch.Tensor:
        """``encoder.encode(texts)`` as (N, dim) float32 on the CPU, from memory when this
        encoder object encoded exactly ``texts`` before."""
        try:
            key = (weakref.ref(encoder), tuple(texts))
        except TypeError:  # an encoder that cannot be referenced weakly is not remembered
            return self._run(encoder, texts)
        if key in self._chunks:
            self._chunks.move_to_end(key)
            return self._chunks[key]
        feats = self._run(encoder, texts)
        self._chunks[key] = feats
        self._bytes += feats.nbytes
        while self._bytes > self.max_bytes and len(self._chunks) > 1:
            self._bytes -= self._chunks.popitem(last=False)[1].nbytes
        return feats

    @staticmethod
    def _run(encoder: TextEncoderLike, texts: list[str]) -> torch.Tensor:
        with torch.no_grad():
            return torch.as_tensor(encoder.encode(list(texts))).detach().float().cpu()


ENCODED_CHUNKS = EncodedChunks(max_bytes=256 * 2**20)
"""Every trainer's chunks (256 MB: HumanML3D's 87k captions at CLIP's 512 floats fit in 180)."""


def collate_pairs(items: Sequence[tuple[str, torch.Tensor, int]]
                  ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """``TextMotionDataset`` items -> (captions, motions (B, T, D), lengths (B,) int64)."""
    captions = [item[0] for item in items]
    motions = torch.stack([item[1] for item in items])
    lengths = torch.tensor([item[2] for item in items], dtype=torch.long)
    return captions, motions, lengths


def preset_record(preset: Any, name: str) -> dict[str, Any]:
    """The preset as plain containers (saved in ``latest.tar`` and checked on resume)."""
    return {"name": name, **dataclasses.asdict(preset)}


def opt_updates(preset: Any, name: str, seed: int, **more: Any) -> dict[str, Any]:
    """Training options written to opt.txt next to the architecture, official names first
    (``batch_size``, ``lr``, ``milestones``...), then ours (``preset``, ``max_iters``)."""
    schedule = preset.schedule
    values: dict[str, Any] = {
        "batch_size": schedule.batch_size, "lr": schedule.lr,
        "warm_up_iter": schedule.warm_up_iter, "milestones": list(schedule.milestones),
        "gamma": schedule.gamma, "weight_decay": schedule.weight_decay,
        "max_epoch": schedule.max_epoch, "max_iters": schedule.max_iters,
        "seed": seed, "preset": name, "is_train": True,
    }
    for key, value in dataclasses.asdict(preset).items():
        if key != "schedule" and key not in values:
            values[key] = value
    values.update(more)
    return {k: format_opt_value(v) if not isinstance(v, str) else v for k, v in values.items()}


def write_run_files(out_dir: Path, config: Any, updates: Mapping[str, Any],
                    mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
    """opt.txt (official format, ``name`` = the directory) and ``meta/{mean,std}.npy``, each
    written atomically, plus the ``model/`` folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_SUBDIR).mkdir(exist_ok=True)
    # Architecture keys come from the config alone (it knows the official spellings, e.g.
    # n_layers for num_layers); a second spelling would make opt.txt ambiguous.
    # Derived fields (code_dim, clip_dim...) are not in the official opt.txt; we add them as
    # plain entries, which loaders keep in the config's ``extra``.
    skip = {f.name for f in dataclasses.fields(config)
            if f.metadata.get("opt", "required") != "derived"} | set(config_to_opt(config))
    updates = {k: v for k, v in updates.items() if k not in skip}
    write_opt(out_dir / "opt.txt", official_opt(config, out_dir, updates))
    if mean is not None and std is not None:
        save_npy(out_dir / "meta" / "mean.npy", mean)
        save_npy(out_dir / "meta" / "std.npy", std)


def resolve_out(path: str | Path) -> Path:
    """The output directory as an absolute path (``name`` in opt.txt is its last part)."""
    return Path(path).expanduser().resolve()


def text_motion_splits(dataset: HumanML3D, mean: Any, std: Any, preset: Any, seed: int,
                       exclude: Collection[str] = ()
                       ) -> tuple[TextMotionDataset, TextMotionDataset | None]:
    """Train and val text-motion pairs with the preset's unit/length limits.

    ``exclude``: clip ids left out of both splits (unlearning trains on the retain set). A
    dataset without usable val pairs trains anyway (with a warning): only the best-model
    files, which are chosen on validation, are then not written.

    Raises:
        DataError: no usable train pairs.
    """
    common = dict(unit_length=preset.unit_length, max_motion_length=preset.max_motion_length,
                  min_motion_length=preset.min_motion_length, seed=seed)
    left_out = set(exclude)

    def ids(split: str) -> list[str]:
        return [i for i in dataset.ids(split) if i not in left_out]

    train = TextMotionDataset(dataset, ids("train"), mean, std, **common)
    try:
        val: TextMotionDataset | None = TextMotionDataset(dataset, ids("val"), mean, std,
                                                          **common)
    except DataError as error:
        log.warning("no validation pairs (%s); best-model files will not be written", error)
        val = None
    return train, val
