"""Front end: load and check an ONNX file, fix shapes, fold constants, lower to the IR.

The IR produced here still has the ONNX model's own layout (conv and pool
ops say `layout="NCHW"`); the layout pass turns it into NHWC.
"""
from __future__ import annotations

import math
import os
from typing import Callable, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from .errors import TinydeployError
from .ir import Graph, Op, QuantParams, Tensor

MIN_OPSET, MAX_OPSET = 11, 21
INF = float("inf")

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
}


# --------------------------------------------------------------------------
# Loading and checking
# --------------------------------------------------------------------------
def read_model(path: str) -> onnx.ModelProto:
    if not os.path.exists(path):
        raise TinydeployError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise TinydeployError(f"{path} is a directory, not an ONNX model file")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf raises several types
        raise TinydeployError(f"{path} is not an ONNX model: it could not be parsed "
                              f"({type(exc).__name__})") from None
    if not model.graph.node or not model.opset_import:
        raise TinydeployError(f"{path} is not an ONNX model: it has no graph nodes "
                              "or no opset (is it really an .onnx file?)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinydeployError(f"{path} is not a valid ONNX model: {first}") from None
    return model


def default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise TinydeployError("the model imports no default ONNX opset ('ai.onnx')")


def parse_input_shapes(specs) -> dict[str, list[int]]:
    """['x=1,3,32,32', ...] -> {'x': [1, 3, 32, 32]}."""
    shapes = {}
    for spec in specs or ():
        name, sep, dims = spec.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            shapes[name] = [int(d) for d in dims.split(",")]
            if any(d <= 0 for d in shapes[name]):
                raise ValueError
        except ValueError:
            raise TinydeployError(f"--input-shape '{spec}' is not of the form "
                                  "NAME=D,D,... with positive integers") from None
    return shapes


def _fix_input_shapes(model: onnx.ModelProto, overrides: dict) -> None:
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    known = {i.name for i in inputs}
    for name in overrides:
        if name not in known:
            raise TinydeployError(f"--input-shape names '{name}', which is not a model input "
                                  f"(inputs: {', '.join(sorted(known))})")
    for inp in inputs:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in overrides:
            shape = overrides[inp.name]
            if len(shape) != len(dims):
                raise TinydeployError(f"--input-shape for '{inp.name}' has {len(shape)} dims, "
                                      f"the model's input has {len(dims)}")
            for d, v in zip(dims, shape):
                d.dim_value = v
            continue
        for axis, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if axis == 0:  # a symbolic batch dimension becomes 1
                d.dim_value = 1
                continue
            label = d.dim_param or "?"
            example = ",".join(str(x.dim_value) if x.dim_value > 0 else "N" for x in dims)
            raise TinydeployError(
                f"input '{inp.name}' has a non-fixed dimension '{label}' (axis {axis}); "
                f"give every dimension with --input-shape {inp.name}=D,D,... "
                f"(the model declares {inp.name}={example})")
    # Graph outputs may carry stale symbolic shapes; shape inference refills them.
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")


# --------------------------------------------------------------------------
# Shape inference and constant folding (on the ONNX graph)
# --------------------------------------------------------------------------
_NEVER_FOLD = {"QuantizeLinear", "DequantizeLinear"}


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinydeployError(f"shape inference failed: {first}") from None


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple]:
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            shapes[vi.name] = tuple(d.dim_value for d in tt.shape.dim)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _eval_node(node: onnx.NodeProto, inputs: dict, opset: int) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator
    g_inputs = [helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(inputs[n].dtype),
                                              inputs[n].shape) for n in node.input if n]
    g_outputs = [helper.make_empty_tensor_value_info(o) for o in node.output]
    graph = helper.make_graph([node], "fold", g_inputs, g_outputs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(m).run(None, {n: inputs[n] for n in node.input if n})


def fold_onnx_constants(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """Evaluate nodes whose inputs are all constant (and Shape of static tensors)."""
    while True:
        model = _infer(model)
        shapes = _static_shapes(model)
        consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        folded = False
        keep = []
        for node in model.graph.node:
            values = None
            if node.op_type == "Shape" and node.input[0] in shapes and len(node.attribute) == 0:
                values = [np.array(shapes[node.input[0]], dtype=np.int64)]
            elif (node.op_type == "Constant" or
                  (node.op_type not in _NEVER_FOLD and node.domain in ("", "ai.onnx") and node.input
                   and all((not i) or i in consts for i in node.input))):
                try:
                    values = _eval_node(node, consts, opset)
                except Exception:
                    values = None
            if values is None:
                keep.append(node)
                continue
            for name, value in zip(node.output, values):
                arr = np.asarray(value)
                model.graph.initializer.append(numpy_helper.from_array(arr, name))
                consts[name] = arr
            folded = True
        if not folded:
            return model
        del model.graph.node[:]
        model.graph.node.extend(keep)
        # Stale inferred infos of folded values would conflict with initializers.
        del model.graph.value_info[:]


# --------------------------------------------------------------------------
# Lowering ONNX nodes to IR ops
# --------------------------------------------------------------------------
class _Importer:
    def __init__(self, model: onnx.ModelProto, opset: int, name: str):
        self.model = model
        self.opset = opset
        self.graph = Graph(name)
        self.shapes = _static_shapes(model)
        self.dtypes = {}
        for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
            self.dtypes[vi.name] = vi.type.tensor_type.elem_type

    # -- helpers -------------------------------------------------------------
    def attrs(self, node) -> dict:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str) -> Optional[np.ndarray]:
        return self.graph.const(name)

    def need_const(self, node, index: int, what: str) -> np.ndarray:
        value = self.const(node.input[index]) if len(node.input) > index else None
        if value is None:
            raise TinydeployError(f"node '{node.name}' ({node.op_type}): {what} must be a constant "
                                  "(an initializer); tinydeploy compiles static graphs only")
        return value

    def activation(self, name: str) -> str:
        if name not in self.graph.tensors:
            shape = self.shapes.get(name)
            if shape is None:
                raise TinydeployError(f"could not infer a static shape for tensor '{name}'; "
                                      "give fixed input shapes with --input-shape")
            dtype = _ONNX_DTYPES.get(self.dtypes.get(name, 1), "float32")
            self.graph.add_tensor(Tensor(name, shape, dtype))
        return name

    def emit(self, kind: str, node, inputs: list, output: Optional[str] = None, **attrs) -> str:
        out = output or node.output[0]
        self.activation(out)
        self.graph.ops.append(Op(kind, node.name or out, list(inputs), [out], attrs))
        return out

    def alias(self, node) -> None:
        """Identity-like node: its output is its input."""
        self.graph.ops.append(Op("reshape", node.name or node.output[0], [node.input[0]],
                                 [self.activation(node.output[0])], {}))

    # -- the import ------------------------------------------------------------
    def run(self) -> Graph:
        g = self.graph
        for init in self.model.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            g.add_tensor(Tensor(init.name, tuple(arr.shape), str(arr.dtype), arr))
        for inp in self.model.graph.input:
            if inp.name not in g.tensors:
                g.inputs.append(self.activation(inp.name))
        unsupported = [n for n in self.model.graph.node
                       if n.domain not in ("", "ai.onnx") or n.op_type not in LOWERINGS]
        if unsupported:
            lines = "\n".join(f"  - node '{n.name or n.output[0]}': {n.op_type}"
                              + (f" (domain {n.domain})" if n.domain not in ("", "ai.onnx") else "")
                              for n in unsupported)
            raise TinydeployError(
                f"the model uses {len(unsupported)} unsupported node(s):\n{lines}\n"
                f"supported ops: {', '.join(sorted(LOWERINGS))}. Replace these ops "
                "(e.g. re-export the model) or open an issue.")
        for node in self.model.graph.node:
            for i in node.input:
                if i and i not in g.tensors:
                    self.activation(i)
            LOWERINGS[node.op_type](self, node)
        for out in self.model.graph.output:
            g.outputs.append(out.name)
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise TinydeployError(
                f"the model has {len(g.inputs)} input(s) and {len(g.outputs)} output(s); "
                "tinydeploy currently supports models with exactly one input and one output")
        for name in g.outputs:
            if g.tensors[name].is_const:
                raise TinydeployError(f"model output '{name}' is a constant; nothing to compute")
        return g


def _pads_2d(imp: _Importer, node, a: dict, in_hw, k_hw, strides, dilations) -> list[int]:
    """ONNX pads/auto_pad -> [top, left, bottom, right]."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = list(a.get("pads", [0, 0, 0, 0]))
        return [pads[0], pads[1], pads[2], pads[3]]
    if auto == "VALID":
        return [0, 0, 0, 0]
    result_begin, result_end = [], []
    for n, k, s, d in zip(in_hw, k_hw, strides, dilations):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, big = total // 2, total - total // 2
        begin, end = (small, big) if auto == "SAME_UPPER" else (big, small)
        result_begin.append(begin)
        result_end.append(end)
    return [result_begin[0], result_begin[1], result_end[0], result_end[1]]


def _need_2d(imp: _Importer, node, x: str) -> None:
    rank = len(imp.graph.tensors[x].shape)
    if rank != 4:
        raise TinydeployError(f"node '{node.name}' ({node.op_type}): only 2-D spatial inputs "
                              f"(rank 4, NCHW) are supported, got rank {rank}")


def _conv(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    _need_2d(imp, node, x)
    w = imp.need_const(node, 1, "the weight input")
    k_hw = w.shape[2:]
    strides = list(a.get("strides", [1, 1]))
    dil = list(a.get("dilations", [1, 1]))
    pads = _pads_2d(imp, node, a, imp.graph.tensors[x].shape[2:], k_hw, strides, dil)
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    if bias and imp.const(bias) is None:
        raise TinydeployError(f"node '{node.name}' (Conv): the bias must be a constant")
    imp.emit("conv2d", node, [x, node.input[1], bias], strides=strides, dilations=dil,
             pads=pads, group=int(a.get("group", 1)), act=(-INF, INF), layout="NCHW")


def _pool(kind):
    def lower(imp: _Importer, node) -> None:
        a = imp.attrs(node)
        x = node.input[0]
        _need_2d(imp, node, x)
        k = list(a["kernel_shape"])
        strides = list(a.get("strides", [1, 1]))
        dil = list(a.get("dilations", [1, 1]))
        if dil != [1, 1]:
            raise TinydeployError(f"node '{node.name}' ({node.op_type}): dilated pooling is not supported")
        pads = _pads_2d(imp, node, a, imp.graph.tensors[x].shape[2:], k, strides, dil)
        out_hw = imp.shapes[node.output[0]][2:]
        in_hw = imp.graph.tensors[x].shape[2:]
        # ceil_mode may add windows past the padded input: widen the end pad.
        for i in range(2):
            need = (out_hw[i] - 1) * strides[i] + k[i] - in_hw[i] - pads[i]
            if need > pads[2 + i] and kind == "avg_pool" and a.get("count_include_pad", 0):
                raise TinydeployError(f"node '{node.name}' (AveragePool): ceil_mode=1 with "
                                      "count_include_pad=1 where the last window passes the padding "
                                      "is not supported; use ceil_mode=0 or count_include_pad=0")
            pads[2 + i] = max(pads[2 + i], need)
        imp.emit(kind, node, [x], kernel=k, strides=strides, pads=pads, layout="NCHW",
                 count_include_pad=int(a.get("count_include_pad", 0)), act=(-INF, INF))
    return lower


def _global_avg_pool(imp: _Importer, node) -> None:
    _need_2d(imp, node, node.input[0])
    imp.emit("mean", node, [node.input[0]], axes=[2, 3])


def _reduce_mean(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    rank = len(imp.graph.tensors[node.input[0]].shape)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.need_const(node, 1, "axes").tolist()
    axes = sorted(ax % rank for ax in (axes if axes is not None else range(rank)))
    out = imp.emit("mean", node, [node.input[0]], output=node.output[0] + "__keep"
                   if not a.get("keepdims", 1) else None, axes=axes)
    if not a.get("keepdims", 1):
        imp.graph.ops.append(Op("reshape", node.name + "_squeeze", [out],
                                [imp.activation(node.output[0])], {}))
        imp.graph.tensors[out].shape = tuple(1 if i in axes else d for i, d in
                                             enumerate(imp.graph.tensors[node.input[0]].shape))


def _gemm(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    if a.get("transA", 0):
        raise TinydeployError(f"node '{node.name}' (Gemm): transA=1 is not supported")
    b = node.input[1]
    imp.need_const(node, 1, "B")
    w = _const_transform(imp.graph, b, lambda x: x if a.get("transB", 0) else x.T, axis_map={0: 1, 1: 0}
                         if not a.get("transB", 0) else {0: 0, 1: 1})
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        w = imp.graph.add_const(w + "_alpha", imp.graph.const(w) * np.float32(alpha))
    bias = ""
    if len(node.input) > 2 and node.input[2]:
        c = imp.need_const(node, 2, "C")
        n_out = imp.graph.tensors[w].shape[0]
        if c.size not in (1, n_out):
            raise TinydeployError(f"node '{node.name}' (Gemm): C of shape {c.shape} is not a "
                                  "per-output bias; only a bias broadcast over rows is supported")
        if c.size == n_out and beta == 1.0 and imp.graph.tensors[node.input[2]].qdata is not None:
            bias = _const_transform(imp.graph, node.input[2], lambda x: x.reshape(n_out))
        else:
            bias = imp.graph.add_const(node.input[2] + "_bias",
                                       np.broadcast_to(c.reshape(-1) * np.float32(beta), (n_out,)).astype(np.float32))
    imp.emit("fully_connected", node, [node.input[0], w, bias], act=(-INF, INF))


def _matmul(imp: _Importer, node) -> None:
    b = imp.const(node.input[1])
    if b is None or b.ndim != 2:
        raise TinydeployError(f"node '{node.name}' (MatMul): only a constant 2-D right-hand side "
                              "(a fully connected layer) is supported")
    w = _const_transform(imp.graph, node.input[1], lambda x: x.T, axis_map={0: 1, 1: 0})
    imp.emit("fully_connected", node, [node.input[0], w, ""], act=(-INF, INF))


def _const_transform(graph: Graph, name: str, fn: Callable, axis_map: Optional[dict] = None) -> str:
    """A new constant fn(data), carrying integer data and quantization along."""
    t = graph.tensors[name]
    new = graph.add_const(name + "_t", np.ascontiguousarray(fn(t.data)))
    nt = graph.tensors[new]
    if t.qdata is not None:
        nt.qdata = np.ascontiguousarray(fn(t.qdata))
        q = t.quant
        axis = q.axis if q.per_tensor or q.axis is None else (axis_map or {}).get(q.axis, q.axis)
        nt.quant = QuantParams(q.scale, q.zero_point, axis)
    return new


_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min"}


def _binary(imp: _Importer, node) -> None:
    if len(node.input) != 2:
        raise TinydeployError(f"node '{node.name}' ({node.op_type}): only two inputs are supported")
    for i in node.input:
        t = imp.graph.tensors[i]
        if t.is_const and t.dtype != "float32":
            t.data = t.data.astype(np.float32)
            t.dtype = "float32"
    imp.emit("binary", node, list(node.input), op=_BINARY[node.op_type], act=(-INF, INF))


def _clip(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    if node.op_type == "Relu":
        lo, hi = 0.0, INF
    elif imp.opset < 11 or "min" in a or "max" in a:
        lo, hi = float(a.get("min", -INF)), float(a.get("max", INF))
    else:
        lo = float(imp.need_const(node, 1, "min")) if len(node.input) > 1 and node.input[1] else -INF
        hi = float(imp.need_const(node, 2, "max")) if len(node.input) > 2 and node.input[2] else INF
    imp.emit("clip", node, [node.input[0]], lo=lo, hi=hi)


def _unary(kind, **defaults):
    def lower(imp: _Importer, node) -> None:
        a = imp.attrs(node)
        params = {k: float(a.get(k, v)) for k, v in defaults.items()}
        imp.emit(kind, node, [node.input[0]], **params)
    return lower


def _softmax(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    rank = len(shape)
    axis = int(a.get("axis", -1 if imp.opset >= 13 else 1)) % rank
    if imp.opset < 13 and any(d != 1 for d in shape[axis + 1:]):
        # Old semantics: softmax over the flattened trailing block.
        flat = imp.graph.add_activation(x + "_flat", (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))
        imp.graph.ops.append(Op("reshape", node.name + "_flatten", [x], [flat], {}))
        sm = imp.graph.add_activation(x + "_softmax", imp.graph.tensors[flat].shape)
        imp.graph.ops.append(Op("softmax", node.name, [flat], [sm], {"axis": 1}))
        imp.graph.ops.append(Op("reshape", node.name + "_unflatten", [sm],
                                [imp.activation(node.output[0])], {}))
        return
    if imp.opset < 13:
        axis = rank - 1 if all(d == 1 for d in shape[axis + 1:]) else axis
    imp.emit("softmax", node, [x], axis=axis)


def _concat(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    rank = len(imp.graph.tensors[node.output[0]].shape) if node.output[0] in imp.graph.tensors \
        else len(imp.shapes[node.output[0]])
    imp.emit("concat", node, list(node.input), axis=int(a["axis"]) % rank)


def _pad(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    rank = len(imp.graph.tensors[x].shape)
    pads = list(a["pads"]) if "pads" in a else imp.need_const(node, 1, "pads").tolist()
    if len(node.input) > 3 and node.input[3]:
        axes = [int(v) % rank for v in imp.need_const(node, 3, "axes")]
        full = [0] * (2 * rank)
        for j, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[j], pads[len(axes) + j]
        pads = full
    if any(p < 0 for p in pads):
        raise TinydeployError(f"node '{node.name}' (Pad): negative pads (cropping) are not supported")
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    value = float(a.get("value", 0.0))
    if len(node.input) > 2 and node.input[2]:
        value = float(imp.need_const(node, 2, "constant_value").reshape(-1)[0])
    if mode not in ("constant", "reflect", "edge"):
        raise TinydeployError(f"node '{node.name}' (Pad): mode '{mode}' is not supported "
                              "(supported: constant, reflect, edge)")
    imp.emit("pad", node, [x], before=pads[:rank], after=pads[rank:], mode=mode, value=value)


def _reshape(imp: _Importer, node) -> None:
    imp.emit("reshape", node, [node.input[0]])


def _transpose(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    rank = len(imp.graph.tensors[node.input[0]].shape)
    perm = list(a.get("perm", list(reversed(range(rank)))))
    imp.emit("transpose", node, [node.input[0]], perm=perm)


def _batchnorm(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    scale, bias, mean, var = (imp.need_const(node, i, n) for i, n in
                              enumerate(["scale", "B", "mean", "var"], start=1))
    eps = float(a.get("epsilon", 1e-5))
    mul = (scale / np.sqrt(var.astype(np.float64) + eps)).astype(np.float32)
    add = (bias - mean * mul).astype(np.float32)
    imp.emit("batchnorm", node, [node.input[0]], mul=mul, add=add)


def _dequantize(imp: _Importer, node) -> None:
    q = imp.graph.tensors[node.input[0]]
    scale = imp.need_const(node, 1, "the scale")
    zp = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros_like(scale, np.int32)
    axis = int(imp.attrs(node).get("axis", 1)) if scale.size > 1 else None
    if q.is_const:
        data = q.data.astype(np.int64)
        if axis is not None:
            shape = [1] * data.ndim
            shape[axis % data.ndim] = -1
            real = (data - zp.reshape(shape)) * scale.reshape(shape).astype(np.float64)
        else:
            real = (data - zp.astype(np.int64)) * np.float64(scale)
        out = imp.graph.add_tensor(Tensor(node.output[0], q.shape, "float32", real.astype(np.float32)))
        out.qdata = q.data
        out.quant = QuantParams(scale.reshape(-1) if axis is not None else scale.reshape(()),
                                zp.astype(np.int32).reshape(-1) if axis is not None else zp.astype(np.int32).reshape(()),
                                None if axis is None else axis % data.ndim)
        return
    if scale.size != 1:
        raise TinydeployError(f"node '{node.name}' (DequantizeLinear): per-channel quantization of "
                              "activations is not supported (activations are per-tensor)")
    imp.emit("dequantize", node, [node.input[0]], scale=np.float32(scale.reshape(-1)[0]),
             zero_point=int(zp.reshape(-1)[0]), qtype=str(q.dtype))


def _quantize(imp: _Importer, node) -> None:
    scale = imp.need_const(node, 1, "the scale")
    zp = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros((), np.uint8)
    if scale.size != 1:
        raise TinydeployError(f"node '{node.name}' (QuantizeLinear): per-channel quantization of "
                              "activations is not supported (activations are per-tensor)")
    if zp.dtype not in (np.int8, np.uint8):
        raise TinydeployError(f"node '{node.name}' (QuantizeLinear): {zp.dtype} activations are not "
                              "supported; tinydeploy quantizes activations to int8 (uint8 is converted)")
    imp.emit("quantize", node, [node.input[0]], scale=np.float32(scale.reshape(-1)[0]),
             zero_point=int(zp.reshape(-1)[0]), qtype=str(zp.dtype))


def _cast(imp: _Importer, node) -> None:
    to = imp.attrs(node)["to"]
    src = imp.graph.tensors[node.input[0]].dtype
    if _ONNX_DTYPES.get(to) != src:
        raise TinydeployError(f"node '{node.name}' (Cast): casting {src} activations to "
                              f"{_ONNX_DTYPES.get(to, to)} is not supported")
    imp.alias(node)


LOWERINGS: dict[str, Callable] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul,
    "MaxPool": _pool("max_pool"), "AveragePool": _pool("avg_pool"),
    "GlobalAveragePool": _global_avg_pool, "ReduceMean": _reduce_mean,
    "Add": _binary, "Sub": _binary, "Mul": _binary, "Div": _binary, "Max": _binary, "Min": _binary,
    "Relu": _clip, "Clip": _clip,
    "LeakyRelu": _unary("leaky_relu", alpha=0.01), "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"), "HardSigmoid": _unary("hard_sigmoid", alpha=0.2, beta=0.5),
    "HardSwish": _unary("hard_swish"), "Exp": _unary("exp"), "Neg": _unary("neg"),
    "Abs": _unary("abs"), "Sqrt": _unary("sqrt"),
    "Softmax": _softmax, "Concat": _concat, "Pad": _pad,
    "Reshape": _reshape, "Flatten": _reshape, "Squeeze": _reshape, "Unsqueeze": _reshape,
    "Transpose": _transpose, "BatchNormalization": _batchnorm,
    "Identity": lambda imp, node: imp.alias(node), "Dropout": lambda imp, node: imp.alias(node),
    "Cast": _cast, "DequantizeLinear": _dequantize, "QuantizeLinear": _quantize,
}


def _register_qlinear() -> None:
    from .frontend_qlinear import register
    register(LOWERINGS)


_register_qlinear()


def load(path: str, input_shapes: Optional[dict] = None, name: Optional[str] = None) -> Graph:
    """ONNX file -> IR graph (ONNX layout), with static shapes and constants folded."""
    model = read_model(path)
    opset = default_opset(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise TinydeployError(f"the model uses opset {opset}; supported opsets are "
                              f"{MIN_OPSET} to {MAX_OPSET} (convert it with onnx.version_converter)")
    _fix_input_shapes(model, input_shapes or {})
    model = fold_onnx_constants(model, opset)
    stem = name or os.path.splitext(os.path.basename(path))[0]
    return _Importer(model, opset, stem).run()
