"""``hmu export --quantize int8``: dynamic int8 weights for the transformer step graphs.

Why only ``base`` and ``res``, and only ``MatMul``: the two step graphs run 30 times per clip
and hold nearly all of its FLOPs (issue 18: 36 of 38.8 GFLOP at the official size), and their
weight MatMuls (the in/out projections and the feed-forward layers) are what int8 speeds up.
The text encoder stays fp32 (quantized, its vectors drop to cosine 0.96 and the sampled tokens
to 64 % agreement), so does the convolutional decoder (few FLOPs, no MatMul). Activations are
quantized per call ("dynamic"), so no calibration data is needed. Tokens are NOT those of the
fp32 bundle: the manifest records the method and, per graph, how often the int8 graph's top-1
logit equals torch's on the export check's random inputs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hmu_core.errors import ConfigError

log = logging.getLogger(__name__)

METHODS = ("int8", "text-int8")
STAGES = {"int8": ("base", "res"), "text-int8": ("text_encoder",)}
"""The graphs each method quantizes; every other stage stays float32. ``text-int8`` stores the
text encoder's weights as int8 and computes in float32 (``exporter.weights_int8``): the
add-on's built-in bundle, which must be small."""

Case = tuple[dict[str, np.ndarray], np.ndarray, "np.ndarray | None"]


def _no_preprocess_hint(record: logging.LogRecord) -> bool:
    """Drop onnxruntime's "consider pre-processing" hint: it is about static quantization's
    shape inference; the weight MatMuls of these graphs are found without it (counted)."""
    return "pre-processing before quantization" not in record.getMessage()


def check_method(method: str | None) -> str | None:
    """``None`` (float32) or a known method name, else ``ConfigError``."""
    if method is None or method in METHODS:
        return method
    raise ConfigError(f"quantize must be one of {', '.join(METHODS)} (or none), got {method!r}")


def manifest_entry(method: str | None, checks: dict[str, dict[str, Any]]) -> dict | None:
    """The manifest's ``quantization`` record: null for a float32 bundle."""
    if method is None:
        return None
    if method == "text-int8":
        return {"method": "weight-only", "weight_type": "int8", "op_types": ["MatMul", "Gather"],
                "graphs": sorted(checks), "check": checks}
    return {"method": "dynamic", "weight_type": "int8", "op_types": ["MatMul"],
            "graphs": sorted(checks), "check": checks}


def quantize_graph(path: Path, cases: list[Case], session: Any) -> dict[str, Any]:
    """Replace the graph at ``path`` by its int8-MatMul version and measure it.

    Args:
        path: an exported, checked float32 step graph (rewritten atomically).
        cases: the export check's ``(feeds, torch logits, real positions or None)``.
        session: ``path -> InferenceSession`` (``exporter.runtime.sessions``' opener).
    Returns:
        ``{"matmuls": n quantized, "top1_agreement": share of real positions whose argmax equals
        torch's, "max_abs_error": vs torch}`` (the manifest records it).
    Raises:
        ConfigError: the graph has no weight MatMul to quantize.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_name(path.name + ".int8.tmp")
    root = logging.getLogger()
    root.addFilter(_no_preprocess_hint)
    try:
        quantize_dynamic(path, tmp, op_types_to_quantize=["MatMul"],
                         weight_type=QuantType.QInt8)
        matmuls = sum(n.op_type == "MatMulInteger" for n in onnx.load(str(tmp)).graph.node)
        if not matmuls:
            raise ConfigError(f"{path.name} has no weight MatMul to quantize; export it "
                              f"without --quantize")
        os.replace(tmp, path)
    finally:
        root.removeFilter(_no_preprocess_hint)
        tmp.unlink(missing_ok=True)
    quantized = session(path)
    same = total = 0
    error = 0.0
    for feeds, want, where in cases:
        got = quantized.run(None, feeds)[0]
        hits = got.argmax(-1) == want.argmax(-1)
        if where is not None:
            hits, got, want = hits[where], got[where], want[where]
        same, total = same + int(hits.sum()), total + hits.size
        error = max(error, float(np.abs(got - want).max()) if got.size else 0.0)
    log.info("%s: %d MatMuls int8, top-1 agreement %.3f", path.name, matmuls, same / total)
    return {"matmuls": matmuls, "top1_agreement": round(same / max(total, 1), 4),
            "max_abs_error": round(error, 6)}


def quantize_stage(method: str, path: Path, cases: list[Case], session: Any) -> dict[str, Any]:
    """Quantize one exported, checked graph of ``STAGES[method]``; its manifest check entry.

    Raises:
        ConfigError: the graph has nothing to quantize.
    """
    if method != "text-int8":
        return quantize_graph(path, cases, session)
    from exporter.weights_int8 import compare, store_int8

    converted = store_int8(path)
    if not converted:
        raise ConfigError(f"{path.name} has no large MatMul or Gather weight to store as int8")
    found = compare(session(path), cases)
    log.info("%s: %d weights int8, min cosine %.5f", path.name, converted, found["min_cosine"])
    return {"weights": converted, **found}
