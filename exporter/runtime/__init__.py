"""The torch-free hmu runtime: a bundle -> onnxruntime sessions -> ``Motion`` values.

Runs where torch is absent (Blender's Python): it imports the stdlib, numpy, onnxruntime and
the torch-free hmu modules listed in ``HMU_MODULES`` only (a test proves it with torch and bpy
made unimportable; the Blender add-on vendors exactly these modules). Usage::

    from exporter.runtime import Generator
    gen = Generator("bundle_dir", device="auto")
    out = gen.generate(["a person waves"], seconds=4.0, seed=0)
    out.motions[0].joints  # (80, 22, 3)

Heavy modules load on first attribute access, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

HMU_MODULES = (
    "hmu_core", "hmu_core.errors", "hmu_core.atomic", "hmu_core.motion", "hmu_core.sampling",
    "hmu_core.text", "hmu_core.text.clip_tokenizer",
)
"""hmu modules the runtime needs (package ``__init__`` files included; ``hmu_core.atomic`` is
imported by ``hmu_core.motion``'s writers). All are torch-free."""

_LAZY = {
    "Generator": "exporter.runtime.generator",
    "Generation": "hmu_core.sampling.loop",
    "Bundle": "exporter.runtime.bundle",
    "read_bundle": "exporter.runtime.bundle",
    "FORMAT_VERSION": "exporter.runtime.bundle",
    "WordPieceTokenizer": "exporter.runtime.wordpiece",
}

__all__ = ["HMU_MODULES", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
