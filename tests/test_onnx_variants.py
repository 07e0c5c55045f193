"""ONNX compatibility (issue 14): every opset the installed onnx knows (each node checked
at its own schema version), ceil_mode pooling sizes, op variants (n-ary Max/Min, Softmax
on any axis, ReduceMax/ReduceSum/ReduceMean over any axes, Expand, Tile, Shape with
start/end), and int8 requantization scales out of the usual shift range.
Float32 against onnxruntime; int8 C against the golden model on the host, a Cortex-M4
and an ESP32-C3; the exact messages of what stays unsupported."""
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api
from tinydeploy.errors import TinydeployError

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(14)


@pytest.fixture(autouse=True)
def _rng_per_test(request):
    """Each test draws from its own seeded generator: its data does not depend on which
    tests ran before it in the same worker (pytest-xdist distributes them differently)."""
    global RNG
    RNG = np.random.default_rng([14, zlib.crc32(request.node.name.encode())])
TARGETS = ["host", "nucleo-l4r5zi", "esp32-c3"]


def _const(name, shape, scale=0.4):
    return numpy_helper.from_array(RNG.normal(0, scale, shape).astype(np.float32), name)


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _save(path, nodes, x_shape, inits=(), opset=13, y_shape=None):
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)
    return str(path)


def _ort(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x])


def _float_ok(path, shape, n=4, atol=1e-5):
    x = RNG.normal(0, 1, (n,) + tuple(shape)).astype(np.float32)
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    ref = _ort(path, x)
    np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-5, atol=atol)


def _int8_ok(path, shape, target, tol=0.15):
    calib = {"x": RNG.normal(0, 1, (32,) + tuple(shape)).astype(np.float32)}
    x = {"x": calib["x"][:3]}
    c = api.run(path, x, target=target, calib=calib).outputs["y"]
    golden = api.run(path, x, target=target, calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    ref = _ort(path, x["x"])
    assert np.max(np.abs(c.reshape(ref.shape) - ref)) < tol * np.max(np.abs(ref)) + 0.05


def _refused(path, message):
    with pytest.raises(TinydeployError) as err:
        api.compile(path, quantize="float32")
    assert str(err.value) == message


# --------------------------------------------------------------------------
# 1. Opsets: every one onnx knows; each node checked at its own version
# --------------------------------------------------------------------------
def conv_net(path, opset):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc")]
    inits = [_const("w", (4, 2, 3, 3)), _const("b", (4,), 0.1), _const("w2", (3, 4)), _const("b2", (3,), 0.1)]
    return _save(path, nodes, [1, 2, 6, 6], inits, opset=opset)


@pytest.mark.parametrize("opset", [7, 9, 10, 22, onnx.defs.onnx_opset_version()])
def test_opsets_outside_11_to_21_compile(tmp_path, opset):
    path = conv_net(tmp_path / "m.onnx", opset)
    _float_ok(path, (2, 6, 6))
    if opset in (9, onnx.defs.onnx_opset_version()):
        _int8_ok(path, (2, 6, 6), "host")


def test_old_semantics_are_refused_with_the_version(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["y"], broadcast=1, axis=1, name="add_bias")]
    path = _save(tmp_path / "m.onnx", nodes, [1, 3, 2], [_const("b", (3,))], opset=6, y_shape=[1, 3, 2])
    _refused(path, "node 'add_bias' (Add): opset 6 makes it Add version 6, with semantics tinydeploy does not "
                   "implement: legacy broadcasting (attributes 'broadcast' and 'axis'); convert the model to "
                   "opset 11 or later (onnx.version_converter.convert_version(model, 11))")


def test_same_shape_add_at_opset_6_compiles(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["y"], name="add")]
    b = _const("b", (1, 3))
    path = _save(tmp_path / "m.onnx", nodes, [1, 3], [b], opset=6, y_shape=[1, 3])
    x = RNG.normal(0, 1, (2, 3)).astype(np.float32)  # (onnxruntime has no Add-6)
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(x.shape), x + numpy_helper.to_array(b), rtol=1e-6)


# --------------------------------------------------------------------------
# 2. ceil_mode: ONNX output sizes, no window wholly in padding
# --------------------------------------------------------------------------
def pool_model(path, op, size, k, s, p, opset=13, channels=2, **extra):
    node = helper.make_node(op, ["x"], ["y"], kernel_shape=[k, k], strides=[s, s], ceil_mode=1,
                            **({"pads": [p] * 4} if p else {}), **extra, name="pool")
    return _save(path, [node], [1, channels, size, size], opset=opset)


def test_maxpool_2d_ceil_output_size_reduce_by_one(tmp_path):
    """ONNX's node test: kernel 1, stride 2, ceil_mode on 2x2 gives 1x1 (not 2x2 with -FLT_MAX)."""
    path = pool_model(tmp_path / "m.onnx", "MaxPool", 2, 1, 2, 0, opset=22, channels=1)
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    np.testing.assert_array_equal(got.reshape(-1), [1.0])
    for opset in (12, 19):  # onnxruntime applies the rule at every opset
        path = pool_model(tmp_path / f"m{opset}.onnx", "MaxPool", 2, 1, 2, 0, opset=opset, channels=1)
        assert api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"].size == 1


CEIL = {"max_5_k2_s2": ("MaxPool", 5, 2, 2, 0), "max_6_k3_s2_p1": ("MaxPool", 6, 3, 2, 1),
        "max_7_k3_s3": ("MaxPool", 7, 3, 3, 0), "max_4_k1_s3": ("MaxPool", 4, 1, 3, 0),
        "avg_5_k2_s2": ("AveragePool", 5, 2, 2, 0), "avg_8_k3_s2_p1": ("AveragePool", 8, 3, 2, 1),
        "avg_2_k1_s2": ("AveragePool", 2, 1, 2, 0)}


@pytest.mark.parametrize("case", sorted(CEIL))
def test_ceil_mode_float(tmp_path, case):
    op, size, k, s, p = CEIL[case]
    path = pool_model(tmp_path / "m.onnx", op, size, k, s, p)
    _float_ok(path, (2, size, size))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", ["max_6_k3_s2_p1", "avg_8_k3_s2_p1", "max_4_k1_s3"])
def test_ceil_mode_int8(tmp_path, case, target):
    op, size, k, s, p = CEIL[case]
    path = pool_model(tmp_path / "m.onnx", op, size, k, s, p)
    _int8_ok(path, (2, size, size), target)


def test_ceil_mode_1d(tmp_path):
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1], strides=[2], ceil_mode=1, name="pool")
    path = _save(tmp_path / "m.onnx", [node], [1, 3, 6], opset=22)
    _float_ok(path, (3, 6))


# --------------------------------------------------------------------------
# 3. Op variants
# --------------------------------------------------------------------------
def _conv(x, out, c_in, c_out, name, k=3):
    node = helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out], kernel_shape=[k, k],
                            pads=[k // 2] * 4, name=name)
    return node, [_const(f"{name}_w", (c_out, c_in, k, k)), _const(f"{name}_b", (c_out,), 0.1)]


def max_min_nary(path, opset=13):
    """Max of three inputs (one constant), Min of one input (an alias), Min of two."""
    c1, i1 = _conv("x", "a", 3, 4, "conv1")
    c2, i2 = _conv("x", "b", 3, 4, "conv2")
    nodes = [c1, c2, helper.make_node("Max", ["a", "floor", "b"], ["m"], name="max3"),
             helper.make_node("Min", ["m"], ["m1"], name="min1"),
             helper.make_node("Min", ["m1", "a"], ["y"], name="min2")]
    floor = numpy_helper.from_array(np.array([[[[-0.2]], [[0.1]], [[0.0]], [[-1.0]]]], np.float32), "floor")
    return _save(path, nodes, [1, 3, 5, 6], i1 + i2 + [floor], opset=opset)


def softmax_axis(path, axis, opset=13):
    """Softmax over the channels, the rows or the columns of a conv output (NCHW)."""
    c1, i1 = _conv("x", "c", 3, 4, "conv")
    return _save(path, [c1, helper.make_node("Softmax", ["c"], ["y"], axis=axis, name="softmax")],
                 [1, 3, 5, 6], i1, opset=opset)


def softmax_3d(path):
    """[batch, tokens, features] with the softmax over the tokens (outer/axis/inner)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
             helper.make_node("Softmax", ["h"], ["y"], axis=1, name="softmax")]
    return _save(path, nodes, [1, 7, 5], [_const("w", (5, 6))], opset=13)


def reductions(path, opset):
    """ReduceMax over non-adjacent axes (keepdims 0), ReduceSum over one axis (keepdims 1),
    ReduceMean over channels and width; axes as attributes before opset 18 (13 for Sum)."""
    c1, i1 = _conv("x", "c", 3, 4, "conv")
    def reduce(op, x, y, axes, keepdims, name):
        as_input = opset >= (13 if op == "ReduceSum" else 18)
        if as_input:
            return helper.make_node(op, [x, f"{name}_axes"], [y], keepdims=keepdims, name=name), \
                [_ints(f"{name}_axes", axes)]
        return helper.make_node(op, [x], [y], axes=axes, keepdims=keepdims, name=name), []
    r1, a1 = reduce("ReduceMax", "c", "mx", [1, 3], 0, "rmax")       # [1, 5]
    r2, a2 = reduce("ReduceSum", "c", "sm", [2], 1, "rsum")          # [1, 4, 1, 6]
    r3, a3 = reduce("ReduceMean", "sm", "mn", [1, 3], 0, "rmean")    # [1, 1]
    nodes = [c1, r1, r2, r3, helper.make_node("Add", ["mx", "mn"], ["y"], name="add")]
    return _save(path, nodes, [1, 3, 5, 6], i1 + a1 + a2 + a3, opset=opset)


def reduce_max_keepdims(path):
    """A spatial max keeping its dims (global max pooling as exported), then a 1x1 conv."""
    c1, i1 = _conv("x", "c", 3, 4, "conv")
    c2, i2 = _conv("g", "y", 4, 2, "head", k=1)
    nodes = [c1, helper.make_node("ReduceMax", ["c"], ["g"], axes=[2, 3], keepdims=1, name="gmax"), c2]
    return _save(path, nodes, [1, 3, 5, 6], i1 + i2, opset=13)


def expand_and_tile(path):
    """Squeeze-excitation style gate broadcast by Expand, then a Tile of the product."""
    c1, i1 = _conv("x", "c", 3, 4, "conv")
    nodes = [c1, helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
             helper.make_node("Sigmoid", ["g"], ["s"], name="gate"),
             helper.make_node("Expand", ["s", "shape"], ["e"], name="expand"),
             helper.make_node("Mul", ["c", "e"], ["m"], name="scale"),
             helper.make_node("Tile", ["m", "repeats"], ["y"], name="tile")]
    return _save(path, nodes, [1, 3, 5, 6], i1 + [_ints("shape", [1, 4, 5, 6]), _ints("repeats", [1, 2, 1, 3])],
                 opset=13)


def expand_rank(path):
    """Expand of a [1, 4, 1] tensor to [1, 2, 4, 3] (a new axis and a broadcast one)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
             helper.make_node("Expand", ["h", "shape"], ["y"], name="expand")]
    return _save(path, nodes, [1, 4, 3], [_const("w", (3, 1)), _ints("shape", [1, 2, 1, 3])], opset=13)


def shape_start_end(path):
    """Reshape to [batch, -1] where batch comes from Shape(start=0, end=1) (opset 15)."""
    c1, i1 = _conv("x", "c", 3, 4, "conv")
    nodes = [c1, helper.make_node("Shape", ["c"], ["n"], start=0, end=1, name="batch"),
             helper.make_node("Shape", ["c"], ["hw"], start=-2, name="spatial"),
             helper.make_node("ReduceProd", ["hw"], ["p"], keepdims=1, name="prod"),
             helper.make_node("Mul", ["p", "four"], ["flat"], name="flat"),
             helper.make_node("Concat", ["n", "flat"], ["shape"], axis=0, name="cat"),
             helper.make_node("Reshape", ["c", "shape"], ["f"], name="reshape"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc")]
    inits = i1 + [_ints("four", [4]), _const("w2", (3, 120)), _const("b2", (3,), 0.1)]
    return _save(path, nodes, [1, 3, 5, 6], inits, opset=15)


VARIANTS = {"max_min_nary": (max_min_nary, (3, 5, 6)),
            "softmax_axis1": (lambda p: softmax_axis(p, 1), (3, 5, 6)),
            "softmax_axis2": (lambda p: softmax_axis(p, 2), (3, 5, 6)),
            "softmax_axis3": (lambda p: softmax_axis(p, 3), (3, 5, 6)),
            "softmax_3d": (softmax_3d, (7, 5)),
            "reductions_opset13": (lambda p: reductions(p, 13), (3, 5, 6)),
            "reductions_opset18": (lambda p: reductions(p, 18), (3, 5, 6)),
            "reductions_opset11": (lambda p: reductions(p, 11), (3, 5, 6)),
            "reduce_max_keepdims": (reduce_max_keepdims, (3, 5, 6)),
            "expand_and_tile": (expand_and_tile, (3, 5, 6)),
            "expand_rank": (expand_rank, (4, 3)),
            "shape_start_end": (shape_start_end, (3, 5, 6))}
INT8_VARIANTS = sorted(set(VARIANTS) - {"reductions_opset11", "softmax_axis3"})


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_float(tmp_path, name):
    build, shape = VARIANTS[name]
    _float_ok(build(tmp_path / "m.onnx"), shape)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", INT8_VARIANTS)
def test_variants_int8(tmp_path, name, target):
    build, shape = VARIANTS[name]
    _int8_ok(build(tmp_path / "m.onnx"), shape, target)


# --------------------------------------------------------------------------
# 4. int8 scales far apart: exact saturation instead of refusing
# --------------------------------------------------------------------------
def qdq_conv(path, y_scale, c_in=3, w_max=40):
    """QDQ conv (int8 weights, int32 bias) whose output scale is far from input * weight scale:
    1e-12 gives the requantization shift 32 (a multiplier of 2^31, as a random-init
    EfficientNet-B0 calibrated on a near-constant tensor), 1e12 a multiplier below 2^-32."""
    rng = np.random.default_rng(5)
    w = rng.integers(-w_max, w_max + 1, (4, c_in, 3, 3)).astype(np.int8)
    b = rng.integers(-50, 50, (4,)).astype(np.int32)
    f = lambda name, v: numpy_helper.from_array(np.array(v, np.float32), name)  # noqa: E731
    i8 = lambda name, v: numpy_helper.from_array(np.array(v, np.int8), name)  # noqa: E731
    inits = [f("sx", 0.05), i8("zx", 0), numpy_helper.from_array(w, "wq"), f("sw", 0.05), i8("zw", 0),
             numpy_helper.from_array(b, "bq"), f("sb", 0.05 * 0.05), numpy_helper.from_array(np.int32(0), "zb"),
             f("sy", y_scale), i8("zy", 3)]
    n = helper.make_node
    nodes = [n("QuantizeLinear", ["x", "sx", "zx"], ["xq"], name="qx"),
             n("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], name="dqx"),
             n("DequantizeLinear", ["wq", "sw", "zw"], ["wd"], name="dqw"),
             n("DequantizeLinear", ["bq", "sb", "zb"], ["bd"], name="dqb"),
             n("Conv", ["xd", "wd", "bd"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
             n("QuantizeLinear", ["c", "sy", "zy"], ["cq"], name="qy"),
             n("DequantizeLinear", ["cq", "sy", "zy"], ["y"], name="dqy")]
    return _save(path, nodes, [1, c_in, 5, 5], inits, opset=13)


def _ort_qdq(path, x):
    opts = ort.SessionOptions()  # the QDQ graph's own semantics
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("y_scale", [1e-12, 1e12])
def test_requantization_out_of_shift_range_is_exact(tmp_path, y_scale, target):
    path = qdq_conv(tmp_path / "m.onnx", y_scale)
    x = RNG.normal(0, 1, (3, 3, 5, 5)).astype(np.float32)
    x[0, :, 2, 2] = 0.0  # some accumulators are exactly the bias
    c = api.run(path, {"x": x}, target=target).outputs["y"]
    golden = api.run(path, {"x": x}, target=target, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    ref = _ort_qdq(path, x)
    if y_scale > 1:
        np.testing.assert_array_equal(c.reshape(ref.shape), ref)
    else:
        # onnxruntime runs the QDQ conv in float: where the integer accumulator is exactly 0,
        # its float sum can be a rounding residue that a scale of 1e-12 saturates
        got = c.reshape(ref.shape)
        differ = got != ref
        assert differ.mean() < 0.02 and np.all(got[differ] == 0.0), (got[differ], ref[differ])
    if y_scale < 1:  # every output saturates except where the accumulator is 0
        assert set(np.unique(np.round(ref / y_scale) + 3)) <= {-128.0, 3.0, 127.0}
    else:
        assert np.all(ref == 0)


def test_shift_32_becomes_the_saturating_multiplier():
    from tinydeploy import qmath
    m, s = qmath.quantize_multiplier(0.05 * 0.05 / np.float32(1e-12))
    assert s == 32
    assert qmath.requant_multiplier(0.05 * 0.05 / np.float32(1e-12)) == ((1 << 31) - 1, 8)
    assert qmath.requant_multiplier(-(2.0 ** 40)) == (-((1 << 31) - 1), 8)
    assert qmath.requant_multiplier(0.75) == qmath.quantize_multiplier(0.75)
    x = np.arange(-(1 << 21), 1 << 21, 997, dtype=np.int64)
    np.testing.assert_array_equal(qmath.multiply_by_quantized_multiplier(x, (1 << 31) - 1, 8), 256 * x)


def test_saturating_requantization_that_overflows_is_refused(tmp_path):
    """With the 8-bit left shift the accumulator must stay below 2^23: 160 channels of weights
    near 127 can reach more, which stays refused with the layer's bound."""
    path = qdq_conv(tmp_path / "m.onnx", 1e-12, c_in=160, w_max=127)
    with pytest.raises(TinydeployError) as err:
        api.compile(path)
    assert str(err.value) == (
        "1 layer(s) could overflow int32 arithmetic for some inputs:\n  layer 'conv' (conv2d_s8): the int32 "
        "accumulator of output channel 0 (|bias| 33, sum |w| 91,278) shifted left by 8 bits for requantization "
        "can reach 2,991,005,952 (int32 holds 2,147,483,647)\nsuch a layer would give wrong results; reduce its "
        "weights, bias or reduction length, or fix its quantization scales (or compile with --quantize float32)")


# --------------------------------------------------------------------------
# What stays unsupported: exact messages
# --------------------------------------------------------------------------
def test_ceil_mode_average_counting_padding_past_the_input(tmp_path):
    """The last window passes the declared padding: ONNX counts the padding but not the cells
    past it, as an explicit zero Pad followed by an average over real cells."""
    path = pool_model(tmp_path / "m.onnx", "AveragePool", 6, 3, 2, 1, count_include_pad=1)
    _float_ok(path, (2, 6, 6))
    _int8_ok(path, (2, 6, 6), "host")
    kinds = [op.kind for op in api.compile(path, quantize="float32").graph.ops]
    assert "pad" in kinds and "avg_pool" in kinds, kinds


def test_pool_window_wholly_in_the_padding_is_refused(tmp_path):
    """Dilation can put a whole window in the padding (differential-fuzzer seed 4843):
    onnxruntime writes -3.4e38 there; tinydeploy says so instead of calibrating on it."""
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], pads=[0, 1, 0, 1],
                            name="pool")
    path = _save(tmp_path / "m.onnx", [node], [1, 1, 9, 1])
    _refused(path, "node 'pool' (MaxPool): the window of output column 0 lies wholly in the padding "
                   "(kernel [2, 2], dilations [2, 2], pads [0, 1, 0, 1]): it has no value (onnxruntime writes "
                   "-3.4e38 or 0); reduce the padding or the dilation")


def test_ceil_mode_average_counting_padding_inside_it_compiles(tmp_path):
    """The extra window ends inside the declared padding: the same as ceil_mode=0."""
    path = pool_model(tmp_path / "m.onnx", "AveragePool", 5, 3, 2, 1, count_include_pad=1)
    _float_ok(path, (2, 5, 5))


def test_tile_beyond_six_dimensions_is_refused(tmp_path):
    nodes = [helper.make_node("Tile", ["x", "repeats"], ["y"], name="tile")]
    path = _save(tmp_path / "m.onnx", nodes, [1, 2, 3, 4, 5], [_ints("repeats", [1, 2, 2, 2, 2])])
    _refused(path, "node 'tile': tiling 5-D data by [1, 2, 2, 2, 2] needs more than 6 dimensions")


def test_tile_1_is_refused_with_its_version(tmp_path):
    nodes = [helper.make_node("Tile", ["x", "tiles", "axis"], ["y"], name="tile")]
    path = _save(tmp_path / "m.onnx", nodes, [1, 3], [_ints("tiles", 2), _ints("axis", 1)], opset=5,
                 y_shape=[1, 6])
    _refused(path, "node 'tile' (Tile): opset 5 makes it Tile version 1, with semantics tinydeploy does not "
                   "implement: the inputs 'tiles' and 'axis'; convert the model to opset 11 or later "
                   "(onnx.version_converter.convert_version(model, 11))")


def test_reduce_with_empty_axes_and_noop_is_an_alias(tmp_path):
    c1, i1 = _conv("x", "c", 3, 4, "conv")
    nodes = [c1, helper.make_node("ReduceSum", ["c", "none"], ["y"], noop_with_empty_axes=1, name="noop")]
    path = _save(tmp_path / "m.onnx", nodes, [1, 3, 5, 6], i1 + [_ints("none", np.zeros(0, np.int64))], opset=13)
    _float_ok(path, (3, 5, 6))
    assert [op.kind for op in api.compile(path, quantize="float32").graph.ops if op.kind.startswith("reduce")] == []
