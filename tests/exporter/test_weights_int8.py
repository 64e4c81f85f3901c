"""``hmu export --quantize text-int8``: the text encoder's weights stored as int8, computed in
float32; the other graphs untouched; recorded; the runtime reads it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from exporter import export
from exporter.runtime import Generator, read_bundle
from exporter.weights_int8 import store_int8


def _weights(path) -> dict[int, int]:
    """Initializer element counts per data type."""
    counts: dict[int, int] = {}
    for init in onnx.load(str(path)).graph.initializer:
        counts[init.data_type] = counts.get(init.data_type, 0) + int(np.prod(init.dims))
    return counts


@pytest.fixture(scope="module")
def text_int8_bundle(momask_set, clip_encoder, tmp_path_factory):
    return export.export_bundle(momask_set, tmp_path_factory.mktemp("q") / "text-int8",
                           text_encoder=clip_encoder, quantize="text-int8")


def test_text_weights_are_int8_and_close(text_int8_bundle, momask_bundle):
    q = read_bundle(text_int8_bundle).manifest["quantization"]
    assert (q["method"], q["weight_type"], q["graphs"]) == ("weight-only", "int8",
                                                            ["text_encoder"])
    check = q["check"]["text_encoder"]
    assert check["weights"] >= 1 and check["min_cosine"] > 0.999  # the token table
    small, big = (_weights(b / "text_encoder.onnx") for b in (text_int8_bundle, momask_bundle))
    assert small[TensorProto.INT8] > 0.8 * big[TensorProto.FLOAT]  # most weights moved to int8
    size = {b: (b / "text_encoder.onnx").stat().st_size for b in (text_int8_bundle,
                                                                  momask_bundle)}
    assert size[text_int8_bundle] < 0.4 * size[momask_bundle]
    for stage in ("base", "res", "decoder", "length_estimator"):  # byte for byte float32
        assert (text_int8_bundle / f"{stage}.onnx").read_bytes() == \
            (momask_bundle / f"{stage}.onnx").read_bytes()


def test_text_int8_bundle_generates(text_int8_bundle, momask_bundle):
    small, exact = Generator(text_int8_bundle, device="cpu"), Generator(momask_bundle,
                                                                       device="cpu")
    prompts = ["a person walks forward", "someone kicks"]
    a, b = small.encode(prompts), exact.encode(prompts)
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert cos.min() > 0.999 and np.abs(a - b).max() > 0  # close, but not the same weights
    out = small.generate(prompts, seconds=[2.0, 3.0], seed=4)
    assert [m.num_frames for m in out.motions] == [40, 60]
    assert out.motions[0].provenance["quantization"] == "int8"


def test_matmul_and_gather_weights_get_per_channel_scales(tmp_path):
    from onnx import helper, numpy_helper

    from exporter.runtime.sessions import open_session

    def run(path):  # the process may already share one pool: sessions go through open_session
        return open_session(path, "cpu", None, claim_pool=False)[0].run(None, {"ids": ids})[0]

    rng = np.random.default_rng(0)
    table = rng.standard_normal((100, 64)).astype(np.float32)
    table[7] *= 100  # one loud row must not coarsen the others (per-row scales)
    weight = rng.standard_normal((64, 128)).astype(np.float32)
    bias = rng.standard_normal(128).astype(np.float32)  # 1-D: stays float32
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["x"]),
         helper.make_node("MatMul", ["x", "weight"], ["h"]),
         helper.make_node("Add", ["h", "bias"], ["y"])], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 128])],
        [numpy_helper.from_array(a, n) for a, n in ((table, "table"), (weight, "weight"),
                                                   (bias, "bias"))])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    ids = np.arange(100, dtype=np.int64)
    want = run(path)
    assert store_int8(path) == 2
    inits = {i.name: i for i in onnx.load(str(path)).graph.initializer}
    assert sorted(inits) == ["bias", "table__int8", "table__scale", "weight__int8",
                             "weight__scale"]
    assert list(inits["table__scale"].dims) == [100, 1]  # one scale per row
    assert list(inits["weight__scale"].dims) == [1, 128]  # one per output column
    got = run(path)
    rows = np.arange(100) != 7
    # int8 rounding: at most half a step (max/254) per weight, relative to each channel's max
    assert np.abs(got - want)[rows].max() < 0.05 * np.abs(want[rows]).max()
    assert store_int8(path) == 0  # nothing float32 and large is left
