"""The bundle format (DESIGN.md §5): schema constants, reading, and every integrity check.

A bundle is a directory::

    manifest.json            what the model is and how to run it (schema below)
    text_encoder.onnx        prompt ids -> (B, D) condition vectors
    base.onnx                one step of the base transformer (MoMask logits or BAMM step)
    res.onnx                 one step of the residual transformer (optional)
    decoder.onnx             (B, n, Q) codes -> (B, 4n, 263) normalised features
    length_estimator.onnx    (B, D) -> (B, C) token-length logits (optional)
    mean.npy, std.npy        feature normalisation (float32, never pickled)
    tokenizer/...            the text encoder's tokenizer files

``manifest.json`` keys: ``format`` ("hmu-bundle"), ``format_version`` (``FORMAT_VERSION``),
``model_kind`` (momask | bamm), ``fps``, ``unit_length``, ``min_tokens``/``max_tokens``,
``feature_dim``, ``tokens`` (``num_tokens``, ``num_quantizers``, ``mask_id``, ``pad_id``,
``end_id``, ``res_pad_id``, ``bamm_slots``), ``configs`` (each part's opt.txt, raw),
``text_encoder`` (``name``, ``spec``, ``dim``, ``tokenizer`` clip-bpe | bert-wordpiece,
``files``, ``max_length``), ``sampling_defaults`` (``SamplingParams`` fields),
``normalization`` (npy file names), ``graphs`` (per stage: file, inputs and outputs with dtype
and shape; a string dimension is dynamic), ``unlearning`` (the model's ``unlearning.json`` or
null), ``files`` (sha256 of every other file). Every check raises ``BundleError`` with the file
and what to do. This module imports only the stdlib and numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmu_core.errors import BundleError

FORMAT = "hmu-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_KINDS = ("momask", "bamm")
TOKENIZER_KINDS = ("clip-bpe", "bert-wordpiece")
REQUIRED_GRAPHS = ("text_encoder", "base", "decoder")
OPTIONAL_GRAPHS = ("res", "length_estimator")
_REQUIRED_KEYS = ("model_kind", "fps", "unit_length", "min_tokens", "max_tokens", "feature_dim",
                  "tokens", "text_encoder", "sampling_defaults", "normalization", "graphs",
                  "files")
_DTYPES = {"int64": np.int64, "float32": np.float32, "bool": np.bool_}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


@dataclass(frozen=True)
class Bundle:
    """A read and checked bundle: its directory, manifest, graphs and normalisation."""

    path: Path
    manifest: dict[str, Any]
    graphs: dict[str, GraphSpec]
    mean: np.ndarray
    std: np.ndarray

    @property
    def kind(self) -> str:
        """``momask`` or ``bamm``."""
        return str(self.manifest["model_kind"])

    def file(self, name: str) -> Path:
        """Absolute path of a bundle file named in the manifest."""
        return self.path / name


def _fail(path: Path, what: str) -> BundleError:
    return BundleError(f"bundle {path}: {what}")


def _spec_from_json(path: Path, stage: str, side: str, name: str, raw: Any) -> TensorSpec:
    if not isinstance(raw, dict) or raw.get("dtype") not in _DTYPES \
            or not isinstance(raw.get("shape"), list):
        raise _fail(path, f"manifest graphs.{stage}.{side}.{name} needs a dtype "
                          f"({'/'.join(_DTYPES)}) and a shape list; re-export the bundle")
    for dim in raw["shape"]:
        if isinstance(dim, bool) or not isinstance(dim, int | str):
            raise _fail(path, f"manifest graphs.{stage}.{side}.{name} has a bad dimension "
                              f"{dim!r}; re-export the bundle")
    return TensorSpec(name, raw["dtype"], tuple(raw["shape"]))


def _graph_from_json(path: Path, stage: str, raw: Any) -> GraphSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        raise _fail(path, f"manifest graphs.{stage} has no file name; re-export the bundle")
    sides = {}
    for side in ("inputs", "outputs"):
        items = raw.get(side)
        if not isinstance(items, dict) or not items:
            raise _fail(path, f"manifest graphs.{stage}.{side} is missing; re-export the bundle")
        sides[side] = tuple(_spec_from_json(path, stage, side, k, v) for k, v in items.items())
    return GraphSpec(raw["file"], sides["inputs"], sides["outputs"])


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse ``manifest.json`` and check format, version and required keys (no file checks).

    Raises:
        BundleError: missing or invalid manifest, another format, an unknown version.
    """
    root = Path(path)
    if not root.is_dir():
        raise _fail(root, "not found (a bundle is a directory written by `hmu export`)")
    file = root / MANIFEST
    if not file.is_file():
        raise _fail(root, f"missing file {MANIFEST}; is this a bundle directory? re-export it "
                          f"with `hmu export`")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(root, f"{MANIFEST} is not valid JSON ({exc}); re-export the bundle") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(root, f"{MANIFEST} is not an hmu bundle manifest (needs \"format\": "
                          f"\"{FORMAT}\")")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(root, f"unknown format version {version!r}; this runtime reads version "
                          f"{FORMAT_VERSION}: re-export the bundle with this hmu, or update hmu")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise _fail(root, f"{MANIFEST} lacks {missing}; re-export the bundle")
    if manifest["model_kind"] not in MODEL_KINDS:
        raise _fail(root, f"unknown model kind {manifest['model_kind']!r}; expected one of "
                          f"{MODEL_KINDS}")
    if manifest["text_encoder"].get("tokenizer") not in TOKENIZER_KINDS:
        raise _fail(root, f"unknown tokenizer {manifest['text_encoder'].get('tokenizer')!r}; "
                          f"expected one of {TOKENIZER_KINDS}")
    for key in ("fps", "unit_length", "min_tokens", "max_tokens", "feature_dim"):
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0:
            raise _fail(root, f"manifest {key} is {value!r}, expected a positive number")
    return manifest


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    """Every hashed file exists and matches; every named file is hashed; nothing escapes root.

    Raises:
        BundleError: naming the missing file or the one whose sha256 differs.
    """
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise _fail(root, "manifest has no file hashes; re-export the bundle")
    named = [g["file"] for g in manifest["graphs"].values() if isinstance(g, dict)]
    named += list(manifest["normalization"].values())
    named += list(manifest["text_encoder"].get("files", {}).values())
    unhashed = sorted(set(named) - set(files))
    if unhashed:
        raise _fail(root, f"files {unhashed} have no sha256 in the manifest; re-export the bundle")
    resolved_root = root.resolve()
    for name, expected in sorted(files.items()):
        target = (root / name).resolve()
        if resolved_root not in target.parents:
            raise _fail(root, f"manifest names {name!r}, outside the bundle; refusing it")
        if not target.is_file():
            raise _fail(root, f"missing file {name}; the bundle is incomplete, copy it again or "
                              f"re-export it")
        actual = sha256_file(target)
        if actual != expected:
            raise _fail(root, f"hash mismatch for {name} (sha256 {actual[:12]}..., manifest "
                              f"{str(expected)[:12]}...): the file was changed or damaged; "
                              f"copy the bundle again or re-export it")


def _load_stats(root: Path, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    dim = int(manifest["feature_dim"])
    out = []
    for key in ("mean", "std"):
        name = manifest["normalization"].get(key)
        if not isinstance(name, str):
            raise _fail(root, f"manifest normalization.{key} is missing; re-export the bundle")
        try:
            array = np.load(root / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise _fail(root, f"{name} is not a plain .npy array ({exc})") from None
        if array.shape != (dim,) or not np.isfinite(array).all():
            raise _fail(root, f"{name} has shape {array.shape} (or non-finite values); expected "
                              f"({dim},) finite")
        out.append(array.astype(np.float64))
    if (out[1] <= 0).any():
        raise _fail(root, f"{manifest['normalization']['std']} has std <= 0; re-export")
    return out[0], out[1]


def _check_tokens(root: Path, manifest: dict[str, Any], with_res: bool) -> None:
    """The token ids the runtime's sampler needs for this model kind are present ints."""
    tokens = manifest["tokens"]
    needed = ["num_tokens", "num_quantizers", "pad_id"]
    needed += ["end_id", "bamm_slots"] if manifest["model_kind"] == "bamm" else ["mask_id"]
    needed += ["res_pad_id"] if with_res else []
    bad = [k for k in needed if not isinstance(tokens, dict) or isinstance(tokens.get(k), bool)
           or not isinstance(tokens.get(k), int)]
    if bad:
        raise _fail(root, f"manifest tokens lack integer {bad}; re-export the bundle")


def read_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read a bundle and check it (manifest, hashes, normalisation); sessions check shapes.

    Args:
        verify: check every file's sha256 (turn off only for a bundle checked moments ago).
    Raises:
        BundleError: any problem, named (missing file, hash mismatch, format version, ...).
    """
    root = Path(path)
    manifest = read_manifest(root)
    graphs_raw = manifest["graphs"]
    if not isinstance(graphs_raw, dict):
        raise _fail(root, "manifest graphs must be an object; re-export the bundle")
    missing = [g for g in REQUIRED_GRAPHS if g not in graphs_raw]
    if missing:
        raise _fail(root, f"manifest lacks the graphs {missing}; re-export the bundle")
    unknown = sorted(set(graphs_raw) - set(REQUIRED_GRAPHS) - set(OPTIONAL_GRAPHS))
    if unknown:
        raise _fail(root, f"manifest has unknown graphs {unknown}; update hmu")
    graphs = {k: _graph_from_json(root, k, v) for k, v in graphs_raw.items()}
    _check_tokens(root, manifest, "res" in graphs)
    if verify:
        verify_files(root, manifest)
    mean, std = _load_stats(root, manifest)
    return Bundle(path=root, manifest=manifest, graphs=graphs, mean=mean, std=std)


def _ort_dtype(dtype: str) -> str:
    """onnxruntime's type string of a manifest dtype (float32 is ``tensor(float)``)."""
    return f"tensor({'float' if dtype == 'float32' else dtype})"


def check_session_io(bundle_path: Path, stage: str, spec: GraphSpec, session: Any) -> None:
    """The session's inputs and outputs are the manifest's: names, dtypes, fixed dimensions
    equal, dynamic ones dynamic.

    Raises:
        BundleError: naming the graph, the tensor and both shapes.
    """
    for side, expected, actual in (("input", spec.inputs, session.get_inputs()),
                                   ("output", spec.outputs, session.get_outputs())):
        found = {a.name: a for a in actual}
        if set(found) != {t.name for t in expected}:
            raise _fail(bundle_path, f"{spec.file} has {side}s {sorted(found)}, the manifest "
                                     f"says {sorted(t.name for t in expected)}; re-export")
        for tensor in expected:
            got = found[tensor.name]
            shape = list(got.shape)
            if got.type != _ort_dtype(tensor.dtype):
                raise _fail(bundle_path, f"{spec.file} {side} {tensor.name} is {got.type}, the "
                                         f"manifest says {tensor.dtype}; re-export")
            ok = len(shape) == len(tensor.shape) and all(
                (isinstance(w, str) and not isinstance(g, int)) or (isinstance(w, int) and g == w)
                for w, g in zip(tensor.shape, shape, strict=True))
            if not ok:
                raise _fail(bundle_path, f"wrong shape for {stage} {side} {tensor.name} in "
                                         f"{spec.file}: graph {shape}, manifest "
                                         f"{list(tensor.shape)}; re-export the bundle")
