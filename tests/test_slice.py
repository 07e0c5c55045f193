"""Slice and Gather (constant indices) on activations: the op added by following
docs/adding-an-op.md. Float32 against onnxruntime; int8 C against the golden
model on the host and emulated Arm and RISC-V cores, bit for bit."""
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api
from tinydeploy.errors import TinydeployError

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def _rng_per_test(request):
    """Each test draws from its own seeded generator: its data does not depend on which
    tests ran before it in the same worker (pytest-xdist distributes them differently)."""
    global RNG
    RNG = np.random.default_rng([7, zlib.crc32(request.node.name.encode())])


def _model(path, opset=13, nodes_after=None, out_shape=None):
    """Conv (NCHW, 3 -> 7 channels, 5x6), then slices shaped as PyTorch exports them:
    a channel split x[:, 1:6], a reversed every-second column x[..., ::-2] and the
    last row x[:, :, -1] (a Gather)."""
    w = numpy_helper.from_array(RNG.normal(0, 0.5, (7, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(RNG.normal(0, 0.1, 7).astype(np.float32), "b")
    ints = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    inits = [w, b, ints("s1", [1]), ints("e1", [6]), ints("a1", [1]),
             ints("s2", [-1]), ints("e2", [-100]), ints("a2", [3]), ints("k2", [-2]), ints("idx", -1)]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Slice", ["c", "s1", "e1", "a1"], ["split"], name="channel_split"),
             helper.make_node("Relu", ["split"], ["r"], name="relu"),
             helper.make_node("Slice", ["r", "s2", "e2", "a2", "k2"], ["rev"], name="reverse_w"),
             helper.make_node("Gather", ["rev", "idx"], ["y"], axis=2, name="last_row")]
    graph = helper.make_graph(nodes, "slices", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_float_slices_match_onnxruntime(tmp_path):
    path = _model(str(tmp_path / "m.onnx"))
    x = RNG.normal(0, 1, (6, 3, 5, 6)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x])
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    assert got.shape == want.shape == (6, 5, 3)
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)


@pytest.mark.parametrize("target", ["host", "nucleo-l4r5zi", "cortex-m55", "esp32-c3"])
def test_int8_slices_bit_exact_with_golden(tmp_path, target):
    path = _model(str(tmp_path / "m.onnx"))
    calib = {"x": RNG.normal(0, 1, (16, 3, 5, 6)).astype(np.float32)}
    x = {"x": RNG.normal(0, 1, (4, 3, 5, 6)).astype(np.float32)}
    c = api.run(path, x, target=target, calib=calib).outputs["y"]
    golden = api.run(path, x, target=target, calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    # and the int8 model still computes the float model's function
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x["x"]])
    assert np.max(np.abs(c.reshape(ref.shape) - ref)) < 0.1 * np.max(np.abs(ref))


def test_slice_by_runtime_values_is_refused(tmp_path):
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Slice", ["x", "s", "shape"], ["y"], name="dyn")]
    graph = helper.make_graph(nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                                             helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(TinydeployError) as err:
        api.compile(path, quantize="float32")
    assert "Slice" in str(err.value) or "input" in str(err.value)


def test_gather_with_float_indices_is_refused(tmp_path):
    idx = numpy_helper.from_array(np.array([0, 2], np.float32), "idx")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "idx"], ["y"], name="pick")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [idx])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(TinydeployError) as err:
        api.compile(path, quantize="float32")
    assert str(err.value) == ("node 'pick' (Gather): the indices must be a non-empty integer tensor, "
                              "got float32 of shape [2]")
