"""The golden int8 arithmetic against TensorFlow Lite Micro, bit for bit.

1. The MLPerf Tiny int8 .tflite models executed op by op with
   tinydeploy.golden_kernels + tinydeploy.qmath must reproduce
   reference.npz's tflm_int8_outputs exactly (8 samples each), and every
   intermediate tensor of the TFLite Micro interpreter on extra random inputs.
2. Single-operator models built on the fly cover the ops and options those
   four models do not use (SAME padding, dilation, groups, depth multiplier,
   fused ReLU6, broadcasting, Mul, Mean, Softmax with other scales/betas,
   Logistic, Tanh, HardSwish, LeakyRelu, Quantize, Concat, Pad, Transpose).
"""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tflite_oracle import TFLiteModel, make_single_op_model, schema, tflm_run  # noqa: E402

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

from conftest import MODELS  # noqa: E402
NAMES = ["kws", "resnet8", "vww", "ad"]

# What the four reference models use (checked so a model update is noticed).
EXPECTED_OPS = {
    "kws": {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE",
            "FULLY_CONNECTED", "SOFTMAX"},
    "resnet8": {"CONV_2D", "ADD", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
                "SOFTMAX"},
    "vww": {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE",
            "FULLY_CONNECTED", "SOFTMAX"},
    "ad": {"FULLY_CONNECTED"},
}


def _model_dir(name):
    d = MODELS / name
    if not (d / "int8.tflite").exists():
        pytest.fail(f"missing {d / 'int8.tflite'}: the MLPerf models must be beside the repo")
    return d


@pytest.fixture(scope="module", params=NAMES)
def mlperf(request):
    d = _model_dir(request.param)
    with np.load(d / "reference.npz") as ref:
        return request.param, TFLiteModel.from_file(d / "int8.tflite"), dict(ref)


def test_reference_outputs_bit_exact(mlperf):
    name, model, ref = mlperf
    xs, ys = ref["int8_inputs"], ref["tflm_int8_outputs"]
    assert len(xs) == 8
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(zip(xs, ys)):
        out = model.run(x)
        np.testing.assert_array_equal(out.reshape(y.shape), y, err_msg=f"{name} sample {i}")
    per_sample = (time.perf_counter() - t0) / len(xs)
    assert per_sample < 1.0, f"golden model too slow: {per_sample:.2f} s/sample"


def test_random_inputs_all_tensors_match_tflm(mlperf):
    name, model, _ = mlperf
    interp = runtime.Interpreter.from_bytes(
        model.model_bytes, arena_size=8 << 20,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    rng = np.random.default_rng(7)
    shape = model.tensors[model.inputs[0]].shape
    for trial in range(3):
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        if trial == 2:   # a low-contrast input: exercises other paths
            x = (x // 16).astype(np.int8)
        interp.set_input(x, 0)
        interp.invoke()
        trace = {}
        out = model.run(x, trace=trace)
        np.testing.assert_array_equal(out.reshape(-1), interp.get_output(0).reshape(-1))
        for idx, ours in trace.items():
            theirs = interp.GetTensor(idx, 0)["tensor_data"]
            np.testing.assert_array_equal(
                ours, np.asarray(theirs).reshape(ours.shape),
                err_msg=f"{name}: tensor {model.tensors[idx].name} differs")


def test_op_inventory(mlperf):
    name, model, _ = mlperf
    assert {op for op, _ in model.op_summary()} == EXPECTED_OPS[name]


# ---------------------------------------------------------------------------
# single-op models vs the TFLite Micro interpreter
# ---------------------------------------------------------------------------

O = schema.BuiltinOptions
RNG = np.random.default_rng(2026)


def opts(cls, **fields):
    o = cls()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def act_in(shape, scale, zp):
    return {"shape": shape, "scale": scale, "zp": zp}


def const(data, scale=None, zp=None, qdim=0):
    data = np.asarray(data)
    return {"shape": data.shape, "dtype": data.dtype, "data": data, "scale": scale,
            "zp": zp, "qdim": qdim}


def rand_i8(shape, lo=-128):
    return RNG.integers(lo, 128, size=shape).astype(np.int8)


def check_single(op, inputs, output, options=None, options_type=0, n_trials=3):
    model_bytes = make_single_op_model(op, inputs, output, options, options_type)
    ours = TFLiteModel(model_bytes)
    graph_inputs = [s for s in inputs if s is not None and s.get("data") is None]
    for _ in range(n_trials):
        xs = [rand_i8(s["shape"]) for s in graph_inputs]
        theirs = tflm_run(model_bytes, xs)
        values = dict(zip(ours.inputs, xs))
        res = _run_multi(ours, values)
        np.testing.assert_array_equal(res.reshape(-1), np.asarray(theirs).reshape(-1),
                                      err_msg=f"{op} differs from TFLite Micro")


def _run_multi(model, values):
    """TFLiteModel.run for graphs with several inputs (single op)."""
    name, ins, outs, o = model.ops[0]
    from tflite_oracle import _OPS
    args = [None if i < 0 else values.get(i, model.tensors[i].data) for i in ins]
    ts = [None if i < 0 else model.tensors[i] for i in ins]
    return np.asarray(_OPS[name](args, ts, model.tensors[outs[0]], o))


SAME, VALID = schema.Padding.SAME, schema.Padding.VALID


@pytest.mark.parametrize("cfg", [
    dict(h=9, w=7, c=3, oc=5, k=(3, 3), s=(2, 1), d=(1, 1), pad=SAME, act=3),
    dict(h=8, w=8, c=4, oc=6, k=(3, 2), s=(1, 2), d=(2, 2), pad=SAME, act=0),
    dict(h=6, w=5, c=6, oc=4, k=(2, 2), s=(1, 1), d=(1, 1), pad=VALID, act=1, groups=2),
    dict(h=5, w=5, c=2, oc=3, k=(1, 1), s=(1, 1), d=(1, 1), pad=VALID, act=2),
])
def test_conv2d_vs_tflm(cfg):
    g = cfg.get("groups", 1)
    c, oc, (kh, kw) = cfg["c"], cfg["oc"], cfg["k"]
    w = rand_i8((oc, kh, kw, c // g), -127)
    ws = (0.002 + 0.01 * RNG.random(oc)).astype(np.float32)
    b = RNG.integers(-3000, 3000, oc).astype(np.int32)
    in_s, in_zp, out_s, out_zp = 0.05, int(RNG.integers(-128, 128)), 0.03, int(RNG.integers(-128, 128))
    o = opts(schema.Conv2DOptionsT, padding=cfg["pad"], strideH=cfg["s"][0], strideW=cfg["s"][1],
             dilationHFactor=cfg["d"][0], dilationWFactor=cfg["d"][1],
             fusedActivationFunction=cfg["act"])
    out_shape = _out_shape(cfg, oc)
    check_single("CONV_2D", [act_in((1, cfg["h"], cfg["w"], c), in_s, in_zp),
                             const(w, ws, np.zeros(oc, int)), const(b, ws * in_s, np.zeros(oc, int))],
                 {"shape": out_shape, "scale": out_s, "zp": out_zp}, o, O.Conv2DOptions)


def _out_shape(cfg, oc):
    from tinydeploy.golden_kernels import same_padding
    dims = []
    for n, k, s, d in zip((cfg["h"], cfg["w"]), cfg["k"], cfg["s"], cfg["d"]):
        if cfg["pad"] == SAME:
            dims.append(same_padding(n, k, s, d)[2])
        else:
            dims.append((n - d * (k - 1) - 1) // s + 1)
    return (1, *dims, oc)


@pytest.mark.parametrize("cfg", [
    dict(h=7, w=6, c=3, mult=2, k=(3, 3), s=(2, 2), d=(1, 1), pad=SAME, act=3),
    dict(h=9, w=9, c=4, mult=1, k=(3, 3), s=(1, 1), d=(2, 2), pad=SAME, act=0),
    dict(h=5, w=8, c=5, mult=1, k=(2, 3), s=(1, 2), d=(1, 1), pad=VALID, act=1),
])
def test_depthwise_vs_tflm(cfg):
    c, mult, (kh, kw) = cfg["c"], cfg["mult"], cfg["k"]
    oc = c * mult
    w = rand_i8((1, kh, kw, oc), -127)
    ws = (0.002 + 0.02 * RNG.random(oc)).astype(np.float32)
    b = RNG.integers(-2000, 2000, oc).astype(np.int32)
    in_s = 0.04
    o = opts(schema.DepthwiseConv2DOptionsT, padding=cfg["pad"], strideH=cfg["s"][0],
             strideW=cfg["s"][1], dilationHFactor=cfg["d"][0], dilationWFactor=cfg["d"][1],
             depthMultiplier=mult, fusedActivationFunction=cfg["act"])
    check_single("DEPTHWISE_CONV_2D",
                 [act_in((1, cfg["h"], cfg["w"], c), in_s, 17),
                  const(w, ws, np.zeros(oc, int), qdim=3), const(b, ws * in_s, np.zeros(oc, int))],
                 {"shape": _out_shape(cfg, oc), "scale": 0.05, "zp": -9}, o,
                 O.DepthwiseConv2DOptions)


@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected_vs_tflm(per_channel):
    n_in, n_out = 37, 11
    w = rand_i8((n_out, n_in), -127)
    ws = (0.003 + 0.01 * RNG.random(n_out if per_channel else 1)).astype(np.float32)
    b = RNG.integers(-5000, 5000, n_out).astype(np.int32)
    bs = (ws * np.float32(0.07)).astype(np.float32)
    zeros = np.zeros(ws.size, int)
    o = opts(schema.FullyConnectedOptionsT, fusedActivationFunction=1)
    check_single("FULLY_CONNECTED", [act_in((2, n_in), 0.07, -3), const(w, ws, zeros),
                                     const(b, bs, zeros)],
                 {"shape": (2, n_out), "scale": 0.09, "zp": 5}, o, O.FullyConnectedOptions)


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("pad,k,s", [(SAME, (3, 3), (2, 2)), (SAME, (2, 3), (1, 2)),
                                     (VALID, (2, 2), (2, 1))])
def test_pool_vs_tflm(op, pad, k, s):
    h, w, c = 7, 6, 3
    cfg = dict(h=h, w=w, k=k, s=s, d=(1, 1), pad=pad)
    o = opts(schema.Pool2DOptionsT, padding=pad, strideH=s[0], strideW=s[1], filterHeight=k[0],
             filterWidth=k[1], fusedActivationFunction=3)
    check_single(op, [act_in((1, h, w, c), 0.02, -20)],
                 {"shape": _out_shape(cfg, c), "scale": 0.02, "zp": -20}, o, O.Pool2DOptions)


@pytest.mark.parametrize("shapes", [((1, 4, 3, 5), (1, 4, 3, 5)), ((1, 4, 3, 5), (1, 1, 1, 5)),
                                    ((1, 1, 3, 1), (1, 4, 1, 5))])
@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_binary_vs_tflm(op, shapes):
    a, b = shapes
    out = tuple(np.broadcast_shapes(a, b))
    cls, typ = (schema.AddOptionsT, O.AddOptions) if op == "ADD" else (schema.MulOptionsT,
                                                                        O.MulOptions)
    for s1, s2, so, act in ((0.05, 0.11, 0.08, 1), (0.3, 0.01, 0.02, 0), (0.02, 0.02, 0.5, 3)):
        check_single(op, [act_in(a, s1, 12), act_in(b, s2, -100)],
                     {"shape": out, "scale": so, "zp": -7}, opts(cls, fusedActivationFunction=act),
                     typ, n_trials=1)


@pytest.mark.parametrize("axes,keep", [([1, 2], True), ([1, 2], False), ([2], True), ([3], False)])
def test_mean_vs_tflm(axes, keep):
    shape = (1, 5, 7, 4)
    out = [d for i, d in enumerate(shape) if i not in axes] if not keep else \
        [1 if i in axes else d for i, d in enumerate(shape)]
    for si, zi, so, zo in ((0.1, 3, 0.1, 3), (0.05, -128, 0.02, 10), (0.2, 100, 0.9, -50)):
        check_single("MEAN", [act_in(shape, si, zi), const(np.array(axes, np.int32))],
                     {"shape": out, "scale": so, "zp": zo},
                     opts(schema.ReducerOptionsT, keepDims=keep), O.ReducerOptions, n_trials=1)


@pytest.mark.parametrize("scale,beta", [(0.1, 1.0), (0.01, 1.0), (0.5, 0.7), (0.002, 2.0),
                                        (1.7, 1.0)])
def test_softmax_vs_tflm(scale, beta):
    check_single("SOFTMAX", [act_in((3, 17), scale, 5)],
                 {"shape": (3, 17), "scale": 1 / 256, "zp": -128},
                 opts(schema.SoftmaxOptionsT, beta=beta), O.SoftmaxOptions)


def _exhaustive_unary(op, in_s, in_zp, out_s, out_zp, options=None, options_type=0):
    """All 256 input values through a one-op model, ours vs TFLite Micro."""
    x = np.arange(-128, 128, dtype=np.int64).astype(np.int8).reshape(1, 256)
    model_bytes = make_single_op_model(op, [act_in((1, 256), in_s, in_zp)],
                                       {"shape": (1, 256), "scale": out_s, "zp": out_zp},
                                       options, options_type)
    theirs = tflm_run(model_bytes, [x])
    ours = _run_multi(TFLiteModel(model_bytes), {0: x})
    np.testing.assert_array_equal(ours.reshape(-1), np.asarray(theirs).reshape(-1),
                                  err_msg=f"{op} in_scale={in_s} zp={in_zp}")


@pytest.mark.parametrize("in_s,in_zp", [(0.1, 0), (0.02, -128), (0.06, 127), (0.5, 20),
                                        (0.003, -7), (2.0, 0)])
def test_logistic_tanh_vs_tflm(in_s, in_zp):
    _exhaustive_unary("LOGISTIC", in_s, in_zp, 1 / 256, -128)
    _exhaustive_unary("TANH", in_s, in_zp, 1 / 128, 0)


@pytest.mark.parametrize("in_s,in_zp,out_s,out_zp", [(0.05, 0, 0.05, 0), (0.1, -128, 0.03, -100),
                                                     (0.02, 60, 0.1, 5), (0.2, -10, 0.12, 127)])
def test_hardswish_vs_tflm(in_s, in_zp, out_s, out_zp):
    _exhaustive_unary("HARD_SWISH", in_s, in_zp, out_s, out_zp)


@pytest.mark.parametrize("alpha", [0.1, 0.01, 0.3, 1.7])
def test_leaky_relu_vs_tflm(alpha):
    for in_s, in_zp, out_s, out_zp in ((0.05, 3, 0.04, -9), (0.2, -128, 0.3, 127)):
        _exhaustive_unary("LEAKY_RELU", in_s, in_zp, out_s, out_zp,
                          opts(schema.LeakyReluOptionsT, alpha=alpha), O.LeakyReluOptions)


@pytest.mark.parametrize("in_s,in_zp,out_s,out_zp", [(0.05, 3, 0.04, -9), (0.2, -128, 0.01, 127),
                                                     (0.013, 90, 0.5, -3), (0.1, 1, 0.1, -1)])
def test_quantize_vs_tflm(in_s, in_zp, out_s, out_zp):
    _exhaustive_unary("QUANTIZE", in_s, in_zp, out_s, out_zp)


def test_concat_pad_transpose_vs_tflm():
    check_single("CONCATENATION", [act_in((1, 3, 2, 4), 0.1, 7), act_in((1, 3, 2, 5), 0.1, 7)],
                 {"shape": (1, 3, 2, 9), "scale": 0.1, "zp": 7},
                 opts(schema.ConcatenationOptionsT, axis=3), O.ConcatenationOptions)
    check_single("CONCATENATION", [act_in((1, 2, 2, 3), 0.1, 7), act_in((1, 3, 2, 3), 0.1, 7)],
                 {"shape": (1, 5, 2, 3), "scale": 0.1, "zp": 7},
                 opts(schema.ConcatenationOptionsT, axis=1), O.ConcatenationOptions)
    pads = np.array([[0, 0], [1, 2], [0, 3], [2, 0]], np.int32)
    check_single("PAD", [act_in((1, 3, 4, 2), 0.1, -11), const(pads)],
                 {"shape": (1, 6, 7, 4), "scale": 0.1, "zp": -11},
                 opts(schema.PadOptionsT), O.PadOptions)
    check_single("TRANSPOSE", [act_in((1, 3, 4, 5), 0.1, 0),
                               const(np.array([0, 3, 1, 2], np.int32))],
                 {"shape": (1, 5, 3, 4), "scale": 0.1, "zp": 0},
                 opts(schema.TransposeOptionsT), O.TransposeOptions)


# ---------------------------------------------------------------------------
# Where float32 vs double parameter arithmetic changes results: these cases
# pin down which one the reference TFLite Micro build uses (multipliers in
# double, fused-activation bounds with float32 round(f / scale)).
# ---------------------------------------------------------------------------

def test_fc_per_tensor_multiplier_in_double():
    # float32(in_s * w_s) / out_s and the double product quantize differently
    in_s, w_s, out_s = 0.04450000077486038, 0.007360000163316727, 0.474700003862381
    bias = np.arange(-100741, -100721, dtype=np.int32)     # acc = bias (x = 0, zp 0)
    n = bias.size
    w = np.ones((n, 1), np.int8)
    model = make_single_op_model(
        "FULLY_CONNECTED",
        [act_in((1, 1), in_s, 0), const(w, [w_s], [0]), const(bias, [in_s * w_s], [0])],
        {"shape": (1, n), "scale": out_s, "zp": 0},
        opts(schema.FullyConnectedOptionsT), O.FullyConnectedOptions)
    x = np.zeros((1, 1), np.int8)
    ours = _run_multi(TFLiteModel(model), {0: x})
    np.testing.assert_array_equal(ours.reshape(-1), np.asarray(tflm_run(model, [x])).reshape(-1))


def test_hardswish_and_leaky_relu_multipliers_in_double():
    _exhaustive_unary("HARD_SWISH", 0.17463573813438416, -7, 0.18863296508789062, -20)
    _exhaustive_unary("LEAKY_RELU", 0.05, 3, 0.04, -9,
                      opts(schema.LeakyReluOptionsT, alpha=1.7), O.LeakyReluOptions)


def test_relu6_bound_uses_float32_division():
    # 6 / scale is just below k + 0.5 in double but exactly k + 0.5 in float32
    scale = 0.2448979616165161
    x = np.full((1, 4), 127, np.int8)
    model = make_single_op_model(
        "FULLY_CONNECTED", [act_in((1, 4), 1.0, 0), const(np.full((1, 4), 127, np.int8), [1.0], [0])],
        {"shape": (1, 1), "scale": scale, "zp": -128},
        opts(schema.FullyConnectedOptionsT, fusedActivationFunction=3), O.FullyConnectedOptions)
    ours = _run_multi(TFLiteModel(model), {0: x})
    assert int(ours.ravel()[0]) == -103 == int(np.asarray(tflm_run(model, [x])).ravel()[0])
