"""Front end for TensorFlow Lite flatbuffers (.tflite): the file -> the same IR as ONNX.

The flatbuffer is read with the `tflite` package (the generated schema classes).
Each operator becomes IR ops with float semantics and quantization annotations,
exactly as a QDQ ONNX model is imported: activations carry the file's own scale
and zero point (tensor.quant), weights their int8 data (tensor.qdata, per-channel
QuantParams on axis 0) and biases their int32 data, so that quantize.to_int8
converts the graph with the file's parameters and the C is bit-exact with
TFLite Micro running the file.

Layout: TFLite tensors are NHWC. Every IR tensor keeps the file's (logical NHWC)
shape, so axes of MEAN, CONCATENATION, PAD, SOFTMAX... need no remapping; only
the convolutions and pools, which the IR defines in NCHW (as ONNX), are wrapped
in a transpose to NCHW before and back to NHWC after, with their weights
presented as OIHW. The layout pass turns these transposes into free aliases
(the same thing it does for ONNX models exported from TensorFlow), so the
generated code has no transposes. Fused activations (RELU, RELU6, RELU_N1_TO_1)
become the op's clamp.

Float (non-quantized) .tflite files give a float IR: compile them with
--quantize float32, or to int8 with --calib.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .errors import TinydeployError
from .ir import Graph, Op, QuantParams, Tensor
from .ops import matmul as matmul_op

INF = float("inf")
MAX_RANK = 6
MAX_ELEMENTS = (1 << 31) - 1
IDENTIFIER = b"TFL3"
NCHW_FROM_NHWC = [0, 3, 1, 2]
NHWC_FROM_NCHW = [0, 2, 3, 1]


def is_tflite(path) -> bool:
    """A .tflite file by its extension, or any file with the TFLite file identifier."""
    path = str(path)
    if path.lower().endswith(".tflite"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == IDENTIFIER


def _schema():
    try:
        import tflite  # the generated TFLite flatbuffers schema classes (PyPI: tflite)
    except ImportError:
        raise TinydeployError("reading .tflite files needs the 'tflite' package: "
                              "pip install tflite") from None
    return tflite


# --------------------------------------------------------------------------
# Reading the flatbuffer into plain records
# --------------------------------------------------------------------------
@dataclass
class _TTensor:
    index: int
    name: str
    shape: tuple
    type: str  # "float32", "int8", "int32", ... ("?N" for unknown codes)
    data: Optional[np.ndarray]  # constants only, in `type`
    scales: np.ndarray
    zero_points: np.ndarray
    qdim: int


@dataclass
class _TOp:
    index: int
    name: str  # the builtin name, e.g. CONV_2D
    inputs: list
    outputs: list
    options: object  # the flatbuffers table, or None
    version: int


@dataclass
class _TModel:
    tensors: list
    ops: list
    inputs: list
    outputs: list


def _type_names(tflite) -> dict:
    names = {v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    return names


_NUMPY = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "uint8": np.uint8,
          "int16": np.int16, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def _read(path: str) -> _TModel:
    if not os.path.exists(path):
        raise TinydeployError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise TinydeployError(f"{path} is a directory, not a model file")
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8 or buf[4:8] != IDENTIFIER:
        raise TinydeployError(f"{path} is not a TensorFlow Lite model: it lacks the flatbuffer file "
                              f"identifier {IDENTIFIER.decode()} (is it really a .tflite file?)")
    tflite = _schema()
    try:
        return _parse(tflite, buf)
    except TinydeployError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError, OverflowError,
            AttributeError):
        raise TinydeployError(f"{path} is not a valid TensorFlow Lite model: the flatbuffer could not "
                              "be read; the file may be truncated or corrupted") from None


def _parse(tflite, buf: bytes) -> _TModel:
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise TinydeployError("the .tflite model has no subgraph")
    types = _type_names(tflite)
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sg = model.Subgraphs(0)
    n_buffers = model.BuffersLength()
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        ttype = types.get(t.Type(), f"?{t.Type()}")
        data = None
        if 0 < t.Buffer() < n_buffers:
            b = model.Buffers(t.Buffer())
            raw = None
            if b.Offset() > 1:  # large models keep the data after the flatbuffer
                raw = buf[b.Offset():b.Offset() + b.Size()]
                if len(raw) != b.Size():
                    raise TinydeployError(f"tensor {i} ('{_name(t)}'): its buffer lies past the end "
                                          "of the file")
            elif b.DataLength():
                raw = b.DataAsNumpy().tobytes()
            if raw:
                if ttype not in _NUMPY:
                    raise TinydeployError(f"tensor {i} ('{_name(t)}') is a {ttype} constant, which "
                                          "is not supported")
                dt = np.dtype(_NUMPY[ttype]).newbyteorder("<")
                count = math.prod(shape)
                if len(raw) != count * dt.itemsize:
                    raise TinydeployError(f"tensor {i} ('{_name(t)}'): its buffer has {len(raw)} bytes, "
                                          f"its shape {list(shape)} of {ttype} needs "
                                          f"{count * dt.itemsize}")
                data = np.frombuffer(raw, dt).astype(_NUMPY[ttype]).reshape(shape)
        q = t.Quantization()
        scales = np.zeros(0, np.float32)
        zps = np.zeros(0, np.int64)
        qdim = 0
        if q is not None:
            if q.ScaleLength():
                scales = q.ScaleAsNumpy().astype(np.float32)
            if q.ZeroPointLength():
                zps = q.ZeroPointAsNumpy().astype(np.int64)
            qdim = int(q.QuantizedDimension())
            if q.DetailsType():
                raise TinydeployError(f"tensor {i} ('{_name(t)}') uses custom quantization details, "
                                      "which are not supported")
        if t.Sparsity() is not None:
            raise TinydeployError(f"tensor {i} ('{_name(t)}') is sparse, which is not supported")
        tensors.append(_TTensor(i, _name(t), shape, ttype, data, scales, zps, qdim))
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        name = op_names.get(code, f"builtin operator {code}")
        if name == "CUSTOM":
            custom = oc.CustomCode()
            name = f"CUSTOM ({custom.decode(errors='replace') if custom else '?'})"
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for v in ins + outs:
            if v >= len(tensors) or v < -1:
                raise TinydeployError(f"operator {i} ({name}) refers to tensor {v}, but the model "
                                      f"has {len(tensors)} tensors")
        ops.append(_TOp(i, name, ins, outs, op.BuiltinOptions(), int(oc.Version())))
    inputs = [int(v) for v in sg.InputsAsNumpy()] if sg.InputsLength() else []
    outputs = [int(v) for v in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    for v in inputs + outputs:
        if not 0 <= v < len(tensors):
            raise TinydeployError(f"the subgraph's inputs/outputs refer to tensor {v}, but the model has "
                                  f"{len(tensors)} tensors")
    return _TModel(tensors, ops, inputs, outputs)


def _name(t) -> str:
    n = t.Name()
    return n.decode("utf-8", errors="replace") if n else ""


def _options(tflite, op: _TOp, cls: str, required: bool = False):
    """The operator's builtin options as the schema class `cls` (None if absent)."""
    if op.options is None:
        if required:
            raise TinydeployError(f"operator {op.index} ({op.name}): its options ({cls}) are missing")
        return None
    opts = getattr(tflite, cls)()
    opts.Init(op.options.Bytes, op.options.Pos)
    return opts


# --------------------------------------------------------------------------
# Lowering to the IR
# --------------------------------------------------------------------------
LOWERINGS: dict[str, Callable] = {}


def lowering(*names: str) -> Callable:
    def register(fn: Callable) -> Callable:
        for n in names:
            LOWERINGS[n] = fn
        return fn
    return register


def _act(imp, op: _TOp, code: int) -> tuple:
    """A fused activation (ActivationFunctionType) -> the op's real clamp interval."""
    table = {0: (-INF, INF), 1: (0.0, INF), 2: (-1.0, 1.0), 3: (0.0, 6.0)}
    if code not in table:
        names = {v: k for k, v in vars(imp.tflite.ActivationFunctionType).items() if not k.startswith("_")}
        raise imp.bad(op, f"the fused activation {names.get(code, code)} is not supported "
                          "(supported: NONE, RELU, RELU6, RELU_N1_TO_1)")
    return table[code]


class _Importer:
    def __init__(self, model: _TModel, name: str, tflite):
        self.m = model
        self.tflite = tflite
        self.g = Graph(name)
        self.names: dict[int, str] = {}
        self.nchw: dict[str, str] = {}
        self.quantized = any(t.type == "int8" and t.data is None for t in model.tensors)

    # -- errors ----------------------------------------------------------------
    @staticmethod
    def bad(op: _TOp, problem: str) -> TinydeployError:
        return TinydeployError(f"operator {op.index} ({op.name}): {problem}")

    # -- tensors ---------------------------------------------------------------
    def _unique(self, t: _TTensor) -> str:
        name = t.name or f"tensor_{t.index}"
        if name in self.g.tensors:
            name = f"{name}_{t.index}"
        return self.g.unique_name(name)

    def _quant(self, t: _TTensor, op: Optional[_TOp]) -> Optional[QuantParams]:
        if t.scales.size == 0:
            return None
        zps = t.zero_points if t.zero_points.size else np.zeros(t.scales.size, np.int64)
        if zps.size != t.scales.size:
            where = f"operator {op.index} ({op.name}): " if op is not None else ""
            raise TinydeployError(f"{where}tensor {t.index} ('{t.name}') has {t.scales.size} scales "
                                  f"but {zps.size} zero points")
        if t.scales.size == 1:
            return QuantParams(np.float32(t.scales[0]), np.int32(zps[0]))
        return QuantParams(t.scales.astype(np.float32), zps.astype(np.int32), t.qdim)

    def tensor(self, idx: int, op: Optional[_TOp] = None) -> str:
        """The IR tensor for file tensor idx (created on first use)."""
        if idx in self.names:
            return self.names[idx]
        t = self.m.tensors[idx]
        where = f"operator {op.index} ({op.name}): " if op is not None else ""
        if len(t.shape) > MAX_RANK:
            raise TinydeployError(f"{where}tensor {idx} ('{t.name}') has rank {len(t.shape)}; tensors of "
                                  f"more than {MAX_RANK} dimensions are not supported")
        if any(d <= 0 for d in t.shape):
            raise TinydeployError(f"{where}tensor {idx} ('{t.name}') has shape {list(t.shape)}: dynamic or "
                                  "empty dimensions are not supported")
        if math.prod(t.shape) > MAX_ELEMENTS:
            raise TinydeployError(f"{where}tensor {idx} ('{t.name}') has shape {list(t.shape)}: too large")
        name = self._unique(t)
        q = self._quant(t, op)
        if t.data is not None:
            self.g.add_tensor(self._const(name, t, q))
        else:
            if t.type == "int8":
                if q is None:
                    raise TinydeployError(f"{where}int8 tensor {idx} ('{t.name}') has no quantization "
                                          "parameters")
                if not q.per_tensor:
                    raise TinydeployError(f"{where}tensor {idx} ('{t.name}') is quantized per channel; "
                                          "activations must be quantized per tensor")
            elif t.type == "float32":
                q = None
            else:
                raise TinydeployError(f"{where}tensor {idx} ('{t.name}') is a {t.type} activation; "
                                      "tinydeploy computes int8 (quantized) or float32 tensors "
                                      "(int16 activations and uint8 models are not supported)")
            self.g.add_tensor(Tensor(name, t.shape, "float32", quant=q))
        self.names[idx] = name
        return name

    @staticmethod
    def _const(name: str, t: _TTensor, q: Optional[QuantParams]) -> Tensor:
        data = t.data
        if data.dtype == np.float16:
            data = data.astype(np.float32)
        if q is None or data.dtype.kind == "f":
            return Tensor(name, t.shape, str(data.dtype), np.ascontiguousarray(data))
        if data.dtype not in (np.int8, np.int32):
            raise TinydeployError(f"tensor {t.index} ('{t.name}'): quantized {data.dtype} constants are "
                                  "not supported (int8 weights, int32 biases)")
        shape = [1] * data.ndim
        if not q.per_tensor:
            if not 0 <= q.axis < data.ndim or data.shape[q.axis] != q.scale.size:
                raise TinydeployError(f"tensor {t.index} ('{t.name}'): {q.scale.size} scales for "
                                      f"dimension {q.axis} of shape {list(data.shape)}")
            shape[q.axis] = -1
        real = (data.astype(np.int64) - q.zero_point.astype(np.int64).reshape(shape)) * \
            q.scale.astype(np.float64).reshape(shape)
        out = Tensor(name, t.shape, "float32", real.astype(np.float32), q)
        out.qdata = np.ascontiguousarray(data)
        return out

    def const_of(self, op: _TOp, k: int, what: str) -> np.ndarray:
        """The integer/float data of operator input k, which must be a constant."""
        idx = op.inputs[k] if k < len(op.inputs) else -1
        if idx < 0 or self.m.tensors[idx].data is None:
            raise self.bad(op, f"{what} (input {k}) must be a constant; tinydeploy compiles static graphs")
        return self.m.tensors[idx].data

    def activation_in(self, op: _TOp, k: int = 0) -> str:
        idx = op.inputs[k] if k < len(op.inputs) else -1
        if idx < 0:
            raise self.bad(op, f"input {k} is missing")
        name = self.tensor(idx, op)
        if self.g.tensors[name].is_const:
            raise self.bad(op, f"input {k} is a constant; operators on constants only are not supported")
        return name

    def out(self, op: _TOp, k: int = 0) -> str:
        if len(op.outputs) <= k or op.outputs[k] < 0:
            raise self.bad(op, f"output {k} is missing")
        if op.outputs[k] in self.names:
            raise self.bad(op, f"output tensor {op.outputs[k]} is written twice")
        t = self.m.tensors[op.outputs[k]]
        if t.data is not None:
            raise self.bad(op, f"output tensor {t.index} ('{t.name}') has constant data")
        return self.tensor(op.outputs[k], op)

    def emit(self, kind: str, top: _TOp, inputs: list, output: str, suffix: str = "", **attrs) -> str:
        self.g.ops.append(Op(kind, f"{top.name.lower()}_{top.index}{suffix}", list(inputs), [output], attrs))
        return output

    def activation(self, hint: str, shape, like: str) -> str:
        """A new activation with the quantization of `like`."""
        name = self.g.add_activation(hint, shape)
        self.g.tensors[name].quant = self.g.tensors[like].quant
        return name

    def to_nchw(self, x: str) -> str:
        """The NCHW view of a 4-D NHWC activation (one transpose per tensor; the layout
        pass makes it an alias)."""
        if x not in self.nchw:
            n, h, w, c = self.g.tensors[x].shape
            y = self.activation(x + "_nchw", (n, c, h, w), x)
            self.g.ops.append(Op("transpose", y, [x], [y], {"perm": list(NCHW_FROM_NHWC)}))
            self.nchw[x] = y
        return self.nchw[x]

    def from_nchw(self, op: _TOp, out: str, kind: str, inputs: list, **attrs) -> None:
        """Emit an NCHW op producing the NHWC activation `out`."""
        n, h, w, c = self.g.tensors[out].shape
        y = self.activation(out + "_nchw", (n, c, h, w), out)
        self.emit(kind, op, inputs, y, **attrs)
        self.g.ops.append(Op("transpose", f"{op.name.lower()}_{op.index}_to_nhwc", [y], [out],
                             {"perm": list(NHWC_FROM_NCHW)}))

    def weights(self, op: _TOp, k: int, fn: Callable, qdim: int, what: str, ir_axis: int = 0) -> str:
        """Constant weights reordered by fn (to OIHW / [out][in]); per-channel quantization
        must be along the file's output-channel dimension qdim, and ends up on ir_axis."""
        idx = op.inputs[k] if k < len(op.inputs) else -1
        if idx < 0 or self.m.tensors[idx].data is None:
            raise self.bad(op, f"the {what} (input {k}) must be constant")
        t = self.g.tensors[self.tensor(idx, op)]
        if t.qdata is None and self.quantized:
            raise self.bad(op, f"the {what} are {t.dtype} in a quantized model (hybrid models with "
                               "float activations and int8 weights are not supported)")
        if t.qdata is not None and not self.quantized:
            raise self.bad(op, f"the {what} are int8 but the activations are float (a hybrid or "
                               "dynamic-range quantized model); convert with full integer quantization")
        new = self.g.add_const(t.name + "_ir", np.ascontiguousarray(fn(t.data)))
        nt = self.g.tensors[new]
        if t.qdata is not None:
            q = t.quant
            if not q.per_tensor and q.axis != qdim:
                raise self.bad(op, f"the {what} are quantized along dimension {q.axis}; expected "
                                   f"per-tensor or per-channel along dimension {qdim}")
            nt.qdata = np.ascontiguousarray(fn(t.qdata))
            nt.quant = QuantParams(q.scale, q.zero_point, None if q.per_tensor else ir_axis)
        return new

    def bias(self, op: _TOp, k: int, n: int) -> str:
        idx = op.inputs[k] if k < len(op.inputs) else -1
        if idx < 0:
            return ""
        data = self.const_of(op, k, "the bias")
        if data.size != n:
            raise self.bad(op, f"the bias has {data.size} values for {n} output channels")
        if self.quantized and data.dtype != np.int32:
            raise self.bad(op, f"the bias is {data.dtype}; int8 models need int32 biases")
        name = self.tensor(idx, op)
        t = self.g.tensors[name]
        if t.quant is not None and not t.quant.per_tensor:
            t.quant = QuantParams(t.quant.scale, t.quant.zero_point, 0)
        return name

    # -- the import ------------------------------------------------------------
    def run(self) -> Graph:
        m, g = self.m, self.g
        unsupported = [op for op in m.ops if op.name not in LOWERINGS]
        if unsupported:
            lines = "\n".join(f"  - operator {op.index}: {op.name}" for op in unsupported)
            raise TinydeployError(
                f"the .tflite model uses {len(unsupported)} unsupported operator(s):\n{lines}\n"
                f"supported TFLite operators: {', '.join(sorted(LOWERINGS))}. Replace these "
                "operators (e.g. re-convert the model) or open an issue.")
        if not m.inputs or not m.outputs:
            raise TinydeployError(f"the model has {len(m.inputs)} input(s) and {len(m.outputs)} "
                                  "output(s); it needs at least one of each")
        for i in m.inputs:
            if m.tensors[i].data is not None:
                raise TinydeployError(f"the model input '{m.tensors[i].name}' has constant data")
            g.inputs.append(self.tensor(i))
        for op in m.ops:
            LOWERINGS[op.name](self, op)
        for out in m.outputs:
            if out not in self.names:
                raise TinydeployError(f"model output tensor {out} ('{m.tensors[out].name}') is not computed "
                                      "by any operator")
            if self.names[out] in g.inputs:
                raise TinydeployError(f"model output '{self.names[out]}' is a model input itself; nothing "
                                      "to compute")
            if self.names[out] in g.outputs:
                raise TinydeployError(f"model output '{self.names[out]}' is listed twice among the "
                                      "model's outputs")
            g.outputs.append(self.names[out])
        return g


# -- convolution and pooling (NCHW ops between transposes) -------------------
def _padding(imp, op, code: int, size: int, k: int, stride: int, dil: int) -> tuple:
    """TFLite Padding (0 SAME, 1 VALID) -> (before, after); SAME puts the odd pixel after."""
    if code == 1:
        return 0, 0
    if code != 0:
        raise imp.bad(op, f"unknown padding type {code}")
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
    return total // 2, total - total // 2


def _geometry(imp, op, x: str, out: str, o, kh: int, kw: int, dil=(1, 1)) -> dict:
    _, h, w, _ = imp.g.tensors[x].shape
    sh, sw = o.StrideH(), o.StrideW()
    if sh < 1 or sw < 1 or dil[0] < 1 or dil[1] < 1:
        raise imp.bad(op, f"strides ({sh}, {sw}) and dilations {list(dil)} must be at least 1")
    top, bottom = _padding(imp, op, o.Padding(), h, kh, sh, dil[0])
    left, right = _padding(imp, op, o.Padding(), w, kw, sw, dil[1])
    oh = (h + top + bottom - (kh - 1) * dil[0] - 1) // sh + 1
    ow = (w + left + right - (kw - 1) * dil[1] - 1) // sw + 1
    if (oh, ow) != tuple(imp.g.tensors[out].shape[1:3]):
        raise imp.bad(op, f"the output is {list(imp.g.tensors[out].shape)}, but a {kh}x{kw} window with "
                          f"strides ({sh}, {sw}) over {h}x{w} gives {oh}x{ow}")
    return dict(strides=[sh, sw], pads=[top, left, bottom, right])


def _need_4d(imp, op, *names):
    for n in names:
        if len(imp.g.tensors[n].shape) != 4 or imp.g.tensors[n].shape[0] != 1:
            raise imp.bad(op, f"tensor '{n}' has shape {list(imp.g.tensors[n].shape)}; 2-D convolution "
                              "and pooling take batch-1 NHWC tensors")


@lowering("CONV_2D")
def _conv(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    _need_4d(imp, op, x, out)
    o = _options(imp.tflite, op, "Conv2DOptions", True)
    wdata = imp.const_of(op, 1, "the weights")
    if wdata.ndim != 4:
        raise imp.bad(op, f"the weights must be 4-D [out, kh, kw, in], got {list(wdata.shape)}")
    oc, kh, kw, cg = wdata.shape
    c = imp.g.tensors[x].shape[3]
    if c % cg or oc % (c // cg) or imp.g.tensors[out].shape[3] != oc:
        raise imp.bad(op, f"weights {list(wdata.shape)} do not fit an input with {c} channels and an "
                          f"output with {imp.g.tensors[out].shape[3]}")
    dil = [o.DilationHFactor(), o.DilationWFactor()]
    geo = _geometry(imp, op, x, out, o, kh, kw, dil)
    w = imp.weights(op, 1, lambda a: a.transpose(0, 3, 1, 2), 0, "weights")
    b = imp.bias(op, 2, oc)
    imp.from_nchw(op, out, "conv2d", [imp.to_nchw(x), w, b], dilations=dil, group=c // cg,
                  act=_act(imp, op, o.FusedActivationFunction()), layout="NCHW", **geo)


@lowering("DEPTHWISE_CONV_2D")
def _depthwise(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    _need_4d(imp, op, x, out)
    o = _options(imp.tflite, op, "DepthwiseConv2DOptions", True)
    wdata = imp.const_of(op, 1, "the weights")
    if wdata.ndim != 4 or wdata.shape[0] != 1:
        raise imp.bad(op, f"the weights must be [1, kh, kw, out], got {list(wdata.shape)}")
    _, kh, kw, oc = wdata.shape
    c = imp.g.tensors[x].shape[3]
    if oc % c or imp.g.tensors[out].shape[3] != oc:
        raise imp.bad(op, f"weights {list(wdata.shape)} do not fit an input with {c} channels")
    dil = [o.DilationHFactor(), o.DilationWFactor()]
    geo = _geometry(imp, op, x, out, o, kh, kw, dil)
    # [1, kh, kw, out] -> OIHW [out, 1, kh, kw]; output channel c*m+j reads input channel c
    w = imp.weights(op, 1, lambda a: a[0].transpose(2, 0, 1)[:, None], 3, "weights")
    b = imp.bias(op, 2, oc)
    imp.from_nchw(op, out, "conv2d", [imp.to_nchw(x), w, b], dilations=dil, group=c,
                  act=_act(imp, op, o.FusedActivationFunction()), layout="NCHW", **geo)


def _pool(kind: str):
    def lower(imp, op) -> None:
        x, out = imp.activation_in(op), imp.out(op)
        _need_4d(imp, op, x, out)
        o = _options(imp.tflite, op, "Pool2DOptions", True)
        kh, kw = o.FilterHeight(), o.FilterWidth()
        if kh < 1 or kw < 1:
            raise imp.bad(op, f"the filter {kh}x{kw} is empty")
        geo = _geometry(imp, op, x, out, o, kh, kw)
        # TFLite averages over the window's pixels inside the input (padding not counted)
        imp.from_nchw(op, out, kind, [imp.to_nchw(x)], kernel=[kh, kw], count_include_pad=0,
                      act=_act(imp, op, o.FusedActivationFunction()), layout="NCHW", **geo)
    return lower


lowering("AVERAGE_POOL_2D")(_pool("avg_pool"))
lowering("MAX_POOL_2D")(_pool("max_pool"))


@lowering("TRANSPOSE_CONV")
def _transpose_conv(imp, op) -> None:
    """Inputs [output_shape, weights [O, kh, kw, I], input, bias]; TFLite places the
    output window like a forward convolution from the output back to the input: the
    total padding (in - 1) * stride + k - out, its smaller half first."""
    x, out = imp.activation_in(op, 2), imp.out(op)
    _need_4d(imp, op, x, out)
    o = _options(imp.tflite, op, "TransposeConvOptions", True)
    shape = np.asarray(imp.const_of(op, 0, "the output shape")).reshape(-1).tolist()
    if shape != list(imp.g.tensors[out].shape):
        raise imp.bad(op, f"the output shape input {shape} differs from the output tensor's "
                          f"{list(imp.g.tensors[out].shape)}")
    wdata = imp.const_of(op, 1, "the weights")
    _, h, w, c = imp.g.tensors[x].shape
    _, oh, ow, oc = shape
    if wdata.ndim != 4 or wdata.shape[0] != oc or wdata.shape[3] != c:
        raise imp.bad(op, f"the weights must be [{oc}, kh, kw, {c}] for {c} input and {oc} output channels, "
                          f"got {list(wdata.shape)}")
    kh, kw = wdata.shape[1:3]
    strides = [o.StrideH(), o.StrideW()]
    if min(strides) < 1 or o.Padding() not in (0, 1):
        raise imp.bad(op, f"strides {strides} must be at least 1 and the padding SAME or VALID")
    pads = []
    for n, k, st, size in zip((h, w), (kh, kw), strides, (oh, ow)):
        total = (n - 1) * st + k - size
        if o.Padding() == 1 and total != 0 or total < -(st - 1):
            raise imp.bad(op, f"the output {oh}x{ow} does not fit a {kh}x{kw} transposed convolution "
                              f"with strides {strides} over {h}x{w} ({'VALID' if o.Padding() else 'SAME'})")
        pads.append((max(total, 0) // 2, max(total, 0) - max(total, 0) // 2))
    # [O, kh, kw, I] -> ONNX's [I, O, kh, kw]; per-channel scales along O (IR axis 1)
    wt = imp.weights(op, 1, lambda a: a.transpose(3, 0, 1, 2), 0, "weights", ir_axis=1)
    b = imp.bias(op, 3, oc)
    act = _act(imp, op, o.FusedActivationFunction())
    imp.from_nchw(op, out, "conv_transpose", [imp.to_nchw(x), wt, b], strides=strides, dilations=[1, 1],
                  pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]], group=1, act=act, layout="NCHW")


def _resize_size(imp, op, x: str, out: str) -> tuple:
    _need_4d(imp, op, x, out)
    size = np.asarray(imp.const_of(op, 1, "the size")).reshape(-1).tolist()
    if size != list(imp.g.tensors[out].shape[1:3]):
        raise imp.bad(op, f"the size input {size} differs from the output's {list(imp.g.tensors[out].shape[1:3])}")
    if imp.g.tensors[x].shape[3] != imp.g.tensors[out].shape[3]:
        raise imp.bad(op, "the input and output channels differ")
    return tuple(imp.g.tensors[x].shape[1:3]), tuple(size)


@lowering("RESIZE_BILINEAR")
def _resize_bilinear(imp, op) -> None:
    """TFLite's int8 bilinear kernel (ops/resize_bilinear.py follows it)."""
    x, out = imp.activation_in(op), imp.out(op)
    _resize_size(imp, op, x, out)
    o = _options(imp.tflite, op, "ResizeBilinearOptions")
    align, half = (bool(o.AlignCorners()), bool(o.HalfPixelCenters())) if o is not None else (False, False)
    if align and half:
        raise imp.bad(op, "align_corners and half_pixel_centers are both set")
    mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
    imp.from_nchw(op, out, "resize_bilinear", [imp.to_nchw(x)], mode=mode, layout="NCHW")


@lowering("RESIZE_NEAREST_NEIGHBOR")
def _resize_nearest(imp, op) -> None:
    """Upsampling by whole factors (each pixel repeated), where TFLite's index rule
    (align_corners, half_pixel_centers) gives exactly that repetition."""
    x, out = imp.activation_in(op), imp.out(op)
    (h, w), (oh, ow) = _resize_size(imp, op, x, out)
    o = _options(imp.tflite, op, "ResizeNearestNeighborOptions")
    align, half = (bool(o.AlignCorners()), bool(o.HalfPixelCenters())) if o is not None else (False, False)
    scales = [1, 1, 1, 1]
    for axis, n_in, n_out in ((1, h, oh), (2, w, ow)):
        scale = (n_in - 1) / (n_out - 1) if align and n_out > 1 else n_in / n_out
        pos = (np.arange(n_out) + (0.5 if half else 0.0)) * np.float32(scale)
        index = np.minimum(np.round(pos) if align else np.floor(pos), n_in - 1).astype(np.int64)
        k = n_out // n_in
        if n_out % n_in or not np.array_equal(index, np.arange(n_out) // k):
            raise imp.bad(op, f"resizing from {h}x{w} to {oh}x{ow} (align_corners={align}, half_pixel_centers="
                              f"{half}) does not repeat each pixel a whole number of times; only nearest "
                              "upsampling by integer factors is supported")
        scales[axis] = k
    if scales == [1, 1, 1, 1]:
        imp.emit("reshape", op, [x], out)
        return
    imp.emit("resize_nearest", op, [x], out, scales=scales)


# -- the rest works on the NHWC tensors as they are ---------------------------
@lowering("FULLY_CONNECTED")
def _fully_connected(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    o = _options(imp.tflite, op, "FullyConnectedOptions")
    if o is not None and o.WeightsFormat() != 0:
        raise imp.bad(op, "shuffled weights formats are not supported")
    wdata = imp.const_of(op, 1, "the weights")
    if wdata.ndim != 2:
        raise imp.bad(op, f"the weights must be 2-D [out, in], got {list(wdata.shape)}")
    n_out, n_in = wdata.shape
    size = imp.g.tensors[x].size
    if size % n_in or imp.g.tensors[out].size != size // n_in * n_out:
        raise imp.bad(op, f"an input of shape {list(imp.g.tensors[x].shape)} and weights "
                          f"{list(wdata.shape)} do not give the output {list(imp.g.tensors[out].shape)}")
    w = imp.weights(op, 1, lambda a: a, 0, "weights")
    b = imp.bias(op, 2, n_out)
    act = _act(imp, op, o.FusedActivationFunction() if o is not None else 0)
    imp.emit("fully_connected", op, [x, w, b], out, act=act)


def _binary(kind: str, options: str):
    def lower(imp, op) -> None:
        if len(op.inputs) != 2:
            raise imp.bad(op, f"expected 2 inputs, got {len(op.inputs)}")
        ins = []
        for k in range(2):
            if op.inputs[k] < 0:
                raise imp.bad(op, f"input {k} is missing")
            ins.append(imp.tensor(op.inputs[k], op))
        if all(imp.g.tensors[i].is_const for i in ins):
            raise imp.bad(op, "both inputs are constants")
        out = imp.out(op)
        o = _options(imp.tflite, op, options)
        act = _act(imp, op, o.FusedActivationFunction() if o is not None else 0)
        imp.emit("binary", op, ins, out, op=kind, act=act)
    return lower


lowering("ADD")(_binary("add", "AddOptions"))
lowering("MUL")(_binary("mul", "MulOptions"))


@lowering("MEAN")
def _mean(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    rank = len(imp.g.tensors[x].shape)
    axes = sorted({int(a) % rank if -rank <= int(a) < rank else -1
                   for a in np.ravel(imp.const_of(op, 1, "the axes"))})
    if not axes or axes[0] < 0:
        raise imp.bad(op, f"axes {np.ravel(imp.const_of(op, 1, 'the axes')).tolist()} are not valid for "
                          f"rank {rank}")
    keep_shape = tuple(1 if i in axes else d for i, d in enumerate(imp.g.tensors[x].shape))
    if imp.g.tensors[out].shape == keep_shape:
        imp.emit("mean", op, [x], out, axes=axes)
        return
    keep = imp.activation(out + "_keepdims", keep_shape, out)
    imp.emit("mean", op, [x], keep, axes=axes)
    imp.emit("reshape", op, [keep], out, suffix="_squeeze")


@lowering("SOFTMAX")
def _softmax(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    o = _options(imp.tflite, op, "SoftmaxOptions")
    beta = o.Beta() if o is not None else 1.0
    if beta != 1.0:
        raise imp.bad(op, f"beta = {beta:g} is not supported (only 1.0)")
    rank = len(imp.g.tensors[x].shape)
    if rank == 0:
        raise imp.bad(op, "the input is a scalar")
    imp.emit("softmax", op, [x], out, axis=rank - 1)


@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    if imp.g.tensors[x].size != imp.g.tensors[out].size:
        raise imp.bad(op, f"cannot reshape {list(imp.g.tensors[x].shape)} to "
                          f"{list(imp.g.tensors[out].shape)}")
    imp.emit("reshape", op, [x], out)


def _unary(kind: str, **fixed):
    def lower(imp, op) -> None:
        x, out = imp.activation_in(op), imp.out(op)
        attrs = dict(fixed)
        if kind == "leaky_relu":
            o = _options(imp.tflite, op, "LeakyReluOptions")
            attrs["alpha"] = float(np.float32(o.Alpha())) if o is not None else 0.0
        imp.emit(kind, op, [x], out, **attrs)
    return lower


def _slice_into(imp, op, x: str, out: str, starts: list, steps: list, sizes: list, suffix: str = "") -> None:
    """A strided slice of x of shape `sizes` (a view), reshaped to out's shape when they
    differ only by unit axes (shrink_axis_mask)."""
    if list(sizes) == list(imp.g.tensors[out].shape):
        imp.emit("slice", op, [x], out, suffix, starts=starts, steps=steps)
        return
    if int(np.prod(sizes)) != imp.g.tensors[out].size:
        raise imp.bad(op, f"the slice has shape {list(sizes)}, the output {list(imp.g.tensors[out].shape)}")
    mid = imp.activation(out + "_sliced", tuple(sizes), out)
    imp.emit("slice", op, [x], mid, suffix, starts=starts, steps=steps)
    imp.emit("reshape", op, [mid], out, suffix + "_reshape")


def _split(imp, op, x: str, axis: int, parts: list) -> None:
    shape = imp.g.tensors[x].shape
    if len(parts) != len(op.outputs) or sum(parts) != shape[axis] or min(parts) < 1:
        raise imp.bad(op, f"parts {parts} do not split axis {axis} of size {shape[axis]} into "
                          f"{len(op.outputs)} non-empty outputs")
    start = 0
    for k, size in enumerate(parts):
        first = [0] * len(shape)
        first[axis] = start
        sizes = list(shape)
        sizes[axis] = size
        _slice_into(imp, op, x, imp.out(op, k), first, [1] * len(shape), sizes, f"_{k}")
        start += size


def _axis_of(imp, op, k: int, rank: int) -> int:
    axis = np.asarray(imp.const_of(op, k, "the axis")).reshape(-1)
    if axis.size != 1 or not -rank <= int(axis[0]) < rank:
        raise imp.bad(op, f"the axis {axis.tolist()} is not one axis of a rank-{rank} tensor")
    return int(axis[0]) % rank


@lowering("SPLIT")
def _split_even(imp, op) -> None:
    """Inputs [axis, input]: equal parts (ShuffleNet's channel halves, q/k/v)."""
    x = imp.activation_in(op, 1)
    rank = len(imp.g.tensors[x].shape)
    axis, n = _axis_of(imp, op, 0, rank), len(op.outputs)
    size = imp.g.tensors[x].shape[axis]
    if n < 1 or size % n:
        raise imp.bad(op, f"axis {axis} of size {size} does not split into {n} equal parts")
    _split(imp, op, x, axis, [size // n] * n)


@lowering("SPLIT_V")
def _split_v(imp, op) -> None:
    """Inputs [input, size_splits, axis]; one size may be -1 (the rest)."""
    x = imp.activation_in(op, 0)
    shape = imp.g.tensors[x].shape
    axis = _axis_of(imp, op, 2, len(shape))
    parts = [int(v) for v in np.asarray(imp.const_of(op, 1, "the split sizes")).reshape(-1)]
    if parts.count(-1) == 1:
        parts[parts.index(-1)] = shape[axis] - (sum(parts) + 1)
    _split(imp, op, x, axis, parts)


@lowering("STRIDED_SLICE")
def _strided_slice(imp, op) -> None:
    """TensorFlow's strided slice with constant begin/end/strides, begin_mask, end_mask and
    shrink_axis_mask (x[:, 0], x[..., ::-1] written out per axis)."""
    x, out = imp.activation_in(op), imp.out(op)
    shape = imp.g.tensors[x].shape
    begin, end, strides = ([int(v) for v in np.asarray(imp.const_of(op, k, what)).reshape(-1)]
                           for k, what in ((1, "begin"), (2, "end"), (3, "strides")))
    o = _options(imp.tflite, op, "StridedSliceOptions")
    begin_mask, end_mask, ellipsis, new_axis, shrink = (
        (o.BeginMask(), o.EndMask(), o.EllipsisMask(), o.NewAxisMask(), o.ShrinkAxisMask())
        if o is not None else (0, 0, 0, 0, 0))
    if ellipsis or new_axis or (o is not None and o.Offset()):
        raise imp.bad(op, "ellipsis_mask, new_axis_mask and offset are not supported; convert the model "
                          "with explicit begin/end per axis")
    n = len(begin)
    if not len(end) == len(strides) == n <= len(shape):
        raise imp.bad(op, f"begin {begin}, end {end} and strides {strides} must have one value per axis "
                          f"(at most {len(shape)})")
    starts, steps, sizes = [], [], []
    for i, dim in enumerate(shape):
        if i >= n:
            starts.append(0), steps.append(1), sizes.append(dim)
            continue
        step = strides[i]
        if step == 0:
            raise imp.bad(op, f"the stride of axis {i} is 0")
        if shrink >> i & 1:
            first = begin[i] + dim if begin[i] < 0 else begin[i]
            if not 0 <= first < dim:
                raise imp.bad(op, f"index {begin[i]} is out of range for axis {i} of size {dim}")
            starts.append(first), steps.append(1), sizes.append(1)
            continue
        lo, hi = (0, dim) if step > 0 else (-1, dim - 1)
        clamp = lambda v: min(max(v + dim if v < 0 else v, lo), hi)  # noqa: E731
        first = (lo if step > 0 else hi) if begin_mask >> i & 1 else clamp(begin[i])
        stop = (hi if step > 0 else lo) if end_mask >> i & 1 else clamp(end[i])
        count = max(0, -(-(stop - first) // step))
        if count == 0:
            raise imp.bad(op, f"the slice of axis {i} is empty; empty tensors are not supported")
        starts.append(first), steps.append(step), sizes.append(count)
    _slice_into(imp, op, x, out, starts, steps, sizes)


lowering("LOGISTIC")(_unary("sigmoid"))
lowering("TANH")(_unary("tanh"))
lowering("HARD_SWISH")(_unary("hard_swish"))
lowering("LEAKY_RELU")(_unary("leaky_relu"))
lowering("RELU")(_unary("clip", lo=0.0, hi=INF))
lowering("RELU6")(_unary("clip", lo=0.0, hi=6.0))
lowering("RELU_N1_TO_1")(_unary("clip", lo=-1.0, hi=1.0))


@lowering("CONCATENATION")
def _concat(imp, op) -> None:
    ins = [imp.activation_in(op, k) for k in range(len(op.inputs))]
    out = imp.out(op)
    o = _options(imp.tflite, op, "ConcatenationOptions")
    rank = len(imp.g.tensors[out].shape)
    axis = o.Axis() if o is not None else 0
    if not -rank <= axis < rank:
        raise imp.bad(op, f"axis {axis} is out of range for rank {rank}")
    if o is not None and _act(imp, op, o.FusedActivationFunction()) != (-INF, INF):
        raise imp.bad(op, "a fused activation on a concatenation is not supported")
    imp.emit("concat", op, ins, out, axis=axis % rank)


@lowering("PAD", "PADV2")
def _pad(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    rank = len(imp.g.tensors[x].shape)
    pads = np.asarray(imp.const_of(op, 1, "the paddings"), np.int64)
    if pads.shape != (rank, 2) or np.any(pads < 0):
        raise imp.bad(op, f"paddings {pads.tolist()} must be non-negative, of shape [{rank}, 2]")
    value = 0.0
    if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        vt = imp.g.tensors[imp.tensor(op.inputs[2], op)]
        if not vt.is_const or vt.size != 1:
            raise imp.bad(op, "the constant value must be a constant scalar")
        value = float(vt.data.reshape(-1)[0])
    imp.emit("pad", op, [x], out, before=pads[:, 0].tolist(), after=pads[:, 1].tolist(),
             mode="constant", value=value)


@lowering("BATCH_MATMUL")
def _batch_matmul(imp, op) -> None:
    """A [..., M, K] @ B [..., K, N] with broadcast batch axes (tinydeploy/ops/matmul.py);
    adj_x / adj_y transpose an operand's last two axes: a transpose the layout pass turns
    into an alias, read in place by the kernel."""
    o = _options(imp.tflite, op, "BatchMatMulOptions")
    adjoint = (bool(o.AdjX()), bool(o.AdjY())) if o is not None else (False, False)
    if len(op.inputs) != 2:
        raise imp.bad(op, f"expected 2 inputs, got {len(op.inputs)}")
    ins = []
    for k, adj in enumerate(adjoint):
        if op.inputs[k] < 0:
            raise imp.bad(op, f"input {k} is missing")
        x = imp.tensor(op.inputs[k], op)
        t = imp.g.tensors[x]
        if not 2 <= len(t.shape) <= MAX_RANK:
            raise imp.bad(op, f"input {k} has rank {len(t.shape)}; BATCH_MATMUL takes operands of rank 2 "
                              f"to {MAX_RANK}")
        if t.qdata is None and imp.quantized and t.is_const:
            raise imp.bad(op, f"input {k} is a float constant in a quantized model")
        if adj:
            perm = list(range(len(t.shape)))
            perm[-2:] = perm[-1], perm[-2]
            if t.is_const:
                y = imp.g.add_const(x + "_adj", np.ascontiguousarray(t.data.transpose(perm)), t.quant)
                if t.qdata is not None:
                    imp.g.tensors[y].qdata = np.ascontiguousarray(t.qdata.transpose(perm))
            else:
                y = imp.activation(x + "_adj", tuple(t.shape[p] for p in perm), x)
                imp.g.ops.append(Op("transpose", y, [x], [y], {"perm": perm}))
            x = y
        ins.append(x)
    if all(imp.g.tensors[i].is_const for i in ins):
        raise imp.bad(op, "both inputs are constants")
    out = imp.out(op)
    a_shape, b_shape = (imp.g.tensors[i].shape for i in ins)
    matmul_op.check_shapes(f"operator {op.index} ({op.name})", a_shape, b_shape)
    want = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2])) + (a_shape[-2], b_shape[-1])
    if tuple(imp.g.tensors[out].shape) != want:
        raise imp.bad(op, f"inputs of shapes {list(a_shape)} and {list(b_shape)} give {list(want)}, "
                          f"not the output's {list(imp.g.tensors[out].shape)}")
    imp.emit("batch_matmul", op, ins, out)


@lowering("TRANSPOSE")
def _transpose(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    rank = len(imp.g.tensors[x].shape)
    perm = [int(p) for p in np.ravel(imp.const_of(op, 1, "the permutation"))]
    if sorted(perm) != list(range(rank)):
        raise imp.bad(op, f"{perm} is not a permutation of {rank} axes")
    imp.emit("transpose", op, [x], out, perm=perm)


@lowering("QUANTIZE")
def _quantize(imp, op) -> None:
    x, out = imp.activation_in(op), imp.out(op)
    q = imp.g.tensors[out].quant
    if q is None:
        raise imp.bad(op, "the output has no quantization parameters")
    if imp.g.tensors[x].quant is None:  # float -> int8: becomes the input's annotation
        imp.emit("quantize", op, [x], out, scale=np.float32(q.scalar()[0]),
                 zero_point=int(q.scalar()[1]), qtype="int8")
    else:  # int8 -> int8 with another scale
        imp.emit("requantize", op, [x], out)


@lowering("DEQUANTIZE")
def _dequantize(imp, op) -> None:
    src = imp.m.tensors[op.inputs[0]] if op.inputs and op.inputs[0] >= 0 else None
    if src is None:
        raise imp.bad(op, "input 0 is missing")
    if src.data is not None:  # a constant (float16 or int8 weights of a float model): fold
        t = imp.g.tensors[imp.tensor(src.index, op)]
        dst = imp.m.tensors[op.outputs[0]]
        if dst.data is not None or op.outputs[0] in imp.names:
            raise imp.bad(op, "the output must be a new tensor")
        name = imp._unique(dst)
        imp.g.add_tensor(Tensor(name, t.shape, "float32", t.data.astype(np.float32)))
        imp.names[op.outputs[0]] = name
        return
    x, out = imp.activation_in(op), imp.out(op)
    q = imp.g.tensors[x].quant
    if q is None:
        raise imp.bad(op, "the input has no quantization parameters")
    imp.g.tensors[out].quant = None
    imp.emit("dequantize", op, [x], out, scale=np.float32(q.scalar()[0]),
             zero_point=int(q.scalar()[1]), qtype="int8")


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------
def load(path: str, input_shapes: Optional[dict] = None, name: Optional[str] = None) -> Graph:
    """.tflite file -> IR graph (float semantics + the file's quantization annotations)."""
    model = _read(path)
    if input_shapes:
        t = model.tensors[model.inputs[0]] if model.inputs else None
        for key, shape in input_shapes.items():
            if t is None or key != t.name or tuple(shape) != t.shape:
                raise TinydeployError(f"--input-shape {key}={','.join(map(str, shape))}: a .tflite "
                                      "model has fixed shapes" + (f" (its input '{t.name}' is "
                                      f"{list(t.shape)})" if t is not None else ""))
    stem = name or os.path.splitext(os.path.basename(path))[0]
    try:
        return _Importer(model, stem, _schema()).run()
    except struct.error:  # operator options are read lazily from the flatbuffer
        raise TinydeployError(f"{path} is not a valid TensorFlow Lite model: an operator's options "
                              "could not be read; the file may be corrupted") from None


def operators(path: str) -> list[dict]:
    """The file's operators for `tinydeploy inspect`: name, op_type, supported."""
    model = _read(path)
    return [dict(name=f"{op.name.lower()}_{op.index}", op_type=op.name, supported=op.name in LOWERINGS)
            for op in model.ops]
