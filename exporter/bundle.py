"""The bundle manifest: the writer's side (graph I/O specs, hashes, the manifest itself).

The schema, reading and every check live in ``exporter.runtime.bundle`` (re-exported here),
because the torch-free runtime and the Blender add-on must read bundles without this package's
torch-side neighbours. This module is torch-free too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporter.runtime.bundle import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    Bundle,
    GraphSpec,
    TensorSpec,
    check_session_io,
    read_bundle,
    read_manifest,
    sha256_file,
    verify_files,
)
from hmu_core import __version__
from hmu_core.atomic import write_json

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "Bundle", "GraphSpec", "TensorSpec",
           "check_session_io", "graph_specs", "read_bundle", "read_manifest", "sha256_file",
           "verify_files", "write_manifest"]


def _t(name: str, dtype: str, *shape: int | str) -> TensorSpec:
    return TensorSpec(name, dtype, tuple(shape))


def graph_specs(*, kind: str, tokenizer: str, text_dim: int, num_tokens: int,
                num_quantizers: int, feature_dim: int, length_classes: int | None,
                with_res: bool) -> dict[str, GraphSpec]:
    """The I/O of every stage (``exporter.graphs`` computes them; the runtime feeds them).

    Logits widths: MoMask base ``num_tokens``; BAMM base and residual ``num_tokens + 1`` (END,
    resp. pad class included).
    """
    text_inputs = [_t("ids", "int64", "batch", "text_length")]
    if tokenizer == "bert-wordpiece":
        text_inputs.append(_t("attention_mask", "int64", "batch", "text_length"))
    specs = {"text_encoder": GraphSpec("text_encoder.onnx", tuple(text_inputs),
                                       (_t("features", "float32", "batch", text_dim),))}
    cond = _t("cond", "float32", "batch", text_dim)
    if kind == "bamm":
        specs["base"] = GraphSpec(
            "base.onnx",
            (_t("ids", "int64", "batch", "slots"), cond, _t("cond_idx", "int64", "batch", "slots")),
            (_t("logits", "float32", "batch", "positions", num_tokens + 1),))
    else:
        specs["base"] = GraphSpec(
            "base.onnx",
            (_t("ids", "int64", "batch", "length"), cond,
             _t("padding_mask", "bool", "batch", "length")),
            (_t("logits", "float32", "batch", "length", num_tokens),))
    if with_res:
        specs["res"] = GraphSpec(
            "res.onnx",
            (_t("ids", "int64", "batch", "length", "layers"), cond,
             _t("padding_mask", "bool", "batch", "length")),
            (_t("logits", "float32", "batch", "length", num_tokens + 1),))
    specs["decoder"] = GraphSpec(
        "decoder.onnx", (_t("ids", "int64", "batch", "length", num_quantizers),),
        (_t("features", "float32", "batch", "frames", feature_dim),))
    if length_classes is not None:
        specs["length_estimator"] = GraphSpec(
            "length_estimator.onnx", (cond,),
            (_t("logits", "float32", "batch", length_classes),))
    return specs


def write_manifest(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hash every file under ``root`` (but the manifest) into ``manifest["files"]`` and write
    ``manifest.json``; returns the completed manifest."""
    files = {p.relative_to(root).as_posix(): sha256_file(p)
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "created_by": f"hmu {__version__}",
            **manifest, "files": files}
    write_json(root / MANIFEST, full)
    return full
