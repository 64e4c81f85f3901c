"""Weight-only int8 storage of a graph's large 2-D weights (``hmu export --quantize text-int8``).

Why: the add-on's zip carries a bundle and must stay under 200 MB for all platforms, and the
MiniLM text encoder is 90 MB of float32 weights. Dynamic int8 (``--quantize int8``) quantizes
the activations too, which costs the text vectors too much (issue 18: cosine 0.96). Here only
the stored weights are int8, with one scale per output channel (per row for an embedding
table), and each weight is rebuilt as ``Cast(int8) * scale``: constant inputs, which
onnxruntime folds once when the session is made, so the graph still computes in float32 at the
same speed and the file is about 4x smaller.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_ELEMENTS = 4096
"""Smaller weights (biases, layer norms, tiny tables) stay float32: no size to gain."""

# (consumer op, input index) -> the axis the scale is shared along: MatMul's weight is
# (in, out), a scale per output column; Gather's table is (rows, dim), a scale per row.
_REDUCE_AXIS = {("MatMul", 1): 0, ("Gather", 0): 1}


def _reduce_axis(uses: set[tuple[str, int]]) -> int | None:
    axes = {_REDUCE_AXIS.get(use) for use in uses}
    return axes.pop() if len(axes) == 1 and None not in axes else None


def store_int8(path: Path) -> int:
    """Rewrite the graph at ``path`` (atomically) with its large MatMul/Gather weights as int8.

    Returns the number of weights converted (0: the file is left as it was).
    """
    model = onnx.load(str(path))
    graph = model.graph
    uses: dict[str, set[tuple[str, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, set()).add((node.op_type, index))
    converted, nodes = [], []
    for init in graph.initializer:
        axis = _reduce_axis(uses.get(init.name, set()))
        if init.data_type != TensorProto.FLOAT or len(init.dims) != 2 or axis is None \
                or int(np.prod(init.dims)) < MIN_ELEMENTS:
            continue
        weight = numpy_helper.to_array(init)
        scale = np.abs(weight).max(axis=axis, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        codes = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
        converted.append((init, numpy_helper.from_array(codes, f"{init.name}__int8"),
                          numpy_helper.from_array(scale.astype(np.float32),
                                                  f"{init.name}__scale")))
        nodes += [helper.make_node("Cast", [f"{init.name}__int8"], [f"{init.name}__float"],
                                   to=TensorProto.FLOAT),
                  helper.make_node("Mul", [f"{init.name}__float", f"{init.name}__scale"],
                                   [init.name])]  # same name: the consumers are unchanged
    if not converted:
        return 0
    for old, codes, scale in converted:
        graph.initializer.remove(old)
        graph.initializer.extend([codes, scale])
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)  # the weights first: the node list stays topological
    onnx.checker.check_model(model, full_check=True)
    tmp = path.with_name(path.name + ".int8.tmp")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(converted)


def compare(session: Any, cases: list[tuple[dict[str, np.ndarray], np.ndarray, Any]]
            ) -> dict[str, float]:
    """The int8-weight graph's outputs against torch's: the smallest cosine of an output row
    (a text vector) and the largest absolute error."""
    cosine, error = 1.0, 0.0
    for feeds, want, _ in cases:
        got = np.asarray(session.run(None, feeds)[0], np.float64)
        want = np.asarray(want, np.float64)
        norms = np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1)
        rows = (got * want).sum(-1) / np.maximum(norms, 1e-12)
        cosine = min(cosine, float(rows.min()))
        error = max(error, float(np.abs(got - want).max()))
    return {"min_cosine": round(cosine, 6), "max_abs_error": round(error, 6)}
