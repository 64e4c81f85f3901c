"""Load a user's official MoMask or BAMM checkpoint set (VQ + base transformer [+ residual]).

Mirrors the official loaders (``gen_t2m.load_vq_model``/``load_trans_model``/
``load_res_model``, reference/momask.md §2.1, §2.6): each directory's opt.txt is read, the
values opt.txt lacks (``code_dim``, ``num_tokens``, ``num_quantizers``, ``shared_codebook``)
come from the VQ's opt, the models are built through ``hmu_core.models.build``, and weights
load strictly (only ``clip_model.*`` may be missing). Files: VQ ``net_best_fid.tar``,
mask/BAMM ``latest.tar``, residual ``net_best_fid.tar``, each with logged fallbacks.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from hmu_core.models.checkpoints import (
    CheckpointError,
    ModelDir,
    find_checkpoint,
    load_model_dir,
    read_checkpoint,
    state_dict_from_checkpoint,
)
from hmu_core.models.opt import OPT_FILE, read_opt

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """A loaded checkpoint set, every model in eval mode, no text encoder attached.

    ``mean``/``std`` are the VQ's ``meta`` arrays: de-normalise decoded motion with
    ``x * std + mean`` (momask.md §3.2). ``opts`` holds each directory's raw opt.txt under
    ``"vq"``, ``"trans"`` and ``"res"``.
    """

    vq: nn.Module
    trans: nn.Module
    res: nn.Module | None
    mean: np.ndarray
    std: np.ndarray
    trans_kind: str  # "mask_transformer" (MoMask) or "bamm_transformer"
    opts: dict[str, dict[str, str]] = field(default_factory=dict)
    dirs: dict[str, ModelDir] = field(default_factory=dict, repr=False)


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


def load_pipeline(
    vq_dir: str | os.PathLike, trans_dir: str | os.PathLike,
    res_dir: str | os.PathLike | None = None, *, trans_kind: str | None = None,
    vq_file: str | None = None, trans_file: str | None = None, res_file: str | None = None,
    device: str = "cpu",
) -> Pipeline:
    """Load an official (or hmu-saved) MoMask/BAMM set in one call.

    Args:
        vq_dir: RVQ-VAE directory (opt.txt, model/net_best_fid.tar, meta/{mean,std}.npy).
        trans_dir: base-layer transformer directory (MoMask mask transformer or BAMM).
        res_dir: residual transformer directory, or None for base-layer-only decoding.
        trans_kind: ``mask_transformer`` or ``bamm_transformer``; default: detected from the
            checkpoint's ``token_emb.weight`` rows.
        vq_file, trans_file, res_file: checkpoint names overriding the official choice.

    Raises:
        ConfigError: an opt.txt is missing or invalid (file and key named).
        CheckpointError: a checkpoint or meta file is missing, unreadable or does not match
            (file, key and both shapes named).
    """
    vq = load_model_dir(vq_dir, "rvqvae", file=vq_file, require_meta=True, device=device)
    vq_cfg = vq.config
    assert vq.mean is not None and vq.std is not None  # require_meta
    if vq.mean.shape[0] != vq_cfg.input_width:
        raise CheckpointError(
            f"{Path(vq_dir) / 'meta'}: mean/std have {vq.mean.shape[0]} features but the VQ "
            f"expects {vq_cfg.input_width}; the meta files belong to another dataset"
        )
    derived = {"code_dim": vq_cfg.code_dim, "num_tokens": vq_cfg.nb_code,
               "num_quantizers": vq_cfg.num_quantizers,
               "shared_codebook": vq_cfg.shared_codebook}

    trans_path = Path(trans_dir)
    if not trans_path.is_dir():
        raise CheckpointError(f"transformer directory {trans_path} not found")
    ckpt_path = find_checkpoint(trans_path, trans_kind or "mask_transformer", trans_file)
    ckpt = read_checkpoint(ckpt_path)
    if trans_kind is None:
        state = state_dict_from_checkpoint(ckpt, "mask_transformer", ckpt_path)
        trans_kind = detect_trans_kind(state, vq_cfg.nb_code, ckpt_path)
        log.info("%s: detected a %s", ckpt_path, trans_kind)
    elif trans_kind not in ("mask_transformer", "bamm_transformer"):
        raise CheckpointError(
            f"trans_kind must be 'mask_transformer' or 'bamm_transformer', not {trans_kind!r}"
        )
    trans = load_model_dir(trans_path, trans_kind, overrides={**derived, **_text_dim(trans_path)},
                           device=device, preloaded=(ckpt_path, ckpt))
    _check_vq_name(trans, Path(vq_dir))

    res = None
    if res_dir is not None:
        res = load_model_dir(res_dir, "res_transformer", file=res_file,
                             overrides={**derived, **_text_dim(Path(res_dir))}, device=device)
        _check_vq_name(res, Path(vq_dir))
    dirs = {"vq": vq, "trans": trans, **({"res": res} if res is not None else {})}
    return Pipeline(
        vq=vq.model, trans=trans.model, res=None if res is None else res.model,
        mean=vq.mean, std=vq.std, trans_kind=trans_kind,
        opts={name: d.opt for name, d in dirs.items()}, dirs=dirs,
    )


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
