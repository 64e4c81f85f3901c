"""Bad bundles and bad requests: one clear error each, before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from exporter.runtime import Generator, read_bundle
from exporter.runtime.bundle import sha256_file
from hmu_core.atomic import MARKER
from hmu_core.errors import BundleError, ConfigError
from hmu_core.sampling.params import SamplingParams


@pytest.fixture
def copy(momask_bundle: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(momask_bundle, out)
    return out


def _edit_manifest(root: Path, edit) -> None:
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _rehash(root: Path, name: str) -> None:
    _edit_manifest(root, lambda m: m["files"].__setitem__(name, sha256_file(root / name)))


def test_manifest_describes_the_bundle(momask_bundle):
    bundle = read_bundle(momask_bundle)
    m = bundle.manifest
    assert m["format_version"] == 2 and m["model_kind"] == "momask"
    assert m["unlearning"]["removed_codes"] == [3, 5]
    assert set(m["graphs"]) == {"text_encoder", "base", "res", "decoder", "length_estimator"}
    assert m["text_encoder"]["tokenizer"] == "clip-bpe" and m["text_encoder"]["dim"] == 8
    assert m["text_encoder"]["vocab_size"] == 49408
    assert m["tokens"]["mask_id"] == 16 and m["tokens"]["pad_id"] == 17
    assert bundle.mean.shape == bundle.std.shape == (263,)
    assert sorted(m["files"]) == sorted(p.relative_to(momask_bundle).as_posix()
                                        for p in momask_bundle.rglob("*")
                                        if p.is_file() and p.name not in ("manifest.json",
                                                                          MARKER))


def test_missing_file(copy):
    (copy / "res.onnx").unlink()
    with pytest.raises(BundleError, match=r"missing file res.onnx"):
        Generator(copy, device="cpu", threads=1)
    (copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"missing file manifest.json"):
        Generator(copy, device="cpu", threads=1)


def test_hash_mismatch(copy):
    data = bytearray((copy / "decoder.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"hash mismatch for decoder.onnx"):
        Generator(copy, device="cpu", threads=1)


def test_unknown_format_version(copy):
    _edit_manifest(copy, lambda m: m.__setitem__("format_version", 99))
    with pytest.raises(BundleError, match="unknown format version 99"):
        read_bundle(copy)


def test_truncated_onnx(copy):
    data = (copy / "base.onnx").read_bytes()
    (copy / "base.onnx").write_bytes(data[: len(data) // 2])
    _rehash(copy, "base.onnx")  # hashes match: onnxruntime itself must refuse it
    with pytest.raises(BundleError, match=r"base.onnx cannot be loaded.*truncated or invalid"):
        Generator(copy, device="cpu", threads=1)


def test_wrong_shapes(copy):
    def six_layers(m):  # a manifest consistent in itself, but not with decoder.onnx
        m["tokens"]["num_quantizers"] = 6
        m["graphs"]["decoder"]["inputs"]["ids"]["shape"] = ["batch", "length", 6]

    _edit_manifest(copy, six_layers)
    with pytest.raises(BundleError, match="wrong shape for decoder input ids"):
        Generator(copy, device="cpu", threads=1)
    # graphs swapped for others (checked in manifest order: base comes before decoder)
    shutil.copyfile(copy / "res.onnx", copy / "base.onnx")
    _rehash(copy, "base.onnx")
    with pytest.raises(BundleError, match=r"wrong shape for base input ids .*'layers'"):
        Generator(copy, device="cpu", threads=1)
    shutil.copyfile(copy / "length_estimator.onnx", copy / "base.onnx")
    _rehash(copy, "base.onnx")
    with pytest.raises(BundleError, match=r"base.onnx has inputs \['cond'\]"):
        Generator(copy, device="cpu", threads=1)


def test_path_escape_and_bad_stats(copy, tmp_path):
    _edit_manifest(copy, lambda m: m["files"].__setitem__("../x", "0" * 64))
    with pytest.raises(BundleError, match="outside the bundle"):
        read_bundle(copy)
    _edit_manifest(copy, lambda m: m["files"].pop("../x"))
    np.save(copy / "std.npy", np.zeros(5, np.float32))
    _rehash(copy, "std.npy")
    with pytest.raises(BundleError, match=r"std.npy has shape \(5,\)"):
        read_bundle(copy)
    with pytest.raises(BundleError, match="not found"):
        read_bundle(tmp_path / "nowhere")


def test_bad_manifest_fields(copy):
    _edit_manifest(copy, lambda m: m["tokens"].pop("mask_id"))
    with pytest.raises(BundleError, match=r"tokens.mask_id is None; a momask model with 16 codes "
                                          r"uses 16"):
        read_bundle(copy)
    _edit_manifest(copy, lambda m: m["tokens"].__setitem__("mask_id", 16))
    _edit_manifest(copy, lambda m: m["sampling_defaults"].__setitem__("warp", 1))
    with pytest.raises(BundleError, match="bad sampling_defaults"):
        Generator(copy, device="cpu", threads=1)
    _edit_manifest(copy, lambda m: m.__setitem__("format", "other"))
    with pytest.raises(BundleError, match="not an hmu bundle"):
        read_bundle(copy)


@pytest.fixture(scope="module")
def runtime(momask_bundle):
    return Generator(momask_bundle, device="cpu", threads=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(prompts=""), "empty"),
    (dict(prompts=["ok", "  "]), "prompt 1 is empty"),
    (dict(prompts=[]), "one or more"),
    (dict(prompts="x" * 1001), "1001 characters"),
    (dict(seconds=1.0), "choose a duration"),
    (dict(seconds=12.0), "choose a duration"),
    (dict(seconds=float("nan")), "finite"),
    (dict(seconds="x"), "number"),
    (dict(seconds=[2.0, 3.0]), "2 durations for 1 prompts"),
    (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"),
    (dict(seeds=[1, 2]), "2 seeds for 1 prompts"),
    (dict(params={"timesteps": 3}), "SamplingParams"),
    (dict(tokens=[5]), "not both"),
    (dict(seconds=None, tokens=[0]), "token lengths must be"),
    (dict(seconds=None, tokens=[5, 6]), "token lengths must be"),
])
def test_bad_requests(runtime, kwargs, match, monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "_run", lambda *a, **k: calls.append(a))
    args = {"prompts": "a person walks", "seconds": 2.0, **kwargs}
    with pytest.raises(ConfigError, match=match):
        runtime.generate(args.pop("prompts"), **args)
    assert not calls  # refused before any network ran


@pytest.mark.parametrize("knob", [dict(cond_scale=float("inf")), dict(temperature=float("nan")),
                                  dict(topk_filter_thres=1.5)])
def test_non_finite_params(knob):
    with pytest.raises(ConfigError):
        SamplingParams(**knob)
