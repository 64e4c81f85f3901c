"""Every manifest field against the graphs: one ``BundleError`` naming the field, per bad value.

The runtime must refuse a bundle whose manifest disagrees with its graphs before onnxruntime
sees a bad id (``mask_id: 99999`` was an onnxruntime node failure), and before it makes a
motion the model cannot (``max_tokens: 10000`` made 4,000 frames).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from exporter.runtime import Generator, read_bundle
from exporter.runtime.bundle import sha256_file
from hmu_core.errors import BundleError, ConfigError


@pytest.fixture
def copy(momask_bundle: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(momask_bundle, out)
    return out


@pytest.fixture
def bamm_copy(bamm_bundle: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bamm"
    shutil.copytree(bamm_bundle, out)
    return out


def edit(root: Path, path: str | tuple[str, ...], value: object) -> None:
    """Set (or with ``...`` delete) the manifest entry at a dotted ``path`` (a tuple of keys
    where a key holds a dot, such as a file name)."""
    file = root / "manifest.json"
    manifest = json.loads(file.read_text())
    *parents, last = path.split(".") if isinstance(path, str) else path
    node = manifest
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    file.write_text(json.dumps(manifest))


def rehash(root: Path, name: str) -> None:
    edit(root, ("files", name), sha256_file(root / name))


LOGITS = "graphs.base.outputs.logits"
MOMASK_CASES = [
    # text encoder (``text_encoder: null`` was an AttributeError)
    ("text_encoder", None, r"text_encoder is None, expected an object"),
    ("text_encoder", "clip", r"text_encoder is 'clip', expected an object"),
    ("text_encoder.name", ..., r"text_encoder.name is missing"),
    ("text_encoder.tokenizer", "sentencepiece", r"text_encoder.tokenizer is 'sentencepiece'"),
    ("text_encoder.tokenizer", None, r"text_encoder.tokenizer is None"),
    ("text_encoder.files", {}, r"text_encoder.files needs the clip-bpe tokenizer's 'bpe'"),
    ("text_encoder.files", None, r"text_encoder.files needs"),
    ("text_encoder.dim", "8", r"text_encoder.dim is '8', expected an int >= 1"),
    ("text_encoder.dim", 0, r"text_encoder.dim is 0"),
    ("text_encoder.dim", 9, r"graphs.base.inputs.cond is float32 \['batch', 8\], expected "
                            r"float32 \['batch', 9\]"),
    ("text_encoder.max_length", 500, r"text_encoder.max_length is 500, expected an int in "
                                     r"\[3, 77\]"),
    ("text_encoder.max_length", ..., r"text_encoder.max_length is None"),
    ("text_encoder.vocab_size", 30522, r"text_encoder.vocab_size is 30522, expected an int in "
                                       r"\[49408, 49408\]"),
    ("text_encoder.vocab_size", ..., r"text_encoder.vocab_size is None"),
    # special ids and vocabulary sizes
    ("tokens.mask_id", 99999, r"tokens.mask_id is 99999; a momask model with 16 codes uses 16"),
    ("tokens.mask_id", -1, r"tokens.mask_id is -1"),
    ("tokens.mask_id", True, r"tokens.mask_id is True"),
    ("tokens.pad_id", 16, r"tokens.pad_id is 16; a momask model with 16 codes uses 17"),
    ("tokens.res_pad_id", 17, r"tokens.res_pad_id is 17"),
    ("tokens.num_tokens", 32, r"tokens.pad_id is 17; a momask model with 32 codes uses 33"),
    ("tokens.num_tokens", "16", r"tokens.num_tokens is '16'"),
    ("tokens.num_quantizers", 0, r"tokens.num_quantizers is 0"),
    ("tokens.num_quantizers", 4, r"graphs.decoder.inputs.ids is int64 \['batch', 'length', 3\], "
                                 r"expected int64 \['batch', 'length', 4\]"),
    ("tokens", [], r"tokens must be an object"),
    # token range
    ("max_tokens", 10000, r"max_tokens is 10000, expected an int in \[1, 49\]"),
    ("max_tokens", 49.5, r"max_tokens is 49.5"),
    ("max_tokens", "49", r"max_tokens is '49', expected a positive number"),
    ("min_tokens", 60, r"min_tokens is 60, expected an int in \[1, 49\]"),
    ("min_tokens", 0, r"min_tokens is 0, expected a positive number"),
    ("min_tokens", float("nan"), r"min_tokens is nan"),
    # the format's constants and shapes
    ("fps", 30, r"fps is 30; HumanML3D models use 20"),
    ("unit_length", 8, r"unit_length is 8; HumanML3D models use 4"),
    ("feature_dim", 264, r"feature_dim is 264; HumanML3D models use 263"),
    (f"{LOGITS}.shape", ["batch", "length", 17], r"graphs.base.outputs.logits is float32 "
                                                 r"\['batch', 'length', 17\], expected"),
    (f"{LOGITS}.dtype", "float16", r"graphs.base.outputs.logits needs a dtype"),
    ("graphs.base.inputs.cond.shape", ["batch", 8, 1], r"graphs.base.inputs.cond is float32"),
    ("graphs.base.inputs.padding_mask", ..., r"graphs.base.inputs are \['cond', 'ids'\]"),
    ("graphs.base.file", "decoder.onnx", r"graphs.base.file is 'decoder.onnx'"),
    ("graphs.length_estimator.outputs.logits.shape", ["batch", "classes"],
     r"length_estimator.outputs needs a fixed class count"),
    ("graphs.vae", {"file": "vae.onnx"}, r"unknown graphs \['vae'\]"),
    ("graphs.decoder", ..., r"lacks the graphs \['decoder'\]"),
    ("graphs", [], r"graphs must be an object"),
    # the rest of the manifest
    ("normalization", None, r"normalization.mean is missing"),
    ("normalization.std", 3, r"normalization.std is missing"),
    ("unlearning", "yes", r"unlearning must be an object or null"),
    ("files", {}, r"no file hashes"),
    (("files", "base.onnx"), "zz", r"files\['base.onnx'\] is 'zz', not a sha256"),
    (("files", "base.onnx"), ..., r"files \['base.onnx'\] have no sha256"),
    ("format_version", 1, r"unknown format version 1"),
    ("format_version", True, r"unknown format version True"),
    ("model_kind", "diffusion", r"unknown model kind 'diffusion'"),
    ("tokens", ..., r"lacks \['tokens'\]"),
]


@pytest.mark.parametrize("path, value, match", MOMASK_CASES,
                         ids=[f"{'.'.join(p) if isinstance(p, tuple) else p}={v!r}"[:60]
                              for p, v, _ in MOMASK_CASES])
def test_bad_momask_field(copy, path, value, match):
    edit(copy, path, value)
    with pytest.raises(BundleError, match=match) as info:
        read_bundle(copy)
    assert "\n" not in str(info.value) and str(copy) in str(info.value)


BAMM_CASES = [
    ("tokens.end_id", 3, r"tokens.end_id is 3; a bamm model with 16 codes uses 16"),
    ("tokens.end_id", None, r"tokens.end_id is None"),
    ("tokens.bamm_slots", 60, r"tokens.bamm_slots is 60, expected an int in \[49, 49\]"),
    ("tokens.bamm_slots", 30, r"tokens.bamm_slots is 30"),
    ("graphs.base.inputs.cond_idx", ..., r"graphs.base.inputs are \['cond', 'ids'\]"),
]


@pytest.mark.parametrize("path, value, match", BAMM_CASES,
                         ids=[f"{p}={v!r}" for p, v, _ in BAMM_CASES])
def test_bad_bamm_field(bamm_copy, path, value, match):
    edit(bamm_copy, path, value)
    with pytest.raises(BundleError, match=match):
        read_bundle(bamm_copy)


def test_broken_manifest_file(copy):
    (copy / "manifest.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(BundleError, match=r"manifest.json is not valid JSON"):
        read_bundle(copy)
    (copy / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="not an hmu bundle manifest"):
        read_bundle(copy)
    (copy / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(copy)


def test_bad_sampling_defaults(copy):
    edit(copy, "sampling_defaults.cond_scale", 1e300)
    with pytest.raises(BundleError, match=r"bad sampling_defaults \(cond_scale must be a finite"):
        Generator(copy, device="cpu", threads=1)


def test_swapped_clip_vocabulary(copy):
    name = json.loads((copy / "manifest.json").read_text())["text_encoder"]["files"]["bpe"]
    (copy / name).write_bytes(b"not gzip at all")
    rehash(copy, name)  # hashes match: the vocabulary itself must be refused
    with pytest.raises(BundleError, match=r"is not CLIP's BPE vocabulary of 49408 tokens"):
        Generator(copy, device="cpu", threads=1)


def test_max_tokens_bounds_the_durations(copy):
    """The range the manifest allows (10..49 tokens here) is what the runtime makes."""
    edit(copy, "max_tokens", 20)
    runtime = Generator(copy, device="cpu", threads=1)
    assert runtime.generate("a person walks", seconds=4.0).motions[0].num_frames == 80
    with pytest.raises(ConfigError, match=r"makes 40..80 frames"):
        runtime.generate("a person walks", seconds=4.2)


def test_wordpiece_vocabulary_must_match_the_graph(tmp_path):
    """A trimmed vocab.txt with a recomputed hash was accepted; now its size is held to
    ``text_encoder.vocab_size``, and that to the text encoder graph (a probe run)."""
    pytest.importorskip("tokenizers")
    from exporter.export import export_bundle

    from .conftest import save_tiny_set

    model_set = save_tiny_set(tmp_path / "set", with_res=False, with_est=False, clip_dim=384)
    bundle = export_bundle(model_set, tmp_path / "bundle", text_encoder="minilm")
    vocab = bundle / "tokenizer" / "vocab.txt"
    lines = vocab.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 30522 == read_bundle(bundle).manifest["text_encoder"]["vocab_size"]

    vocab.write_text("".join(f"{t}\n" for t in lines[:30000]), encoding="utf-8")
    rehash(bundle, "tokenizer/vocab.txt")
    with pytest.raises(BundleError, match=r"vocab.txt holds 30000 tokens but "
                                          r"text_encoder.vocab_size .* is 30522"):
        Generator(bundle, device="cpu", threads=1)

    vocab.write_text("".join(f"{t}\n" for t in [*lines, "[PAD]"]), encoding="utf-8")
    rehash(bundle, "tokenizer/vocab.txt")
    with pytest.raises(BundleError, match=r"repeats a token"):
        Generator(bundle, device="cpu", threads=1)

    # vocabulary and manifest enlarged together: the graph has no row for the new ids
    vocab.write_text("".join(f"{t}\n" for t in [*lines, *(f"extra{i}" for i in range(100))]),
                     encoding="utf-8")
    rehash(bundle, "tokenizer/vocab.txt")
    edit(bundle, "text_encoder.vocab_size", 30622)
    with pytest.raises(BundleError, match=r"text_encoder.onnx rejects token id 30621 although "
                                          r"text_encoder.vocab_size is 30622"):
        Generator(bundle, device="cpu", threads=1)
