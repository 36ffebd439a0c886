"""Fold the U-Net decoder's nearest-neighbour upsampling into its first convolution (ONNX rewrite).

Each decoder block of the membrane U-Net computes ``conv3x3(concat(up2(x), skip))`` with ``up2`` a
nearest-neighbour 2x upsampling. The convolution splits over the concatenated channels,
``conv3x3(up2(x), W_up) + conv3x3(skip, W_skip, b)``, and ``conv3x3(up2(x), W_up)`` is exactly a
stride-2 transposed convolution of ``x`` with a 4x4 kernel (padding 1) whose taps are sums of the
3x3 taps: along each axis, output row ``2i`` reads rows ``i - 1`` (tap -1) and ``i`` (taps 0 and +1),
output row ``2i + 1`` reads rows ``i`` (taps -1 and 0) and ``i + 1`` (tap +1), so the 4 taps are
``(W[+1], W[0] + W[+1], W[-1] + W[0], W[-1])``. The zero padding agrees: the upsampled image's padding
row is the low-resolution image's padding row.

The rewrite removes the Resize and the Concat (a copy of the full-resolution activations) and does
the upsampled half of the convolution at low resolution: 4 instead of 9 taps per output pixel. On the
shipped width-8 network that half is 29 % of all multiply-adds. Outputs change only by float rounding
(the sums are reordered); :func:`main` checks it with ONNX Runtime before writing.

Usage::

    python -m training.fold_upsampling --model her2fast/models/membrane_unet

rewrites ``model.onnx`` in place and updates ``config.json`` (sha256, size, ``graph``);
``training.export_membrane`` applies the same rewrite to every export.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

PARITY_TOL = 1e-4  # max abs difference of the probabilities, folded vs original graph


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant(model, name: str) -> np.ndarray | None:
    """The value of a tensor that is an initializer or a Constant node's output, else None."""
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            value = _attrs(node).get("value")
            return None if value is None else numpy_helper.to_array(value)
    return None


def transposed_kernel(w_up: np.ndarray) -> np.ndarray:
    """(C_out, C_up, 3, 3) taps of a 3x3 convolution over a nearest-2x-upsampled input -> the
    (C_up, C_out, 4, 4) kernel of the equivalent stride-2 ConvTranspose (padding 1)."""

    def four(k: np.ndarray, axis: int) -> np.ndarray:
        a, m, p = (np.take(k, i, axis=axis) for i in range(3))  # taps -1, 0, +1
        return np.stack([p, m + p, a + m, a], axis=axis)

    t = four(four(w_up.astype(np.float64), 2), 3)
    return np.ascontiguousarray(t.transpose(1, 0, 2, 3)).astype(np.float32)


def fold_nearest_upsampling(model):
    """Rewrite every Resize(nearest, x2) -> Concat -> Conv3x3 chain of an ONNX model.

    Returns ``(model, n_folded)``; the model is modified in place. A chain is folded only when the
    Resize is nearest-neighbour with asymmetric coordinates and floor rounding, scales (1, 1, 2, 2),
    its output feeds only a channel Concat (``axis=1``, as its first input) that feeds only one 3x3 Conv
    (stride 1, padding 1, no dilation, one group) with constant float32 weights, and shape inference
    gives both halves' channel counts; anything else is left as it is (top-level graph only).
    """
    from onnx import helper, numpy_helper

    g = model.graph
    consumers: dict[str, list] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in g.output}
    folded, remove = 0, []
    for resize in list(g.node):
        if resize.op_type != "Resize":
            continue
        a = _attrs(resize)
        if (
            a.get("mode", b"nearest") != b"nearest"
            or a.get("coordinate_transformation_mode") != b"asymmetric"
            or a.get("nearest_mode", b"round_prefer_floor") != b"floor"
        ):
            continue
        scales = _constant(model, resize.input[2]) if len(resize.input) > 2 and resize.input[2] else None
        if scales is None or list(np.asarray(scales, np.float64)) != [1.0, 1.0, 2.0, 2.0]:
            continue
        up = resize.output[0]
        cat = consumers.get(up, [])
        if len(cat) != 1 or cat[0].op_type != "Concat" or _attrs(cat[0]).get("axis") != 1 or up in graph_outputs:
            continue
        cat = cat[0]
        if len(cat.input) != 2 or cat.input[0] != up or cat.output[0] in graph_outputs:
            continue
        conv = consumers.get(cat.output[0], [])
        if len(conv) != 1 or conv[0].op_type != "Conv":
            continue
        conv = conv[0]
        if conv.input[0] != cat.output[0]:
            continue
        c = _attrs(conv)
        if (
            list(c.get("kernel_shape", [3, 3])) != [3, 3]
            or list(c.get("pads", [0, 0, 0, 0])) != [1, 1, 1, 1]
            or list(c.get("strides", [1, 1])) != [1, 1]
            or list(c.get("dilations", [1, 1])) != [1, 1]
            or c.get("group", 1) != 1
        ):
            continue
        w = _constant(model, conv.input[1])
        if w is None or w.ndim != 4 or w.shape[2:] != (3, 3) or w.dtype != np.float32:
            continue
        skip = cat.input[1]
        # both halves' channel counts must be known and add up to the convolution's input channels
        c_up, c_skip = _channels_of(model, resize.input[0]), _channels_of(model, skip)
        if c_up is None or c_skip is None or c_up + c_skip != int(w.shape[1]):
            continue
        prefix = conv.name or conv.output[0]
        t_name, ws_name = f"{prefix}/up_kernel", f"{prefix}/skip_weight"
        g.initializer.extend(
            [
                numpy_helper.from_array(transposed_kernel(w[:, :c_up]), t_name),
                numpy_helper.from_array(np.ascontiguousarray(w[:, c_up:]), ws_name),
            ]
        )
        up_out, skip_out = f"{prefix}/up_half", f"{prefix}/skip_half"
        skip_inputs = [skip, ws_name] + ([conv.input[2]] if len(conv.input) > 2 and conv.input[2] else [])
        new = [
            helper.make_node(
                "ConvTranspose",
                [resize.input[0], t_name],
                [up_out],
                name=f"{prefix}/up",
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                kernel_shape=[4, 4],
            ),
            helper.make_node(
                "Conv",
                skip_inputs,
                [skip_out],
                name=f"{prefix}/skip",
                strides=[1, 1],
                pads=[1, 1, 1, 1],
                kernel_shape=[3, 3],
            ),
            helper.make_node("Add", [up_out, skip_out], [conv.output[0]], name=f"{prefix}/sum"),
        ]
        at = list(g.node).index(conv)
        for k, node in enumerate(new):
            g.node.insert(at + k, node)
        remove += [resize, cat, conv]
        folded += 1
    for node in remove:
        g.node.remove(node)
    _drop_unused(model)
    return model, folded


def _channels_of(model, name: str) -> int | None:
    """Channels of 4-D tensor ``name`` from ONNX shape inference, or None when unknown."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input):
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].HasField("dim_value"):
                return int(dims[1].dim_value)
    return None


def _drop_unused(model) -> None:
    g = model.graph
    used = {name for node in g.node for name in node.input} | {o.name for o in g.output}
    for node in [n for n in g.node if n.op_type == "Constant" and n.output[0] not in used]:
        g.node.remove(node)
    used = {name for node in g.node for name in node.input} | {o.name for o in g.output}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)


def parity(original: bytes, folded: bytes, shapes=((1, 3, 256, 256), (2, 3, 128, 192), (1, 3, 96, 160))) -> float:
    """Max abs difference of all outputs of two ONNX models on random inputs (ONNX Runtime, CPU)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    a = ort.InferenceSession(original, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(folded, so, providers=["CPUExecutionProvider"])
    name = a.get_inputs()[0].name
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape in shapes:
        x = rng.random(shape, dtype=np.float32)
        for u, v in zip(a.run(None, {name: x}), b.run(None, {name: x})):
            worst = max(worst, float(np.abs(u - v).max()))
    return worst


def fold_file(path: Path) -> tuple[int, float]:
    """Fold ``path`` in place after the parity check; returns (chains folded, max abs difference)."""
    import onnx

    data = Path(path).read_bytes()
    model, n = fold_nearest_upsampling(onnx.load_from_string(data))
    if n == 0:
        return 0, 0.0
    onnx.checker.check_model(model)
    out = model.SerializeToString()
    diff = parity(data, out)
    if diff > PARITY_TOL:
        raise SystemExit(f"{path}: folded graph differs by {diff:.2e} > {PARITY_TOL}; nothing written")
    Path(path).write_bytes(out)
    return n, diff


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model", default="her2fast/models/membrane_unet", help="model directory (model.onnx + config.json)"
    )
    args = ap.parse_args(argv)
    d = Path(args.model)
    n, diff = fold_file(d / "model.onnx")
    print(f"{d / 'model.onnx'}: {n} upsampling chains folded, max abs difference {diff:.2e}")
    cfg_path = d / "config.json"
    if n and cfg_path.exists():
        cfg = json.loads(cfg_path.read_text())
        data = (d / "model.onnx").read_bytes()
        cfg["sha256"] = hashlib.sha256(data).hexdigest()
        cfg["size_bytes"] = len(data)
        cfg["graph"] = {
            "nearest_upsampling_folded": n,
            "max_abs_diff_vs_unfolded": diff,
            "command": "python -m training.fold_upsampling",
        }
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
        print(f"updated {cfg_path}: sha256 {cfg['sha256']}")


if __name__ == "__main__":
    main()
