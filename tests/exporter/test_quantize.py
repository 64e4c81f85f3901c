"""``hmu export --quantize int8``: only the step graphs' MatMuls, recorded, and it runs."""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import pytest

from exporter import export
from exporter.quantize import check_method
from exporter.runtime import Generator, read_bundle
from hmu_core.cli import export as export_cli
from hmu_core.errors import ConfigError


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.fixture(scope="module")
def int8_bundle(momask_set, clip_encoder, tmp_path_factory):
    return export.export_bundle(momask_set, tmp_path_factory.mktemp("q") / "int8",
                           text_encoder=clip_encoder, quantize="int8")


def test_int8_quantizes_base_and_res_matmuls_only(int8_bundle, momask_bundle):
    manifest = read_bundle(int8_bundle).manifest
    q = manifest["quantization"]
    assert (q["method"], q["weight_type"], q["op_types"]) == ("dynamic", "int8", ["MatMul"])
    assert q["graphs"] == ["base", "res"] and set(q["check"]) == {"base", "res"}
    for stage in ("base", "res"):
        check = q["check"][stage]
        assert check["matmuls"] >= 8  # 2 layers x (in, out, ff1, ff2) at least
        assert 0.5 <= check["top1_agreement"] <= 1.0 and check["max_abs_error"] > 0
        assert "MatMulInteger" in _ops(int8_bundle / f"{stage}.onnx")
        assert "MatMulInteger" not in _ops(momask_bundle / f"{stage}.onnx")
    for stage in ("text_encoder", "decoder", "length_estimator"):
        assert "MatMulInteger" not in _ops(int8_bundle / f"{stage}.onnx")
    assert read_bundle(momask_bundle).manifest["quantization"] is None


def test_int8_bundle_runs_with_float32_text_vectors(int8_bundle, momask_bundle):
    fast, exact = Generator(int8_bundle, device="cpu"), Generator(momask_bundle, device="cpu")
    prompts = ["a person walks forward", "someone kicks"]
    np.testing.assert_allclose(fast.encode(prompts), exact.encode(prompts), atol=1e-6)
    out = fast.generate(prompts, seconds=[2.0, 3.0], seed=4)
    assert [m.num_frames for m in out.motions] == [40, 60]
    assert all(np.isfinite(m.joints).all() for m in out.motions)
    assert out.motions[0].provenance["quantization"] == "int8"
    again = fast.generate(prompts, seconds=[2.0, 3.0], seed=4)  # int8 is deterministic too
    for a, b in zip(out.tokens, again.tokens, strict=True):
        np.testing.assert_array_equal(a, b)


def test_unknown_method_and_cli_flag(tmp_path, monkeypatch):
    assert check_method(None) is None and check_method("int8") == "int8"
    with pytest.raises(ConfigError, match="quantize must be one of int8"):
        check_method("int4")
    parser = argparse.ArgumentParser(prog="hmu")
    export_cli.add_parser(parser.add_subparsers(dest="verb"))
    calls = []

    def fake_export(model, out, **kwargs):
        calls.append(kwargs["quantize"])
        out.mkdir(exist_ok=True)
        (out / "manifest.json").write_text(json.dumps({
            "model_kind": "momask", "graphs": {"base": {}}, "unlearning": None,
            "quantization": {"method": "dynamic"}, "text_encoder": {"name": "t", "dim": 8}}))
        return out

    monkeypatch.setattr(export, "export_bundle", fake_export)
    for flag, want in ((["--quantize", "int8"], "int8"), ([], None)):
        out = tmp_path / f"o{len(calls)}"  # export refuses an existing --out
        args = parser.parse_args(["export", "--model", "m", "--out", str(out), *flag])
        assert args.run(args) == 0
        assert calls[-1] == want
