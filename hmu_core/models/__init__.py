"""Networks with the official MoMask/BAMM state-dict layout, one factory, checkpoint directories.

Importing this package is cheap: torch and the model modules load on first use
(``build`` or attribute access such as ``hmu_core.models.RVQVAE``).

Factory protocol, shared by every kind in ``_KINDS``: the model class takes one frozen config
dataclass (``Model(config)``). The config class may declare

- ``CONSTRUCTOR_KEYS``: the official constructor's keys (as the fixture JSONs record them,
  ``args(Namespace)`` flattened, ``opt.`` prefix dropped); ``build`` requires all of them;
  without it, only fields that have no default are required;
- ``CONSTRUCTOR_ALIASES``: constructor key -> field name where they differ
  (``activation`` -> ``vq_act`` for the RVQ-VAE);
- ``OPT_ALIASES``: old opt.txt key -> field name (used by ``load_model_dir``);
- ``from_opt(raw, source=..., overrides=...)``: a classmethod used instead of the generic
  ``opt.config_from_opt`` when the config derives fields itself (the RVQ's ``input_width``).

When a config class declares none of these, the tables below supply the official spellings.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hmu_core.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

# kind -> (module path, model class name, config class name)
_KINDS: dict[str, tuple[str, str, str]] = {
    "rvqvae": ("hmu_core.models.rvq.model", "RVQVAE", "RVQVAEConfig"),
    "mask_transformer": (
        "hmu_core.models.mask_transformer", "MaskTransformer", "MaskTransformerConfig"),
    "res_transformer": (
        "hmu_core.models.res_transformer", "ResidualTransformer", "ResidualTransformerConfig"),
    "bamm_transformer": (
        "hmu_core.models.bamm_transformer", "BAMMTransformer", "BAMMTransformerConfig"),
    "length_estimator": (
        "hmu_core.models.length_estimator", "LengthEstimator", "LengthEstimatorConfig"),
}
KINDS: tuple[str, ...] = tuple(_KINDS)

# Fallbacks for config classes that do not declare OPT_ALIASES / CONSTRUCTOR_KEYS themselves.
# Official opt.txt spells the transformers' num_layers/num_heads as n_layers/n_heads, and old
# files call the milestones lr_scheduler (reference/momask.md §1.1, §2.1).
_TRANSFORMER_OPT_ALIASES = {"n_layers": "num_layers", "n_heads": "num_heads",
                            "lr_scheduler": "milestones"}
_DEFAULT_OPT_ALIASES: dict[str, dict[str, str]] = {
    "rvqvae": {"lr_scheduler": "milestones"},
    "mask_transformer": _TRANSFORMER_OPT_ALIASES,
    "res_transformer": _TRANSFORMER_OPT_ALIASES,
    "bamm_transformer": _TRANSFORMER_OPT_ALIASES,
    "length_estimator": {},
}
# Official constructor keys as the fixture JSONs record them (args flattened, "opt." dropped).
_MASK_KEYS = ("code_dim", "cond_mode", "latent_dim", "ff_size", "num_layers", "num_heads",
              "dropout", "clip_dim", "cond_drop_prob", "clip_version", "num_tokens")
_DEFAULT_CONSTRUCTOR_KEYS: dict[str, tuple[str, ...]] = {
    "mask_transformer": _MASK_KEYS,
    "res_transformer": (*_MASK_KEYS, "shared_codebook", "share_weight", "num_quantizers"),
}

# Lazily re-exported names: attribute -> module that defines it.
_LAZY = {
    "RVQVAE": "hmu_core.models.rvq.model",
    "RVQVAEConfig": "hmu_core.models.rvq.model",
    "LengthEstimator": "hmu_core.models.length_estimator",
    "LengthEstimatorConfig": "hmu_core.models.length_estimator",
}

__all__ = ["KINDS", "build", "config_from_constructor", "opt_aliases", "resolve_kind", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_kind(kind: str) -> tuple[type, type]:
    """Return ``(model class, config class)`` for ``kind``, importing its module.

    Raises:
        ConfigError: unknown kind (the message lists the known ones) or its module is absent.
    """
    if kind not in _KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; known kinds: {', '.join(KINDS)}")
    module_path, class_name, config_name = _KINDS[kind]
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        if exc.name != module_path:
            raise
        raise ConfigError(
            f"model kind {kind!r} needs module {module_path}, which is not installed in this "
            f"checkout; update hmu"
        ) from None
    try:
        return getattr(module, class_name), getattr(module, config_name)
    except AttributeError:
        raise ConfigError(
            f"{module_path} must define {class_name} and {config_name} for kind {kind!r}"
        ) from None


def opt_aliases(kind: str) -> dict[str, str]:
    """Old/official opt.txt key -> config field name for ``kind``."""
    _model_cls, cfg_cls = resolve_kind(kind)
    declared = getattr(cfg_cls, "OPT_ALIASES", None)
    return dict(declared if declared is not None else _DEFAULT_OPT_ALIASES[kind])


def _flatten_constructor(config: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten ``args(Namespace)``/``args`` sub-dicts and drop the ``opt.`` prefix."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("args(Namespace)", "args", "opt") and isinstance(value, Mapping):
            items = value.items()
        else:
            items = [(key.removeprefix("opt."), value)]
        for sub_key, sub_value in items:
            if sub_key in flat:
                raise ConfigError(f"model config key {sub_key!r} is given twice; keep one")
            flat[sub_key] = sub_value
    return flat


def config_from_constructor(kind: str, config: Mapping[str, Any]) -> Any:
    """Turn an official-constructor dict into ``kind``'s frozen config dataclass.

    Raises:
        ConfigError: unknown kind, unknown keys or missing keys (all named), or a value the
            config rejects.
    """
    _model_cls, cfg_cls = resolve_kind(kind)
    aliases: Mapping[str, str] = getattr(cfg_cls, "CONSTRUCTOR_ALIASES", {})
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    hints = typing.get_type_hints(cfg_cls)
    flat = _flatten_constructor(config)
    unknown = sorted(k for k in flat if aliases.get(k, k) not in fields
                     or aliases.get(k, k) in ("extra", "opt_key_names"))
    if unknown:
        known = sorted(n for n in fields if n not in ("extra", "opt_key_names"))
        raise ConfigError(f"{kind}: unknown config key(s) {unknown}; known keys: {known}")
    required = getattr(cfg_cls, "CONSTRUCTOR_KEYS", None) or _DEFAULT_CONSTRUCTOR_KEYS.get(kind)
    if required is None:
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in flat and aliases.get(k, k) not in flat]
    if missing:
        raise ConfigError(f"{kind}: missing config key(s) {missing}; the official constructor "
                          f"needs all of {list(required)}")
    values = {}
    for key, value in flat.items():
        name = aliases.get(key, key)
        if typing.get_origin(hints.get(name)) is tuple and isinstance(value, list):
            value = tuple(value)
        values[name] = value
    try:
        return cfg_cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{kind}: invalid config: {exc}") from None


def build(kind: str, config: Mapping[str, Any] | Any) -> nn.Module:
    """Build a fresh model of ``kind`` (``rvqvae | mask_transformer | res_transformer |
    bamm_transformer | length_estimator``) from an official-constructor dict or a config object.

    The text encoder is never loaded here; attach it to the transformer separately.

    Raises:
        ConfigError: unknown kind, unknown/missing config keys, or an invalid value.
    """
    model_cls, cfg_cls = resolve_kind(kind)
    if isinstance(config, cfg_cls):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = config_from_constructor(kind, config)
    else:
        raise ConfigError(
            f"{kind}: config must be a dict of constructor keys or a {cfg_cls.__name__}, "
            f"not {type(config).__name__}"
        )
    return model_cls(cfg)
