"""Front end: load and check an ONNX file, fix shapes, fold constants, lower to the IR.

The IR produced here still has the ONNX model's own layout (conv and pool
ops say `layout="NCHW"`); the layout pass turns it into NHWC.
"""
from __future__ import annotations

import math
import os
import re
from typing import Callable, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from .errors import TinydeployError
from .ir import Graph, Op, QuantParams, Tensor
from .ops import matmul as matmul_op

# Every opset the installed onnx package knows; each node's own schema version is
# checked against what its lowering implements (_check_version).
MIN_OPSET, MAX_OPSET = 1, onnx.defs.onnx_opset_version()
INF = float("inf")

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
}
# Element types of computed tensors (activations) and of the model input.
_ACTIVATION_DTYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
# Element types of initializers (constants): converted to float32/int8/int32/int64 on import.
_INITIALIZER_DTYPES = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16, onnx.TensorProto.INT32,
    onnx.TensorProto.INT64, onnx.TensorProto.BOOL,
    onnx.TensorProto.INT4,  # int4 weights: only as the data of a DequantizeLinear (_check_int4_uses)
}
# The generated C indexes tensors and sizes with 32-bit ints.
MAX_ELEMENTS = (1 << 31) - 1
# The kernels take up to 6-D tensors.
MAX_RANK = 6
# Constant folding evaluates nodes in Python: only up to this many output elements.
FOLD_MAX_ELEMENTS = 1 << 24
# Nodes whose evaluation costs more than one step per output element.
_HEAVY_FOLD = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MatMul", "MatMulInteger",
               "QLinearMatMul", "Gemm", "Einsum", "MaxPool", "AveragePool", "LpPool", "RNN", "GRU",
               "LSTM", "Resize", "Upsample", "TopK", "NonMaxSuppression", "Loop", "Scan", "If"}


def dtype_name(elem_type: int) -> str:
    """An ONNX element type for messages: FLOAT, INT64, ... (or the number if unknown)."""
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"unknown type {elem_type}"


def decode_initializer(init: onnx.TensorProto) -> np.ndarray:
    """An initializer's data as a numpy array, checked against its type and shape."""
    what = f"initializer '{init.name}'"
    if init.data_location == onnx.TensorProto.EXTERNAL or len(init.external_data):
        raise TinydeployError(f"{what} keeps its data in an external file; tinydeploy reads "
                              "self-contained .onnx files (save the model without external data)")
    if init.HasField("segment"):
        raise TinydeployError(f"{what} is a segment of a larger tensor, which is not supported")
    if init.data_type not in _INITIALIZER_DTYPES:
        raise TinydeployError(f"{what} has element type {dtype_name(init.data_type)}, which is not "
                              "supported (constants must be float or integer tensors)")
    dims = list(init.dims)
    if any(d < 0 for d in dims):
        raise TinydeployError(f"{what} has a negative dimension: {dims}")
    count = math.prod(dims)
    if count > MAX_ELEMENTS:
        raise TinydeployError(f"{what} has shape {dims} ({count:,} elements): too large")
    try:
        arr = numpy_helper.to_array(init)
    except Exception as exc:  # numpy/onnx raise several types for inconsistent data
        raise TinydeployError(f"{what}: its data does not match its type {dtype_name(init.data_type)} "
                              f"and shape {dims} ({exc})") from None
    if arr.size != count or list(arr.shape) != dims:
        raise TinydeployError(f"{what}: its data has {arr.size} elements, its shape {dims} "
                              f"needs {count}")
    return arr


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
    _check_names(model, path)
    for init in model.graph.initializer:  # (the checker would look for the file in the cwd)
        if init.data_location == onnx.TensorProto.EXTERNAL or len(init.external_data):
            decode_initializer(init)
    try:
        onnx.checker.check_model(_for_checker(model))
    except Exception as exc:
        raise TinydeployError(f"{path} is not a valid ONNX model: {_onnx_message(exc)}") from None
    return model


def _onnx_message(exc: Exception, limit: int = 400) -> str:
    """An onnx checker/inference error as one line (without its '==> Context' trailer)."""
    text = " ".join(str(exc).split("==> Context")[0].split())
    if not text:
        return type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_names(model: onnx.ModelProto, path: str) -> None:
    """Names must be text: protobuf hands back bytes for a string field that is not UTF-8."""
    def names(graph: onnx.GraphProto):
        yield graph.name
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            yield vi.name
        for init in graph.initializer:
            yield init.name
        for node in graph.node:
            yield from (node.name, node.op_type, node.domain, *node.input, *node.output)
            for a in node.attribute:
                yield a.name
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    yield from names(sub)
    for imp in model.opset_import:
        if not isinstance(imp.domain, str):
            raise TinydeployError(f"{path} is not a valid ONNX model: an opset domain is not UTF-8 text "
                                  f"({imp.domain!r})")
    for name in names(model.graph):
        if not isinstance(name, str):
            raise TinydeployError(f"{path} is not a valid ONNX model: the name {name!r} is not UTF-8 text")


def _for_checker(model: onnx.ModelProto) -> onnx.ModelProto:
    """The ONNX spec lets graph inputs and outputs omit their shape, recent checkers do not:
    check a copy where they have one (tinydeploy infers output shapes and asks for input shapes)."""
    bare = [vi for vi in list(model.graph.input) + list(model.graph.output)
            if vi.type.WhichOneof("value") == "tensor_type" and not vi.type.tensor_type.HasField("shape")]
    if not bare:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for vi in list(copy.graph.input) + list(copy.graph.output):
        if vi.type.WhichOneof("value") == "tensor_type":
            vi.type.tensor_type.shape.SetInParent()
    return copy


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
            if any(d <= 0 or d > MAX_ELEMENTS for d in shapes[name]):
                raise ValueError
        except ValueError:
            raise TinydeployError(f"--input-shape '{spec}' is not of the form "
                                  f"NAME=D,D,... with positive integers (at most {MAX_ELEMENTS:,})") from None
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
        if inp.type.WhichOneof("value") != "tensor_type":
            raise TinydeployError(f"model input '{inp.name}' is not a tensor "
                                  f"(its type is {inp.type.WhichOneof('value') or 'missing'})")
        tt = inp.type.tensor_type
        if tt.elem_type not in _ACTIVATION_DTYPES:
            raise TinydeployError(f"model input '{inp.name}' has element type {dtype_name(tt.elem_type)}; "
                                  "tinydeploy compiles models with a float32 (or int8/uint8) input")
        dims = tt.shape.dim
        if inp.name in overrides:
            shape = overrides[inp.name]
            if tt.HasField("shape") and len(shape) != len(dims):
                raise TinydeployError(f"--input-shape for '{inp.name}' has {len(shape)} dims, "
                                      f"the model's input has {len(dims)}")
            tt.shape.SetInParent()
            del tt.shape.dim[:]
            for v in shape:
                tt.shape.dim.add().dim_value = v
            _check_input_size(inp.name, shape)
            continue
        if not tt.HasField("shape"):
            raise TinydeployError(f"input '{inp.name}' has no shape in the model; give it with "
                                  f"--input-shape {inp.name}=D,D,...")
        for axis, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if d.HasField("dim_value") and d.dim_value == 0 and axis > 0:
                raise TinydeployError(
                    f"input '{inp.name}' has a dimension of size 0 (axis {axis}), an empty tensor; "
                    f"give positive dimensions with --input-shape {inp.name}=D,D,...")
            if axis == 0:  # a symbolic batch dimension becomes 1
                d.dim_value = 1
                continue
            label = d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?")
            example = ",".join(x.dim_param or (str(x.dim_value) if x.HasField("dim_value") else "?")
                               for x in dims)
            raise TinydeployError(
                f"input '{inp.name}' has a non-fixed dimension '{label}' (axis {axis}); "
                f"give every dimension with --input-shape {inp.name}=D,D,... "
                f"(the model declares {inp.name}={example})")
        _check_input_size(inp.name, [d.dim_value for d in dims])
    # Graph outputs may carry stale symbolic shapes; shape inference refills them. With an
    # --input-shape, the intermediate shapes the exporter recorded are stale too.
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    if overrides:
        for info in model.graph.value_info:
            if info.type.HasField("tensor_type"):
                info.type.tensor_type.ClearField("shape")


def _check_input_size(name: str, shape) -> None:
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise TinydeployError(f"input '{name}' has shape {list(shape)} ({count:,} elements); "
                              f"tensors of more than {MAX_ELEMENTS:,} elements are not supported")


# --------------------------------------------------------------------------
# Shape inference and constant folding (on the ONNX graph)
# --------------------------------------------------------------------------
_NEVER_FOLD = {"QuantizeLinear", "DequantizeLinear"}


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise TinydeployError(f"shape inference failed: {_onnx_message(exc)}") from None


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


def _foldable(node: onnx.NodeProto, shapes: dict, consts: dict) -> bool:
    """Is evaluating this all-constant node in Python bounded in time and memory?"""
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        return False  # control flow (If, Loop, Scan): never run user subgraphs here
    out_shapes = [shapes.get(o) for o in node.output if o]
    if any(shape is None for shape in out_shapes):
        return False
    out_elems = sum(math.prod(shape) for shape in out_shapes)
    if any(d < 0 for shape in out_shapes for d in shape) or out_elems > FOLD_MAX_ELEMENTS:
        return False
    if node.op_type in _HEAVY_FOLD:
        in_elems = max((consts[i].size for i in node.input if i), default=1)
        return out_elems * max(in_elems, 1) <= 1 << 26
    return True


def _check_constant_node(node: onnx.NodeProto) -> None:
    """A Constant node's tensor value obeys the same rules as an initializer."""
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            t = onnx.TensorProto()
            t.CopyFrom(a.t)
            t.name = node.output[0] if node.output else node.name
            decode_initializer(t)
        elif a.type == onnx.AttributeProto.SPARSE_TENSOR:
            raise TinydeployError(f"node '{node.name}' (Constant): sparse tensor values are not supported")


def fold_onnx_constants(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """Evaluate nodes whose inputs are all constant (and Shape of static tensors)."""
    while True:
        model = _infer(model)
        shapes = _static_shapes(model)
        if _ceil_mode_as_pads(model, shapes):
            del model.graph.value_info[:]
            for out in model.graph.output:
                out.type.tensor_type.ClearField("shape")
            continue
        consts = {i.name: decode_initializer(i) for i in model.graph.initializer}
        folded = False
        keep = []
        for node in model.graph.node:
            values = None
            if node.op_type == "Shape" and node.input and node.input[0] in shapes:
                values = _static_shape_value(node, shapes[node.input[0]])
            elif node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                _check_constant_node(node)
                try:
                    values = _eval_node(node, consts, opset)
                except Exception as exc:
                    raise TinydeployError(f"node '{node.name}' (Constant): its value cannot be read "
                                          f"({type(exc).__name__})") from None
            elif (node.op_type not in _NEVER_FOLD and node.domain in ("", "ai.onnx") and node.input
                  and all((not i) or i in consts for i in node.input) and _foldable(node, shapes, consts)):
                try:
                    values = _eval_node(node, consts, opset)
                except Exception:
                    values = None
            new = _as_initializers(node, values) if values is not None else None
            if new is None:
                keep.append(node)
                continue
            model.graph.initializer.extend(new)
            consts.update((t.name, decode_initializer(t)) for t in new)
            folded = True
        if not folded:
            return model
        del model.graph.node[:]
        model.graph.node.extend(keep)
        # Stale inferred infos of folded values would conflict with initializers.
        del model.graph.value_info[:]


def _static_shape_value(node: onnx.NodeProto, shape: tuple) -> Optional[list]:
    """Shape of a static tensor, sliced by start/end (opset 15) as ONNX clamps them."""
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    if set(a) - {"start", "end"} or not all(isinstance(v, int) for v in a.values()):
        return None
    rank = len(shape)
    start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (a.get("start", 0), a.get("end", rank)))
    return [np.array(shape[start:end], dtype=np.int64)]


def _ceil_mode_as_pads(model: onnx.ModelProto, shapes: dict) -> bool:
    """MaxPool/AveragePool with ceil_mode=1 become ceil_mode=0 with the end pads that give
    the ONNX output size: ceil((in + pads - kernel) / stride) + 1 windows, less the last
    when it would start past the input and its begin pad (onnxruntime at every opset;
    shape inference before opset 22 keeps that window). Then no window lies wholly in
    padding. AveragePool with count_include_pad=1 keeps ceil_mode where the end pad would
    grow (its lowering refuses that case). Returns whether a node changed."""
    changed = False
    for node in model.graph.node:
        if node.op_type not in ("MaxPool", "AveragePool") or node.domain not in ("", "ai.onnx"):
            continue
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        shape = shapes.get(node.input[0]) if node.input else None
        if not a.get("ceil_mode", 0) or auto not in ("NOTSET", "VALID", "") or shape is None or len(shape) < 3:
            continue
        n = len(shape) - 2
        k, strides, dil = a.get("kernel_shape"), a.get("strides", [1] * n), a.get("dilations", [1] * n)
        pads = [0] * (2 * n) if auto == "VALID" else list(a.get("pads", [0] * (2 * n)))
        if not (isinstance(k, list) and len(k) == n and len(strides) == n and len(dil) == n
                and len(pads) == 2 * n and min(list(strides) + list(k) + list(dil)) >= 1):
            continue  # the lowering reports malformed attributes
        new = list(pads)
        for i in range(n):
            span = shape[2 + i] + pads[i] + pads[n + i] - ((k[i] - 1) * dil[i] + 1)
            if span < 0:
                break
            out = -(-span // strides[i]) + 1
            if (out - 1) * strides[i] >= shape[2 + i] + pads[i]:
                out -= 1
            new[n + i] = max(pads[n + i], (out - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 - shape[2 + i] - pads[i])
        else:
            if node.op_type == "AveragePool" and a.get("count_include_pad", 0) and new != pads:
                continue
            del node.attribute[:]
            for key, value in a.items():
                if key not in ("ceil_mode", "pads", "auto_pad"):
                    node.attribute.append(helper.make_attribute(key, value))
            node.attribute.append(helper.make_attribute("pads", new))
            changed = True
    return changed


def _as_initializers(node: onnx.NodeProto, values) -> Optional[list]:
    """A folded node's values as initializers (None: leave the node in the graph)."""
    out = []
    for name, value in zip(node.output, values):
        if not name:
            continue
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.size > FOLD_MAX_ELEMENTS:
            return None
        try:
            out.append(numpy_helper.from_array(arr, name))
        except Exception:
            return None
    return out


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
            if any(d <= 0 for d in shape):
                raise TinydeployError(f"tensor '{name}' has shape {list(shape)}: empty tensors "
                                      "(a dimension of 0) are not supported")
            if len(shape) > MAX_RANK:
                raise TinydeployError(f"tensor '{name}' has rank {len(shape)}; tensors of more than "
                                      f"{MAX_RANK} dimensions are not supported")
            if math.prod(shape) > MAX_ELEMENTS:
                raise TinydeployError(f"tensor '{name}' has shape {list(shape)} "
                                      f"({math.prod(shape):,} elements); tensors of more than "
                                      f"{MAX_ELEMENTS:,} elements are not supported")
            elem = self.dtypes.get(name, onnx.TensorProto.FLOAT)
            if elem not in _ACTIVATION_DTYPES:
                raise TinydeployError(f"tensor '{name}' has element type {dtype_name(elem)}; tinydeploy "
                                      "computes float32 tensors (int8/uint8 only around "
                                      "QuantizeLinear/DequantizeLinear)")
            self.graph.add_tensor(Tensor(name, shape, _ONNX_DTYPES[elem]))
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
        _name_nodes(self.model.graph)
        _check_int4_uses(self.model.graph)
        for init in self.model.graph.initializer:
            arr = decode_initializer(init)
            if arr.dtype in (np.float64, np.float16):
                arr = arr.astype(np.float32)
            g.add_tensor(Tensor(init.name, tuple(arr.shape), str(arr.dtype), arr))
        for inp in self.model.graph.input:
            if inp.name not in g.tensors:
                g.inputs.append(self.activation(inp.name))
        unsupported = [n for n in self.model.graph.node if not is_supported(n)]
        if unsupported:
            lines = "\n".join(f"  - node '{n.name}': {n.op_type}"
                              + (f" (domain {n.domain})" if n.domain not in ("", "ai.onnx") else "")
                              for n in unsupported)
            raise TinydeployError(
                f"the model uses {len(unsupported)} unsupported node(s):\n{lines}\n"
                f"supported ops: {', '.join(sorted(LOWERINGS))}. Replace these ops "
                "(e.g. re-export the model) or open an issue.")
        for node in self.model.graph.node:
            if not node.input or not node.input[0]:
                raise TinydeployError(f"node '{node.name}' ({node.op_type}): its data input is missing")
            if not node.output or not (node.output[0] or node.op_type in ("LSTM", "GRU") and any(node.output)):
                raise TinydeployError(f"node '{node.name}' ({node.op_type}): its output is missing")
            for i in node.input:
                if i and i not in g.tensors:
                    self.activation(i)
            if node.op_type != "DequantizeLinear" and all(g.tensors[i].is_const for i in node.input if i):
                raise TinydeployError(f"node '{node.name}' ({node.op_type}): every input is a constant, "
                                      "but the node could not be evaluated at compile time")
            _check_version(self, node)
            LOWERINGS[node.op_type](self, node)
        for out in self.model.graph.output:
            if out.name in g.outputs:
                raise TinydeployError(f"model output '{out.name}' is listed twice among the model's "
                                      "outputs; list it once")
            g.outputs.append(out.name)
        if not g.inputs:
            raise TinydeployError("the model has no input (every graph input is a constant); "
                                  "nothing to compute at run time")
        if not g.outputs:
            raise TinydeployError("the model has no output")
        for name in g.outputs:
            if name not in g.tensors:
                raise TinydeployError(f"model output '{name}' is not computed by any node")
            if g.tensors[name].is_const:
                raise TinydeployError(f"model output '{name}' is a constant; nothing to compute")
            if name in g.inputs:
                raise TinydeployError(f"model output '{name}' is a model input itself; nothing to compute "
                                      "(remove it from the outputs: the caller has it already)")
        return g


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Every node gets a unique, non-empty name (messages and C symbols use them)."""
    seen = set()
    for i, node in enumerate(graph.node):
        name = node.name or next((o for o in node.output if o), "") or f"{node.op_type or 'node'}_{i}"
        base, k = name, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        node.name = name


def _legacy_broadcast(a: dict) -> Optional[str]:
    return "legacy broadcasting (attributes 'broadcast' and 'axis')" if a.get("broadcast", 0) else None


# Schema versions whose semantics differ from what the lowerings implement, by ONNX op:
# (the first version that has the implemented semantics, attrs -> what differs or None).
# Versions that only add element types or attributes the lowerings check need no entry.
_OLD_SEMANTICS = {
    **{op: (7, _legacy_broadcast) for op in ("Add", "Sub", "Mul", "Div", "Pow")},
    "Pad": (2, lambda a: "the attribute 'paddings'"),
    "BatchNormalization": (9, lambda a: "spatial=0 (statistics per element, not per channel)"
                           if a.get("spatial", 1) == 0 else None),
    "Upsample": (7, lambda a: "the experimental attributes 'height_scale' and 'width_scale'"),
    "Tile": (6, lambda a: "the inputs 'tiles' and 'axis'"),
}


def _check_version(imp: "_Importer", node) -> None:
    """Refuse a node whose schema version (given by the model's opset) has semantics
    other than its lowering implements, saying what differs and how to convert."""
    rule = _OLD_SEMANTICS.get(node.op_type)
    if rule is None:
        return
    try:
        since = onnx.defs.get_schema(node.op_type, imp.opset, node.domain or "").since_version
    except Exception:  # the checker already refuses ops unknown at this opset
        return
    first, differs = rule
    problem = differs(imp.attrs(node)) if since < first else None
    if problem:
        raise TinydeployError(
            f"node '{node.name}' ({node.op_type}): opset {imp.opset} makes it {node.op_type} version {since}, "
            f"with semantics tinydeploy does not implement: {problem}; convert the model to opset "
            f"{max(first, 11)} or later (onnx.version_converter.convert_version(model, {max(first, 11)}))")


def _bad(node, problem: str) -> TinydeployError:
    return TinydeployError(f"node '{node.name}' ({node.op_type}): {problem}")


def _ints_attr(node, a: dict, key: str, length: int, default, minimum: int) -> list[int]:
    """An INTS attribute of `length` integers >= minimum (default when absent)."""
    value = a.get(key, default)
    if not isinstance(value, (list, tuple)) or len(value) != length or \
            not all(isinstance(v, int) for v in value):
        raise _bad(node, f"attribute '{key}' must be {length} integers, got {value!r}")
    if any(v < minimum or v > MAX_ELEMENTS for v in value):
        raise _bad(node, f"attribute '{key}' = {list(value)}: every value must be in "
                         f"{minimum}..{MAX_ELEMENTS}")
    return [int(v) for v in value]


def _int_attr(node, a: dict, key: str, default: int, lo: int, hi: int) -> int:
    value = a.get(key, default)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(node, f"attribute '{key}' must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _float_attr(node, a: dict, key: str, default: float) -> float:
    value = a.get(key, default)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(node, f"attribute '{key}' must be a finite number, got {value!r}")
    return float(value)


def _str_attr(node, a: dict, key: str, default: str) -> str:
    value = a.get(key, default)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise _bad(node, f"attribute '{key}' must be a string, got {value!r}")
    return value


def _axis(node, value, rank: int, what: str = "axis") -> int:
    if not isinstance(value, (int, np.integer)) or not -rank <= value < rank:
        raise _bad(node, f"{what} {value!r} is out of range for a tensor of rank {rank}")
    return int(value) % rank


def _scalar_const(node, value: np.ndarray, what: str) -> float:
    if value.size != 1:
        raise _bad(node, f"{what} must be a single value, got shape {list(value.shape)}")
    v = float(value.reshape(-1)[0])
    if math.isnan(v):
        raise _bad(node, f"{what} is NaN")
    return v


def _pads_nd(imp: _Importer, node, a: dict, sizes, kernel, strides, dilations) -> list[int]:
    """ONNX pads/auto_pad over len(sizes) spatial axes -> [begins..., ends...]."""
    n = len(sizes)
    auto = _str_attr(node, a, "auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        return _ints_attr(node, a, "pads", 2 * n, [0] * (2 * n), 0)
    if auto == "VALID":
        return [0] * (2 * n)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise _bad(node, f"auto_pad '{auto}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    result_begin, result_end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin, end = (small, big) if auto == "SAME_UPPER" else (big, small)
        result_begin.append(begin)
        result_end.append(end)
    return result_begin + result_end


def _need_2d(imp: _Importer, node, x: str) -> None:
    shape = imp.graph.tensors[x].shape
    if len(shape) != 4:
        raise TinydeployError(f"node '{node.name}' ({node.op_type}): only 2-D spatial inputs "
                              f"(rank 4, NCHW) are supported, got rank {len(shape)}")
    if shape[0] != 1:
        raise _bad(node, f"the input has a batch of {shape[0]}; the generated code runs one sample "
                         "at a time (batch 1)")


# --------------------------------------------------------------------------
# Lowerings: one function per ONNX op type, registered where it is defined
# --------------------------------------------------------------------------
LOWERINGS: dict[str, Callable] = {}


def lowering(*op_types: str) -> Callable:
    """Register the decorated function as the lowering of these ONNX op types."""
    def register(fn: Callable) -> Callable:
        for op_type in op_types:
            if op_type in LOWERINGS:
                raise ValueError(f"ONNX op {op_type} has two lowerings")
            LOWERINGS[op_type] = fn
        return fn
    return register


def _one_d(lower_2d: Callable) -> Callable:
    """Wrap a 2-D lowering so that it also takes rank-3 inputs [N, C, L] (Conv1d,
    MaxPool1d, AvgPool1d, pooling over time): the node runs as its 2-D form over
    [N, C, 1, L], between two reshapes that the layout pass turns into aliases."""
    def lower(imp: _Importer, node) -> None:
        x = node.input[0]
        if len(imp.graph.tensors[x].shape) != 3:
            return lower_2d(imp, node)
        n, c, length = imp.graph.tensors[x].shape
        x4 = imp.graph.add_activation(x + "__2d", (n, c, 1, length))
        imp.graph.ops.append(Op("reshape", node.name + "_to_2d", [x], [x4], {}))
        out = imp.activation(node.output[0])
        out4 = imp.graph.unique_name(out + "__2d")
        out_shape = imp.graph.tensors[out].shape
        imp.shapes[out4] = out_shape[:2] + (1,) + out_shape[2:]
        inputs = [x4] + list(node.input[1:])
        if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
            w = imp.const(node.input[1])
            if w is not None and w.ndim == 3:  # [.., .., k] -> [.., .., 1, k]
                inputs[1] = _const_transform(imp.graph, node.input[1], lambda a: a[:, :, None, :])
        attrs = imp.attrs(node)
        for key, unit in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("output_padding", 0),
                          ("output_shape", 1)):
            if isinstance(attrs.get(key), list) and len(attrs[key]) == 1:
                attrs[key] = [unit] + attrs[key]
        if isinstance(attrs.get("output_shape"), list) and len(attrs["output_shape"]) == 3:  # [N, C, L]
            attrs["output_shape"] = [1] + attrs["output_shape"][2:]
        if isinstance(attrs.get("pads"), list) and len(attrs["pads"]) == 2:
            attrs["pads"] = [0, attrs["pads"][0], 0, attrs["pads"][1]]
        node_2d = helper.make_node(node.op_type, inputs, [out4], name=node.name, **attrs)
        lower_2d(imp, node_2d)
        imp.graph.ops.append(Op("reshape", node.name + "_to_1d", [out4], [out], {}))
    return lower


@lowering("Conv")
@_one_d
def _conv(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    _need_2d(imp, node, x)
    w = imp.need_const(node, 1, "the weight input")
    _, c_in, h, wd = imp.graph.tensors[x].shape
    if w.ndim != 4 or w.dtype.kind != "f":
        raise _bad(node, f"the weights must be a 4-D float tensor [M, C/group, kH, kW], got "
                         f"{w.dtype} of shape {list(w.shape)}")
    m, cg, kh, kw = w.shape
    group = _int_attr(node, a, "group", 1, 1, MAX_ELEMENTS)
    if min(w.shape) < 1 or c_in % group or m % group or cg * group != c_in:
        raise _bad(node, f"weights of shape {list(w.shape)} with group={group} do not fit an input "
                         f"with {c_in} channels")
    if "kernel_shape" in a and _ints_attr(node, a, "kernel_shape", 2, None, 1) != [kh, kw]:
        raise _bad(node, f"kernel_shape {a['kernel_shape']} does not match the weights' {[kh, kw]}")
    strides = _ints_attr(node, a, "strides", 2, [1, 1], 1)
    dil = _ints_attr(node, a, "dilations", 2, [1, 1], 1)
    pads = _pads_nd(imp, node, a, (h, wd), (kh, kw), strides, dil)
    for n, k, d, p0, p1 in zip((h, wd), (kh, kw), dil, pads[:2], pads[2:]):
        if (k - 1) * d + 1 > n + p0 + p1:
            raise _bad(node, f"the kernel ({kh}x{kw}, dilations {dil}) is larger than the padded "
                             f"input ({h}x{wd}, pads {pads})")
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    if bias and imp.const(bias) is None:
        raise TinydeployError(f"node '{node.name}' (Conv): the bias must be a constant")
    if bias and imp.const(bias).size != m:
        raise _bad(node, f"the bias has {imp.const(bias).size} values for {m} output channels")
    imp.emit("conv2d", node, [x, node.input[1], bias], strides=strides, dilations=dil,
             pads=pads, group=group, act=(-INF, INF), layout="NCHW")


def _conv_transpose_pads(node, a: dict, in_hw, k_hw, strides, dil, out_pad) -> list[int]:
    """ONNX ConvTranspose pads/auto_pad/output_shape -> [top, left, bottom, right]."""
    auto = _str_attr(node, a, "auto_pad", "NOTSET")
    if auto not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise _bad(node, f"auto_pad '{auto}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    full = [s * (n - 1) + p + (k - 1) * d + 1 for n, k, s, d, p in zip(in_hw, k_hw, strides, dil, out_pad)]
    if "output_shape" in a:
        shape = a["output_shape"]
        if isinstance(shape, (list, tuple)) and len(shape) == 4:
            shape = list(shape[2:])
        want = _ints_attr(node, {"output_shape": shape}, "output_shape", 2, None, 1)
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        want = [n * s for n, s in zip(in_hw, strides)]
    else:
        if auto == "VALID":
            return [0, 0, 0, 0]
        return _ints_attr(node, a, "pads", 4, [0, 0, 0, 0], 0)
    begin, end = [], []
    for f, o in zip(full, want):
        total = f - o  # negative: output_shape asks for more than the taps reach (the end gets bias only)
        small = max(total, 0) // 2
        b = small if auto == "SAME_UPPER" else max(total, 0) - small
        begin.append(b)
        end.append(total - b)
    return begin + end


@lowering("ConvTranspose")
def _conv_transpose(imp: _Importer, node) -> None:
    """1-D (rank 3) and 2-D (rank 4) transposed convolution; 1-D runs as 2-D over [N, C, 1, L]."""
    rank = len(imp.graph.tensors[node.input[0]].shape)
    if rank == 4:
        return _conv_transpose_2d(imp, node)
    if rank != 3:
        raise _bad(node, f"only 1-D and 2-D transposed convolutions (inputs of rank 3 or 4) are supported, "
                         f"got an input of rank {rank}")
    _one_d(_conv_transpose_2d)(imp, node)


def _conv_transpose_2d(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    _need_2d(imp, node, x)
    w = imp.need_const(node, 1, "the weight input")
    _, c_in, h, wd = imp.graph.tensors[x].shape
    if w.ndim != 4 or w.dtype.kind != "f":
        raise _bad(node, f"the weights must be a 4-D float tensor [C, M/group, kH, kW], got "
                         f"{w.dtype} of shape {list(w.shape)}")
    cw, mg, kh, kw = w.shape
    group = _int_attr(node, a, "group", 1, 1, MAX_ELEMENTS)
    if min(w.shape) < 1 or cw != c_in or c_in % group:
        raise _bad(node, f"weights of shape {list(w.shape)} with group={group} do not fit an input "
                         f"with {c_in} channels")
    m = mg * group
    if "kernel_shape" in a and _ints_attr(node, a, "kernel_shape", 2, None, 1) != [kh, kw]:
        raise _bad(node, f"kernel_shape {a['kernel_shape']} does not match the weights' {[kh, kw]}")
    strides = _ints_attr(node, a, "strides", 2, [1, 1], 1)
    dil = _ints_attr(node, a, "dilations", 2, [1, 1], 1)
    out_pad = _ints_attr(node, a, "output_padding", 2, [0, 0], 0)
    pads = _conv_transpose_pads(node, a, (h, wd), (kh, kw), strides, dil, out_pad)
    want = [s * (n - 1) + p + (k - 1) * d + 1 - p0 - p1
            for n, k, s, d, p, p0, p1 in zip((h, wd), (kh, kw), strides, dil, out_pad, pads[:2], pads[2:])]
    out_shape = imp.graph.tensors[imp.activation(node.output[0])].shape
    if list(out_shape) != [1, m] + want:
        raise _bad(node, f"the output shape {list(out_shape)} does not match the attributes "
                         f"(expected {[1, m] + want})")
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    if bias and imp.const(bias) is None:
        raise _bad(node, "the bias must be a constant")
    if bias and imp.const(bias).size != m:
        raise _bad(node, f"the bias has {imp.const(bias).size} values for {m} output channels")
    imp.emit("conv_transpose", node, [x, node.input[1], bias], strides=strides, dilations=dil,
             pads=pads, group=group, act=(-INF, INF), layout="NCHW")


def _pool(kind):
    def lower(imp: _Importer, node) -> None:
        a = imp.attrs(node)
        x = node.input[0]
        _need_2d(imp, node, x)
        k = _ints_attr(node, a, "kernel_shape", 2, None, 1)
        strides = _ints_attr(node, a, "strides", 2, [1, 1], 1)
        dil = _ints_attr(node, a, "dilations", 2, [1, 1], 1)
        span = [(kk - 1) * d + 1 for kk, d in zip(k, dil)]  # the dilated window
        include_pad = _int_attr(node, a, "count_include_pad", 0, 0, 1)
        _int_attr(node, a, "ceil_mode", 0, 0, 1)
        in_hw = imp.graph.tensors[x].shape[2:]
        pads = _pads_nd(imp, node, a, in_hw, k, strides, dil)
        if any(p >= kk for p, kk in zip(pads, span + span)):
            raise _bad(node, f"pads {pads} must be smaller than the kernel {k}"
                             + (f" (dilated to {span})" if dil != [1, 1] else ""))
        if any(kk > n + p0 + p1 for kk, n, p0, p1 in zip(span, in_hw, pads[:2], pads[2:])):
            raise _bad(node, f"the kernel {k}" + (f" (dilated to {span})" if dil != [1, 1] else "")
                             + f" is larger than the padded input {list(in_hw)} (pads {pads})")
        out_hw = imp.graph.tensors[imp.activation(node.output[0])].shape[2:]
        # ceil_mode may add windows past the padded input: widen the end pad.
        need = [(out_hw[i] - 1) * strides[i] + span[i] - in_hw[i] - pads[i] for i in range(2)]
        if kind == "avg_pool" and include_pad and any(nd > p for nd, p in zip(need, pads[2:])):
            # ONNX counts the pads but not the cells past them: pad with zeros explicitly,
            # then average only over real (now: input or pad) cells.
            n, c = imp.graph.tensors[x].shape[:2]
            padded_x = imp.graph.add_activation(x + "__padded", (n, c, in_hw[0] + pads[0] + pads[2],
                                                                in_hw[1] + pads[1] + pads[3]))
            imp.graph.ops.append(Op("pad", node.name + "_pad", [x], [padded_x],
                                    dict(before=[0, 0, pads[0], pads[1]], after=[0, 0, pads[2], pads[3]],
                                         mode="constant", value=0.0)))
            x, in_hw, include_pad = padded_x, imp.graph.tensors[padded_x].shape[2:], 0
            need = [nd - p for nd, p in zip(need, pads[2:])]
            pads = [0, 0, 0, 0]
        for i in range(2):
            pads[2 + i] = max(pads[2 + i], need[i])
            for o in range(out_hw[i]):
                start = o * strides[i] - pads[i]
                if not any(0 <= start + j * dil[i] < in_hw[i] for j in range(k[i])):
                    raise _bad(node, f"the window of output {'row' if i == 0 else 'column'} {o} lies wholly "
                                     f"in the padding (kernel {k}, dilations {dil}, pads {pads}): it has no "
                                     "value (onnxruntime writes -3.4e38 or 0); reduce the padding or the dilation")
        imp.emit(kind, node, [x], kernel=k, strides=strides, dilations=dil, pads=pads, layout="NCHW",
                 count_include_pad=include_pad, act=(-INF, INF))
    return lower


def _three_d_pool(lower_2d: Callable) -> Callable:
    """Wrap a 2-D pool lowering so that it also takes rank-5 inputs [N, C, D, H, W]
    (MaxPool3d, AvgPool3d): a pool over (H, W) on [N, C*D, H, W], then a (k_d x 1) pool
    over D on [N, C, D, H'*W'], between reshapes. A pooling window is a box, so its valid
    cells are a product of one range per axis: the max is the max over D of the maxima
    over (H, W), and the mean the mean over D of the means over (H, W) (with or without
    padding counted). Exact in float32; int8 rounds the mean twice (TFLite has no 3-D
    pool whose rounding to follow)."""
    def lower(imp: _Importer, node) -> None:
        x = node.input[0]
        if len(imp.graph.tensors[x].shape) != 5:
            return lower_2d(imp, node)
        n, c, d, h, w = imp.graph.tensors[x].shape
        a = imp.attrs(node)
        k = _ints_attr(node, a, "kernel_shape", 3, None, 1)
        strides = _ints_attr(node, a, "strides", 3, [1, 1, 1], 1)
        dil = _ints_attr(node, a, "dilations", 3, [1, 1, 1], 1)
        pads = _pads_nd(imp, node, a, (d, h, w), k, strides, dil)
        out = imp.activation(node.output[0])
        _, _, od, oh, ow = imp.graph.tensors[out].shape
        common = {key: a[key] for key in ("ceil_mode", "count_include_pad") if key in a}

        def stage(suffix, src, src_shape, out_shape, axes):
            x4 = imp.graph.add_activation(f"{src}__{suffix}", src_shape)
            imp.graph.ops.append(Op("reshape", f"{node.name}_to_{suffix}", [src], [x4], {}))
            y4 = imp.graph.unique_name(f"{out}__{suffix}")
            imp.shapes[y4] = out_shape
            pick = lambda values, unit: [values[i] if i is not None else unit for i in axes]
            attrs = dict(common, kernel_shape=pick(k, 1), strides=pick(strides, 1),
                         dilations=pick(dil, 1), pads=pick(pads[:3], 0) + pick(pads[3:], 0))
            lower_2d(imp, helper.make_node(node.op_type, [x4], [y4], name=f"{node.name}_{suffix}",
                                           **attrs))
            return y4

        hw = stage("hw", x, (n, c * d, h, w), (n, c * d, oh, ow), (1, 2))
        dd = stage("d", hw, (n, c, d, oh * ow), (n, c, od, oh * ow), (0, None))
        imp.graph.ops.append(Op("reshape", f"{node.name}_to_3d", [dd], [out], {}))
    return lower


lowering("MaxPool")(_one_d(_three_d_pool(_pool("max_pool"))))
lowering("AveragePool")(_one_d(_three_d_pool(_pool("avg_pool"))))


@lowering("GlobalAveragePool")
def _global_avg_pool(imp: _Importer, node) -> None:
    """The mean over every axis after the channels (2-D images, or time for rank 3)."""
    rank = len(imp.graph.tensors[node.input[0]].shape)
    if rank != 3:
        _need_2d(imp, node, node.input[0])
    imp.emit("mean", node, [node.input[0]], axes=list(range(2, rank)))


_REDUCE = {"ReduceMean": "mean", "ReduceMax": "reduce_max", "ReduceSum": "reduce_sum"}


@lowering("ReduceMean", "ReduceMax", "ReduceSum")
def _reduce(imp: _Importer, node) -> None:
    """Over any axes (an attribute, or the input 'axes' since opset 13 for ReduceSum and 18
    for the others), keepdims 0 or 1; empty axes with noop_with_empty_axes=1 is an alias."""
    a = imp.attrs(node)
    rank = len(imp.graph.tensors[node.input[0]].shape)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.need_const(node, 1, "axes").reshape(-1).tolist()
    keepdims = _int_attr(node, a, "keepdims", 1, 0, 1)
    if not axes:  # absent or empty: every axis, or none with noop_with_empty_axes
        if _int_attr(node, a, "noop_with_empty_axes", 0, 0, 1):
            imp.alias(node)
            return
        axes = range(rank)
    axes = sorted({_axis(node, ax, rank, "axes value") for ax in axes})
    kind = _REDUCE[node.op_type]
    if keepdims:
        imp.emit(kind, node, [node.input[0]], axes=axes)
        return
    out = imp.activation(node.output[0])
    keep = imp.graph.add_activation(node.output[0] + "__keep", tuple(
        1 if i in axes else d for i, d in enumerate(imp.graph.tensors[node.input[0]].shape)))
    imp.graph.ops.append(Op(kind, node.name, [node.input[0]], [keep], {"axes": axes}))
    imp.graph.ops.append(Op("reshape", node.name + "_squeeze", [keep], [out], {}))


def _float_weights(node, value: np.ndarray, what: str) -> None:
    if value.dtype.kind != "f":
        raise _bad(node, f"{what} must be float (or DequantizeLinear of int8), got {value.dtype}")


@lowering("Gemm")
def _gemm(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    x_shape = imp.graph.tensors[x].shape
    if _int_attr(node, a, "transA", 0, 0, 1):  # A transposed first
        if len(x_shape) != 2:
            raise _bad(node, f"A must be 2-D, got shape {list(x_shape)}")
        x_shape = (x_shape[1], x_shape[0])
        x_t = imp.graph.add_activation(x + "__transA", x_shape)
        imp.graph.ops.append(Op("transpose", node.name + "_transA", [x], [x_t], {"perm": [1, 0]}))
        x = x_t
    trans_b = _int_attr(node, a, "transB", 0, 0, 1)
    b = node.input[1]
    bv = imp.need_const(node, 1, "B")
    _float_weights(node, bv, "B")
    if bv.ndim != 2 or len(x_shape) != 2 or bv.shape[1 if trans_b else 0] != x_shape[1] or bv.size == 0:
        raise _bad(node, f"A of shape {list(x_shape)} and B of shape {list(bv.shape)} (transB={trans_b}) "
                         "do not multiply")
    w = _const_transform(imp.graph, b, lambda x: x if trans_b else x.T, axis_map={0: 1, 1: 0}
                         if not trans_b else {0: 0, 1: 1})
    alpha, beta = _float_attr(node, a, "alpha", 1.0), _float_attr(node, a, "beta", 1.0)
    if alpha != 1.0:
        w = imp.graph.add_const(w + "_alpha", imp.graph.const(w) * np.float32(alpha))
    bias = ""
    if len(node.input) > 2 and node.input[2]:
        c = imp.need_const(node, 2, "C")
        _float_weights(node, c, "C")
        n_out = imp.graph.tensors[w].shape[0]
        if c.size not in (1, n_out) or (c.ndim == 2 and c.shape[0] != 1):  # C over rows too: an add
            out_shape = (x_shape[0], n_out)
            if c.ndim > 2 or any(d not in (1, o) for d, o in zip(c.shape[::-1], out_shape[::-1])):
                raise _bad(node, f"C of shape {list(c.shape)} does not broadcast to the output's "
                                 f"shape {list(out_shape)}")
            rows = imp.graph.add_activation(node.output[0] + "__gemm", out_shape)
            imp.graph.ops.append(Op("fully_connected", node.name, [x, w, ""], [rows], {"act": (-INF, INF)}))
            full = imp.graph.add_const(node.input[2] + "_rows", np.broadcast_to(
                c.astype(np.float32) * np.float32(beta), out_shape).astype(np.float32))
            imp.emit("binary", node, [rows, full], op="add", act=(-INF, INF))
            return
        if c.size == n_out and beta == 1.0 and imp.graph.tensors[node.input[2]].qdata is not None:
            bias = _const_transform(imp.graph, node.input[2], lambda x: x.reshape(n_out))
        else:
            bias = imp.graph.add_const(node.input[2] + "_bias",
                                       np.broadcast_to(c.reshape(-1) * np.float32(beta), (n_out,)).astype(np.float32))
    imp.emit("fully_connected", node, [x, w, bias], act=(-INF, INF))


@lowering("MatMul")
def _matmul(imp: _Importer, node) -> None:
    """A constant 2-D right-hand side: a fully connected layer; any other MatMul
    (two activations, batched or constant left-hand operands): a batch_matmul."""
    b = imp.const(node.input[1])
    if b is None or b.ndim != 2:
        _batch_matmul(imp, node)
        return
    _float_weights(node, b, "the right-hand side")
    x_shape = imp.graph.tensors[node.input[0]].shape
    if not x_shape or x_shape[-1] != b.shape[0] or b.size == 0:
        raise _bad(node, f"inputs of shapes {list(x_shape)} and {list(b.shape)} do not multiply")
    w = _const_transform(imp.graph, node.input[1], lambda x: x.T, axis_map={0: 1, 1: 0})
    imp.emit("fully_connected", node, [node.input[0], w, ""], act=(-INF, INF))


def _batch_matmul(imp: _Importer, node) -> None:
    """numpy matmul semantics (tinydeploy/ops/matmul.py); a 1-D operand is promoted as ONNX
    defines (A [K] -> [1, K], B [K] -> [K, 1]) and the added axis removed from the result."""
    g = imp.graph
    if len(node.input) != 2 or not all(node.input):
        raise _bad(node, "MatMul takes exactly two inputs")
    operands = []
    for k, (name, promote) in enumerate(zip(node.input, ((1,), (-1,)))):
        t = g.tensors[name]
        if t.is_const:
            _float_weights(node, t.data, "the left-hand side" if k == 0 else "the right-hand side")
        shape = t.shape
        if len(shape) == 0:
            raise _bad(node, f"input {k} is a scalar; MatMul needs operands of rank 1 or more")
        if len(shape) == 1:
            shape = (1, shape[0]) if k == 0 else (shape[0], 1)
            if t.is_const:
                name = _const_transform(g, name, lambda x, s=shape: x.reshape(s))
            else:
                name = g.add_activation(name + "__2d_" + node.name, shape, t.dtype)
                g.ops.append(Op("reshape", f"{node.name}_promote{k}", [node.input[k]], [name], {}))
        operands.append(name)
    a_shape, b_shape = (g.tensors[n].shape for n in operands)
    matmul_op.check_shapes(f"node '{node.name}' (MatMul)", a_shape, b_shape)
    out = imp.activation(node.output[0])
    full = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2])) + (a_shape[-2], b_shape[-1])
    if full == g.tensors[out].shape:
        imp.emit("batch_matmul", node, operands)
        return
    mid = g.add_activation(out + "__matmul", full)
    g.ops.append(Op("batch_matmul", node.name, operands, [mid], {}))
    g.ops.append(Op("reshape", node.name + "_squeeze", [mid], [out], {}))


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


@lowering("Add", "Sub", "Mul", "Div")
def _binary(imp: _Importer, node) -> None:
    if len(node.input) != 2 or not all(node.input):
        raise TinydeployError(f"node '{node.name}' ({node.op_type}): only two inputs are supported")
    for i in node.input:
        t = imp.graph.tensors[i]
        if t.is_const and t.dtype != "float32":
            t.data = t.data.astype(np.float32)
            t.dtype = "float32"
    imp.emit("binary", node, list(node.input), op=_BINARY[node.op_type], act=(-INF, INF))


@lowering("Max", "Min")
def _max_min(imp: _Importer, node) -> None:
    """Max/Min of one input (an alias) or of several: a chain of binary ops, activations first
    (each link then has an activation operand), intermediate shapes broadcast step by step."""
    inputs = list(node.input)
    if not all(inputs):
        raise _bad(node, "an input name is empty")
    if len(inputs) == 1:
        imp.alias(node)
        return
    for i in inputs:
        t = imp.graph.tensors[i]
        if t.is_const and t.dtype != "float32":
            t.data = t.data.astype(np.float32)
            t.dtype = "float32"
    inputs.sort(key=lambda i: imp.graph.tensors[i].is_const)
    out = imp.activation(node.output[0])
    acc = inputs[0]
    for k, other in enumerate(inputs[1:], start=1):
        if k == len(inputs) - 1:
            step = out
        else:
            shape = np.broadcast_shapes(imp.graph.tensors[acc].shape, imp.graph.tensors[other].shape)
            step = imp.graph.add_activation(f"{out}__{node.op_type.lower()}{k}", tuple(shape))
        imp.graph.ops.append(Op("binary", node.name if k == 1 else f"{node.name}_{k}", [acc, other], [step],
                                {"op": _BINARY[node.op_type], "act": (-INF, INF)}))
        acc = step


@lowering("Relu", "Clip")
def _clip(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    if node.op_type == "Relu":
        lo, hi = 0.0, INF
    elif imp.opset < 11 or "min" in a or "max" in a:
        lo, hi = a.get("min", -INF), a.get("max", INF)
        if not all(isinstance(v, (int, float)) and not math.isnan(v) for v in (lo, hi)):
            raise _bad(node, f"min and max must be numbers, got {lo!r} and {hi!r}")
        lo, hi = float(lo), float(hi)
    else:
        lo = _scalar_const(node, imp.need_const(node, 1, "min"), "min") \
            if len(node.input) > 1 and node.input[1] else -INF
        hi = _scalar_const(node, imp.need_const(node, 2, "max"), "max") \
            if len(node.input) > 2 and node.input[2] else INF
    if lo > hi:
        raise _bad(node, f"min {lo:g} is larger than max {hi:g}")
    imp.emit("clip", node, [node.input[0]], lo=lo, hi=hi)


def _unary(kind, **defaults):
    def lower(imp: _Importer, node) -> None:
        a = imp.attrs(node)
        params = {k: _float_attr(node, a, k, v) for k, v in defaults.items()}
        imp.emit(kind, node, [node.input[0]], **params)
    return lower


for _op_type, (_kind, _defaults) in {
        "LeakyRelu": ("leaky_relu", dict(alpha=0.01)), "Sigmoid": ("sigmoid", {}), "Tanh": ("tanh", {}),
        "HardSigmoid": ("hard_sigmoid", dict(alpha=0.2, beta=0.5)), "HardSwish": ("hard_swish", {}),
        "Exp": ("exp", {}), "Neg": ("neg", {}), "Abs": ("abs", {}), "Sqrt": ("sqrt", {}),
        "Erf": ("erf", {}), "Elu": ("elu", dict(alpha=1.0)), "Softplus": ("softplus", {})}.items():
    lowering(_op_type)(_unary(_kind, **_defaults))
del _op_type, _kind, _defaults


@lowering("Pow")
def _pow(imp: _Importer, node) -> None:
    """x ** c with a constant scalar exponent (the variance in an exported LayerNorm)."""
    c = imp.const(node.input[1]) if len(node.input) > 1 else None
    if c is None or c.size != 1:
        raise TinydeployError(f"node '{node.name}' (Pow): only a constant scalar exponent is supported")
    exponent = float(c.reshape(-1)[0])
    if not math.isfinite(exponent):
        raise _bad(node, f"the exponent {exponent} is not finite")
    if exponent == 1.0:
        imp.alias(node)
    elif exponent == 0.5:
        imp.emit("sqrt", node, [node.input[0]])
    else:
        imp.emit("pow", node, [node.input[0]], alpha=exponent)


def _layer_norm_statistics(imp: _Importer, node, x: str, axis: int, eps: float, outputs: list) -> None:
    """LayerNormalization's optional Mean and InvStdDev outputs (shape: the input's, with 1
    for each normalized axis), as the ops of their definition: mean(x), then
    1 / sqrt(mean((x - mean)^2) + epsilon). Training graphs use them; the normalized output
    itself stays one fused layer."""
    g, shape = imp.graph, imp.graph.tensors[x].shape
    axes = list(range(axis, len(shape)))
    stat_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    mean_out, inv_out = (outputs + ["", ""])[:2]

    def step(what, kind, inputs, out_shape, out="", **attrs):
        y = imp.activation(out) if out else g.add_activation(f"{node.name}__{what}", out_shape)
        g.ops.append(Op(kind, f"{node.name}_{what}", inputs, [y], attrs))
        return y

    def binary(what, op, a, b, out_shape, out=""):
        return step(what, "binary", [a, b], out_shape, out, op=op, act=(-INF, INF))

    mean = step("mean", "mean", [x], stat_shape, mean_out, axes=axes)
    if not inv_out:
        return
    # (int8 has no kernel for x - mean of two activations: InvStdDev is float32 only)
    centred = binary("inv_std_dev_centred", "sub", x, mean, shape)
    square = binary("inv_std_dev_square", "mul", centred, centred, shape)
    var = step("inv_std_dev_variance", "mean", [square], stat_shape, axes=axes)
    eps_const = g.add_const(f"{node.name}_epsilon", np.array(eps, np.float32))
    std = step("inv_std_dev_sqrt", "sqrt", [binary("inv_std_dev_add_eps", "add", var, eps_const, stat_shape)],
               stat_shape)
    one = g.add_const(f"{node.name}_one", np.array(1.0, np.float32))
    binary("inv_std_dev", "div", one, std, stat_shape, inv_out)


@lowering("LayerNormalization")
def _layer_norm(imp: _Importer, node) -> None:
    """Over the trailing axes from `axis` (opset 17), with constant scale and optional bias;
    the optional Mean and InvStdDev outputs are computed by separate ops when used."""
    a = imp.attrs(node)
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    if not shape:
        raise _bad(node, "the input is a scalar")
    axis = _axis(node, a.get("axis", -1), len(shape))
    eps = _float_attr(node, a, "epsilon", 1e-5)
    if eps < 0:
        raise _bad(node, f"epsilon {eps:g} is negative")
    _int_attr(node, a, "stash_type", 1, 1, 1)
    used = {i for n in imp.model.graph.node for i in n.input} | {o.name for o in imp.model.graph.output}
    if any(o and o in used for o in node.output[1:]):
        _layer_norm_statistics(imp, node, x, axis, eps, [o if o in used else "" for o in node.output[1:]])
    block = tuple(shape[axis:])
    consts = []
    for index, what in ((1, "the scale"), (2, "the bias")):
        if len(node.input) <= index or not node.input[index]:
            consts.append("")
            continue
        value = imp.const(node.input[index])
        if value is None:
            raise _bad(node, f"{what} must be a constant (an initializer); tinydeploy compiles static "
                             "graphs only")
        _float_weights(node, value, what)
        try:
            full = np.broadcast_to(value, block)
        except ValueError:
            raise _bad(node, f"{what} of shape {list(value.shape)} does not broadcast to the normalized "
                             f"axes' shape {list(block)}") from None
        consts.append(imp.graph.add_const(node.input[index] + "_ln", np.ascontiguousarray(full, np.float32)))
    imp.emit("layer_norm", node, [x] + consts, axis=axis, epsilon=eps, size=math.prod(block))


@lowering("Gelu")
def _gelu(imp: _Importer, node) -> None:
    """Gelu (opset 20) as the element-wise ops PyTorch writes for it (erf form, or the tanh
    approximation): float kernels that match onnxruntime, one lookup table in int8."""
    approximate = _str_attr(node, imp.attrs(node), "approximate", "none")
    if approximate not in ("none", "tanh"):
        raise _bad(node, f"approximate '{approximate}' is not one of none, tanh")
    x, out = node.input[0], imp.activation(node.output[0])
    shape = imp.graph.tensors[x].shape
    g = imp.graph

    def step(kind, inputs, last=False, **attrs):
        y = out if last else g.add_activation(f"{out}__gelu{len(g.ops)}", shape)
        g.ops.append(Op(kind, f"{node.name}_{len(g.ops)}" if not last else node.name, inputs, [y], attrs))
        return y

    def const(v):
        return g.add_const(f"{node.name}_c", np.array(v, np.float32))

    def binary(op, a, b, last=False):
        return step("binary", [a, b], last, op=op, act=(-INF, INF))

    if approximate == "none":
        inner = step("erf", [binary("mul", x, const(1 / math.sqrt(2)))])
    else:
        cube = binary("mul", binary("mul", x, x), x)
        poly = binary("add", x, binary("mul", cube, const(0.044715)))
        inner = step("tanh", [binary("mul", poly, const(math.sqrt(2 / math.pi)))])
    binary("mul", binary("mul", x, binary("add", inner, const(1.0))), const(0.5), last=True)


@lowering("Identity", "Dropout")
def _alias(imp: _Importer, node) -> None:
    imp.alias(node)


@lowering("Softmax")
def _softmax(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    rank = len(shape)
    if rank == 0:
        raise _bad(node, "the input is a scalar")
    axis = _axis(node, a.get("axis", -1 if imp.opset >= 13 else 1), rank)
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


@lowering("Concat")
def _concat(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    if not all(node.input):
        raise _bad(node, "an input name is empty")
    rank = len(imp.graph.tensors[imp.activation(node.output[0])].shape)
    if rank == 0 or any(len(imp.graph.tensors[i].shape) != rank for i in node.input):
        raise _bad(node, "the inputs must all have the output's rank (at least 1)")
    if "axis" not in a:
        raise _bad(node, "the attribute 'axis' is missing")
    imp.emit("concat", node, list(node.input), axis=_axis(node, a["axis"], rank))


@lowering("Pad")
def _pad(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    x = node.input[0]
    rank = len(imp.graph.tensors[x].shape)
    pads = a["pads"] if "pads" in a else imp.need_const(node, 1, "pads").reshape(-1).tolist()
    if not isinstance(pads, list) or not all(isinstance(p, int) for p in pads):
        raise _bad(node, f"pads must be integers, got {pads!r}")
    if len(node.input) > 3 and node.input[3]:
        axes = [_axis(node, int(v), rank, "axes value") for v in imp.need_const(node, 3, "axes").reshape(-1)]
        if len(set(axes)) != len(axes) or len(pads) != 2 * len(axes):
            raise _bad(node, f"{len(pads)} pads for axes {axes}")
        full = [0] * (2 * rank)
        for j, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[j], pads[len(axes) + j]
        pads = full
    if len(pads) != 2 * rank:
        raise _bad(node, f"{len(pads)} pads for an input of rank {rank} (needs {2 * rank})")
    if any(p < 0 for p in pads):
        raise TinydeployError(f"node '{node.name}' (Pad): negative pads (cropping) are not supported")
    if any(p > MAX_ELEMENTS for p in pads):
        raise _bad(node, f"pads {pads} are too large")
    mode = _str_attr(node, a, "mode", "constant")
    value = _float_attr(node, a, "value", 0.0)
    if len(node.input) > 2 and node.input[2]:
        value = _scalar_const(node, imp.need_const(node, 2, "constant_value"), "constant_value")
        if math.isinf(value):
            raise _bad(node, "constant_value must be finite")
    if mode not in ("constant", "reflect", "edge"):
        raise TinydeployError(f"node '{node.name}' (Pad): mode '{mode}' is not supported "
                              "(supported: constant, reflect, edge)")
    shape = imp.graph.tensors[x].shape
    if mode == "reflect" and any(p >= d for p, d in zip(pads[:rank] + pads[rank:], shape + shape) if p):
        raise _bad(node, f"reflect pads {pads} must be smaller than the input's dimensions {list(shape)}")
    imp.emit("pad", node, [x], before=pads[:rank], after=pads[rank:], mode=mode, value=value)


@lowering("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(imp: _Importer, node) -> None:
    imp.emit("reshape", node, [node.input[0]])


def _slice_axis(node, start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """ONNX Slice's clamping of one axis -> (first index, element count)."""
    if step == 0:
        raise _bad(node, "a step of 0 is not allowed")
    start, end = (start + dim if start < 0 else start), (end + dim if end < 0 else end)
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, max(0, -(-(end - start) // step))


def _emit_slice(imp: _Importer, node, x: str, out: str, starts: dict, ends: dict, steps: dict,
                name: Optional[str] = None) -> None:
    """Slice axes {axis: value} of activation x into the activation `out`."""
    shape = imp.graph.tensors[x].shape
    first, step = [0] * len(shape), [1] * len(shape)
    for ax in starts:
        first[ax], count = _slice_axis(node, starts[ax], ends[ax], steps.get(ax, 1), shape[ax])
        step[ax] = steps.get(ax, 1)
        if count == 0:
            raise _bad(node, f"the slice of axis {ax} is empty; empty tensors are not supported")
    imp.graph.ops.append(Op("slice", name or node.name, [x], [out], {"starts": first, "steps": step}))


@lowering("Slice")
def _slice(imp: _Importer, node) -> None:
    """Constant starts/ends/axes/steps (attributes before opset 10, inputs since)."""
    x = node.input[0]
    rank = len(imp.graph.tensors[x].shape)
    if imp.opset < 10:
        a = imp.attrs(node)
        starts, ends, axes, steps = a.get("starts"), a.get("ends"), a.get("axes"), None
        if starts is None or ends is None:
            raise _bad(node, "the attributes 'starts' and 'ends' are required")
    else:
        def const(i, what):
            if len(node.input) <= i or not node.input[i]:
                return None
            if imp.const(node.input[i]) is None:
                raise TinydeployError(f"node '{node.name}' (Slice): {what} must be constants "
                                      "(computed at compile time); slicing by run-time values is not supported")
            return [int(v) for v in imp.const(node.input[i]).reshape(-1)]
        starts, ends, axes, steps = (const(i, w) for i, w in enumerate(("starts", "ends", "axes", "steps"),
                                                                          start=1))
    axes = list(range(len(starts))) if axes is None else [_axis(node, int(v), rank, "axes value") for v in axes]
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
        raise _bad(node, f"starts {starts}, ends {ends}, axes {axes} and steps {steps} do not match")
    _emit_slice(imp, node, x, imp.activation(node.output[0]), dict(zip(axes, starts)), dict(zip(axes, ends)),
                dict(zip(axes, steps)))


@lowering("Split")
def _split(imp: _Importer, node) -> None:
    """Split into constant parts (ShuffleNet's channel split, q/k/v): one slice per output."""
    a = imp.attrs(node)
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    axis = _axis(node, a.get("axis", 0), len(shape))
    outputs = [o for o in node.output]
    if not all(outputs):
        raise _bad(node, "an output name is empty")
    if len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in imp.need_const(node, 1, "split").reshape(-1)]
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    else:  # equal parts; since opset 18 the last may be smaller
        part = -(-shape[axis] // len(outputs))
        sizes = [min(part, shape[axis] - i * part) for i in range(len(outputs))]
    if len(sizes) != len(outputs) or sum(sizes) != shape[axis] or min(sizes) < 1:
        raise _bad(node, f"parts {sizes} do not split axis {axis} of size {shape[axis]} into "
                         f"{len(outputs)} non-empty outputs")
    start = 0
    for k, (out, size) in enumerate(zip(outputs, sizes)):
        _emit_slice(imp, node, x, imp.activation(out), {axis: start}, {axis: start + size}, {},
                    name=f"{node.name}_{k}")
        start += size


def _nearest_indices(node, mode: str, rounding: str, n_in: int, n_out: int) -> np.ndarray:
    """The input index each output index reads (ONNX Resize, mode nearest)."""
    o = np.arange(n_out, dtype=np.float64)
    k = n_out / n_in
    coord = {"half_pixel": (o + 0.5) / k - 0.5,
             "pytorch_half_pixel": (o + 0.5) / k - 0.5 if n_out > 1 else np.zeros(n_out),
             "align_corners": o * (n_in - 1) / max(n_out - 1, 1),
             "asymmetric": o / k,
             "tf_half_pixel_for_nn": (o + 0.5) / k}.get(mode)
    if coord is None:
        raise TinydeployError(f"node '{node.name}' ({node.op_type}): coordinate_transformation_mode "
                              f"'{mode}' is not supported for nearest resizing")
    index = {"round_prefer_floor": np.ceil(coord - 0.5), "round_prefer_ceil": np.floor(coord + 0.5),
             "floor": np.floor(coord), "ceil": np.ceil(coord)}.get(rounding)
    if index is None:
        raise _bad(node, f"nearest_mode '{rounding}' is not one of round_prefer_floor, round_prefer_ceil, "
                         "floor, ceil")
    return np.clip(index, 0, n_in - 1).astype(np.int64)


@lowering("Resize", "Upsample")
def _resize(imp: _Importer, node) -> None:
    """Nearest-neighbour upsampling by integer factors (each element repeated k times)."""
    a = imp.attrs(node)
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    out_shape = imp.graph.tensors[imp.activation(node.output[0])].shape
    mode = _str_attr(node, a, "mode", "nearest")
    old = node.op_type == "Upsample" or imp.opset < 11  # floor(o / scale), as Upsample
    if mode == "linear":
        return _resize_linear(imp, node, a, old)
    if mode != "nearest":
        raise TinydeployError(f"node '{node.name}' ({node.op_type}): mode '{mode}' is not supported yet "
                              "(supported: nearest with integer scale factors, linear over H and W); "
                              "export the model with nearest or bilinear upsampling")
    coord_mode = "asymmetric" if old else _str_attr(node, a, "coordinate_transformation_mode", "half_pixel")
    rounding = "floor" if old else _str_attr(node, a, "nearest_mode", "round_prefer_floor")
    scales = []
    for axis, (n_in, n_out) in enumerate(zip(shape, out_shape)):
        k = n_out // n_in
        repeat = np.arange(n_out) // max(k, 1)
        if n_out % n_in or not np.array_equal(_nearest_indices(node, coord_mode, rounding, n_in, n_out), repeat):
            raise TinydeployError(f"node '{node.name}' ({node.op_type}): resizing axis {axis} from {n_in} to "
                                  f"{n_out} ({coord_mode}, {rounding}) does not repeat each element a whole "
                                  "number of times; only nearest upsampling by integer factors is supported")
        scales.append(k)
    if all(k == 1 for k in scales):
        imp.alias(node)
        return
    imp.emit("resize_nearest", node, [x], scales=scales)


def _resize_linear(imp: _Importer, node, a: dict, old: bool) -> None:
    """Bilinear resizing of the H and W axes of an NCHW tensor (ONNX Resize mode "linear")."""
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    out_shape = imp.graph.tensors[imp.activation(node.output[0])].shape
    if len(shape) != 4:
        raise _bad(node, f"mode 'linear' is supported on 4-D NCHW tensors (resizing H and W), got rank {len(shape)}")
    for axis in (0, 1):
        if shape[axis] != out_shape[axis]:
            raise _bad(node, f"mode 'linear' resizes axis {axis} from {shape[axis]} to {out_shape[axis]}; only "
                             "the spatial axes (2 and 3 of NCHW) can be resized bilinearly")
    _need_2d(imp, node, x)
    coord = "asymmetric" if old else _str_attr(node, a, "coordinate_transformation_mode", "half_pixel")
    if coord == "pytorch_half_pixel":
        if min(out_shape[2:]) == 1:
            raise _bad(node, "coordinate_transformation_mode 'pytorch_half_pixel' with an output size of 1 "
                             "is not supported for linear resizing")
        coord = "half_pixel"
    if coord not in ("half_pixel", "align_corners", "asymmetric"):
        raise _bad(node, f"coordinate_transformation_mode '{coord}' is not supported for linear resizing "
                         "(supported: half_pixel, pytorch_half_pixel, align_corners, asymmetric)")
    if _int_attr(node, a, "antialias", 0, 0, 1) and any(o < i for i, o in zip(shape[2:], out_shape[2:])):
        raise _bad(node, "antialias=1 when downsampling is not supported")
    if _int_attr(node, a, "exclude_outside", 0, 0, 1):
        raise _bad(node, "exclude_outside=1 is not supported")
    # onnxruntime maps coordinates with the given scales; the kernels use out/in: they must agree
    at = 1 if old else 2
    scales = imp.const(node.input[at]) if len(node.input) > at and node.input[at] else None
    if scales is not None and scales.size:
        axes = a.get("axes", list(range(len(shape))))
        full = [1.0] * len(shape)
        for ax, sc in zip(axes, scales.reshape(-1).tolist()):
            full[int(ax) % len(shape)] = sc
        for axis in (2, 3):
            if float(np.float32(full[axis])) * shape[axis] != out_shape[axis]:
                raise _bad(node, f"the scale {full[axis]} of axis {axis} does not map its {shape[axis]} elements "
                                 f"to exactly {out_shape[axis]}; give scales with a whole output size, or sizes")
    elif _str_attr(node, a, "keep_aspect_ratio_policy", "stretch") != "stretch":
        raise _bad(node, "keep_aspect_ratio_policy other than 'stretch' is not supported for linear resizing")
    if tuple(shape) == tuple(out_shape):
        imp.alias(node)
        return
    imp.emit("resize_bilinear", node, [x], mode=coord, layout="NCHW")


@lowering("Tile")
def _tile(imp: _Importer, node) -> None:
    """Tile with constant repeats (opset 6+): a zero-stride strided copy."""
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    value = imp.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    if value is None:
        raise TinydeployError(f"node '{node.name}' (Tile): the repeats must be a constant (computed at "
                              "compile time); tiling by run-time values is not supported")
    repeats = [int(v) for v in value.reshape(-1)]
    if len(repeats) != len(shape) or min(repeats, default=1) < 1:
        raise _bad(node, f"repeats {repeats} must be {len(shape)} positive integers (one per axis)")
    if all(r == 1 for r in repeats):
        imp.alias(node)
        return
    imp.emit("tile", node, [x], repeats=repeats)


@lowering("Expand")
def _expand(imp: _Importer, node) -> None:
    """Expand to a constant shape: a reshape to the output rank, then a tile of the
    size-1 axes it broadcasts (a zero-stride strided copy)."""
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    if len(node.input) < 2 or not node.input[1] or imp.const(node.input[1]) is None:
        raise TinydeployError(f"node '{node.name}' (Expand): the shape must be a constant (computed at "
                              "compile time); expanding to a run-time shape is not supported")
    out = imp.activation(node.output[0])
    out_shape = imp.graph.tensors[out].shape
    full = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    repeats = [o // i for i, o in zip(full, out_shape)]
    if any(i not in (1, o) for i, o in zip(full, out_shape)):
        raise _bad(node, f"the input of shape {list(shape)} does not broadcast to {list(out_shape)}")
    if all(r == 1 for r in repeats):
        imp.alias(node)
        return
    src = x
    if full != tuple(shape):
        src = imp.graph.add_activation(x + "__rank", full)
        imp.graph.ops.append(Op("reshape", node.name + "_rank", [x], [src], {}))
    imp.graph.ops.append(Op("tile", node.name, [src], [out], {"repeats": repeats}))


@lowering("Gather")
def _gather(imp: _Importer, node) -> None:
    """Gather of one constant scalar index (x[:, 0], qkv[0], the last time step): a
    one-element slice of that axis, which then disappears (a reshape)."""
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    idx = imp.const(node.input[1]) if len(node.input) > 1 else None
    if idx is None:
        raise TinydeployError(f"node '{node.name}' (Gather): only constant integer indices are supported "
                              "(e.g. x[:, 0], x[:, [0, 2]]); gathering by a run-time index is not")
    if idx.dtype.kind not in "iu" or idx.size == 0:
        raise _bad(node, f"the indices must be a non-empty integer tensor, got {idx.dtype} of shape "
                         f"{list(idx.shape)}")
    if idx.ndim > 0:
        _gather_indices(imp, node, idx)
        return
    axis = _axis(node, imp.attrs(node).get("axis", 0), len(shape))
    i = int(idx)
    if not -shape[axis] <= i < shape[axis]:
        raise _bad(node, f"index {i} is out of range for axis {axis} of size {shape[axis]}")
    one = imp.graph.add_activation(node.output[0] + "__slice", tuple(
        1 if d == axis else n for d, n in enumerate(shape)))
    _emit_slice(imp, node, x, one, {axis: i}, {axis: i + 1 if i != -1 else shape[axis]}, {})
    imp.graph.ops.append(Op("reshape", node.name + "_squeeze", [one], [imp.activation(node.output[0])], {}))


MAX_GATHER_RUNS = 64


def _gather_indices(imp: _Importer, node, idx: np.ndarray) -> None:
    """Gather of a constant index array (x[:, [0, 2, 4]], a fixed permutation of a few rows):
    each run of indices in arithmetic progression (step 0 repeats an element) is one strided
    slice of that axis; several runs are concatenated; an index array of rank > 1 then
    splits the axis (a reshape)."""
    g = imp.graph
    x = node.input[0]
    shape = g.tensors[x].shape
    axis = _axis(node, imp.attrs(node).get("axis", 0), len(shape))
    n = shape[axis]
    flat = [int(i) for i in idx.reshape(-1)]
    bad = [i for i in flat if not -n <= i < n]
    if bad:
        raise _bad(node, f"index {bad[0]} is out of range for axis {axis} of size {n}")
    flat = [i % n for i in flat]
    runs, start = [], 0
    while start < len(flat):
        end, step = start + 1, 1
        if end < len(flat):
            step = flat[end] - flat[start]
            while end < len(flat) and flat[end] - flat[end - 1] == step:
                end += 1
        runs.append((flat[start], step if end - start > 1 else 1, end - start))
        start = end
    if len(runs) > MAX_GATHER_RUNS:
        raise _bad(node, f"the {len(flat)} indices form {len(runs)} runs of evenly spaced indices; at most "
                         f"{MAX_GATHER_RUNS} are supported (each is one strided copy); reorder the tensor "
                         "with a Transpose or Slice instead")
    out = imp.activation(node.output[0])
    flat_shape = shape[:axis] + (len(flat),) + shape[axis + 1:]
    gathered = out if flat_shape == g.tensors[out].shape else g.add_activation(out + "__gather", flat_shape)
    parts = []
    for k, (first, step, count) in enumerate(runs):
        part = gathered if len(runs) == 1 else \
            g.add_activation(f"{out}__run{k}", shape[:axis] + (count,) + shape[axis + 1:])
        starts, steps = [0] * len(shape), [1] * len(shape)
        starts[axis], steps[axis] = first, step
        g.ops.append(Op("slice", node.name if len(runs) == 1 else f"{node.name}_run{k}", [x], [part],
                        {"starts": starts, "steps": steps}))
        parts.append(part)
    if len(runs) > 1:
        g.ops.append(Op("concat", node.name, parts, [gathered], {"axis": axis}))
    if gathered != out:
        g.ops.append(Op("reshape", node.name + "_split", [gathered], [out], {}))


@lowering("Transpose")
def _transpose(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    rank = len(imp.graph.tensors[node.input[0]].shape)
    perm = a.get("perm", list(reversed(range(rank))))
    if not isinstance(perm, list) or sorted(perm) != list(range(rank)):
        raise _bad(node, f"perm {perm!r} is not a permutation of the input's {rank} axes")
    imp.emit("transpose", node, [node.input[0]], perm=[int(p) for p in perm])


@lowering("BatchNormalization")
def _batchnorm(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    shape = imp.graph.tensors[node.input[0]].shape
    if len(shape) < 2:
        raise _bad(node, f"the input must have a channel axis (rank >= 2), got shape {list(shape)}")
    scale, bias, mean, var = (imp.need_const(node, i, n) for i, n in
                              enumerate(["scale", "B", "mean", "var"], start=1))
    for what, v in (("scale", scale), ("B", bias), ("mean", mean), ("var", var)):
        if v.size != shape[1] or v.dtype.kind != "f":
            raise _bad(node, f"{what} must hold {shape[1]} float values (one per channel), "
                             f"got {v.dtype} of shape {list(v.shape)}")
    eps = _float_attr(node, a, "epsilon", 1e-5)
    if np.any(var.astype(np.float64) + eps <= 0):
        raise _bad(node, "var + epsilon must be positive")
    mul = (scale.reshape(-1) / np.sqrt(var.reshape(-1).astype(np.float64) + eps)).astype(np.float32)
    add = (bias.reshape(-1) - mean.reshape(-1) * mul).astype(np.float32)
    imp.emit("batchnorm", node, [node.input[0]], mul=mul, add=add)


def _check_scale(node, scale: np.ndarray) -> None:
    if scale.dtype.kind != "f" or scale.size == 0:
        raise _bad(node, f"the scale must be a float tensor, got {scale.dtype} of shape {list(scale.shape)}")
    s = scale.astype(np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0) or not np.all(np.isfinite(scale.astype(np.float32))) \
            or np.any(scale.astype(np.float32) <= 0):
        raise _bad(node, f"the scale must be positive and finite (as float32), got "
                         f"{scale.reshape(-1)[:4].tolist()}")


def _check_block_quant(node, a: dict) -> None:
    if a.get("block_size", 0):
        raise _bad(node, "blocked quantization (block_size) is not supported")


def _check_int4_uses(graph) -> None:
    """INT4 initializers are int4 weights: the data (and zero point) of a DequantizeLinear."""
    int4 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT4}
    for node in graph.node if int4 else ():
        for k, name in enumerate(node.input):
            if name in int4 and not (node.op_type == "DequantizeLinear" and k in (0, 2)):
                raise TinydeployError(f"node '{node.name}' ({node.op_type}): input '{name}' is an INT4 "
                                      "constant; tinydeploy takes INT4 data only as int4 weights, the "
                                      "input of a DequantizeLinear")


@lowering("DequantizeLinear")
def _dequantize(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    _check_block_quant(node, a)
    q = imp.graph.tensors[node.input[0]]
    scale = imp.need_const(node, 1, "the scale")
    _check_scale(node, scale)
    zp = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    qtype = q.data.dtype if q.is_const else np.dtype(q.dtype)
    if qtype not in (np.int8, np.uint8) and not (q.is_const and (qtype == np.int32 or qtype.name == "int4")):
        raise _bad(node, f"{qtype} data is not supported (int8 or uint8; int4 for weights, int32 for biases)")
    if len(node.input) > 2 and node.input[2] and zp is None:
        raise _bad(node, "the zero point must be a constant")
    if zp is None:
        zp = np.zeros(scale.shape, qtype)
    if zp.dtype != qtype or zp.size != scale.size:
        raise _bad(node, f"the zero point ({zp.dtype}, shape {list(zp.shape)}) must match the data type "
                         f"({qtype}) and the scale's shape {list(scale.shape)}")
    if scale.size > 1:
        rank = len(q.shape)
        if scale.ndim != 1 or rank == 0:
            raise _bad(node, f"a per-axis scale must be 1-D, got shape {list(scale.shape)}")
        axis = _axis(node, a.get("axis", 1), rank)
        if q.shape[axis] != scale.size:
            raise _bad(node, f"{scale.size} scales for axis {axis} of size {q.shape[axis]}")
    else:
        axis = None
    if q.is_const:
        data = q.data.astype(np.int64)
        if axis is not None:
            shape = [1] * data.ndim
            shape[axis] = -1
            real = (data - zp.astype(np.int64).reshape(shape)) * scale.reshape(shape).astype(np.float64)
        else:
            real = (data - zp.astype(np.int64).reshape(())) * np.float64(scale.reshape(()))
        out = imp.graph.add_tensor(Tensor(node.output[0], q.shape, "float32", real.astype(np.float32)))
        out.qdata = q.data
        out.quant = QuantParams(scale.reshape(-1) if axis is not None else scale.reshape(()),
                                zp.astype(np.int32).reshape(-1) if axis is not None else zp.astype(np.int32).reshape(()),
                                axis)
        return
    if scale.size != 1:
        raise TinydeployError(f"node '{node.name}' (DequantizeLinear): per-channel quantization of "
                              "activations is not supported (activations are per-tensor)")
    imp.emit("dequantize", node, [node.input[0]], scale=np.float32(scale.reshape(-1)[0]),
             zero_point=int(zp.reshape(-1)[0]), qtype=str(qtype))


@lowering("QuantizeLinear")
def _quantize(imp: _Importer, node) -> None:
    a = imp.attrs(node)
    _check_block_quant(node, a)
    scale = imp.need_const(node, 1, "the scale")
    _check_scale(node, scale)
    if len(node.input) > 2 and node.input[2] and imp.const(node.input[2]) is None:
        raise _bad(node, "the zero point must be a constant")
    zp = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros((), np.uint8)
    if scale.size != 1:
        raise TinydeployError(f"node '{node.name}' (QuantizeLinear): per-channel quantization of "
                              "activations is not supported (activations are per-tensor)")
    if zp.dtype not in (np.int8, np.uint8):
        raise TinydeployError(f"node '{node.name}' (QuantizeLinear): {zp.dtype} activations are not "
                              "supported; tinydeploy quantizes activations to int8 (uint8 is converted)")
    if zp.size != 1:
        raise _bad(node, f"the zero point must be a single value, got shape {list(zp.shape)}")
    if a.get("output_dtype", 0) not in (0, onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
        raise _bad(node, f"output_dtype {dtype_name(a['output_dtype'])} is not supported (int8, uint8)")
    if imp.graph.tensors[node.input[0]].dtype != "float32":
        raise _bad(node, f"the input must be float32, got {imp.graph.tensors[node.input[0]].dtype}")
    imp.emit("quantize", node, [node.input[0]], scale=np.float32(scale.reshape(-1)[0]),
             zero_point=int(zp.reshape(-1)[0]), qtype=str(zp.dtype))


@lowering("Cast")
def _cast(imp: _Importer, node) -> None:
    to = imp.attrs(node).get("to")
    src = imp.graph.tensors[node.input[0]].dtype
    if not isinstance(to, int) or _ONNX_DTYPES.get(to) != src:
        raise TinydeployError(f"node '{node.name}' (Cast): casting {src} activations to "
                              f"{_ONNX_DTYPES.get(to, dtype_name(to) if isinstance(to, int) else to)} "
                              "is not supported")
    imp.alias(node)


@lowering("LSTM", "GRU")
def _rnn(imp: _Importer, node) -> None:
    """One LSTM/GRU layer (tinydeploy/ops/rnn.py): constant W, R, B; the default activations;
    initial states absent, constant or computed; one op per output the model reads (Y, Y_h,
    Y_c), each running the whole recurrence, except Y_h read with Y (a slice of Y's last step
    per direction). layout=1 (batch first) goes through transposes."""
    lstm, a = node.op_type == "LSTM", imp.attrs(node)
    n_gates = 4 if lstm else 3
    direction = _str_attr(node, a, "direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise _bad(node, f"direction '{direction}' is not one of forward, reverse, bidirectional")
    n_dir = 2 if direction == "bidirectional" else 1
    default = (["Sigmoid", "Tanh", "Tanh"] if lstm else ["Sigmoid", "Tanh"]) * n_dir
    acts = [v.decode() if isinstance(v, bytes) else str(v) for v in a.get("activations", default)]
    if [v.lower() for v in acts] != [v.lower() for v in default]:
        raise _bad(node, f"activations {acts} are not supported; tinydeploy compiles the default "
                         f"activations {default} only (re-export the model with them)")
    for key, what in (("clip", "cell clipping"), ("activation_alpha", "activation parameters"),
                      ("activation_beta", "activation parameters"),
                      ("input_forget", "coupled input and forget gates")):
        if key in a and not (key == "input_forget" and a[key] == 0):
            raise _bad(node, f"attribute '{key}' ({what}) is not supported; tinydeploy compiles "
                             f"{node.op_type} without it (remove it from the model)")
    hidden = _int_attr(node, a, "hidden_size", 0, 1, MAX_ELEMENTS)
    layout = _int_attr(node, a, "layout", 0, 0, 1)
    lbr = _int_attr(node, a, "linear_before_reset", 0, 0, 1) if not lstm else 0
    x = node.input[0]
    shape = imp.graph.tensors[x].shape
    if len(shape) != 3:
        raise _bad(node, f"X must have rank 3 ([seq, batch, input]), got shape {list(shape)}")
    seq, batch, n_in = (shape[1], shape[0], shape[2]) if layout else shape
    want = {1: ("W", (n_dir, n_gates * hidden, n_in)), 2: ("R", (n_dir, n_gates * hidden, hidden)),
            3: ("B", (n_dir, 2 * n_gates * hidden))}
    for k, (what, wshape) in want.items():
        if k == 3 and (len(node.input) <= 3 or not node.input[3]):
            continue
        value = imp.need_const(node, k, what)
        _float_weights(node, value, what)
        if tuple(value.shape) != wshape:
            raise _bad(node, f"{what} has shape {list(value.shape)}; expected {list(wshape)} "
                             f"({direction}, hidden_size {hidden}, input size {n_in})")
    b = node.input[3] if len(node.input) > 3 and node.input[3] else \
        imp.graph.add_const(node.name + "_B", np.zeros((n_dir, 2 * n_gates * hidden), np.float32))
    if len(node.input) > 4 and node.input[4]:
        lens = imp.const(node.input[4])
        if lens is None or lens.shape != (batch,) or np.any(lens != seq):
            raise _bad(node, f"sequence_lens must be absent or a constant equal to the sequence length "
                             f"({seq}) for every batch entry; variable-length sequences are not supported")
    if lstm and len(node.input) > 7 and node.input[7]:
        p = imp.const(node.input[7])
        if p is None or np.any(p != 0):
            raise _bad(node, "peephole weights (input P) are not supported; only LSTMs without "
                             "peepholes compile")
    state_shape = (batch, n_dir, hidden) if layout else (n_dir, batch, hidden)
    perm = [1, 0, 2]

    def seq_first(name: str, what: str) -> str:
        """An input in [seq|dir, batch, ...] order ('' for an absent or all-zero state)."""
        if what != "X":
            if imp.graph.tensors[name].shape != state_shape:
                raise _bad(node, f"{what} has shape {list(imp.graph.tensors[name].shape)}; expected "
                                 f"{list(state_shape)}")
            value = imp.const(name)
            if value is not None:
                _float_weights(node, value, what)
                if not np.any(value):
                    return ""
                return imp.graph.add_const(name + "_t", value.transpose(perm)) if layout else name
        if not layout:
            return name
        out = imp.graph.add_activation(name + "__seq_first", tuple(imp.graph.tensors[name].shape[i] for i in perm))
        imp.graph.ops.append(Op("transpose", f"{node.name}_{what}_transpose", [name], [out], {"perm": perm}))
        return out

    states = [seq_first(node.input[k], what) if len(node.input) > k and node.input[k] else ""
              for k, what in ((5, "initial_h"), (6, "initial_c")) if lstm or k == 5]
    inputs = [seq_first(x, "X"), node.input[1], node.input[2], b] + states
    read = {i for n in imp.model.graph.node for i in n.input} | {o.name for o in imp.model.graph.output}
    kind = "lstm" if lstm else "gru"
    y_seq = None  # Y in [seq, dirs, batch, hidden] once computed: Y_h is its last step per direction
    for k, output in enumerate(("y", "h", "c")[:len(node.output)]):
        out = node.output[k]
        if not out or out not in read:
            continue
        attrs = dict(hidden=hidden, direction=direction, output=output)
        if not lstm:
            attrs["linear_before_reset"] = lbr
        name = node.name if k == 0 else f"{node.name}_{('Y', 'Y_h', 'Y_c')[k]}"
        inner = imp.activation(out) if not layout else imp.graph.add_activation(
            out + "__seq_first", (seq, n_dir, batch, hidden) if k == 0 else (n_dir, batch, hidden))
        if k == 1 and y_seq is not None:
            steps = []
            for d in range(n_dir):
                t = 0 if d == 1 or direction == "reverse" else seq - 1
                one = imp.graph.add_activation(f"{out}__dir{d}", (1, 1, batch, hidden))
                _emit_slice(imp, node, y_seq, one, {0: t, 1: d}, {0: t + 1, 1: d + 1}, {}, name=f"{name}_dir{d}")
                steps.append(one)
            if n_dir == 2:
                both = imp.graph.add_activation(out + "__dirs", (1, 2, batch, hidden))
                imp.graph.ops.append(Op("concat", name + "_dirs", steps, [both], {"axis": 1}))
                steps = [both]
            imp.graph.ops.append(Op("reshape", name, steps, [inner], {}))
        else:
            imp.graph.ops.append(Op(kind, name, list(inputs), [inner], attrs))
            y_seq = inner if k == 0 else y_seq
        if layout:
            imp.graph.ops.append(Op("transpose", name + "_transpose", [inner], [imp.activation(out)],
                                    {"perm": [2, 0, 1, 3] if k == 0 else perm}))


def _register_qlinear() -> None:
    from .frontend_qlinear import register
    register(LOWERINGS)


_register_qlinear()


def load(path: str, input_shapes: Optional[dict] = None, name: Optional[str] = None) -> Graph:
    """ONNX file -> IR graph (ONNX layout), with static shapes and constants folded.
    A .tflite file (by extension or file identifier) goes to frontend_tflite."""
    from . import frontend_tflite
    if frontend_tflite.is_tflite(path):
        return frontend_tflite.load(path, input_shapes, name)
    model, opset = folded_model(path, input_shapes)
    stem = name or os.path.splitext(os.path.basename(path))[0]
    return _Importer(model, opset, stem).run()


def folded_model(path: str, input_shapes: Optional[dict] = None) -> tuple[onnx.ModelProto, int]:
    """The ONNX model as the importer sees it: input shapes fixed and every node whose
    inputs are constants (Shape, Constant, Slice of constants...) folded away."""
    model = read_model(path)
    opset = default_opset(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise TinydeployError(f"the model uses opset {opset}; the installed onnx package "
                              f"({onnx.__version__}) knows opsets {MIN_OPSET} to {MAX_OPSET} (upgrade onnx, "
                              "or convert the model with onnx.version_converter)")
    for init in model.graph.initializer:  # before shape inference reads them
        decode_initializer(init)
    declared = {i.name: ",".join(str(d.dim_value) if d.dim_value > 0 else (d.dim_param or "?")
                                 for d in i.type.tensor_type.shape.dim) for i in model.graph.input}
    _check_io_names(model)
    _fix_input_shapes(model, input_shapes or {})
    try:
        return fold_onnx_constants(model, opset), opset
    except TinydeployError as exc:
        if not input_shapes or not str(exc).startswith("shape inference failed: "):
            raise
        raise TinydeployError(_input_shape_mismatch(str(exc), input_shapes, declared)) from None


def _input_shape_mismatch(message: str, input_shapes: dict, declared: dict) -> str:
    """Shape inference's refusal of an --input-shape, as the user's problem: which node
    does not accept the shape, and what the model declares."""
    given = " ".join(f"{n}={','.join(map(str, s))}" for n, s in input_shapes.items())
    model = " ".join(f"{n}={declared.get(n, '?')}" for n in input_shapes)
    where = re.search(r"op_type:\s*(\w+), node name:\s*([^)]*)\)", message)
    detail = message.rsplit("] ", 1)[-1]
    node = f"node '{where.group(2)}' ({where.group(1)}) does not accept it ({detail})" if where else detail
    return (f"--input-shape {given}: {node}; the model declares {model}: give a shape its layers "
            "accept (e.g. the declared one), or re-export the model for this size")


def _check_io_names(model: onnx.ModelProto) -> None:
    """Outputs that are inputs or listed twice (refused before shape inference trips on them)."""
    inits = {i.name for i in model.graph.initializer}
    inputs = {i.name for i in model.graph.input if i.name not in inits}
    seen = set()
    for out in model.graph.output:
        if out.name in inputs:
            raise TinydeployError(f"model output '{out.name}' is a model input itself; nothing to compute "
                                  "(remove it from the outputs: the caller has it already)")
        if out.name in seen:
            raise TinydeployError(f"model output '{out.name}' is listed twice among the model's "
                                  "outputs; list it once")
        seen.add(out.name)


def is_supported(node: onnx.NodeProto) -> bool:
    return node.domain in ("", "ai.onnx") and node.op_type in LOWERINGS
