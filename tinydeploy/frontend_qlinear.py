"""QLinearConv and QLinearMatMul: rewritten as DequantizeLinear -> float op ->
QuantizeLinear, so the QDQ import (quantize.absorb_qdq) handles them."""
from __future__ import annotations

import numpy as np
from onnx import helper

from .errors import TinydeployError


def _const(imp, hint: str, value: np.ndarray) -> str:
    return imp.graph.add_const(hint, value)


def _dq(imp, lower, node, src: str, scale: str, zp: str, out: str, axis=None) -> str:
    kw = {"axis": axis} if axis is not None else {}
    fake = helper.make_node("DequantizeLinear", [src, scale, zp], [out], name=f"{node.name}_{out}_dq", **kw)
    if src in imp.shapes:
        imp.shapes[out] = imp.shapes[src]
    imp.dtypes[out] = 1
    lower["DequantizeLinear"](imp, fake)
    return out


def _quantized_float_op(imp, lower, node, op_type: str, inputs: list, y_scale: str, y_zp: str, attrs: dict):
    y = node.output[0]
    yf = y + "_float"
    imp.shapes[yf] = imp.shapes[y]
    imp.dtypes[yf] = 1
    lower[op_type](imp, helper.make_node(op_type, inputs, [yf], name=node.name, **attrs))
    lower["QuantizeLinear"](imp, helper.make_node("QuantizeLinear", [yf, y_scale, y_zp], [y],
                                                  name=node.name + "_q"))


def qlinear_conv(imp, node, lower) -> None:
    x, xs, xz, w, ws, wz, ys, yz = node.input[:8]
    wsv = imp.need_const(node, 4, "w_scale")
    xf = _dq(imp, lower, node, x, xs, xz, x + "_dq_" + node.name)
    wf = _dq(imp, lower, node, w, ws, wz, w + "_dq", axis=0 if wsv.size > 1 else None)
    inputs = [xf, wf]
    if len(node.input) > 8 and node.input[8]:
        b = node.input[8]
        scale = (np.float32(imp.need_const(node, 1, "x_scale")) * wsv.astype(np.float32)).reshape(-1)
        bs = _const(imp, b + "_scale", scale if scale.size > 1 else scale.reshape(()))
        bz = _const(imp, b + "_zp", np.zeros(scale.shape if scale.size > 1 else (), np.int32))
        inputs.append(_dq(imp, lower, node, b, bs, bz, b + "_dq", axis=0 if scale.size > 1 else None))
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    _quantized_float_op(imp, lower, node, "Conv", inputs, ys, yz, attrs)


def qlinear_matmul(imp, node, lower) -> None:
    a, as_, az, b, bs, bz, ys, yz = node.input[:8]
    if imp.const(b) is None:
        raise TinydeployError(f"node '{node.name}' (QLinearMatMul): the right-hand side must be constant")
    bsv = imp.need_const(node, 4, "b_scale")
    af = _dq(imp, lower, node, a, as_, az, a + "_dq_" + node.name)
    bf = _dq(imp, lower, node, b, bs, bz, b + "_dq", axis=1 if bsv.size > 1 else None)
    _quantized_float_op(imp, lower, node, "MatMul", [af, bf], ys, yz, {})


def register(lowerings: dict) -> None:
    lowerings["QLinearConv"] = lambda imp, node: qlinear_conv(imp, node, lowerings)
    lowerings["QLinearMatMul"] = lambda imp, node: qlinear_matmul(imp, node, lowerings)
