"""The add-on's model bundles: the built-in safe one the zip ships, and what a bundle's model has
unlearned, in words.

The built-in bundle is ``builtin_bundle/`` inside the installed add-on (``scripts/
build_addon.py`` exports it: the embedded default model with the recorded code suppression);
its path is found again at every start, so it follows the add-on through updates. A source
checkout has none until it is built. The words come from the bundle manifest's ``unlearning``
record (``unlearning.json`` of the exported model set): the panel shows what was removed (the
concepts and their keywords), by which method and how strongly, or that the model was not
unlearned. No bpy and no onnxruntime here: the manifest is read as JSON, cached by mtime, since
panels redraw often (the hashes are checked when Generate loads the bundle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin_bundle"
BUILTIN_NAME = "Built-in safe model"
MANIFEST = "manifest.json"

METHODS = {
    "suppress": "latent code suppression",
    "lcr": "latent code replacement (LCR)",
    "uce": "unified concept editing (UCE)",
    "rece": "reliable concept erasure (RECE)",
    "finetune": "fine-tuning away from the concept",
    "retrain": "retraining without the concept's clips",
}
STATS = {"data": "dataset motions", "generated": "the model's own samples for the captions"}


@dataclass(frozen=True)
class BundleInfo:
    """What the panel says about a bundle: ``status`` is unlearned, original or missing."""

    status: str
    title: str
    lines: tuple[str, ...]


def builtin_bundle() -> Path | None:
    """The built-in bundle's folder, or None when this add-on has none (a source checkout)."""
    return BUILTIN_DIR if (BUILTIN_DIR / MANIFEST).is_file() else None


_cache: dict[str, tuple[float, BundleInfo]] = {}


def bundle_info(path: str | Path) -> BundleInfo:
    """What the bundle at ``path`` has unlearned (from its manifest), cached by mtime."""
    manifest = Path(path) / MANIFEST
    try:
        stamp = manifest.stat().st_mtime
    except OSError:
        return BundleInfo("missing", "No bundle here", (f"{path} has no {MANIFEST}: choose a "
                                                        f"folder made by 'hmu export'",))
    hit = _cache.get(str(manifest))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        record = json.loads(manifest.read_text(encoding="utf-8")).get("unlearning")
    except (OSError, ValueError, AttributeError) as exc:
        info = BundleInfo("missing", "Unreadable bundle", (f"{manifest}: {exc}",))
    else:
        info = describe(record)
    _cache[str(manifest)] = (stamp, info)
    return info


def describe(record: Any) -> BundleInfo:
    """An unlearning record (``unlearning.json``, or None) in words."""
    if not isinstance(record, dict) or not record.get("method"):
        return BundleInfo("original", "Not unlearned", (
            "This model has no unlearning record: it can make every motion it was trained "
            "on, including the ones an unlearned model refuses.",))
    concepts = [c for c in record.get("concepts", []) if isinstance(c, dict)]
    names = ", ".join(str(c.get("name", "?")) for c in concepts) or "unnamed concept"
    lines = []
    for concept in concepts:
        words = [str(k) for k in concept.get("keywords", [])]
        if words:
            label = f"{concept.get('name')} keywords" if len(concepts) > 1 else "Keywords"
            lines.append(f"{label}: {', '.join(words)}")
    method = str(record["method"])
    lines.append(f"Method: {METHODS.get(method, method)}")
    lines += _strength(method, record.get("parameters") or {}, record.get("results") or {},
                       concepts)
    data = record.get("data") or {}
    if isinstance(data, dict) and data.get("forget_clips") is not None:
        lines.append(f"Data: {data['forget_clips']:,} clips of the concept among "
                     f"{data.get('clips', 0):,} ({data.get('dir', 'a dataset')})")
    return BundleInfo("unlearned", f"Unlearned: {names}", tuple(lines))


def _strength(method: str, params: dict, results: dict, concepts: list[dict]) -> list[str]:
    """How strongly: the method's own knobs, in words."""
    if method == "suppress":
        codes = results.get("suppressed_codes") or {}
        total = sum(len(c) for c in codes.values())
        r = params.get("r") or {}
        per_layer = sorted({int(v) for v in r.values()}) if isinstance(r, dict) else [r]
        each = f"r {per_layer[0]} per layer" if len(per_layer) == 1 else \
            "r " + ", ".join(f"{v} (layer {q})" for q, v in r.items())
        source = STATS.get(str(params.get("stats")), str(params.get("stats", "")))
        return [f"Strength: {total} motion codes on {len(codes)} layers can never be generated "
                f"({each}), chosen from {source}"]
    if method == "lcr":
        removed = results.get("removed_codes")
        count = sum(len(v) for v in removed.values()) if isinstance(removed, dict) else \
            len(removed or [])
        rs = sorted({c.get("r", params.get("r")) for c in concepts} - {None})
        return [f"Strength: r {', '.join(map(str, rs)) or params.get('r')}: {count} motion "
                f"codes replaced by a safe code"]
    knobs = {k: v for k, v in params.items() if isinstance(v, int | float | str)
             and not isinstance(v, bool) and k not in ("seed", "guide", "technique")}
    if not knobs:
        return []
    return ["Strength: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in
                                     sorted(knobs.items()))]
