"""Write the detector as an ONNX graph built node by node from its weights (no JAX needed).

The graph is the network of :mod:`camcensus.detect.model`: ``Sub``/``Mul`` (normalisation),
``Conv`` + ``Relu`` for the backbone, four 1×1 ``Conv`` heads, ``Sigmoid`` on the heatmap and a
3×3 ``MaxPool`` of it (``heatmap_max``: a cell is a peak where the heatmap equals it). Inputs:
``images`` (``N × 3 × H × W`` float32 in ``[0, 255]``, H and W multiples of 4); outputs
``heatmap``, ``heatmap_max``, ``size``, ``offset``, ``type``. Requires the ``onnx`` package
(``camcensus[train]``); inference needs only onnxruntime (:mod:`camcensus.detect.infer`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from camcensus.detect.model import HEADS, MEAN, SCALE, layers
from camcensus.io.formats import write_atomic

__all__ = ["OPSET", "OUTPUTS", "onnx_model", "write_onnx"]

#: ONNX opset of the graph (onnxruntime >= 1.14 runs it).
OPSET = 17
#: Output names, in order.
OUTPUTS: tuple[str, ...] = ("heatmap", "heatmap_max", "size", "offset", "type")


def onnx_model(params: Mapping[str, Any], *, metadata: Mapping[str, str] | None = None) -> Any:
    """Return the ``onnx.ModelProto`` of the detector with ``params`` (numpy or JAX arrays)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    channels = int(np.asarray(params["b1"][0]).shape[0])
    inits = [
        numpy_helper.from_array(np.array([MEAN], dtype=np.float32), "mean"),
        numpy_helper.from_array(np.array([1.0 / SCALE], dtype=np.float32), "inv_scale"),
    ]
    nodes = [
        helper.make_node("Sub", ["images", "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "inv_scale"], ["x0"]),
    ]
    feat = "x0"
    for lay in layers(channels):
        w, b = (np.asarray(a, dtype=np.float32) for a in params[lay.name])
        inits += [
            numpy_helper.from_array(w, f"{lay.name}.w"),
            numpy_helper.from_array(b, f"{lay.name}.b"),
        ]
        conv_out = lay.name if lay.name in HEADS and lay.name != "heatmap" else f"{lay.name}.conv"
        nodes.append(
            helper.make_node(
                "Conv",
                [feat, f"{lay.name}.w", f"{lay.name}.b"],
                [conv_out],
                kernel_shape=[lay.kernel, lay.kernel],
                strides=[lay.stride, lay.stride],
                dilations=[lay.dilation, lay.dilation],
                pads=[lay.pad] * 4,
            )
        )
        if lay.name in HEADS:
            continue
        nodes.append(helper.make_node("Relu", [conv_out], [f"{lay.name}.relu"]))
        feat = f"{lay.name}.relu"
    nodes += [
        helper.make_node("Sigmoid", ["heatmap.conv"], ["heatmap"]),
        helper.make_node(
            "MaxPool", ["heatmap"], ["heatmap_max"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        ),
    ]
    dims: list[int | str] = ["N", 3, "H", "W"]
    outs = [
        helper.make_tensor_value_info(
            name, TensorProto.FLOAT, ["N", 1 if name == "heatmap_max" else HEADS[name], "h", "w"]
        )
        for name in OUTPUTS
    ]
    graph = helper.make_graph(
        nodes,
        "camcensus_camera_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)],
        outs,
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="camcensus",
    )
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.checker.check_model(model)
    return model


def write_onnx(
    params: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write the detector's ONNX graph to ``path`` atomically; return the path."""
    model = onnx_model(params, metadata=metadata)
    path = Path(path)
    data = model.SerializeToString()
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
    return path
