"""Apply UCE or RECE to the ``cond_emb`` layers of MoMask/BAMM transformers, in place.

Every base and residual transformer maps the pooled text vector through
``cond_emb = nn.Linear(clip_dim -> latent_dim)``; UCE/RECE rewrite only its weight. The bias is
never touched: with the zero null condition it is the CFG unconditional token
(reference/baselines.md §2.4). The maths is in the numpy modules ``uce``/``rece``; this file
only moves tensors in and out and records hashes so the edit can be verified later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hmu_core.errors import ConfigError
from hmu_core.unlearn.rece import RECEConfig, rece_edit
from hmu_core.unlearn.record import tensor_sha256
from hmu_core.unlearn.uce import UCEConfig, edit_linear

METHODS: tuple[str, ...] = ("uce", "rece")


def _rows(value: Any) -> np.ndarray:
    """Embeddings from the text encoder (tensor) or numpy, as float64 numpy."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().to(torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def _cond_emb(module: nn.Module, name: str) -> nn.Linear:
    layer = getattr(module, "cond_emb", None)
    if not isinstance(layer, nn.Linear) or layer.bias is None:
        raise ConfigError(f"{name} has no cond_emb = nn.Linear(..., bias=True); UCE/RECE edit "
                          f"only MoMask/BAMM base or residual transformers")
    return layer


def _names(modules: Sequence[nn.Module], names: Sequence[str] | None) -> list[str]:
    if names is None:
        base = [type(m).__name__ for m in modules]
        return [n if base.count(n) == 1 else f"{n}.{i}" for i, n in enumerate(base)]
    if len(names) != len(modules) or len(set(names)) != len(names):
        raise ConfigError(f"names must be {len(modules)} distinct strings, one per module, "
                          f"got {list(names)}")
    return list(names)


def edit_cond_emb(modules: Sequence[nn.Module], erase: Any, guide: Any, preserve: Any,
                  method: str, config: UCEConfig | RECEConfig,
                  names: Sequence[str] | None = None) -> dict[str, Any]:
    """UCE- or RECE-edit ``cond_emb.weight`` of every module in place; return the record.

    UCE edits each module on its own (as the official HMU code); RECE solves its adversarial
    embeddings jointly over all modules. Each new weight keeps its dtype and device and is
    written with ``copy_`` (the Parameter object stays the same); nothing else is modified.

    Args:
        modules: models that own a ``cond_emb`` (MaskTransformer, ResidualTransformer, BAMM).
        erase: (n, clip_dim) concept embeddings; guide: (n, clip_dim), one per erase row
            (zeros for the null guide); preserve: (m, clip_dim), m may be 0. Tensors or arrays.
        method: ``"uce"`` (config: UCEConfig) or ``"rece"`` (config: RECEConfig).
        names: record keys, one per module (default: class names, indexed if repeated).

    Returns:
        ``{"method", "config", "modules": {name: {"weight_shape", "weight_dtype",
        "weight_sha256_before", "weight_sha256_after", "bias_sha256"}}, "n_erase",
        "n_preserve", "per_epoch"}`` (``per_epoch`` is empty for UCE).

    Raises:
        ConfigError: unknown method, config of the wrong kind, a module without ``cond_emb``,
            shape mismatches; DataError: NaN/inf embeddings or weights.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {list(METHODS)}, got {method!r}")
    wanted = UCEConfig if method == "uce" else RECEConfig
    if not isinstance(config, wanted):
        raise ConfigError(f"method {method!r} needs a {wanted.__name__}, "
                          f"got {type(config).__name__}")
    if not modules:
        raise ConfigError("no modules given; pass the base and residual transformers")
    keys = _names(modules, names)
    layers = [_cond_emb(m, k) for m, k in zip(modules, keys, strict=True)]
    c_e, c_g, c_p = _rows(erase), _rows(guide), _rows(preserve)

    before = [tensor_sha256(layer.weight) for layer in layers]
    weights = [layer.weight.detach().cpu().to(torch.float64).numpy() for layer in layers]
    biases = [layer.bias.detach().cpu().to(torch.float64).numpy() for layer in layers]
    per_epoch: list[dict[str, Any]] = []
    if isinstance(config, RECEConfig):
        new_weights, per_epoch = rece_edit(weights, biases, c_e, c_g, c_p, config)
    else:
        new_weights = [edit_linear(w, b, c_e, c_g, c_p, config)
                       for w, b in zip(weights, biases, strict=True)]

    # Write only after every solve succeeded, so a failure leaves all modules unchanged.
    with torch.no_grad():
        for layer, new in zip(layers, new_weights, strict=True):
            layer.weight.copy_(torch.from_numpy(new).to(layer.weight.dtype))
    return {
        "method": method,
        "config": config.to_dict(),
        "modules": {
            key: {
                "weight_shape": list(layer.weight.shape),
                "weight_dtype": str(layer.weight.dtype).removeprefix("torch."),
                "weight_sha256_before": sha,
                "weight_sha256_after": tensor_sha256(layer.weight),
                "bias_sha256": tensor_sha256(layer.bias),
            }
            for key, layer, sha in zip(keys, layers, before, strict=True)
        },
        "n_erase": int(c_e.shape[0]),
        "n_preserve": int(c_p.shape[0]),
        "per_epoch": per_epoch,
    }
