"""``export_bundle`` and ``hmu export``: valid graphs, atomic writes, MiniLM, the CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import pytest

from exporter import export
from exporter.runtime import Generator, read_bundle
from hmu_core.atomic import MARKER
from hmu_core.cli import export as export_cli
from hmu_core.errors import ConfigError
from hmu_core.models.generate import generate_motions, load_generator
from hmu_core.models.model_set import resolve_model_set

from .conftest import save_tiny_set


def test_every_graph_passes_the_checker_and_torch_check(momask_bundle, bamm_bundle):
    for root in (momask_bundle, bamm_bundle):
        manifest = read_bundle(root).manifest
        for spec in manifest["graphs"].values():
            onnx.checker.check_model(str(root / spec["file"]), full_check=True)
        errors = manifest["export_check"]["max_abs_error"]
        assert set(errors) == set(manifest["graphs"]) and max(errors.values()) < 1e-4
    bamm = read_bundle(bamm_bundle).manifest
    assert bamm["model_kind"] == "bamm" and bamm["unlearning"] is None
    assert bamm["tokens"]["end_id"] == 16 and bamm["tokens"]["bamm_slots"] == 49
    assert "length_estimator" not in bamm["graphs"]


def test_a_second_bundle_reuses_the_text_graph_and_equals_a_fresh_export(
        momask_set, clip_encoder, tmp_path, monkeypatch):
    exported = []
    real_export = export._export
    monkeypatch.setattr(export, "_export", lambda module, args, spec, path, opset: (
        exported.append(spec.file), real_export(module, args, spec, path, opset)))
    monkeypatch.setattr(export, "_exported_text_graph", {})
    export.export_bundle(momask_set, tmp_path / "a", text_encoder=clip_encoder, seed=3)
    first = list(exported)
    exported.clear()
    export.export_bundle(momask_set, tmp_path / "b", text_encoder=clip_encoder, seed=3)
    assert "text_encoder.onnx" in first and "text_encoder.onnx" not in exported
    assert sorted(exported) == sorted(f for f in first if f != "text_encoder.onnx")
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():  # the manifest's check errors included
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a"))\
                .read_bytes(), path.name
    export.export_bundle(momask_set, tmp_path / "c", text_encoder=clip_encoder, opset=16)
    assert exported.count("text_encoder.onnx") == 1  # another opset is another graph


def test_out_dir_rules_and_atomicity(momask_set, clip_encoder, tmp_path, monkeypatch):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"not empty.*--overwrite"):
        export.export_bundle(momask_set, out, text_encoder=clip_encoder)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_export_stages", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_bundle(momask_set, tmp_path / "new", text_encoder=clip_encoder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # nothing left behind
    with pytest.raises(ConfigError, match="not written by hmu"):  # --overwrite spares it
        export.export_bundle(momask_set, out, text_encoder=clip_encoder, overwrite=True)
    (out / MARKER).write_text("{}")  # as if hmu had written it
    with pytest.raises(KeyboardInterrupt):
        export.export_bundle(momask_set, out, text_encoder=clip_encoder, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"  # replaced only once complete
    monkeypatch.undo()
    export.export_bundle(momask_set, out, text_encoder=clip_encoder, overwrite=True, opset=14)
    assert not (out / "keep.txt").exists() and read_bundle(out).kind == "momask"
    with pytest.raises(ConfigError, match="opset"):
        export.export_bundle(momask_set, tmp_path / "x", text_encoder=clip_encoder, opset=9)


def test_unexportable_text_encoder(momask_set, tmp_path):
    class HashEncoder:
        name, dim = "hash", 8

        def encode(self, texts):
            return np.zeros((len(texts), 8), np.float32)

    with pytest.raises(ConfigError, match="cannot be exported"):
        export.export_bundle(momask_set, tmp_path / "x", text_encoder=HashEncoder())
    assert not (tmp_path / "x").exists()


def test_minilm_bundle(tmp_path):
    pytest.importorskip("tokenizers")
    from hmu_core.text.registry import load_text_encoder

    model_set = save_tiny_set(tmp_path / "set", with_res=False, with_est=False, clip_dim=384)
    bundle = export.export_bundle(model_set, tmp_path / "bundle", text_encoder="minilm")
    runtime = Generator(bundle, device="cpu", threads=1)
    assert runtime.bundle.manifest["text_encoder"]["tokenizer"] == "bert-wordpiece"
    encoder = load_text_encoder("minilm")
    texts = ["a person walks forward", "Crème brûlée! Someone jumps, then sits down.", "x"]
    np.testing.assert_allclose(runtime.encode(texts), encoder.encode(texts).numpy(), atol=1e-5)
    torch_gen = load_generator(resolve_model_set(model_set), text_encoder=encoder)
    a = generate_motions(torch_gen, texts, seconds=2.0, seed=3)
    b = runtime.generate(texts, seconds=2.0, seed=3)
    for x, y in zip(a.tokens, b.tokens, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ConfigError, match="no length estimator"):
        runtime.generate("walk")


def test_cli_arguments_and_run(tmp_path, monkeypatch, capsys):
    parser = argparse.ArgumentParser(prog="hmu")
    sub = parser.add_subparsers(dest="verb")
    export_cli.add_parser(sub)
    assert "examples:" in sub.choices["export"].format_help()
    args = parser.parse_args(["export", "--model", "m", "--out", str(tmp_path / "o"),
                              "--trans", "t", "--text-encoder", "minilm", "--overwrite"])
    assert (str(args.model), args.out, str(args.trans)) == ("m", tmp_path / "o", "t")
    assert args.text_encoder == "minilm" and args.overwrite and args.opset == 17
    calls = {}

    def fake_export(model, out, **kwargs):
        calls.update(model=model, out=out, **kwargs)
        out.mkdir()
        (out / "manifest.json").write_text(json.dumps({
            "model_kind": "momask", "graphs": {"base": {}}, "unlearning": {"method": "lcr"},
            "text_encoder": {"name": "tiny", "dim": 8}}))
        return out

    monkeypatch.setattr(export, "export_bundle", fake_export)
    assert args.run(args) == 0
    assert calls["trans"] == args.trans and calls["overwrite"] is True
    assert "momask bundle" in capsys.readouterr().out
    monkeypatch.undo()
    bad = parser.parse_args(["export", "--model", str(tmp_path / "none"), "--out",
                             str(tmp_path / "new")])
    with pytest.raises(ConfigError, match="not found"):
        bad.run(bad)
