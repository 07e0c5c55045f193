"""ONNX compatibility (issue 14): every opset the installed onnx knows (each node checked
at its own schema version), ceil_mode pooling sizes, op variants (n-ary Max/Min, Softmax
on any axis, ReduceMax/ReduceSum/ReduceMean over any axes, Expand, Tile, Shape with
start/end), and int8 requantization scales out of the usual shift range.
Float32 against onnxruntime; int8 C against the golden model on the host, a Cortex-M4
and an ESP32-C3; the exact messages of what stays unsupported."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api
from tinydeploy.errors import TinydeployError

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(14)
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
    _refused(path, "node 'add_bias' (Add): opset 6 gives Add version 6, whose legacy broadcasting "
                   "(attributes 'broadcast' and 'axis') tinydeploy does not implement; convert the model to "
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
