"""Ops real exports use beyond the MLPerf set: 1-D convolution and pooling (audio),
Split, Pow with a constant exponent, Erf, Elu, Softplus. Float32 against
onnxruntime; int8 C against the golden model on the host and emulated cores."""
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api, golden

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def _rng_per_test(request):
    """Each test draws from its own seeded generator: its data does not depend on which
    tests ran before it in the same worker (pytest-xdist distributes them differently)."""
    global RNG
    RNG = np.random.default_rng([11, zlib.crc32(request.node.name.encode())])


def _const(name, shape, scale=0.4):
    return numpy_helper.from_array(RNG.normal(0, scale, shape).astype(np.float32), name)


def _save(path, nodes, x_shape, y_shape, inits, opset=13):
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def audio_cnn(path):
    """As torch.nn.Conv1d/MaxPool1d/AvgPool1d/AdaptiveAvgPool1d export: [N, C, T] tensors."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[5], strides=[2], pads=[2, 2],
                              name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2], name="pool1"),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3], dilations=[2], pads=[2, 2],
                              group=3, name="conv2"),
             helper.make_node("AveragePool", ["c2"], ["p2"], kernel_shape=[3], strides=[1], pads=[1, 1],
                              name="pool2"),
             helper.make_node("GlobalAveragePool", ["p2"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="fc")]
    inits = [_const("w1", (9, 3, 5)), _const("b1", (9,), 0.1), _const("w2", (12, 3, 3)), _const("b2", (12,), 0.1),
             _const("w3", (4, 12)), _const("b3", (4,), 0.1)]
    return _save(path, nodes, [1, 3, 41], [1, 4], inits)


def split_and_functions(path):
    """Split (ShuffleNet-style channel halves), Pow 2 (a variance), Erf (GELU), Elu, Softplus."""
    split = numpy_helper.from_array(np.array([3, 5], np.int64), "split")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Split", ["c", "split"], ["a", "b"], axis=1, name="split"),
             helper.make_node("Pow", ["a", "two"], ["a2"], name="square"),
             helper.make_node("Erf", ["b"], ["be"], name="erf"),
             helper.make_node("Elu", ["be"], ["bel"], alpha=0.7, name="elu"),
             helper.make_node("Softplus", ["a2"], ["as"], name="softplus"),
             helper.make_node("Concat", ["as", "bel"], ["cat"], axis=1, name="concat"),
             helper.make_node("GlobalAveragePool", ["cat"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="fc")]
    inits = [split, two, _const("w1", (8, 2, 3, 3)), _const("b1", (8,), 0.1), _const("w3", (3, 8)),
             _const("b3", (3,), 0.1)]
    return _save(path, nodes, [1, 2, 6, 5], [1, 3], inits)


def exported_hardswish(path):
    """Input normalization (x - mean) / std, then a conv and HardSwish as PaddleOCR's MobileNetV3
    exports it: x * relu6(x + 3) / 6 (element-wise ops with constant operands)."""
    c = lambda name, v: numpy_helper.from_array(np.array(v, np.float32), name)  # noqa: E731
    nodes = [helper.make_node("Sub", ["x", "mean"], ["xc"], name="sub_mean"),
             helper.make_node("Div", ["xc", "std"], ["xn"], name="div_std"),
             helper.make_node("Conv", ["xn", "w1", "b1"], ["h"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Add", ["h", "three"], ["h3"], name="add3"),
             helper.make_node("Clip", ["h3", "zero", "six"], ["r6"], name="relu6"),
             helper.make_node("Mul", ["h", "r6"], ["m"], name="mul"),
             helper.make_node("Div", ["m", "six"], ["hs"], name="div6"),
             helper.make_node("GlobalAveragePool", ["hs"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="fc")]
    inits = [c("mean", np.full((1, 3, 1, 1), 0.2)), c("std", [[[[0.5]], [[0.8]], [[1.2]]]]), c("three", 3.0),
             c("zero", 0.0), c("six", 6.0), _const("w1", (6, 3, 3, 3)), _const("b1", (6,), 0.1),
             _const("w3", (3, 6)), _const("b3", (3,), 0.1)]
    return _save(path, nodes, [1, 3, 7, 5], [1, 3], inits)


def dilated_and_3d_pools(path):
    """Pools the ONNX node tests exercise beyond TFLite's: 3-D max and average pooling (with
    dilation, ceil_mode, count_include_pad), then dilated 2-D pooling after a conv."""
    shape = numpy_helper.from_array(np.array([1, 12, 4, 4], np.int64), "shape")
    nodes = [helper.make_node("MaxPool", ["x"], ["p1"], kernel_shape=[2, 3, 3], strides=[1, 2, 1],
                              dilations=[1, 2, 1], pads=[0, 2, 1, 1, 1, 0], name="pool3d_max"),
             helper.make_node("AveragePool", ["p1"], ["p2"], kernel_shape=[2, 2, 3], strides=[2, 1, 2],
                              pads=[1, 0, 1, 0, 1, 1], ceil_mode=1, count_include_pad=1, name="pool3d_avg"),
             helper.make_node("Reshape", ["p2", "shape"], ["r"], name="to_2d"),
             helper.make_node("Conv", ["r", "w1", "b1"], ["c"], kernel_shape=[1, 1], name="conv"),
             helper.make_node("MaxPool", ["c"], ["p3"], kernel_shape=[3, 2], dilations=[2, 3], pads=[2, 1, 1, 1],
                              name="pool_dilated_max"),
             helper.make_node("AveragePool", ["p3"], ["p4"], kernel_shape=[2, 2], dilations=[1, 2], strides=[1, 2],
                              pads=[1, 1, 0, 1], name="pool_dilated_avg"),
             helper.make_node("GlobalAveragePool", ["p4"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="fc")]
    inits = [shape, _const("w1", (7, 12, 1, 1)), _const("b1", (7,), 0.1), _const("w3", (3, 7)),
             _const("b3", (3,), 0.1)]
    return _save(path, nodes, [1, 4, 5, 9, 7], [1, 3], inits, opset=19)


MODELS = {"audio_cnn": (audio_cnn, (3, 41)), "dilated_and_3d_pools": (dilated_and_3d_pools, (4, 5, 9, 7)), "split_and_functions": (split_and_functions, (2, 6, 5)),
          "exported_hardswish": (exported_hardswish, (3, 7, 5))}


def _ort(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float_matches_onnxruntime(tmp_path, name):
    build, shape = MODELS[name]
    path = build(tmp_path / f"{name}.onnx")
    x = RNG.normal(0, 1, (5,) + shape).astype(np.float32)
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(5, -1), _ort(path, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", ["host", "nucleo-l4r5zi", "esp32-c3"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_int8_bit_exact_with_golden(tmp_path, name, target):
    build, shape = MODELS[name]
    path = build(tmp_path / f"{name}.onnx")
    calib = {"x": RNG.normal(0, 1, (32,) + shape).astype(np.float32)}
    x = {"x": calib["x"][:4]}  # within the calibrated ranges (Pow 2 clips hard outside them)
    c = api.run(path, x, target=target, calib=calib).outputs["y"]
    golden = api.run(path, x, target=target, calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    ref = _ort(path, x["x"])
    assert np.max(np.abs(c.reshape(ref.shape) - ref)) < 0.15 * np.max(np.abs(ref)) + 0.05


@pytest.mark.parametrize("target", ["cortex-m55", "rv32-zve32x"])
def test_dilated_and_3d_pools_bit_exact_on_vector_cores(tmp_path, target):
    """Helium and RISC-V vector run their own pool kernels for undilated pools and must leave
    the dilated ones to the portable kernel."""
    path = dilated_and_3d_pools(tmp_path / "pools.onnx")
    calib = {"x": RNG.normal(0, 1, (16, 4, 5, 9, 7)).astype(np.float32)}
    x = {"x": calib["x"][:3]}
    c = api.run(path, x, target=target, calib=calib).outputs["y"]
    np.testing.assert_array_equal(c, api.run(path, x, target=target, calib=calib, golden=True).outputs["y"])


def test_one_d_layers_need_no_transposes(tmp_path):
    """The reshapes around 1-D layers only add a unit axis: the layout pass keeps them free.
    The one transpose is the model input's, [C, T] to time-major, as for a 2-D model's NCHW input."""
    path = audio_cnn(tmp_path / "audio.onnx")
    result = api.compile(path, quantize="float32")
    g = result.graph
    kinds = [op.kind for op in g.ops]
    transposes = [op for op in g.ops if op.kind == "transpose"]
    assert len(transposes) == 1, kinds
    assert kinds.index("transpose") < kinds.index("conv2d"), kinds
    assert kinds.count("conv2d") == 2 and "max_pool" in kinds and "avg_pool" in kinds


def unet_up(path, opset, op_type="Resize", coord="asymmetric", rounding="floor"):
    """A U-Net/FPN step: conv, nearest 2x upsampling (F.interpolate / Upsample), skip concat, conv."""
    if op_type == "Upsample":
        up = helper.make_node("Upsample", ["c1", "scales"], ["u"], mode="nearest", name="up")
        extra = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    else:
        up = helper.make_node("Resize", ["c1", "", "scales"], ["u"], mode="nearest",
                              coordinate_transformation_mode=coord, nearest_mode=rounding, name="up")
        extra = [numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "scales")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], name="down"),
             up,
             helper.make_node("Conv", ["u", "w2", "b2"], ["y"], kernel_shape=[1, 1], name="head")]
    inits = [_const("w1", (5, 3, 3, 3)), _const("b1", (5,), 0.1), _const("w2", (4, 5, 1, 1)),
             _const("b2", (4,), 0.1)] + extra
    w_out = 8 if op_type == "Upsample" else 12
    return _save(path, nodes, [1, 3, 8, 8], [1, 4, 8, w_out], inits, opset=opset)


UPSAMPLING = {"resize_half_pixel": dict(opset=13, coord="half_pixel", rounding="round_prefer_floor"),
              "resize_asymmetric_floor": dict(opset=13),
              "upsample_opset9": dict(opset=9, op_type="Upsample")}


@pytest.mark.parametrize("case", sorted(UPSAMPLING))
def test_nearest_upsampling_float_and_int8(tmp_path, case):
    path = unet_up(tmp_path / "up.onnx", **UPSAMPLING[case])
    x = RNG.normal(0, 1, (3, 3, 8, 8)).astype(np.float32)
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(3, -1), _ort(path, x).reshape(3, -1), rtol=1e-5, atol=1e-5)
    calib = {"x": RNG.normal(0, 1, (16, 3, 8, 8)).astype(np.float32)}
    sample = {"x": calib["x"][:3]}
    c = api.run(path, sample, target="nucleo-l4r5zi", calib=calib).outputs["y"]
    golden = api.run(path, sample, target="nucleo-l4r5zi", calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)


def test_bilinear_and_fractional_resizing_are_refused(tmp_path):
    path = unet_up(tmp_path / "up.onnx", opset=13, coord="align_corners", rounding="round_prefer_floor")
    with pytest.raises(Exception) as err:
        api.compile(path, quantize="float32")
    assert str(err.value) == ("node 'up' (Resize): resizing axis 3 from 4 to 12 (align_corners, "
                              "round_prefer_floor) does not repeat each element a whole number of times; "
                              "only nearest upsampling by integer factors is supported")



def tanh_autoencoder(path):
    """A dense autoencoder whose Tanh bottleneck stays within about +-0.5."""
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="enc"),
             helper.make_node("Tanh", ["h"], ["t"], name="tanh"),
             helper.make_node("Gemm", ["t", "w2", "b2"], ["y"], transB=1, name="dec")]
    inits = [_const("w1", (12, 16), 0.08), _const("b1", (12,), 0.02), _const("w2", (16, 12), 0.5),
             _const("b2", (16,), 0.1)]
    return _save(path, nodes, [1, 16], [1, 16], inits)


def test_calibrated_tanh_uses_its_whole_int8_range(tmp_path):
    """TFLite's tanh has a fixed 1/128 output scale: outputs within +-0.5 would use about a
    quarter of the codes. A calibrated tanh keeps its own range (an exact table) instead."""
    path = tanh_autoencoder(tmp_path / "ae.onnx")
    calib = {"x": RNG.normal(0, 1, (64, 16)).astype(np.float32)}
    g = api.build_graph(path, calib=calib)
    tanh = next(op for op in g.ops if op.name == "tanh")
    assert tanh.kind == "lut_s8"
    scale, zp = g.tensors[g.inputs[0]].quant.scalar()
    codes = set()
    for s in calib["x"]:
        xq = np.clip(np.round(s / scale) + zp, -128, 127).astype(np.int8)
        codes |= set(golden.run_sample(g, xq, keep_all=True)[tanh.outputs[0]].reshape(-1).tolist())
    assert len(codes) > 160, len(codes)  # the fixed 1/128 scale allows at most 129 here
    sample = {"x": calib["x"][:4]}
    for target in ("host", "nucleo-l4r5zi"):
        c = api.run(path, sample, target=target, calib=calib).outputs["y"]
        np.testing.assert_array_equal(c, api.run(path, sample, target=target, calib=calib, golden=True).outputs["y"])
