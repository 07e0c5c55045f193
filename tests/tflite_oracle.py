"""Test-only int8 .tflite runner built on tinydeploy's golden kernels.

It parses a .tflite flatbuffer with the schema module shipped in the
`tflite-micro` package (flatbuffers object API) and executes the graph op by
op with tinydeploy.golden_kernels, deriving every integer parameter with
tinydeploy.qmath from the model's float scales and zero points.  Comparing
its outputs with TFLite Micro's proves our int8 arithmetic.  It also builds
single-op models (make_single_op_model) for checking individual kernels
against the TFLite Micro interpreter.
"""

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinydeploy import golden_kernels as gk
from tinydeploy import qmath

BuiltinOperator = schema.BuiltinOperator
OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_DTYPES = {schema.TensorType.INT8: np.int8, schema.TensorType.INT32: np.int32,
           schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT64: np.int64,
           schema.TensorType.INT16: np.int16, schema.TensorType.UINT8: np.uint8}
# TFLite ActivationFunctionType -> real clamp interval name in qmath
_ACT = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}


class Tensor:
    def __init__(self, t, buffers):
        self.name = t.name.decode() if isinstance(t.name, bytes) else t.name
        self.shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        self.dtype = _DTYPES[t.type]
        q = t.quantization
        self.scales = np.asarray(q.scale if q is not None and q.scale is not None else [],
                                 np.float32)
        zps = q.zeroPoint if q is not None and q.zeroPoint is not None else []
        self.zero_points = np.asarray(zps, np.int64)
        data = buffers[t.buffer].data if t.buffer < len(buffers) else None
        self.data = None
        if data is not None and len(data):
            raw = np.asarray(data, np.uint8).tobytes()
            self.data = np.frombuffer(raw, self.dtype).reshape(self.shape)

    @property
    def scale(self):
        return float(self.scales[0])

    @property
    def zero_point(self):
        return int(self.zero_points[0]) if self.zero_points.size else 0


class TFLiteModel:
    """A parsed single-subgraph .tflite model."""

    def __init__(self, model_bytes):
        self.model_bytes = bytes(model_bytes)
        m = schema.ModelT.InitFromPackedBuf(bytearray(self.model_bytes), 0)
        sg = m.subgraphs[0]
        self.tensors = [Tensor(t, m.buffers) for t in sg.tensors]
        self.inputs, self.outputs = list(sg.inputs), list(sg.outputs)
        self.ops = []
        for op in sg.operators:
            oc = m.operatorCodes[op.opcodeIndex]
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            self.ops.append((OP_NAMES[code], list(op.inputs), list(op.outputs),
                             op.builtinOptions))

    @classmethod
    def from_file(cls, path):
        with open(path, "rb") as f:
            return cls(f.read())

    def op_summary(self):
        """[(op name, options dict)] for reporting which ops/options a model uses."""
        out = []
        for name, _, _, opts in self.ops:
            fields = {} if opts is None else {k: v for k, v in vars(opts).items()}
            out.append((name, fields))
        return out

    def run(self, x, trace=None):
        """Execute on one int8 input (batch 1); returns the first output.
        trace: optional dict filled with every produced tensor, by index."""
        values = {self.inputs[0]: np.asarray(x, np.int8).reshape(self.tensors[self.inputs[0]].shape)}
        for name, ins, outs, opts in self.ops:
            fn = _OPS.get(name)
            if fn is None:
                raise NotImplementedError(f"op {name} not supported by the oracle")
            args = [None if i < 0 else (values[i] if i in values else self.tensors[i].data)
                    for i in ins]
            ts = [None if i < 0 else self.tensors[i] for i in ins]
            out_t = self.tensors[outs[0]]
            res = fn(args, ts, out_t, opts)
            values[outs[0]] = np.asarray(res).reshape(out_t.shape)
            if trace is not None:
                trace[outs[0]] = values[outs[0]]
        return values[self.outputs[0]]


# --------------------------------------------------------------------------
# Op implementations: TFLite op + options -> golden kernel + qmath params
# --------------------------------------------------------------------------

def _padding(padding, in_size, k, stride, dil):
    """TFLite Padding enum (0 SAME, 1 VALID) -> (before, after)."""
    if padding == schema.Padding.SAME:
        before, after, _ = gk.same_padding(in_size, k, stride, dil)
        return before, after
    return 0, 0


def _conv_geometry(x_t, out_t, kh, kw, o, groups):
    _, h, w, c = x_t.shape
    dh, dw = getattr(o, "dilationHFactor", 1), getattr(o, "dilationWFactor", 1)
    top, bottom = _padding(o.padding, h, kh, o.strideH, dh)
    left, right = _padding(o.padding, w, kw, o.strideW, dw)
    g = gk.conv_geometry((h, w, c), out_t.shape[-1], (kh, kw), (o.strideH, o.strideW),
                         (dh, dw), (top, left, bottom, right), groups)
    assert (g["out_h"], g["out_w"]) == tuple(out_t.shape[1:3])
    return g


def _conv_quant(x_t, w_t, out_t, o):
    return qmath.conv_params(x_t.scale, x_t.zero_point, w_t.scales, out_t.scale,
                             out_t.zero_point, _ACT[o.fusedActivationFunction])


def _op_conv(args, ts, out_t, o):
    x, w, b = (args + [None])[:3]
    oc, kh, kw, cg = ts[1].shape
    p = {**_conv_geometry(ts[0], out_t, kh, kw, o, ts[0].shape[-1] // cg),
         **_conv_quant(ts[0], ts[1], out_t, o)}
    return gk.conv2d(x[0], w, b, p)


def _op_depthwise(args, ts, out_t, o):
    x, w, b = (args + [None])[:3]
    _, kh, kw, oc = ts[1].shape
    p = {**_conv_geometry(ts[0], out_t, kh, kw, o, ts[0].shape[-1]),
         **_conv_quant(ts[0], ts[1], out_t, o)}
    return gk.depthwise_conv2d(x[0], w[0], b, p)


def _op_fc(args, ts, out_t, o):
    x, w, b = (args + [None])[:3]
    out_f, in_f = ts[1].shape
    p = {"rows": x.size // in_f, "in_features": in_f, "out_features": out_f,
         **qmath.fc_params(ts[0].scale, ts[0].zero_point, ts[1].scales, out_t.scale,
                           out_t.zero_point, _ACT[o.fusedActivationFunction])}
    return gk.fully_connected(x, w, b, p)


def _pool_params(ts, out_t, o):
    _, h, w, c = ts[0].shape
    top, bottom = _padding(o.padding, h, o.filterHeight, o.strideH, 1)
    left, right = _padding(o.padding, w, o.filterWidth, o.strideW, 1)
    g = gk.pool_geometry((h, w, c), (o.filterHeight, o.filterWidth), (o.strideH, o.strideW),
                         (top, left, bottom, right))
    return {**g, **qmath.pool_params(_ACT[o.fusedActivationFunction], out_t.scale,
                                     out_t.zero_point)}


def _op_avg_pool(args, ts, out_t, o):
    return gk.avg_pool(args[0][0], _pool_params(ts, out_t, o))


def _op_max_pool(args, ts, out_t, o):
    return gk.max_pool(args[0][0], _pool_params(ts, out_t, o))


def _op_reshape(args, ts, out_t, o):
    return gk.reshape(args[0], out_t.shape)


def _op_softmax(args, ts, out_t, o):
    x = args[0]
    depth = x.shape[-1]
    p = {"outer": x.size // depth, "depth": depth,
         **qmath.softmax_params(ts[0].scale, o.beta)}
    return gk.softmax(x, p)


def _binary(args, ts, out_t):
    a, b = args
    return a, b, gk.broadcast_geometry(a.shape, b.shape)


def _op_add(args, ts, out_t, o):
    a, b, g = _binary(args, ts, out_t)
    q = qmath.add_params(ts[0].scale, ts[0].zero_point, ts[1].scale, ts[1].zero_point,
                         out_t.scale, out_t.zero_point, _ACT[o.fusedActivationFunction])
    return gk.add(a, b, {**g, **q})


def _op_mul(args, ts, out_t, o):
    a, b, g = _binary(args, ts, out_t)
    q = qmath.mul_params(ts[0].scale, ts[0].zero_point, ts[1].scale, ts[1].zero_point,
                         out_t.scale, out_t.zero_point, _ACT[o.fusedActivationFunction])
    return gk.mul(a, b, {**g, **q})


def _op_mean(args, ts, out_t, o):
    x, axes = args
    axes = sorted(int(a) % x.ndim for a in np.atleast_1d(axes))
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise NotImplementedError("MEAN over non-contiguous axes")
    outer = int(np.prod(x.shape[:axes[0]]))
    reduce_ = int(np.prod([x.shape[a] for a in axes]))
    inner = x.size // (outer * reduce_)
    p = {"outer": outer, "reduce": reduce_, "inner": inner,
         **qmath.mean_params(ts[0].scale, ts[0].zero_point, out_t.scale,
                             out_t.zero_point, reduce_)}
    return gk.mean(x, p)


def _elementwise(fn, params):
    def op(args, ts, out_t, o):
        return fn(args[0], params(ts[0], out_t, o))
    return op


def _op_concat(args, ts, out_t, o):
    axis = o.axis % len(out_t.shape)
    outer = int(np.prod(out_t.shape[:axis]))
    ins = [qmath.concat_input_params(a.size // outer, t.scale, t.zero_point,
                                     out_t.scale, out_t.zero_point)
           for a, t in zip(args, ts)]
    p = {"outer": outer, "n_inputs": len(args), "output_zero_point": out_t.zero_point,
         "inputs": ins}
    return gk.concat(args, p)


def _op_pad(args, ts, out_t, o):
    x, pads = args[0], np.asarray(args[1]).reshape(-1, 2)
    value = out_t.zero_point if len(args) < 3 or args[2] is None else int(np.ravel(args[2])[0])
    return gk.pad(x, gk.pad_geometry(x.shape, pads[:, 0], pads[:, 1], 0, value))


def _op_transpose(args, ts, out_t, o):
    x, perm = args
    return gk.transpose(x, gk.transpose_geometry(x.shape, [int(v) for v in perm]))


_OPS = {
    "CONV_2D": _op_conv,
    "DEPTHWISE_CONV_2D": _op_depthwise,
    "FULLY_CONNECTED": _op_fc,
    "AVERAGE_POOL_2D": _op_avg_pool,
    "MAX_POOL_2D": _op_max_pool,
    "RESHAPE": _op_reshape,
    "SOFTMAX": _op_softmax,
    "ADD": _op_add,
    "MUL": _op_mul,
    "MEAN": _op_mean,
    "CONCATENATION": _op_concat,
    "PAD": _op_pad,
    "TRANSPOSE": _op_transpose,
    "LOGISTIC": _elementwise(gk.sigmoid, lambda i, o, _: qmath.sigmoid_params(i.scale, i.zero_point)),
    "TANH": _elementwise(gk.tanh, lambda i, o, _: qmath.tanh_params(i.scale, i.zero_point)),
    "HARD_SWISH": _elementwise(gk.hardswish, lambda i, o, _: qmath.hardswish_params(
        i.scale, i.zero_point, o.scale, o.zero_point)),
    "LEAKY_RELU": _elementwise(gk.leaky_relu, lambda i, o, opt: qmath.leaky_relu_params(
        i.scale, i.zero_point, o.scale, o.zero_point, opt.alpha)),
    "QUANTIZE": _elementwise(gk.requantize, lambda i, o, _: qmath.requantize_params(
        i.scale, i.zero_point, o.scale, o.zero_point)),
}


# --------------------------------------------------------------------------
# Building single-op models (for per-kernel checks against TFLite Micro)
# --------------------------------------------------------------------------

_TYPE_CODES = {np.dtype(np.int8): schema.TensorType.INT8,
               np.dtype(np.int16): schema.TensorType.INT16,
               np.dtype(np.int32): schema.TensorType.INT32}


def _tensor_t(shape, dtype, buffer, scales=None, zps=None, qdim=0, name="t", variable=False):
    t = schema.TensorT()
    t.shape, t.type, t.buffer, t.name = list(shape), _TYPE_CODES[np.dtype(dtype)], buffer, name
    t.isVariable = variable
    if scales is not None:
        q = schema.QuantizationParametersT()
        q.scale = [float(s) for s in np.atleast_1d(scales)]
        q.zeroPoint = [int(z) for z in np.atleast_1d(zps if zps is not None else 0)]
        q.quantizedDimension = qdim
        t.quantization = q
    return t


def make_single_op_model(op_name, inputs, output, options=None, options_type=0,
                         version=1):
    """Serialize a one-operator int8 model.

    inputs: list of dicts {shape, dtype, scale, zp, data (None for graph
    inputs), qdim, variable} or None (an absent optional input); output: dict
    {shape, scale, zp, dtype (int8 when absent)}.  Graph inputs are the inputs without data that are
    not variable (state the interpreter keeps, zero at the start), in order.
    """
    model, sg = schema.ModelT(), schema.SubGraphT()
    buffers, tensors, graph_inputs, op_inputs = [schema.BufferT()], [], [], []
    for k, spec in enumerate(inputs):
        if spec is None:
            op_inputs.append(-1)
            continue
        buf_idx = 0
        if spec.get("data") is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(spec["data"]).tobytes(), np.uint8)
            buffers.append(b)
            buf_idx = len(buffers) - 1
        elif not spec.get("variable"):
            graph_inputs.append(len(tensors))
        tensors.append(_tensor_t(spec["shape"], spec.get("dtype", np.int8), buf_idx,
                                 spec.get("scale"), spec.get("zp"), spec.get("qdim", 0),
                                 name=f"in{k}", variable=bool(spec.get("variable"))))
        op_inputs.append(len(tensors) - 1)
    tensors.append(_tensor_t(output["shape"], output.get("dtype", np.int8), 0, output["scale"],
                             output["zp"], name="out"))
    oc = schema.OperatorCodeT()
    code = getattr(BuiltinOperator, op_name)
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), version
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, op_inputs, [len(tensors) - 1]
    op.builtinOptionsType, op.builtinOptions = options_type, options
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, graph_inputs, [len(tensors) - 1], [op]
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [oc], [sg], buffers
    model.description = "tinydeploy single-op test"
    builder = __import__("flatbuffers").Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tflm_run(model_bytes, inputs, tensors=()):
    """Run a model with the TFLite Micro Python interpreter: its first output, or
    (that output, [the tensors of subgraph 0 at these indices after the run])."""
    from tflite_micro.python.tflite_micro import runtime
    config = runtime.InterpreterConfig
    interp = runtime.Interpreter.from_bytes(
        model_bytes, arena_size=4 << 20,
        intrepreter_config=config.kPreserveAllTensors if tensors else config.kAllocationRecording)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    if tensors:
        return interp.get_output(0), [interp.GetTensor(i, 0) for i in tensors]
    return interp.get_output(0)
