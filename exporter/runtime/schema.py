"""What a bundle manifest must say, checked field by field against the graphs it describes.

The manifest's scalar fields (model kind, token counts, text encoder, feature size, length
classes) determine the inputs and outputs of every ONNX stage (:func:`graph_specs`); the
manifest's ``graphs`` must be exactly those, and ``bundle.check_session_io`` then holds each
real graph to them. So a vocabulary size, a special id or a dimension that disagrees with the
graphs is refused here, naming the field, before onnxruntime ever sees a bad id. Torch-free
(stdlib and the numpy-only facts of hmu_core), shared by the exporter (which writes the specs)
and the runtime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.errors import BundleError
from hmu_core.motion.skeleton import FEATURE_DIM, FPS
from hmu_core.sampling.lengths import MAX_TOKENS, UNIT_LENGTH

TOKENIZER_KINDS = ("clip-bpe", "bert-wordpiece")
TOKENIZER_FILE = {"clip-bpe": "bpe", "bert-wordpiece": "vocab"}
"""The ``text_encoder.files`` entry each tokenizer reads."""
MAX_TEXT_IDS = {"clip-bpe": 77, "bert-wordpiece": 512}
"""Longest id sequence each text encoder's position table holds (CLIP 77, BERT 512)."""
CLIP_VOCAB_SIZE = 49408
REQUIRED_GRAPHS = ("text_encoder", "base", "decoder")
OPTIONAL_GRAPHS = ("res", "length_estimator")
DTYPES = ("int64", "float32", "bool")
# A bundle's decoder emits HumanML3D's motion format (263-d features at 20 fps, 4 frames per
# token, at most 49 tokens): hmu_core.motion.skeleton and hmu_core.sampling.lengths.
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, ``int64|float32|bool``, shape (str = dynamic axis)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX stage of a bundle and the I/O the runtime relies on."""

    file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "inputs": {t.name: t.to_json() for t in self.inputs},
                "outputs": {t.name: t.to_json() for t in self.outputs}}


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


def _fail(root: Path, what: str) -> BundleError:
    return BundleError(f"bundle {root}: {what}")


def _int(root: Path, where: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` is an int in ``[low, high]``, else a BundleError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or \
            (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise _fail(root, f"manifest {where} is {value!r}, expected an int {span}; re-export "
                          f"the bundle")
    return value


def _spec_from_json(root: Path, stage: str, side: str, name: str, raw: Any) -> TensorSpec:
    if not isinstance(raw, dict) or raw.get("dtype") not in DTYPES \
            or not isinstance(raw.get("shape"), list):
        raise _fail(root, f"manifest graphs.{stage}.{side}.{name} needs a dtype "
                          f"({'/'.join(DTYPES)}) and a shape list; re-export the bundle")
    for dim in raw["shape"]:
        if isinstance(dim, bool) or not isinstance(dim, int | str):
            raise _fail(root, f"manifest graphs.{stage}.{side}.{name} has a bad dimension "
                              f"{dim!r}; re-export the bundle")
    return TensorSpec(name, raw["dtype"], tuple(raw["shape"]))


def _graph_from_json(root: Path, stage: str, raw: Any) -> GraphSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        raise _fail(root, f"manifest graphs.{stage} has no file name; re-export the bundle")
    sides = {}
    for side in ("inputs", "outputs"):
        items = raw.get(side)
        if not isinstance(items, dict) or not items:
            raise _fail(root, f"manifest graphs.{stage}.{side} is missing; re-export the bundle")
        sides[side] = tuple(_spec_from_json(root, stage, side, k, v) for k, v in items.items())
    return GraphSpec(raw["file"], sides["inputs"], sides["outputs"])


def parse_graphs(root: Path, raw: Any) -> dict[str, GraphSpec]:
    """The manifest's ``graphs`` object as specs: the required stages, no unknown one."""
    if not isinstance(raw, dict):
        raise _fail(root, "manifest graphs must be an object; re-export the bundle")
    missing = [g for g in REQUIRED_GRAPHS if g not in raw]
    if missing:
        raise _fail(root, f"manifest lacks the graphs {missing}; re-export the bundle")
    unknown = sorted(set(raw) - set(REQUIRED_GRAPHS) - set(OPTIONAL_GRAPHS))
    if unknown:
        raise _fail(root, f"manifest has unknown graphs {unknown}; update hmu")
    return {k: _graph_from_json(root, k, v) for k, v in raw.items()}


def check_text_encoder(root: Path, spec: Any) -> dict[str, Any]:
    """``text_encoder``: an object with a name, a known tokenizer and its file, a dim, an id
    length the encoder's position table holds and the vocabulary size."""
    if not isinstance(spec, dict):
        raise _fail(root, f"manifest text_encoder is {spec!r}, expected an object with name, "
                          f"tokenizer, dim, files, max_length and vocab_size; re-export")
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise _fail(root, "manifest text_encoder.name is missing; re-export the bundle")
    tokenizer = spec.get("tokenizer")
    if tokenizer not in TOKENIZER_KINDS:
        raise _fail(root, f"manifest text_encoder.tokenizer is {tokenizer!r}, expected one of "
                          f"{TOKENIZER_KINDS}; re-export, or update hmu")
    files = spec.get("files")
    key = TOKENIZER_FILE[tokenizer]
    if not isinstance(files, dict) or not isinstance(files.get(key), str) \
            or not all(isinstance(v, str) for v in files.values()):
        raise _fail(root, f"manifest text_encoder.files needs the {tokenizer} tokenizer's "
                          f"'{key}' file name; re-export the bundle")
    _int(root, "text_encoder.dim", spec.get("dim"), 1)
    _int(root, "text_encoder.max_length", spec.get("max_length"), 3, MAX_TEXT_IDS[tokenizer])
    if tokenizer == "clip-bpe":
        _int(root, "text_encoder.vocab_size", spec.get("vocab_size"), CLIP_VOCAB_SIZE,
             CLIP_VOCAB_SIZE)
    else:
        _int(root, "text_encoder.vocab_size", spec.get("vocab_size"), 1)
    return spec


def _check_tokens(root: Path, manifest: dict[str, Any], with_res: bool) -> None:
    """Token counts and special ids follow the model kind's fixed layout (MoMask: mask =
    num_tokens, pad = num_tokens + 1; BAMM: END = num_tokens, pad = num_tokens + 1; residual
    pad = num_tokens), so every id the sampler feeds is a row of the graphs' embeddings."""
    tokens = manifest["tokens"]
    if not isinstance(tokens, dict):
        raise _fail(root, "manifest tokens must be an object; re-export the bundle")
    n = _int(root, "tokens.num_tokens", tokens.get("num_tokens"), 1)
    _int(root, "tokens.num_quantizers", tokens.get("num_quantizers"), 1)
    layout = {"pad_id": n + 1}
    layout.update({"end_id": n} if manifest["model_kind"] == "bamm" else {"mask_id": n})
    if with_res:
        layout["res_pad_id"] = n
    for key, want in layout.items():
        value = tokens.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value != want:
            raise _fail(root, f"manifest tokens.{key} is {tokens.get(key)!r}; a "
                              f"{manifest['model_kind']} model with {n} codes uses {want}: "
                              f"re-export the bundle")
    if manifest["model_kind"] == "bamm":
        _int(root, "tokens.bamm_slots", tokens.get("bamm_slots"), manifest["max_tokens"],
             MAX_TOKENS)


def _graph_difference(got: GraphSpec, want: GraphSpec) -> str:
    """'' when ``got`` equals ``want`` (tensor order aside), else the first difference."""
    if got.file != want.file:
        return f"file is {got.file!r}, expected {want.file!r}"
    for side in ("inputs", "outputs"):
        have = {t.name: t for t in getattr(got, side)}
        need = {t.name: t for t in getattr(want, side)}
        if set(have) != set(need):
            return f"{side} are {sorted(have)}, expected {sorted(need)}"
        for name, tensor in need.items():
            if have[name] != tensor:
                return (f"{side}.{name} is {have[name].dtype} {list(have[name].shape)}, expected "
                        f"{tensor.dtype} {list(tensor.shape)}")
    return ""


def check_fields(root: Path, manifest: dict[str, Any], graphs: dict[str, GraphSpec]) -> None:
    """Every field the runtime uses, against the format and against the graphs' I/O.

    Raises:
        BundleError: naming the field, its value and what it must be.
    """
    for key, want in (("fps", FPS), ("unit_length", UNIT_LENGTH), ("feature_dim", FEATURE_DIM)):
        value = manifest[key]
        if isinstance(value, bool) or value != want:
            raise _fail(root, f"manifest {key} is {value!r}; HumanML3D models use {want}: "
                              f"re-export the bundle")
    text = check_text_encoder(root, manifest["text_encoder"])
    length = graphs.get("length_estimator")
    classes = length.outputs[0].shape[-1] if length is not None and length.outputs[0].shape \
        else None
    if length is not None and (isinstance(classes, bool) or not isinstance(classes, int)
                               or classes < 2):
        raise _fail(root, "manifest graphs.length_estimator.outputs needs a fixed class count; "
                          "re-export the bundle")
    limit = min(MAX_TOKENS, classes - 1) if classes is not None else MAX_TOKENS
    high = _int(root, "max_tokens", manifest["max_tokens"], 1, limit)
    _int(root, "min_tokens", manifest["min_tokens"], 1, high)
    _check_tokens(root, manifest, "res" in graphs)
    tokens = manifest["tokens"]
    expected = graph_specs(kind=manifest["model_kind"], tokenizer=text["tokenizer"],
                           text_dim=text["dim"], num_tokens=tokens["num_tokens"],
                           num_quantizers=tokens["num_quantizers"],
                           feature_dim=manifest["feature_dim"], length_classes=classes,
                           with_res="res" in graphs)
    for stage, spec in graphs.items():
        problem = _graph_difference(spec, expected[stage])
        if problem:
            raise _fail(root, f"manifest graphs.{stage}.{problem}, as the manifest's model_kind, "
                              f"tokens, text_encoder and feature_dim require; re-export the "
                              f"bundle")
    for key in ("mean", "std"):
        if not isinstance(manifest["normalization"], dict) or \
                not isinstance(manifest["normalization"].get(key), str):
            raise _fail(root, f"manifest normalization.{key} is missing; re-export the bundle")
    if manifest.get("unlearning") is not None and not isinstance(manifest["unlearning"], dict):
        raise _fail(root, "manifest unlearning must be an object or null; re-export the bundle")
    named = [g.file for g in graphs.values()] + list(manifest["normalization"].values()) \
        + list(text["files"].values())
    unhashed = sorted(set(named) - set(manifest["files"]))
    if unhashed:
        raise _fail(root, f"files {unhashed} have no sha256 in the manifest; re-export the bundle")


def check_file_table(root: Path, files: Any) -> dict[str, str]:
    """``files``: relative names -> lower-case hex sha256, at least one."""
    if not isinstance(files, dict) or not files:
        raise _fail(root, "manifest has no file hashes; re-export the bundle")
    for name, digest in files.items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise _fail(root, f"manifest files[{name!r}] is {digest!r}, not a sha256; re-export "
                              f"the bundle")
    return files
