"""Read and write the official MoMask/BAMM ``opt.txt`` and turn it into frozen config dataclasses.

The official code writes every option as ``key: value`` between a fixed header and footer and
reads it back with ``utils/get_opt.get_opt`` (reference/momask.md §2.1, §7 item 14). We keep the
raw strings (``read_opt``), offer the official per-value guessing (``parse_opt_value``) for
callers that want the official Namespace, and convert to typed dataclass fields by their
declared type (``config_from_opt``), which is stricter and does not turn ``1e-05`` into a string.

Config dataclass protocol (used by every model config in ``hmu_core.models``):

- fields are the official opt.txt keys, typed, with the released checkpoint's defaults;
- ``field(metadata={"opt": "derived"})`` marks a field that is not in opt.txt (e.g. the
  transformers' ``code_dim``, taken from the VQ's opt): it is neither read nor written, the
  loader passes it through ``overrides``;
- ``metadata={"opt": "optional"}`` marks a field that may be absent (its default is used and
  one line is logged); every other field must be present in opt.txt;
- an ``extra: Mapping[str, str]`` field keeps the keys the config does not model, raw, so a
  file survives read -> config -> write unchanged;
- an optional ``opt_key_names: Mapping[str, str]`` field remembers the spelling a renamed key
  had in the file (``lr_scheduler`` for ``milestones``), so it is written back the same way.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hmu_core.atomic import write_text
from hmu_core.errors import ConfigError

log = logging.getLogger(__name__)

OPT_HEADER = "------------ Options -------------"
OPT_FOOTER = "-------------- End ----------------"
OPT_FILE = "opt.txt"

# Official float test: digits '.' digits after stripping one sign, so '1e-05' is not a float.
_FLOAT_RE = re.compile(r"^[-+]?[0-9]+\.[0-9]+$")


def read_opt(path: str | os.PathLike) -> dict[str, str]:
    """Read ``opt.txt`` into raw ``key -> value`` strings, in file order, with no type guessing.

    Header, footer and blank lines are skipped (the official reader crashes on blank lines; we
    do not need to). A line without ``": "`` cannot be read by the official ``get_opt`` either
    (momask.md §7 item 19), so it is an error here too.

    Raises:
        ConfigError: the file is missing or a line is not ``key: value``.
    """
    file = Path(path)
    if file.is_dir():
        file = file / OPT_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{file} not found: a model directory needs an opt.txt (official layout "
            f"<name>/opt.txt, model/*.tar, meta/); point to the directory that holds it"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file} is not UTF-8 text ({exc}); is this really an opt.txt?") from None
    raw: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped in (OPT_HEADER, OPT_FOOTER):
            continue
        key, sep, value = line.rstrip("\r").partition(": ")
        if not sep or not key.strip():
            raise ConfigError(
                f"{file}:{lineno}: cannot parse {line!r}; every option line must be 'key: value' "
                f"(the official get_opt splits on ': '), fix or delete that line"
            )
        key = key.strip()
        if key in raw:
            raise ConfigError(f"{file}:{lineno}: key {key!r} appears twice; keep one of them")
        raw[key] = value
    return raw


def parse_opt_value(value: str) -> bool | float | int | str:
    """Convert one raw value exactly as the official ``get_opt`` does (momask.md §7 item 14).

    ``True``/``False`` -> bool; ``d+.d+`` (one optional sign) -> float, so ``1e-05`` stays a
    string; digits after stripping leading signs -> int; anything else, ``None`` and lists
    included, stays a string.
    """
    if value in ("True", "False"):
        return value == "True"
    unsigned = value.strip().lstrip("-").lstrip("+")
    if _FLOAT_RE.match(unsigned):
        try:
            return float(value)
        except ValueError:  # '--1.0' passes the official test but not float(); keep the text
            return value
    if unsigned.isdigit():
        try:
            return int(value)
        except ValueError:  # e.g. superscript digits pass isdigit()
            return value
    return value


def official_namespace(raw: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``parse_opt_value`` to every value: the dict the official ``get_opt`` would build."""
    return {key: parse_opt_value(value) for key, value in raw.items()}


def format_opt_value(value: Any) -> str:
    """Format a value the way the official writer does (``str(v)``), lists as ``[a, b]``."""
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return str(list(value))
    return str(value)


def _field_kind(tp: Any) -> tuple[Any, bool]:
    """Return (inner type, optional?) for ``X | None`` / ``Optional[X]`` annotations."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _convert(value: str, tp: Any, where: str) -> Any:
    """Convert a raw opt string to the field type ``tp``; ``where`` names file and key."""
    inner, optional = _field_kind(tp)
    if optional and value == "None":
        return None
    origin = typing.get_origin(inner)
    try:
        if inner is bool:
            if value not in ("True", "False"):
                raise ValueError("expected True or False")
            return value == "True"
        if inner is int:
            return int(value)
        if inner is float:
            return float(value)
        if inner is str:
            return value
        if origin in (tuple, list):
            (item_tp, *_) = typing.get_args(inner) or (str,)
            text = value.strip()
            items = ast.literal_eval(text) if text.startswith(("[", "(")) else text.split(",")
            if isinstance(items, int | float | str):
                items = [items]
            converted = [_convert(str(item).strip(), item_tp, where) for item in items]
            return tuple(converted) if origin is tuple else converted
    except (ValueError, SyntaxError) as exc:
        raise ConfigError(
            f"{where}: cannot read {value!r} as {getattr(inner, '__name__', inner)}: {exc}; "
            f"fix the value"
        ) from None
    raise ConfigError(f"{where}: unsupported config field type {tp!r} (internal error)")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def config_from_opt(
    cls: type,
    raw: Mapping[str, str],
    aliases: Mapping[str, str] | None = None,
    *,
    source: str | os.PathLike = "opt.txt",
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """Build the frozen config dataclass ``cls`` from raw opt.txt strings.

    Args:
        cls: a dataclass following the protocol in this module's docstring.
        raw: ``read_opt`` output.
        aliases: old key -> field name (e.g. ``{"lr_scheduler": "milestones"}``); the old
            spelling is remembered in ``opt_key_names`` when ``cls`` has that field.
        source: file name used in messages.
        overrides: values for fields that opt.txt does not hold (``code_dim`` from the VQ),
            already typed. A value that contradicts the file raises.

    Raises:
        ConfigError: a required key is missing, a value has the wrong type, or an override
            contradicts the file; the message names ``source`` and the key.
    """
    aliases = dict(aliases or {})
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types_ = _field_types(cls)
    has_extra = "extra" in fields
    has_names = "opt_key_names" in fields
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    key_names: dict[str, str] = {}
    for key, value in raw.items():
        name = aliases.get(key, key)
        if name != key:
            if name in raw:
                raise ConfigError(
                    f"{source}: both {key!r} and its newer name {name!r} are present; delete one"
                )
            key_names[name] = key
        field = fields.get(name)
        if field is None or name in ("extra", "opt_key_names") or _opt_role(field) == "derived":
            extra[name] = value
            continue
        values[name] = _convert(value, types_[name], f"{source}: key {key!r}")
    for name, value in overrides.items():
        if name not in fields:
            continue
        if name in values and values[name] != value:
            raise ConfigError(
                f"{source}: key {name!r} is {values[name]!r} but the loader derived {value!r} "
                f"(from the VQ's opt.txt); the two model directories do not belong together"
            )
        values[name] = value
    missing, not_derived = [], []
    for name, field in fields.items():
        if name in values or name in ("extra", "opt_key_names"):
            continue
        has_default = (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        )
        role = _opt_role(field)
        if role == "derived" and not has_default:
            not_derived.append(name)
        elif role == "required" or not has_default:
            missing.append(name)
        elif role == "optional":
            log.info("%s: key %r absent, using the default %r", source, name, field.default)
    if not_derived:
        raise ConfigError(
            f"{source}: {cls.__name__} needs {not_derived}, which opt.txt does not hold; the "
            f"loader must pass them (e.g. from the VQ's opt.txt)"
        )
    if missing:
        raise ConfigError(
            f"{source}: required key(s) {', '.join(repr(m) for m in missing)} missing for "
            f"{cls.__name__}; add them as 'key: value' lines (see the released opt.txt)"
        )
    if extra:
        if not has_extra:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(extra)} for {cls.__name__}; remove them"
            )
        log.info("%s: keeping %d key(s) %s unmodelled by %s in .extra",
                 source, len(extra), sorted(extra), cls.__name__)
        values["extra"] = extra
    if has_names and key_names:
        values["opt_key_names"] = key_names
    return cls(**values)


def _opt_role(field: dataclasses.Field) -> str:
    return field.metadata.get("opt", "required")


def config_to_opt(config: Any) -> dict[str, str]:
    """Turn a config dataclass into raw ``key -> value`` strings (derived fields left out)."""
    key_names = dict(getattr(config, "opt_key_names", {}) or {})
    out: dict[str, str] = {}
    for field in dataclasses.fields(config):
        if field.name in ("extra", "opt_key_names") or _opt_role(field) == "derived":
            continue
        out[key_names.get(field.name, field.name)] = format_opt_value(getattr(config, field.name))
    for key, value in (getattr(config, "extra", {}) or {}).items():
        out[key_names.get(key, key)] = str(value)
    return out


def render_opt(config_or_dict: Any) -> str:
    """Render the official opt.txt text: header, ``key: value`` sorted by key, footer."""
    if dataclasses.is_dataclass(config_or_dict) and not isinstance(config_or_dict, type):
        items = config_to_opt(config_or_dict)
    elif isinstance(config_or_dict, Mapping):
        items = {str(k): format_opt_value(v) for k, v in config_or_dict.items()}
    else:
        raise ConfigError(
            f"write_opt needs a config dataclass or a dict, not {type(config_or_dict).__name__}"
        )
    for key, value in items.items():
        if ": " in key or "\n" in key or "\n" in value or not key:
            raise ConfigError(
                f"opt.txt cannot hold key {key!r} with value {value!r}: keys may not contain "
                f"': ' or newlines and values may not contain newlines"
            )
    lines = [OPT_HEADER, *(f"{k}: {items[k]}" for k in sorted(items)), OPT_FOOTER]
    return "\n".join(lines) + "\n"


def write_opt(path: str | os.PathLike, config_or_dict: Any) -> Path:
    """Write ``opt.txt`` atomically in the official format; ``path`` may be the directory."""
    file = Path(path)
    if file.is_dir():
        file = file / OPT_FILE
    write_text(file, render_opt(config_or_dict))
    return file
