"""The bundle format (DESIGN.md §5): reading, hashes, the digest, and the integrity checks.

A bundle is a directory::

    manifest.json            what the model is and how to run it (schema below)
    text_encoder.onnx        prompt ids -> (B, D) condition vectors
    base.onnx                one step of the base transformer (MoMask logits or BAMM step)
    res.onnx                 one step of the residual transformer (optional)
    decoder.onnx             (B, n, Q) codes -> (B, 4n, 263) normalised features
    length_estimator.onnx    (B, D) -> (B, C) token-length logits (optional)
    mean.npy, std.npy        feature normalisation (float32, never pickled)
    tokenizer/...            the text encoder's tokenizer files
    signature.json           optional: an ed25519 signature over the digest (``trust``)

``manifest.json`` keys: ``format`` ("hmu-bundle"), ``format_version`` (``FORMAT_VERSION``),
``model_kind`` (momask | bamm), ``fps``, ``unit_length``, ``min_tokens``/``max_tokens``,
``feature_dim``, ``tokens`` (``num_tokens``, ``num_quantizers``, ``mask_id``, ``pad_id``,
``end_id``, ``res_pad_id``, ``bamm_slots``), ``configs`` (each part's opt.txt, raw),
``text_encoder`` (``name``, ``spec``, ``dim``, ``tokenizer`` clip-bpe | bert-wordpiece,
``files``, ``max_length``, ``vocab_size``), ``sampling_defaults`` (``SamplingParams`` fields),
``normalization`` (npy file names), ``graphs`` (per stage: file, inputs and outputs with dtype
and shape; a string dimension is dynamic), ``unlearning`` (the model's ``unlearning.json`` or
null), ``files`` (sha256 of every other file). ``schema`` checks each field against the
graphs; :func:`bundle_digest` is the bundle's one identity. Every check raises ``BundleError``
with the file and what to do. This module imports only the stdlib and numpy (``cryptography``
only when trusted keys are configured, see ``trust``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exporter.runtime import trust
from exporter.runtime.schema import (
    GraphSpec,
    TensorSpec,
    check_fields,
    check_file_table,
    graph_specs,
    parse_graphs,
)
from hmu_core.errors import BundleError
from hmu_core.sampling.backend import MODEL_KINDS

__all__ = ["DIGEST_VERSION", "FORMAT", "FORMAT_VERSION", "MANIFEST", "Bundle", "GraphSpec",
           "TensorSpec", "bundle_digest", "check_session_io", "graph_specs", "read_bundle",
           "read_bundle_unsigned", "read_manifest", "sha256_file", "verify_files"]

FORMAT = "hmu-bundle"
FORMAT_VERSION = 2
"""2: ``text_encoder.vocab_size``, every field checked against the graphs, one digest."""
MANIFEST = "manifest.json"
DIGEST_VERSION = 1
_REQUIRED_KEYS = ("model_kind", "fps", "unit_length", "min_tokens", "max_tokens", "feature_dim",
                  "tokens", "text_encoder", "sampling_defaults", "normalization", "graphs",
                  "files")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_digest(manifest_sha256: str, file_sha256: dict[str, str]) -> str:
    """THE identity of a bundle: one sha256 over ``manifest.json`` and every file it lists.

    It hashes the text ``hmu-bundle-digest 1`` then one ``<sha256>  <name>`` line for
    ``manifest.json`` and for each listed file in name order, each sha256 taken of the bytes on
    disk (``verify_files`` computes them). So no byte of the manifest (the unlearning record
    included) or of any file the runtime reads can change without changing the digest; a
    signature (``trust``) is over this value, and clip indexes and the add-on record it.
    Files the manifest does not list are not read by anything and not part of it.
    """
    lines = [f"hmu-bundle-digest {DIGEST_VERSION}", f"{manifest_sha256}  {MANIFEST}"]
    lines += [f"{file_sha256[name]}  {name}" for name in sorted(file_sha256)]
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A read and checked bundle: its directory, manifest, graphs, normalisation, its digest
    (:func:`bundle_digest`) and the id of the trusted key that signed it (``None`` when no
    trusted keys were configured)."""

    path: Path
    manifest: dict[str, Any]
    graphs: dict[str, GraphSpec]
    mean: np.ndarray
    std: np.ndarray
    digest: str
    signed_by: str | None = None

    @property
    def kind(self) -> str:
        """``momask`` or ``bamm``."""
        return str(self.manifest["model_kind"])

    def file(self, name: str) -> Path:
        """Absolute path of a bundle file named in the manifest."""
        return self.path / name


def _fail(path: Path, what: str) -> BundleError:
    return BundleError(f"bundle {path}: {what}")


def _read_manifest(root: Path) -> tuple[dict[str, Any], str]:
    """The checked top level of ``manifest.json`` and the sha256 of its bytes."""
    if not root.is_dir():
        raise _fail(root, "not found (a bundle is a directory written by `hmu export`)")
    file = root / MANIFEST
    if not file.is_file():
        raise _fail(root, f"missing file {MANIFEST}; is this a bundle directory? re-export it "
                          f"with `hmu export`")
    try:
        raw = file.read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise _fail(root, f"cannot read {MANIFEST} ({exc.strerror})") from None
    except (ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
        raise _fail(root, f"{MANIFEST} is not valid JSON ({str(exc)[:200]}); re-export the "
                          f"bundle") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(root, f"{MANIFEST} is not an hmu bundle manifest (needs \"format\": "
                          f"\"{FORMAT}\")")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _fail(root, f"unknown format version {version!r}; this runtime reads version "
                          f"{FORMAT_VERSION}: re-export the bundle with this hmu, or update hmu")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise _fail(root, f"{MANIFEST} lacks {missing}; re-export the bundle")
    if manifest["model_kind"] not in MODEL_KINDS:
        raise _fail(root, f"unknown model kind {manifest['model_kind']!r}; expected one of "
                          f"{MODEL_KINDS}")
    for key in ("fps", "unit_length", "min_tokens", "max_tokens", "feature_dim"):
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0:
            raise _fail(root, f"manifest {key} is {value!r}, expected a positive number")
    return manifest, hashlib.sha256(raw).hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse ``manifest.json`` and check format, version and required keys (no file checks).

    Raises:
        BundleError: missing or invalid manifest, another format, an unknown version.
    """
    return _read_manifest(Path(path))[0]


def verify_files(root: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """Every hashed file exists inside ``root`` and matches; returns their sha256 by name.

    Raises:
        BundleError: naming the missing file, the one outside the bundle or the one whose
            sha256 differs.
    """
    files = check_file_table(root, manifest["files"])
    resolved_root = root.resolve()
    actual: dict[str, str] = {}
    for name, expected in sorted(files.items()):
        target = (root / name).resolve()
        if resolved_root not in target.parents:
            raise _fail(root, f"manifest names {name!r}, outside the bundle; refusing it")
        if not target.is_file():
            raise _fail(root, f"missing file {name}; the bundle is incomplete, copy it again or "
                              f"re-export it")
        try:
            actual[name] = sha256_file(target)
        except OSError as exc:
            raise _fail(root, f"cannot read {name} ({exc.strerror})") from None
        if actual[name] != expected:
            raise _fail(root, f"hash mismatch for {name} (sha256 {actual[name][:12]}..., "
                              f"manifest {expected[:12]}...): the file was changed or damaged; "
                              f"copy the bundle again or re-export it")
    return actual


def _load_stats(root: Path, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    dim = int(manifest["feature_dim"])
    out = []
    for key in ("mean", "std"):
        name = manifest["normalization"][key]  # a string: check_fields
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


def read_bundle_unsigned(path: str | Path) -> Bundle:
    """Read and check a bundle as :func:`read_bundle` does, but ignore trusted keys: for
    signing a bundle (which makes its signature), never for running one."""
    root = Path(path)
    manifest, manifest_sha = _read_manifest(root)
    digest = bundle_digest(manifest_sha, verify_files(root, manifest))
    graphs = parse_graphs(root, manifest["graphs"])
    check_fields(root, manifest, graphs)
    mean, std = _load_stats(root, manifest)
    return Bundle(path=root, manifest=manifest, graphs=graphs, mean=mean, std=std, digest=digest)


def read_bundle(path: str | Path, trusted_keys: Iterable[str | Path] | None = None) -> Bundle:
    """Read a bundle and check it: manifest, every file's hash, every manifest field against
    the graphs, normalisation, and the signature when trusted keys are configured (sessions
    then hold the graphs to the manifest, ``check_session_io``).

    Args:
        trusted_keys: public-key files (``hmu keygen``) besides those in ``$HMU_TRUSTED_KEYS``;
            with any key configured, the bundle must carry a valid signature by one of them.
    Raises:
        BundleError: any problem, named (missing file, hash mismatch, format version, a field
            and what it must be, unsigned or changed after signing, ...).
        ConfigError: a trusted-key file is unreadable or malformed.
    """
    keys = trust.trusted_keys(trusted_keys)
    bundle = read_bundle_unsigned(path)
    if not keys:
        return bundle
    signer = trust.check_signature(bundle.path, bundle.digest, keys)
    return dataclasses.replace(bundle, signed_by=signer)


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
