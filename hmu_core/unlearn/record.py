"""``unlearning.json``: what was done to a model, precisely enough to check and to redo it.

Fields: ``format``/``version``; ``method``; ``concepts`` (name, keywords, matching mode,
minimum occurrences, and per-concept method settings such as LCR's ``r``); ``parameters``
(every setting, defaults included); ``seed``; ``source`` (the input model set); ``data`` (the
dataset and split sizes used); ``edits`` (per edited tensor: part, state-dict key, sha256
before and after); method-specific results (LCR: removed codes and the safe code); ``versions``;
``timing``. Everything except ``timing`` is a function of the inputs, so re-running a
command gives the same file apart from that key.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmu_core import __version__
from hmu_core.data.concepts import Concept

RECORD_FORMAT = "hmu-unlearning"
RECORD_VERSION = 1


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's values as contiguous little-endian bytes (a CPU copy), so anyone
    can check it with ``hashlib.sha256(t.numpy().tobytes())``; works for bfloat16 too.

    Shape and dtype are not hashed; the record keeps the state-dict key beside the digest.
    """
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    raw = flat.view(torch.uint8).numpy()
    if sys.byteorder == "big" and flat.element_size() > 1:
        raw = raw.reshape(-1, flat.element_size())[:, ::-1]
    return hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of what produced the model (hmu, torch, numpy, Python)."""
    return {"hmu": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def concept_entries(concepts: Sequence[Concept], mode: str,
                    per_concept: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> list[dict[str, Any]]:
    """One JSON object per concept: name, keywords, matching, plus its own settings."""
    return [{"name": c.name, "keywords": list(c.keywords), "mode": str(mode),
             "min_occurrences": c.min_occurrences, **dict((per_concept or {}).get(c.name, {}))}
            for c in concepts]


def tensor_edit(part: str, key: str, before: torch.Tensor, after: torch.Tensor) -> dict[str, str]:
    """One ``edits`` entry."""
    return {"part": part, "tensor": key, "sha256_before": tensor_sha256(before),
            "sha256_after": tensor_sha256(after)}


def build_record(*, method: str, concepts: list[dict[str, Any]], parameters: Mapping[str, Any],
                 seed: int, source: Mapping[str, Any], data: Mapping[str, Any],
                 edits: list[dict[str, str]], results: Mapping[str, Any],
                 wall_s: float) -> dict[str, Any]:
    """The ``unlearning.json`` object (see the module docstring for the fields)."""
    return {"format": RECORD_FORMAT, "version": RECORD_VERSION, "method": method,
            "concepts": concepts, "parameters": dict(parameters), "seed": int(seed),
            "source": dict(source), "data": dict(data), "edits": edits,
            "results": dict(results), "versions": versions(),
            "timing": {"wall_s": round(float(wall_s), 3)}}


def relative_source(source: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """A record's ``source`` with the paths inside ``root`` written relative to it, so a record
    that is committed or shipped in a bundle carries no machine's paths."""
    def rel(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        path = Path(value).resolve()
        return path.relative_to(root.resolve()).as_posix() \
            if path.is_relative_to(root.resolve()) else value

    out = {k: rel(v) for k, v in source.items() if k != "parts"}
    if isinstance(source.get("parts"), Mapping):
        out["parts"] = {k: rel(v) for k, v in source["parts"].items()}
    return out
