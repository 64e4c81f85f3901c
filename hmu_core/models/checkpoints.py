"""Model directories in the official MoMask/BAMM layout: read, check, write atomically.

Layout (reference/momask.md §1.4, §2.6, §7 item 14; baselines.md §1.6)::

    <name>/opt.txt                 official "key: value" options (hmu_core.models.opt)
    <name>/model/<file>.tar        {<state key>: state_dict, 'ep': int, ...}
    <name>/meta/mean.npy, std.npy  normalisation of the VQ's features (float64 when released)

Checkpoints are read with ``torch.load(weights_only=True)`` only. State dicts load strictly,
except that ``clip_model.*`` keys may be absent (the text encoder is attached separately and is
never saved); saves drop ``clip_model.*``. Every mismatch names the file, the key and both
shapes. ``load_model_set`` (``hmu_core.models.model_set``) loads a whole official set.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hmu_core.atomic import atomic_directory, atomic_open, save_npy, write_json
from hmu_core.errors import HmuError
from hmu_core.models import build, opt_aliases, resolve_kind
from hmu_core.models.opt import (
    OPT_FILE,
    config_from_opt,
    config_to_opt,
    format_opt_value,
    read_opt,
    write_opt,
)

log = logging.getLogger(__name__)

CLIP_PREFIX = "clip_model."
MODEL_SUBDIR = "model"
META_SUBDIR = "meta"

# kind -> state-dict keys accepted in a checkpoint; the first one is written.
STATE_KEYS: dict[str, tuple[str, ...]] = {
    "rvqvae": ("vq_model", "net"),
    "mask_transformer": ("t2m_transformer", "trans"),
    "bamm_transformer": ("t2m_transformer", "trans"),
    "res_transformer": ("res_transformer",),
    "length_estimator": ("estimator",),
}
# kind -> checkpoint files tried in order: the official choice first (momask.md §2.6 "Which
# file each script loads"), then the Mamiglia fork's fallbacks (§0.1 item 2).
CHECKPOINT_FILES: dict[str, tuple[str, ...]] = {
    "rvqvae": ("net_best_fid.tar", "latest.tar", "base.tar"),
    "mask_transformer": ("latest.tar", "net_best_fid.tar", "base.tar"),
    "bamm_transformer": ("latest.tar", "net_best_fid.tar", "base.tar"),
    "res_transformer": ("net_best_fid.tar", "latest.tar", "base.tar"),
    "length_estimator": ("finest.tar",),
}
_MAX_LISTED = 12


class CheckpointError(HmuError):
    """A model directory lacks a file, or a checkpoint is unreadable or has the wrong layout."""


class StateDictMismatchError(CheckpointError):
    """A state dict's keys or shapes differ from the model's; lists every difference."""

    def __init__(self, message: str, *, file: str, missing: list[str],
                 unexpected: list[str], mismatched: list[tuple[str, tuple, tuple]]) -> None:
        super().__init__(message)
        self.file = file
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched


def strip_clip(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``clip_model.*`` entries (official trainers do the same before saving)."""
    return {k: v for k, v in state_dict.items() if not k.startswith(CLIP_PREFIX)}


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a ``.tar`` checkpoint on the CPU with ``weights_only=True``.

    Raises:
        CheckpointError: missing, truncated or not a torch file, or holding pickled objects
            that a weights-only load refuses.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} not found")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()
                       if "WeightsUnpickler error" in line), "")
        detail = detail.split(". Please use")[0] or str(exc).splitlines()[-1].strip()
        raise CheckpointError(
            f"{file}: refused by torch.load(weights_only=True) ({detail}); it is not a plain "
            f"torch checkpoint of tensors, numbers and containers. hmu never unpickles "
            f"arbitrary objects: re-save it with only state dicts and numbers"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            f"{file}: cannot be read as a torch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); the file is truncated "
            f"or corrupt, download or save it again"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{file}: expected a dict checkpoint, found {type(obj).__name__}")
    return obj


def write_checkpoint(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Save a checkpoint dict atomically; nn.Modules become state dicts without ``clip_model.*``.

    Everything else must be what ``weights_only`` loads (tensors, numbers, strings, containers).
    """
    clean: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, nn.Module):
            value = value.state_dict()
        if isinstance(value, Mapping) and any(isinstance(v, torch.Tensor) for v in value.values()):
            value = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                     for k, v in strip_clip(value).items()}
        clean[key] = value
    file = Path(path)
    with atomic_open(file, "wb") as handle:
        torch.save(clean, handle)
    return file


def state_dict_from_checkpoint(ckpt: Mapping[str, Any], kind: str, file: Path) -> dict[str, Any]:
    """Pick the state dict of ``kind`` (``vq_model`` or ``net``, ...) out of a checkpoint."""
    for key in STATE_KEYS[kind]:
        if key in ckpt:
            state = ckpt[key]
            if not isinstance(state, Mapping):
                raise CheckpointError(f"{file}: entry {key!r} is a {type(state).__name__}, "
                                      f"not a state dict")
            return dict(state)
    raise CheckpointError(
        f"{file}: no {' or '.join(repr(k) for k in STATE_KEYS[kind])} entry for a {kind} "
        f"(found {sorted(ckpt)}); is this the right model directory?"
    )


def load_state_dict_checked(module: nn.Module, state_dict: Mapping[str, Any], *,
                            source: str | os.PathLike) -> None:
    """Strict load, except that ``clip_model.*`` may be missing (and is ignored if present).

    Raises:
        StateDictMismatchError: missing, unexpected or mis-shaped keys, each named with both
            shapes and the file.
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()
                if not k.startswith(CLIP_PREFIX)}
    given = strip_clip(state_dict)
    if len(given) != len(state_dict):
        log.info("%s: ignoring %d clip_model.* entries; the text encoder is attached separately",
                 source, len(state_dict) - len(given))
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in given.items()}
    mismatched = [(k, shapes[k], expected[k]) for k in expected
                  if k in given and shapes[k] != expected[k]]
    if missing or unexpected or mismatched:
        lines = [f"missing key {k!r} (model expects shape {expected[k]})" for k in missing]
        lines += [f"unexpected key {k!r} (checkpoint shape {shapes[k]})" for k in unexpected]
        lines += [f"key {k!r}: checkpoint shape {a}, model shape {b}" for k, a, b in mismatched]
        shown = "\n  ".join(lines[:_MAX_LISTED])
        more = f"\n  ... and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
        raise StateDictMismatchError(
            f"{source}: state dict does not match {type(module).__name__} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} "
            f"mis-shaped):\n  {shown}{more}\ncheck that opt.txt belongs to this checkpoint",
            file=str(source), missing=missing, unexpected=unexpected, mismatched=mismatched,
        )
    module.load_state_dict(given, strict=False)  # only clip_model.* can remain missing


def find_checkpoint(model_dir: Path, kind: str, file: str | None = None) -> Path:
    """Path of the checkpoint to load: ``file`` if given, else the first official name that
    exists (with a log line when falling back)."""
    folder = model_dir / MODEL_SUBDIR
    if file is not None:
        path = folder / file
        if not path.is_file():
            present = sorted(p.name for p in folder.glob("*.tar")) if folder.is_dir() else []
            raise CheckpointError(f"checkpoint {path} not found (present: {present or 'none'})")
        return path
    candidates = CHECKPOINT_FILES[kind]
    for index, name in enumerate(candidates):
        path = folder / name
        if path.is_file():
            if index:
                log.warning("%s: %s not found, using %s instead", folder, candidates[0], name)
            return path
    raise CheckpointError(
        f"no checkpoint for a {kind} in {folder}: tried {', '.join(candidates)}; the official "
        f"layout is <name>/model/{candidates[0]}"
    )


def _read_meta(model_dir: Path, required: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    arrays = []
    for name in ("mean.npy", "std.npy"):
        path = model_dir / META_SUBDIR / name
        if not path.is_file():
            if required:
                raise CheckpointError(
                    f"{path} not found: the VQ directory must hold meta/mean.npy and "
                    f"meta/std.npy (the released ones, not HumanML3D/Std.npy; momask.md §3.2)"
                )
            return None, None
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (ValueError, OSError, EOFError) as exc:
            raise CheckpointError(f"{path}: not a readable .npy array ({exc})") from None
    mean, std = arrays
    if mean.shape != std.shape or mean.ndim != 1:
        raise CheckpointError(f"{model_dir / META_SUBDIR}: mean {mean.shape} and std "
                              f"{std.shape} must be equal 1-d shapes")
    return mean, std


@dataclass
class ModelDir:
    """A loaded model directory: the module (eval mode), its config, raw opt and extras."""

    kind: str
    model: nn.Module
    config: Any
    path: Path
    checkpoint_file: Path
    opt: dict[str, str] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)  # 'ep', ... without the weights
    mean: np.ndarray | None = None
    std: np.ndarray | None = None


def load_model_dir(
    path: str | os.PathLike, kind: str, *, file: str | None = None,
    overrides: Mapping[str, Any] | None = None, config: Any = None,
    require_meta: bool = False, device: str | torch.device = "cpu",
    preloaded: tuple[Path, dict[str, Any]] | None = None,
) -> ModelDir:
    """Load ``<path>/opt.txt`` + ``model/<file>`` (+ ``meta/``) into a ``kind`` model (eval mode).

    Args:
        kind: a ``hmu_core.models.KINDS`` entry.
        file: checkpoint file name; default: the official one for ``kind``, with fallbacks.
        overrides: config values opt.txt does not hold (``code_dim``/``num_tokens``/
            ``num_quantizers`` of a transformer come from its VQ).
        config: use this config instead of reading opt.txt. Without either, a length
            estimator uses the released (512, 50) config, as the official loader does.
        require_meta: fail unless ``meta/mean.npy`` and ``meta/std.npy`` exist.
        preloaded: ``(checkpoint path, read_checkpoint result)`` already in memory.

    Raises:
        ConfigError: opt.txt missing or invalid. CheckpointError: checkpoint missing,
            unreadable, or not matching the model (names file, key and shapes).
    """
    model_dir = Path(path)
    _model_cls, cfg_cls = resolve_kind(kind)
    if not model_dir.is_dir():
        raise CheckpointError(f"model directory {model_dir} not found")
    opt_path = model_dir / OPT_FILE
    raw: dict[str, str] = {}
    if config is None:
        if kind == "length_estimator" and not opt_path.is_file():
            log.info("%s has no opt.txt; using the released LengthEstimator(512, 50)", model_dir)
            config = cfg_cls()
        else:
            raw = read_opt(opt_path)
            if hasattr(cfg_cls, "from_opt"):
                config = cfg_cls.from_opt(raw, source=opt_path, overrides=overrides)
            else:
                config = config_from_opt(cfg_cls, raw, opt_aliases(kind), source=opt_path,
                                         overrides=overrides)
    ckpt_path, ckpt = preloaded or (None, None)
    if ckpt_path is None or ckpt is None:
        ckpt_path = find_checkpoint(model_dir, kind, file)
        ckpt = read_checkpoint(ckpt_path)
    state = state_dict_from_checkpoint(ckpt, kind, ckpt_path)
    model = build(kind, config)
    load_state_dict_checked(model, state, source=ckpt_path)
    model.to(device).eval()
    mean, std = _read_meta(model_dir, require_meta)
    rest = {k: v for k, v in ckpt.items() if k not in STATE_KEYS[kind]}
    return ModelDir(kind=kind, model=model, config=config, path=model_dir,
                    checkpoint_file=ckpt_path, opt=raw, checkpoint=rest, mean=mean, std=std)


def official_opt(config: Any, target: Path,
                 updates: Mapping[str, Any] | None = None) -> dict[str, str]:
    """opt.txt entries for ``target``: the config plus what the official ``get_opt`` and
    loaders need to find the files (momask.md §2.1): ``name`` is the directory name (the
    official loaders build ``checkpoints_dir/dataset_name/name/model/...`` from it), and
    ``checkpoints_dir``/``dataset_name`` get the official defaults when the config lacks them.
    """
    items = config_to_opt(config)
    for key, default in (("checkpoints_dir", "./checkpoints"), ("dataset_name", "t2m")):
        items.setdefault(key, default)
    if items.get("name", target.name) != target.name:
        log.info("opt.txt name %r -> %r (the directory it is saved in)", items["name"], target.name)
    items["name"] = target.name
    items.update({k: format_opt_value(v) for k, v in (updates or {}).items()})
    return items


def save_model_dir(
    path: str | os.PathLike, kind: str, model: nn.Module, *, config: Any = None,
    file: str | None = None, payload: Mapping[str, Any] | None = None,
    mean: np.ndarray | None = None, std: np.ndarray | None = None,
    records: Mapping[str, Any] | None = None, opt_updates: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model directory in the official layout, atomically (temp dir, then rename).

    Args:
        kind: a ``hmu_core.models.KINDS`` entry; picks the state key (``vq_model``, ...).
        config: config written as opt.txt; default ``model.config``.
        file: checkpoint name; default the official one for ``kind`` (VQ ``net_best_fid.tar``).
        payload: extra checkpoint entries (``ep`` defaults to -1: official loaders read it).
        mean, std: written to ``meta/`` unchanged (dtype kept).
        records: extra JSON files at the top level, e.g. ``{"unlearning.json": {...}}``.
        opt_updates: opt.txt entries to set, e.g. ``{"vq_name": "rvq"}`` for a transformer.
        overwrite: replace an existing directory (only once the new one is complete).

    Raises:
        CheckpointError: the directory exists and ``overwrite`` is False.
    """
    resolve_kind(kind)
    config = getattr(model, "config", None) if config is None else config
    if config is None:
        raise CheckpointError(f"cannot save a {kind} without a config (opt.txt)")
    target = Path(path)
    name = file or CHECKPOINT_FILES[kind][0]
    entries: dict[str, Any] = {"ep": -1, **dict(payload or {})}
    entries[STATE_KEYS[kind][0]] = strip_clip(model.state_dict())
    try:
        with atomic_directory(target, overwrite=overwrite) as tmp:
            write_opt(tmp / OPT_FILE, official_opt(config, target, opt_updates))
            write_checkpoint(tmp / MODEL_SUBDIR / name, entries)
            if (mean is None) != (std is None):
                raise CheckpointError("pass both mean and std, or neither")
            if mean is not None and std is not None:
                save_npy(tmp / META_SUBDIR / "mean.npy", mean)
                save_npy(tmp / META_SUBDIR / "std.npy", std)
            for record_name, record in (records or {}).items():
                write_json(tmp / record_name, record)
    except FileExistsError:
        raise CheckpointError(
            f"{target} already exists; choose a new directory or pass overwrite=True"
        ) from None
    return target

