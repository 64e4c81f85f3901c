"""A model set: on disk (``ModelSet``), loaded (``LoadedModelSet``), and written after an edit.

Every consumer goes through this module: generation, the unlearning methods, evaluation, the
exporter, the demo and the benchmark, so they all read the same parts and write the same files.

Layout: a directory ``DIR`` holding ``vq/``, ``trans/`` or ``bamm/``, optionally ``res/`` and
``length_estimator/`` (each in the official layout, ``hmu_core.models.checkpoints``), and
optionally ``hmu.json``: ``{"format": "hmu-model-set", "version": 1, "vq": "vq", "trans":
"trans", "res": "res", "length_estimator": "length_estimator", "text_encoder": "minilm"}``
(paths relative to DIR). Text-encoder spec, first found: the explicit one, hmu.json's,
``minilm``. (hmu's trainers record the encoder's *name* in opt.txt, not a spec, so it is not
read; a wrong encoder is caught by its width, with a message naming the right spec.)

An unlearned set has the input's layout plus ``unlearning.json`` (``hmu_core.unlearn.record``).
Each part keeps only what its loader reads: ``opt.txt``, ``meta/`` and the one checkpoint the
official loaders pick (VQ/residual ``net_best_fid.tar``, base transformer ``latest.tar``), so
nobody can load a stale unedited file from an unlearned directory by accident. Parts a method
did not touch are copied byte for byte; edited parts are the source checkpoint with only the
weights replaced (every other entry and every other tensor unchanged). The whole directory is
written through ``atomic_directory`` (with its ``.hmu-output`` marker): a failure leaves
nothing behind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from hmu_core.atomic import atomic_directory, write_json
from hmu_core.errors import ConfigError
from hmu_core.models.checkpoints import (
    META_SUBDIR,
    MODEL_SUBDIR,
    STATE_KEYS,
    CheckpointError,
    ModelDir,
    find_checkpoint,
    load_model_dir,
    read_checkpoint,
    state_dict_from_checkpoint,
    write_checkpoint,
)
from hmu_core.models.opt import OPT_FILE, format_opt_value, read_opt, write_opt
from hmu_core.text.registry import DEFAULT_TEXT_ENCODER

log = logging.getLogger(__name__)

MODEL_SET_FILE = "hmu.json"
MODEL_SET_FORMAT = "hmu-model-set"
RECORD_FILE = "unlearning.json"
PARTS = ("vq", "trans", "res", "length_estimator")
BASE_KINDS = ("mask_transformer", "bamm_transformer")


# ---------------------------------------------------------------------------------------------
# on disk


@dataclass(frozen=True)
class ModelSet:
    """Where a model set's parts are; ``res``/``length_estimator`` may be absent (None)."""

    vq: Path
    trans: Path
    res: Path | None = None
    length_estimator: Path | None = None
    text_encoder: str = DEFAULT_TEXT_ENCODER
    root: Path | None = None

    @property
    def cache_dir(self) -> Path:
        """Where the code statistics of this set are cached: ``<root or vq/..>/cache``."""
        return (self.root or self.vq.parent) / "cache"

    def provenance(self) -> dict[str, Any]:
        """What every generated motion's provenance says about the set it came from."""
        return {"model_dir": None if self.root is None else str(self.root),
                "vq": str(self.vq), "trans": str(self.trans),
                "res": None if self.res is None else str(self.res),
                "text_encoder_spec": self.text_encoder}

    def unlearning_record(self) -> dict[str, Any] | None:
        """``unlearning.json`` of the set: the root's, else the first part that has one
        (None for an original model).

        Raises:
            ConfigError: the file is not valid JSON.
        """
        places = [p for p in (self.root, self.trans, self.res, self.vq, self.length_estimator)
                  if p is not None]
        found = [p / RECORD_FILE for p in places if (p / RECORD_FILE).is_file()]
        if not found:
            return None
        if len(found) > 1:
            log.warning("several %s files (%s); using %s", RECORD_FILE,
                        ", ".join(map(str, found)), found[0])
        try:
            return json.loads(found[0].read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{found[0]} is not valid JSON ({exc}); fix or remove it") from None


def _check_parts(parts: Mapping[str, Any]) -> None:
    if set(parts) - set(PARTS):
        raise ConfigError(f"unknown model part(s) {sorted(set(parts) - set(PARTS))}; known: "
                          f"{list(PARTS)}")


def resolve_model_set(model_dir: str | os.PathLike | None = None, *,
                      text_encoder: str | None = None, **parts: str | os.PathLike | None
                      ) -> ModelSet:
    """Read ``DIR/hmu.json`` (or find ``vq/``, ``trans/`` or ``bamm/``, ``res/``,
    ``length_estimator/``); ``parts`` (``vq=``, ``trans=``, ...) override single paths.

    Raises:
        ConfigError: no such directory, a broken hmu.json, or no VQ / base transformer.
    """
    _check_parts(parts)
    found: dict[str, Any] = {}
    spec = None
    root = None if model_dir is None else Path(model_dir)
    if root is not None:
        if not root.is_dir():
            raise ConfigError(f"model directory {root} not found")
        manifest = root / MODEL_SET_FILE
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{manifest}: not valid JSON ({exc})") from None
            if not isinstance(data, dict) or data.get("format") != MODEL_SET_FORMAT:
                raise ConfigError(f"{manifest}: not a model set (needs \"format\": "
                                  f"\"{MODEL_SET_FORMAT}\")")
            found = {k: root / data[k] for k in PARTS if data.get(k)}
            spec = data.get("text_encoder")
        else:
            bases = [root / n for n in ("trans", "bamm") if (root / n).is_dir()]
            if len(bases) > 1:
                raise ConfigError(f"{root} holds both trans/ and bamm/; name one in hmu.json "
                                  f"or pass --trans")
            found = {k: root / k for k in ("vq", "res", "length_estimator") if (root / k).is_dir()}
            found.update({"trans": bases[0]} if bases else {})
    found.update({k: Path(v) for k, v in parts.items() if v is not None})
    for key in ("vq", "trans"):
        if key not in found:
            where = f"in {root}" if root is not None else "(no --model DIR given)"
            raise ConfigError(f"no {key} model {where}: a model set needs vq/ and trans/ "
                              f"(or bamm/) directories, or pass --{key}")
    for key, path in found.items():
        if not path.is_dir():
            raise ConfigError(f"{key} directory {path} not found")
    return ModelSet(vq=found["vq"], trans=found["trans"], res=found.get("res"),
                    length_estimator=found.get("length_estimator"),
                    text_encoder=text_encoder or spec or DEFAULT_TEXT_ENCODER, root=root)


def write_model_set(model_dir: str | os.PathLike, *, text_encoder: str,
                    **parts: str | None) -> Path:
    """Write ``DIR/hmu.json`` naming the parts (paths relative to ``DIR``), atomically."""
    _check_parts(parts)
    record = {"format": MODEL_SET_FORMAT, "version": 1, "text_encoder": text_encoder,
              **{k: str(v) for k, v in parts.items() if v is not None}}
    write_json(Path(model_dir) / MODEL_SET_FILE, record)
    return Path(model_dir) / MODEL_SET_FILE


# ---------------------------------------------------------------------------------------------
# loaded


@dataclass
class LoadedModelSet:
    """A model set's networks (eval mode), no text encoder attached.

    ``mean``/``std`` are the VQ's ``meta`` arrays: de-normalise decoded motion with
    ``x * std + mean`` (momask.md §3.2). ``models`` and ``parts`` (part -> ``ModelDir``:
    directory, checkpoint file, raw opt.txt) say where the networks came from; both are empty
    for networks built in memory, which can be sampled but not written as an edited set.
    """

    vq: nn.Module
    trans: nn.Module
    res: nn.Module | None
    mean: np.ndarray
    std: np.ndarray
    trans_kind: str  # "mask_transformer" (MoMask) or "bamm_transformer"
    length_estimator: nn.Module | None = None
    models: ModelSet | None = None
    parts: dict[str, ModelDir] = field(default_factory=dict, repr=False)

    @property
    def opts(self) -> dict[str, dict[str, str]]:
        """Each loaded part's raw opt.txt (``{}`` for a file-less length estimator)."""
        return {part: loaded.opt for part, loaded in self.parts.items()}

    @property
    def out_names(self) -> dict[str, str]:
        """Directory name of each part in an output set (BAMM's base model goes to ``bamm/``)."""
        base = "bamm" if self.trans_kind == "bamm_transformer" else "trans"
        return {part: base if part == "trans" else part for part in self.parts}

    def model(self, part: str) -> nn.Module:
        """The network of ``part`` (``vq``, ``trans``, ``res``, ``length_estimator``).

        Raises:
            ConfigError: an unknown part or one the set lacks.
        """
        module = getattr(self, part) if part in PARTS else None
        if module is None:
            raise ConfigError(f"the model set has no {part!r} part")
        return module

    def with_networks(self, *, trans: nn.Module | None = None,
                      res: nn.Module | None = None) -> LoadedModelSet:
        """The same set with another base or residual transformer (an edited copy) in place,
        to sample from; every other network is shared, not copied. ``parts`` still name the
        source files: write an edit with ``write_unlearned_set(..., edited=...)``."""
        return dataclasses.replace(self, trans=self.trans if trans is None else trans,
                                   res=self.res if res is None else res)


def detect_trans_kind(state: dict, nb_code: int, source: Path) -> str:
    """MoMask's token table has nb_code + 2 rows (mask, pad), BAMM's nb_code + 3 (end, pad,
    mask) (baselines.md §1.2, §1.6)."""
    weight = state.get("token_emb.weight")
    if weight is None:
        raise CheckpointError(
            f"{source}: no 'token_emb.weight'; this is not a MoMask or BAMM base transformer"
        )
    rows = int(weight.shape[0])
    if rows == nb_code + 2:
        return "mask_transformer"
    if rows == nb_code + 3:
        return "bamm_transformer"
    raise CheckpointError(
        f"{source}: 'token_emb.weight' has {rows} rows, but the VQ has nb_code={nb_code}: "
        f"expected {nb_code + 2} (MoMask) or {nb_code + 3} (BAMM); the transformer was trained "
        f"with a different VQ"
    )


def load_model_set(source: str | os.PathLike | ModelSet | None = None, *,
                   text_encoder: str | None = None, trans_kind: str | None = None,
                   device: str = "cpu", **parts: str | os.PathLike | None) -> LoadedModelSet:
    """Load every part of a model set (eval mode), as the official loaders do.

    ``source`` is a model-set directory (resolved with ``text_encoder`` and the ``parts``
    overrides, as ``resolve_model_set``) or an already resolved ``ModelSet``. The values a
    transformer's opt.txt lacks (``code_dim``, ``num_tokens``, ``num_quantizers``,
    ``shared_codebook``) come from the VQ's, ``clip_dim`` from hmu's opt.txt (official files
    lack it: 512); the base transformer's kind is detected from its ``token_emb.weight`` rows
    unless ``trans_kind`` names it.

    Raises:
        ConfigError: a missing part or directory, or an invalid opt.txt (file and key named).
        CheckpointError: a checkpoint or meta file is missing, unreadable or does not match
            (file, key and both shapes named).
    """
    if isinstance(source, ModelSet):
        if parts or text_encoder is not None:
            raise ConfigError("pass part overrides with a directory, not a resolved ModelSet")
        models = source
    else:
        models = resolve_model_set(source, text_encoder=text_encoder, **parts)
    vq = load_model_dir(models.vq, "rvqvae", require_meta=True, device=device)
    vq_cfg = vq.config
    assert vq.mean is not None and vq.std is not None  # require_meta
    if vq.mean.shape[0] != vq_cfg.input_width:
        raise CheckpointError(
            f"{models.vq / META_SUBDIR}: mean/std have {vq.mean.shape[0]} features but the VQ "
            f"expects {vq_cfg.input_width}; the meta files belong to another dataset"
        )
    derived = {"code_dim": vq_cfg.code_dim, "num_tokens": vq_cfg.nb_code,
               "num_quantizers": vq_cfg.num_quantizers,
               "shared_codebook": vq_cfg.shared_codebook}

    if not models.trans.is_dir():
        raise CheckpointError(f"transformer directory {models.trans} not found")
    ckpt_path = find_checkpoint(models.trans, trans_kind or "mask_transformer")
    ckpt = read_checkpoint(ckpt_path)
    if trans_kind is None:
        state = state_dict_from_checkpoint(ckpt, "mask_transformer", ckpt_path)
        trans_kind = detect_trans_kind(state, vq_cfg.nb_code, ckpt_path)
        log.info("%s: detected a %s", ckpt_path, trans_kind)
    elif trans_kind not in BASE_KINDS:
        raise CheckpointError(
            f"trans_kind must be 'mask_transformer' or 'bamm_transformer', not {trans_kind!r}"
        )
    trans = load_model_dir(models.trans, trans_kind,
                           overrides={**derived, **_text_dim(models.trans)}, device=device,
                           preloaded=(ckpt_path, ckpt))
    _check_vq_name(trans, models.vq)
    loaded = {"vq": vq, "trans": trans}
    if models.res is not None:
        loaded["res"] = load_model_dir(models.res, "res_transformer",
                                       overrides={**derived, **_text_dim(models.res)},
                                       device=device)
        _check_vq_name(loaded["res"], models.vq)
    if models.length_estimator is not None:
        loaded["length_estimator"] = load_model_dir(models.length_estimator, "length_estimator",
                                                    device=device)
    return LoadedModelSet(
        vq=vq.model, trans=trans.model,
        res=loaded["res"].model if "res" in loaded else None, mean=vq.mean, std=vq.std,
        trans_kind=trans_kind,
        length_estimator=loaded["length_estimator"].model if "length_estimator" in loaded
        else None, models=models, parts=loaded)


def _text_dim(model_dir: Path) -> dict[str, int]:
    """``clip_dim`` as hmu's trainers record it in opt.txt (the text encoder's width); official
    opt.txt files lack it and the official loaders hard-code 512."""
    opt_path = model_dir / OPT_FILE
    raw = read_opt(opt_path) if opt_path.is_file() else {}
    if "clip_dim" not in raw:
        return {}
    try:
        return {"clip_dim": int(raw["clip_dim"])}
    except ValueError:
        raise CheckpointError(f"{opt_path}: clip_dim {raw['clip_dim']!r} is not an int") from None


def _check_vq_name(loaded: ModelDir, vq_dir: Path) -> None:
    """Official transformer opt.txt names its VQ (``vq_name``); a different folder name is
    legitimate (the HMU scripts symlink it as ``rvq``), so only log it."""
    name = loaded.opt.get("vq_name")
    if name is not None and name != vq_dir.resolve().name and name != vq_dir.name:
        log.warning("%s/opt.txt was trained with vq_name %r but is loaded with VQ %s",
                    loaded.path, name, vq_dir)


# ---------------------------------------------------------------------------------------------
# written after an edit


def _copy_config(source: ModelDir, target: Path) -> None:
    """opt.txt and meta/ of ``source`` into a new ``target`` directory, byte for byte."""
    (target / MODEL_SUBDIR).mkdir(parents=True)
    if (source.path / OPT_FILE).is_file():
        shutil.copyfile(source.path / OPT_FILE, target / OPT_FILE)
    if (source.path / META_SUBDIR).is_dir():
        shutil.copytree(source.path / META_SUBDIR, target / META_SUBDIR)


def _copy_part(source: ModelDir, target: Path) -> None:
    """opt.txt, meta/ and the loaded checkpoint file, byte for byte."""
    _copy_config(source, target)
    shutil.copyfile(source.checkpoint_file, target / MODEL_SUBDIR / source.checkpoint_file.name)


def _write_edited_part(source: ModelDir, model: nn.Module, target: Path,
                       opt_updates: Mapping[str, Any] | None = None) -> None:
    """The source directory with the checkpoint's weights replaced by ``model``'s, and the
    ``opt_updates`` entries of opt.txt changed (every other entry kept)."""
    _copy_config(source, target)
    if opt_updates:
        entries = {**read_opt(source.path / OPT_FILE),
                   **{k: format_opt_value(v) for k, v in opt_updates.items()}}
        write_opt(target / OPT_FILE, entries)
    payload: dict[str, Any] = {**source.checkpoint, STATE_KEYS[source.kind][0]: model}
    write_checkpoint(target / MODEL_SUBDIR / source.checkpoint_file.name, payload)


def write_unlearned_set(loaded: LoadedModelSet, out: str | os.PathLike,
                        record: Mapping[str, Any], *, edited: Mapping[str, nn.Module],
                        overwrite: bool = False,
                        opt_updates: Mapping[str, Mapping[str, Any]] | None = None,
                        extra_files: Mapping[str, Callable[[Path], Any]] | None = None) -> Path:
    """Write ``loaded`` with the ``edited`` parts' weights (part -> module) and the record.

    ``opt_updates`` (part -> entries) changes opt.txt entries of edited parts whose layout
    changed (suppression writes the residual transformer with ``share_weight: False``).
    ``extra_files`` (name -> writer called with the path) adds files such as a plot, inside
    the same atomic write.

    Raises:
        ConfigError: an unknown part, a set loaded without its directories, or ``out``
            exists and ``overwrite`` is False.
    """
    if loaded.models is None:
        raise ConfigError("only a model set loaded from disk can be written as an edited set")
    unknown = (set(edited) | set(opt_updates or {})) - set(loaded.parts)
    if unknown or set(opt_updates or {}) - set(edited):
        raise ConfigError(f"cannot write edited part(s) {sorted(unknown)}: the model set has "
                          f"{sorted(loaded.parts)}; opt.txt updates need an edited part")
    target = Path(out)
    names = loaded.out_names
    try:
        with atomic_directory(target, overwrite=overwrite) as tmp:
            for part, source in loaded.parts.items():
                if part in edited:
                    _write_edited_part(source, edited[part], tmp / names[part],
                                       (opt_updates or {}).get(part))
                else:
                    _copy_part(source, tmp / names[part])
            write_model_set(tmp, text_encoder=loaded.models.text_encoder,
                            **{part: names[part] for part in loaded.parts})
            write_json(tmp / RECORD_FILE, dict(record))
            for name, write in (extra_files or {}).items():
                write(tmp / name)
    except FileExistsError:
        raise ConfigError(f"{target} already exists; choose a new --out directory or pass "
                          f"--overwrite") from None
    log.info("wrote the unlearned model set %s", target)
    return target
