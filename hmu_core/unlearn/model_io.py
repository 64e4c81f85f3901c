"""Read a model set to edit, write the edited set: the one place every method's output is made.

An unlearned model set has the input's layout (``vq/``, ``trans/`` or ``bamm/``, ``res/``,
``length_estimator/``, ``hmu.json``) plus ``unlearning.json``. Each part keeps only what its
loader reads: ``opt.txt``, ``meta/`` and the one checkpoint the official loaders pick
(VQ/residual ``net_best_fid.tar``, base transformer ``latest.tar``), so nobody can load a
stale unedited file from an unlearned directory by accident. Parts a method did not touch are
copied byte for byte; edited parts are the source checkpoint with only the weights replaced
(every other entry and every other tensor unchanged). The whole directory is written through
``atomic_directory``: a failure leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from hmu_core.atomic import atomic_directory, write_json
from hmu_core.errors import ConfigError
from hmu_core.models.checkpoints import (
    META_SUBDIR,
    MODEL_SUBDIR,
    OPT_FILE,
    STATE_KEYS,
    ModelDir,
    load_model_dir,
    write_checkpoint,
)
from hmu_core.models.generate import (
    ModelSet,
    MotionGenerator,
    resolve_model_set,
    write_model_set,
)
from hmu_core.models.opt import format_opt_value, read_opt, write_opt
from hmu_core.models.pipeline import Pipeline, load_pipeline

log = logging.getLogger(__name__)

RECORD_FILE = "unlearning.json"


@dataclass
class LoadedModelSet:
    """Every part of a model set, loaded (eval mode), with where it came from."""

    models: ModelSet
    parts: dict[str, ModelDir]  # "vq", "trans", optionally "res", "length_estimator"
    trans_kind: str  # "mask_transformer" | "bamm_transformer"

    @property
    def out_names(self) -> dict[str, str]:
        """Directory name of each part in an output set (BAMM's base model goes to ``bamm/``)."""
        base = "bamm" if self.trans_kind == "bamm_transformer" else "trans"
        return {part: base if part == "trans" else part for part in self.parts}

    def model(self, part: str) -> nn.Module:
        return self.parts[part].model

    def generator(self, text_encoder: Any, *, trans: nn.Module | None = None,
                  res: nn.Module | None = None) -> MotionGenerator:
        """A generator over the loaded networks (shared, not copied), optionally with another
        base or residual transformer (an edited copy) in their place."""
        vq = self.parts["vq"]
        assert vq.mean is not None and vq.std is not None, "the VQ is loaded with its meta"
        pipeline = Pipeline(vq=vq.model, trans=trans if trans is not None else self.model("trans"),
                            res=res if res is not None else (
                                self.model("res") if "res" in self.parts else None),
                            mean=vq.mean, std=vq.std, trans_kind=self.trans_kind)
        estimator = self.parts.get("length_estimator")
        return MotionGenerator(pipeline=pipeline, text_encoder=text_encoder,
                               length_estimator=None if estimator is None else estimator.model,
                               source={"model_dir": None if self.models.root is None
                                       else str(self.models.root)})


def load_model_set(model_dir: str | os.PathLike | None, *, device: str = "cpu",
                   **parts: str | os.PathLike | None) -> LoadedModelSet:
    """Resolve and load a model set (``--model DIR`` plus optional part overrides).

    Raises:
        ConfigError / CheckpointError: a missing part, directory or checkpoint.
    """
    text_encoder = parts.pop("text_encoder", None)
    models = resolve_model_set(model_dir, text_encoder=None if text_encoder is None
                               else str(text_encoder), **parts)
    pipeline = load_pipeline(models.vq, models.trans, models.res, device=device)
    loaded = dict(pipeline.dirs)
    if models.length_estimator is not None:
        loaded["length_estimator"] = load_model_dir(models.length_estimator, "length_estimator",
                                                    device=device)
    return LoadedModelSet(models=models, parts=loaded, trans_kind=pipeline.trans_kind)


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


def write_unlearned_set(loaded: LoadedModelSet, out: str | os.PathLike, record: Mapping[str, Any],
                        *, edited: Mapping[str, nn.Module], overwrite: bool = False,
                        opt_updates: Mapping[str, Mapping[str, Any]] | None = None,
                        extra_files: Mapping[str, Callable[[Path], Any]] | None = None) -> Path:
    """Write ``loaded`` with the ``edited`` parts' weights (part -> module) and the record.

    ``opt_updates`` (part -> entries) changes opt.txt entries of edited parts whose layout
    changed (suppression writes the residual transformer with ``share_weight: False``).
    ``extra_files`` (name -> writer called with the path) adds files such as a plot, inside
    the same atomic write.

    Raises:
        ConfigError: an unknown part, or ``out`` exists and ``overwrite`` is False.
    """
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
