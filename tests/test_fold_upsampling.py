"""training.fold_upsampling: the decoder's nearest upsampling folded into its convolution (ONNX rewrite).

Checked on small U-Net-like graphs built here (random weights) and on the shipped model's record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
onnx = pytest.importorskip("onnx")  # installed by the test extra; training/ needs it for the export
ort = pytest.importorskip("onnxruntime")
sys.path.insert(0, str(ROOT))
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from training.fold_upsampling import fold_nearest_upsampling, parity, transposed_kernel  # noqa: E402


def _unet_like(seed: int, *, linear_second: bool = False, scales_as_initializer: bool = False) -> bytes:
    """x -> conv -> relu (skip1) -> pool -> conv -> relu (skip2) -> pool -> conv -> relu
    -> up -> concat(skip2) -> conv -> relu -> up -> concat(skip1) -> conv -> output."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def conv(name, x, c_in, c_out, k=3, bias=True):
        inits.append(numpy_helper.from_array(rng.normal(0, 0.3, (c_out, c_in, k, k)).astype(np.float32), name + ".w"))
        ins = [x, name + ".w"]
        if bias:
            inits.append(numpy_helper.from_array(rng.normal(0, 0.1, c_out).astype(np.float32), name + ".b"))
            ins.append(name + ".b")
        nodes.append(helper.make_node("Conv", ins, [name], pads=[k // 2] * 4, kernel_shape=[k, k], name=name))
        nodes.append(helper.make_node("Relu", [name], [name + ".r"]))
        return name + ".r"

    def up(name, x, mode="nearest"):
        if scales_as_initializer:
            inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), name + ".scales"))
        else:
            nodes.append(
                helper.make_node(
                    "Constant",
                    [],
                    [name + ".scales"],
                    value=numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32)),
                )
            )
        kw = dict(mode=mode, coordinate_transformation_mode="asymmetric")
        if mode == "nearest":
            kw["nearest_mode"] = "floor"
        nodes.append(helper.make_node("Resize", [x, "", name + ".scales"], [name], **kw))
        return name

    s1 = conv("e1", "x", 3, 4, k=5)
    p1 = "p1"
    nodes.append(helper.make_node("MaxPool", [s1], [p1], kernel_shape=[2, 2], strides=[2, 2]))
    s2 = conv("e2", p1, 4, 8)
    nodes.append(helper.make_node("MaxPool", [s2], ["p2"], kernel_shape=[2, 2], strides=[2, 2]))
    b = conv("b", "p2", 8, 16)
    u1 = up("u1", b)
    nodes.append(helper.make_node("Concat", [u1, s2], ["c1"], axis=1))
    d1 = conv("d1", "c1", 24, 8)
    u2 = up("u2", d1, "linear" if linear_second else "nearest")
    nodes.append(helper.make_node("Concat", [u2, s1], ["c2"], axis=1))
    d2 = conv("d2", "c2", 12, 4, bias=False)
    nodes.append(helper.make_node("Conv", [d2, "h.w"], ["y"], kernel_shape=[1, 1]))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.3, (2, 4, 1, 1)).astype(np.float32), "h.w"))
    g = helper.make_graph(
        nodes,
        "unet_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2, None, None])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scales_as_initializer", [False, True])
def test_folded_graph_computes_the_same_outputs(seed, scales_as_initializer):
    data = _unet_like(seed, scales_as_initializer=scales_as_initializer)
    model, n = fold_nearest_upsampling(onnx.load_from_string(data))
    assert n == 2
    ops = [node.op_type for node in model.graph.node]
    assert "Resize" not in ops and "Concat" not in ops and ops.count("ConvTranspose") == 2
    onnx.checker.check_model(model)
    # random inputs of several sizes (multiples of 4: two poolings), batch 1 and 2
    assert (
        parity(data, model.SerializeToString(), shapes=((1, 3, 16, 16), (2, 3, 24, 40), (1, 3, 44, 28))) < 1e-4
    )  # outputs ~10: float32 rounding


def test_only_nearest_upsampling_is_folded():
    data = _unet_like(0, linear_second=True)
    model, n = fold_nearest_upsampling(onnx.load_from_string(data))
    assert n == 1
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Resize") == 1 and ops.count("Concat") == 1
    assert parity(data, model.SerializeToString(), shapes=((1, 3, 20, 24),)) < 1e-4


def test_a_chain_whose_channel_split_is_unknown_is_left_alone():
    """Without the skip's channel count (shape inference) the weights cannot be split: no fold."""
    w = numpy_helper.from_array(np.random.default_rng(0).random((5, 8, 3, 3)).astype(np.float32), "W")
    sc = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")
    nodes = [
        helper.make_node(
            "Resize",
            ["x", "", "sc"],
            ["u"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        helper.make_node("Concat", ["u", "s"], ["c"], axis=1),
        helper.make_node("Conv", ["c", "W"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "H", "W"]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, "C", "H2", "W2"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, "H2", "W2"])],
        [w, sc],
    )
    model, n = fold_nearest_upsampling(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert n == 0 and [node.op_type for node in model.graph.node] == ["Resize", "Concat", "Conv"]


def test_transposed_kernel_is_the_convolution_of_the_upsampled_image():
    """conv3x3(up2(x)) computed directly in NumPy against the stride-2 transposed convolution."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=(2, 3, 3, 3))
    x = rng.normal(size=(3, 5, 7))
    up = x.repeat(2, axis=1).repeat(2, axis=2)
    pad = np.pad(up, ((0, 0), (1, 1), (1, 1)))
    direct = np.zeros((2, 10, 14))
    for dy in range(3):
        for dx in range(3):
            direct += np.einsum("oc,chw->ohw", w[:, :, dy, dx], pad[:, dy : dy + 10, dx : dx + 14])
    t = transposed_kernel(w)  # (C_in, C_out, 4, 4): out[2i + ky - 1] += x[i] * t[ky]
    trans = np.zeros((2, 12, 16))
    for ky in range(4):
        for kx in range(4):
            trans[:, ky : ky + 10 : 2, kx : kx + 14 : 2] += np.einsum("co,chw->ohw", t[:, :, ky, kx], x)
    np.testing.assert_allclose(trans[:, 1:11, 1:15], direct, atol=1e-5)


def test_the_shipped_model_is_folded_and_records_it():
    cfg = json.loads((ROOT / "her2fast" / "models" / "membrane_unet" / "config.json").read_text())
    assert cfg["graph"]["nearest_upsampling_folded"] == 4
    assert cfg["graph"]["max_abs_diff_vs_unfolded"] < 1e-4
    model = onnx.load(str(ROOT / "her2fast" / "models" / "membrane_unet" / "model.onnx"))
    ops = [node.op_type for node in model.graph.node]
    assert "Resize" not in ops and ops.count("ConvTranspose") == 4
    _, n = fold_nearest_upsampling(model)  # nothing left to fold
    assert n == 0
