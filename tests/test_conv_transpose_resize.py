"""ConvTranspose and bilinear Resize (issue 14): decoders and FPN necks as PyTorch
and PaddleOCR export them. Float32 against onnxruntime; int8 C against the golden
model bit for bit on the host and emulated cores; the golden kernels against
TensorFlow Lite Micro's TRANSPOSE_CONV and RESIZE_BILINEAR; the refusals' messages."""
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api, qmath
from tinydeploy.ops import conv_transpose, resize_bilinear

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(14)


@pytest.fixture(autouse=True)
def _seeded_rng(request):
    """Each test draws its weights and data from its own generator, seeded by its name, so its
    numbers do not depend on which tests pytest-xdist ran before it in the same worker."""
    global RNG
    RNG = np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _const(name, shape, scale=0.4):
    return numpy_helper.from_array(RNG.normal(0, scale, shape).astype(np.float32), name)


def _save(path, nodes, x_shape, y_shape, inits, opset=13):
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if y_shape is not None:
        onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def _conv(x, w, y, name, **attrs):
    return helper.make_node("Conv", [x, w, w.replace("w", "b")], [y], name=name, **attrs)


def _tconv(x, w, y, name, **attrs):
    return helper.make_node("ConvTranspose", [x, w, w.replace("w", "b")], [y], name=name, **attrs)


def unet_decoder(path):
    """A U-Net decoder step: an encoder conv, three up-convolutions of its output (kernel 2
    stride 2; kernel 3, padding 1, output_padding 1; groups=2), concatenated with the skip
    connection (the input), and the decoder conv. Odd channel counts (5, 7, 3)."""
    nodes = [_conv("x", "w_enc", "e", "enc", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["e"], ["er"], name="enc_relu"),
             _tconv("er", "w_up2", "u2", "up_k2", kernel_shape=[2, 2], strides=[2, 2]),
             _tconv("er", "w_up3", "u3", "up_k3", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                    output_padding=[1, 1]),
             _tconv("er", "w_upg", "ug", "up_groups", kernel_shape=[2, 2], strides=[2, 2], group=2),
             helper.make_node("Concat", ["u2", "u3", "ug", "x"], ["cat"], axis=1, name="skip_concat"),
             _conv("cat", "w_dec", "d", "dec", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["d"], ["y"], name="dec_relu")]
    inits = [_const("w_enc", (6, 3, 3, 3)), _const("b_enc", (6,), 0.1),
             _const("w_up2", (6, 5, 2, 2)), _const("b_up2", (5,), 0.1),
             _const("w_up3", (6, 7, 3, 3)), _const("b_up3", (7,), 0.1),
             _const("w_upg", (6, 3, 2, 2)), _const("b_upg", (6,), 0.1),
             _const("w_dec", (4, 21, 3, 3), 0.15), _const("b_dec", (4,), 0.1)]
    return _save(path, nodes, [1, 3, 8, 10], [1, 4, 8, 10], inits)


def db_neck(path, coord="half_pixel"):
    """A PaddleOCR DB-like text detector's neck and head: a small backbone (strides 2, 4, 8),
    1x1 lateral convs, a top-down FPN with bilinear 2x upsampling (Resize with scales), the
    levels brought to 1/2 resolution by bilinear Resize with sizes and concatenated, a 3x3
    fuse conv, and the DB head: ConvTranspose (kernel 2, stride 2), BatchNormalization, ReLU,
    ConvTranspose and Sigmoid."""
    def resize(x, y, name, scales=None, sizes=None):
        ins = [x, "", scales] if scales else [x, "", "", sizes]
        return helper.make_node("Resize", ins, [y], name=name, mode="linear",
                                coordinate_transformation_mode=coord)
    nodes = [_conv("x", "w_c2", "c2", "stage2", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["c2r"], name="stage2_relu"),
             _conv("c2r", "w_c3", "c3", "stage3", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c3"], ["c3r"], name="stage3_relu"),
             _conv("c3r", "w_c4", "c4", "stage4", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c4"], ["c4r"], name="stage4_relu"),
             _conv("c2r", "w_in2", "in2", "in2_conv", kernel_shape=[1, 1]),
             _conv("c3r", "w_in3", "in3", "in3_conv", kernel_shape=[1, 1]),
             _conv("c4r", "w_in4", "in4", "in4_conv", kernel_shape=[1, 1]),
             resize("in4", "up4", "up4", scales="two"),
             helper.make_node("Add", ["in3", "up4"], ["out3"], name="add3"),
             resize("out3", "up3", "up3", scales="two"),
             helper.make_node("Add", ["in2", "up3"], ["out2"], name="add2"),
             resize("in4", "p4", "p4_up", sizes="size_half"),
             resize("out3", "p3", "p3_up", sizes="size_half"),
             resize("out2", "p2", "p2_up", sizes="size_half"),
             helper.make_node("Concat", ["p4", "p3", "p2"], ["fuse"], axis=1, name="fuse_concat"),
             _conv("fuse", "w_f", "f", "fuse_conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["f"], ["fr"], name="fuse_relu"),
             _tconv("fr", "w_h1", "h1", "head_up1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("BatchNormalization", ["h1", "bn_s", "bn_b", "bn_m", "bn_v"], ["h1n"], name="head_bn"),
             helper.make_node("Relu", ["h1n"], ["h1r"], name="head_relu"),
             _tconv("h1r", "w_h2", "h2", "head_up2", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Sigmoid", ["h2"], ["y"], name="prob")]
    inits = [_const("w_c2", (5, 3, 3, 3)), _const("b_c2", (5,), 0.1),
             _const("w_c3", (7, 5, 3, 3), 0.3), _const("b_c3", (7,), 0.1),
             _const("w_c4", (9, 7, 3, 3), 0.25), _const("b_c4", (9,), 0.1),
             _const("w_in2", (6, 5, 1, 1)), _const("b_in2", (6,), 0.1),
             _const("w_in3", (6, 7, 1, 1)), _const("b_in3", (6,), 0.1),
             _const("w_in4", (6, 9, 1, 1)), _const("b_in4", (6,), 0.1),
             _const("w_f", (5, 18, 3, 3), 0.15), _const("b_f", (5,), 0.1),
             _const("w_h1", (5, 3, 2, 2)), _const("b_h1", (3,), 0.1),
             numpy_helper.from_array(np.array([1.2, 0.8, 1.0], np.float32), "bn_s"),
             numpy_helper.from_array(np.array([0.1, -0.2, 0.0], np.float32), "bn_b"),
             numpy_helper.from_array(np.array([0.05, 0.1, -0.1], np.float32), "bn_m"),
             numpy_helper.from_array(np.array([0.9, 1.1, 1.3], np.float32), "bn_v"),
             _const("w_h2", (3, 1, 2, 2)), _const("b_h2", (1,), 0.1),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "two"),
             numpy_helper.from_array(np.array([1, 6, 8, 12], np.int64), "size_half")]
    return _save(path, nodes, [1, 3, 16, 24], [1, 1, 32, 48], inits)


def audio_decoder(path):
    """A 1-D decoder (vocoder-style upsampler): Conv1d, ConvTranspose1d kernel 4 stride 2
    padding 1, and a grouped ConvTranspose1d with dilation and output_padding."""
    nodes = [_conv("x", "w_c", "c", "conv1d", kernel_shape=[3], pads=[1, 1]),
             helper.make_node("Relu", ["c"], ["cr"], name="relu"),
             _tconv("cr", "w_u1", "u1", "up1", kernel_shape=[4], strides=[2], pads=[1, 1]),
             helper.make_node("Relu", ["u1"], ["u1r"], name="relu_up"),
             _tconv("u1r", "w_u2", "y", "up2", kernel_shape=[3], strides=[2], dilations=[2], pads=[2, 1],
                    output_padding=[1], group=3)]
    inits = [_const("w_c", (6, 3, 3)), _const("b_c", (6,), 0.1),
             _const("w_u1", (6, 9, 4)), _const("b_u1", (9,), 0.1),
             _const("w_u2", (9, 1, 3)), _const("b_u2", (3,), 0.1)]
    return _save(path, nodes, [1, 3, 11], [1, 3, 45], inits)


def padding_modes(path):
    """ConvTranspose's other ways to set the output: auto_pad SAME_UPPER and SAME_LOWER
    (output = input x stride), output_shape, and a dilated kernel without bias."""
    nodes = [helper.make_node("ConvTranspose", ["x", "w_a", "b_a"], ["a"], name="same_upper",
                              kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
             helper.make_node("ConvTranspose", ["a", "w_b", "b_b"], ["b"], name="same_lower",
                              kernel_shape=[3, 2], strides=[1, 2], auto_pad="SAME_LOWER"),
             helper.make_node("ConvTranspose", ["b", "w_c", "b_c"], ["c"], name="output_shape",
                              kernel_shape=[3, 3], strides=[2, 1], output_shape=[20, 18]),
             helper.make_node("ConvTranspose", ["c", "w_d"], ["y"], name="dilated",
                              kernel_shape=[2, 3], dilations=[2, 3], pads=[1, 0, 0, 2])]
    inits = [_const("w_a", (3, 5, 3, 3)), _const("b_a", (5,), 0.1),
             _const("w_b", (5, 4, 3, 2)), _const("b_b", (4,), 0.1),
             _const("w_c", (4, 3, 3, 3)), _const("b_c", (3,), 0.1),
             _const("w_d", (3, 2, 2, 3))]
    return _save(path, nodes, [1, 3, 5, 4], [1, 2, 21, 22], inits)


def strided_gaps(path):
    """Strides larger than the kernel (output pixels no tap reaches: bias only) and a stride
    and dilation with a common factor (every other tap valid)."""
    nodes = [_tconv("x", "w_a", "a", "gaps", kernel_shape=[2, 2], strides=[3, 3]),
             _tconv("a", "w_b", "y", "phase", kernel_shape=[3, 3], strides=[2, 2], dilations=[3, 3],
                    pads=[2, 1, 0, 3])]
    inits = [_const("w_a", (3, 4, 2, 2)), _const("b_a", (4,), 0.1), _const("w_b", (4, 5, 3, 3)),
             _const("b_b", (5,), 0.1)]
    return _save(path, nodes, [1, 3, 4, 5], [1, 5, 25, 29], inits)


MODELS = {"unet_decoder": (unet_decoder, (3, 8, 10)),
          "db_neck_half_pixel": (db_neck, (3, 16, 24)),
          "db_neck_pytorch_half_pixel": (lambda p: db_neck(p, "pytorch_half_pixel"), (3, 16, 24)),
          "db_neck_align_corners": (lambda p: db_neck(p, "align_corners"), (3, 16, 24)),
          "db_neck_asymmetric": (lambda p: db_neck(p, "asymmetric"), (3, 16, 24)),
          "audio_decoder": (audio_decoder, (3, 11)),
          "padding_modes": (padding_modes, (3, 5, 4)),
          "strided_gaps": (strided_gaps, (3, 4, 5))}
ON_TARGETS = ["unet_decoder", "db_neck_half_pixel", "db_neck_align_corners", "audio_decoder"]


def _ort(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float_matches_onnxruntime(tmp_path, name):
    build, shape = MODELS[name]
    path = build(tmp_path / f"{name}.onnx")
    x = RNG.normal(0, 1, (4,) + shape).astype(np.float32)
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(4, -1), _ort(path, x).reshape(4, -1), rtol=1e-5, atol=1e-5)


def _int8_case(tmp_path, name, target):
    build, shape = MODELS[name]
    path = build(tmp_path / f"{name}.onnx")
    calib = {"x": RNG.normal(0, 1, (32,) + shape).astype(np.float32)}
    x = {"x": calib["x"][:3]}
    c = api.run(path, x, target=target, calib=calib).outputs["y"]
    golden = api.run(path, x, target=target, calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    # Against the float model: int8 through three or four quantized layers keeps an SQNR well
    # above 20 dB on these graphs (a wrong kernel or scale gives < 5 dB).
    ref = _ort(path, x["x"])
    err = c.reshape(ref.shape) - ref
    sqnr = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum(err.astype(np.float64) ** 2), 1e-30))
    assert sqnr > 20, f"SQNR {sqnr:.1f} dB"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int8_bit_exact_with_golden_on_host(tmp_path, name):
    _int8_case(tmp_path, name, "host")


@pytest.mark.parametrize("target", ["nucleo-l4r5zi", "esp32-c3"])
@pytest.mark.parametrize("name", ON_TARGETS)
def test_int8_bit_exact_with_golden_on_emulated_targets(tmp_path, name, target):
    _int8_case(tmp_path, name, target)


def qdq_decoder(path, w_axis=1):
    """A QDQ (quantized) export: int8 ConvTranspose weights with one scale per output channel
    of a group (axis 1, groups=2), an int32 bias, and a bilinear upsampling between
    QuantizeLinear/DequantizeLinear pairs."""
    c_in, ocg, groups = 4, 3, 2
    w = RNG.integers(-127, 128, (c_in, ocg, 3, 3)).astype(np.int8)
    w_s = (0.005 + 0.01 * RNG.random(ocg if w_axis == 1 else c_in)).astype(np.float32)
    x_s, y_s, r_s = np.float32(0.03), np.float32(0.05), np.float32(0.04)
    b = RNG.integers(-500, 500, ocg * groups).astype(np.int32)
    inits = [numpy_helper.from_array(v, n) for n, v in (
        ("x_s", x_s), ("x_zp", np.int8(-3)), ("t_s", y_s), ("t_zp", np.int8(5)), ("r_s", r_s), ("r_zp", np.int8(5)),
        ("w_q", w), ("w_s", w_s), ("w_zp", np.zeros(w_s.size, np.int8)),
        ("b_q", b), ("b_s", (x_s * np.resize(w_s, ocg * groups)).astype(np.float32)),
        ("b_zp", np.zeros(ocg * groups, np.int32)),
        ("scales", np.array([1, 1, 2, 2], np.float32)))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_zp"], ["xq"], name="q_x"),
             helper.make_node("DequantizeLinear", ["xq", "x_s", "x_zp"], ["xd"], name="dq_x"),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["wd"], name="dq_w", axis=w_axis),
             helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_zp"], ["bd"], name="dq_b", axis=0),
             helper.make_node("ConvTranspose", ["xd", "wd", "bd"], ["t"], name="up", kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1], group=groups),
             helper.make_node("QuantizeLinear", ["t", "t_s", "t_zp"], ["tq"], name="q_t"),
             helper.make_node("DequantizeLinear", ["tq", "t_s", "t_zp"], ["td"], name="dq_t"),
             helper.make_node("Resize", ["td", "", "scales"], ["r"], name="bilinear", mode="linear"),
             helper.make_node("QuantizeLinear", ["r", "r_s", "r_zp"], ["rq"], name="q_r"),
             helper.make_node("DequantizeLinear", ["rq", "r_s", "r_zp"], ["y"], name="dq_r")]
    return _save(path, nodes, [1, c_in, 3, 5], [1, ocg * groups, 12, 20], inits)


def test_qdq_model_int8(tmp_path):
    """The QDQ model's own quantization (per-channel axis-1 weights tiled over the groups, the
    int32 bias, a requantize after the resize): C == golden, within two output steps of
    onnxruntime, which computes the dequantized graph in float (TFLite resizes in the input's
    quantization, rounding once, then requantizes to the output's)."""
    path = qdq_decoder(tmp_path / "qdq.onnx")
    x = RNG.normal(0, 1, (3, 4, 3, 5)).astype(np.float32)
    c = api.run(path, {"x": x}, target="host").outputs["y"]
    golden = api.run(path, {"x": x}, target="host", golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    ref = _ort(path, x)
    assert np.max(np.abs(c.reshape(ref.shape) - ref)) <= 2 * 0.04 * 1.01
    assert np.mean(np.abs(c.reshape(ref.shape) - ref) > 0.04 * 1.01) < 0.02


def test_ops_and_macs(tmp_path):
    """The decoder's up-convolutions and the neck's resizes stay single layers (no
    transposes around them); MACs count only the products that land in the output."""
    g = api.compile(unet_decoder(tmp_path / "u.onnx"), quantize="float32").graph
    kinds = [op.kind for op in g.ops]
    assert kinds.count("conv_transpose") == 3 and kinds.count("transpose") == 2, kinds  # model input, output
    k3 = next(op for op in g.ops if op.name == "up_k3")
    # rows: input rows 0..3 x taps 0..2 land at 2i+k-1 in 0..7: 12 - 1 (i=0,k=0) = 11; same for columns (5 -> 10)
    assert conv_transpose.macs(g, k3) == 11 * 14 * 6 * 7
    g = api.compile(db_neck(tmp_path / "n.onnx"), quantize="float32").graph
    assert [op.kind for op in g.ops].count("resize_bilinear") == 4  # p2_up resizes to its own size: an alias


# -- the golden kernels against TensorFlow Lite Micro ------------------------------------
ROOT = Path(__file__).resolve().parent


def _tflm():
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import tflite_oracle
    return tflite_oracle


def _options(cls, **fields):
    o = cls()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


@pytest.mark.parametrize("h, w, c, oc, k, s, same", [
    (4, 3, 3, 5, (2, 2), (2, 2), False),   # U-Net up-convolution
    (5, 4, 4, 3, (3, 3), (2, 2), True),
    (3, 5, 2, 7, (3, 2), (1, 2), True),
    (6, 6, 5, 1, (4, 3), (2, 2), True),    # even and odd total padding
])
def test_conv_transpose_golden_matches_tflm(h, w, c, oc, k, s, same):
    tfo = _tflm()
    schema = tfo.schema
    wq = RNG.integers(-127, 128, (oc, k[0], k[1], c)).astype(np.int8)
    ws = (0.002 + 0.01 * RNG.random(oc)).astype(np.float32)
    b = RNG.integers(-3000, 3000, oc).astype(np.int32)
    in_s, in_zp, out_s, out_zp = 0.05, int(RNG.integers(-128, 128)), 0.07, int(RNG.integers(-128, 128))
    if same:  # TFLite SAME: output = input * stride, the odd padding pixel at the end
        oh, ow = h * s[0], w * s[1]
    else:
        oh, ow = (h - 1) * s[0] + k[0], (w - 1) * s[1] + k[1]
    pads = [max((n - 1) * st + kk - o, 0) // 2 for n, st, kk, o in zip((h, w), s, k, (oh, ow))]
    inputs = [{"shape": (4,), "dtype": np.int32, "data": np.array([1, oh, ow, oc], np.int32)},
              {"shape": wq.shape, "dtype": np.int8, "data": wq, "scale": ws, "zp": np.zeros(oc, int)},
              {"shape": (1, h, w, c), "scale": in_s, "zp": in_zp},
              {"shape": (oc,), "dtype": np.int32, "data": b, "scale": ws * in_s, "zp": np.zeros(oc, int)}]
    options = _options(schema.TransposeConvOptionsT, padding=schema.Padding.SAME if same else schema.Padding.VALID,
                       strideH=s[0], strideW=s[1], fusedActivationFunction=0)
    model = tfo.make_single_op_model("TRANSPOSE_CONV", inputs, {"shape": (1, oh, ow, oc), "scale": out_s,
                                                                "zp": out_zp},
                                     options, schema.BuiltinOptions.TransposeConvOptions, version=3)
    q = qmath.conv_params(in_s, in_zp, ws, out_s, out_zp)
    q.update(in_c=c, out_c=oc, groups=1, **conv_transpose.geometry((h, w), (oh, ow), k, s, (1, 1), pads))
    for _ in range(3):
        x = RNG.integers(-128, 128, (1, h, w, c)).astype(np.int8)
        theirs = np.asarray(tfo.tflm_run(model, [x])).reshape(-1)
        np.testing.assert_array_equal(conv_transpose.golden(x[0], wq, b, q).reshape(-1), theirs)


@pytest.mark.parametrize("mode", ["half_pixel", "align_corners", "asymmetric"])
@pytest.mark.parametrize("h, w, oh, ow", [(5, 4, 10, 8), (5, 4, 7, 13), (9, 8, 4, 3), (3, 7, 12, 1)])
def test_resize_bilinear_golden_matches_tflm(mode, h, w, oh, ow):
    tfo = _tflm()
    schema = tfo.schema
    c, zp = 3, int(RNG.integers(-128, 128))
    inputs = [{"shape": (1, h, w, c), "scale": 0.05, "zp": zp},
              {"shape": (2,), "dtype": np.int32, "data": np.array([oh, ow], np.int32)}]
    options = _options(schema.ResizeBilinearOptionsT, alignCorners=mode == "align_corners",
                       halfPixelCenters=mode == "half_pixel")
    model = tfo.make_single_op_model("RESIZE_BILINEAR", inputs, {"shape": (1, oh, ow, c), "scale": 0.05, "zp": zp},
                                     options, schema.BuiltinOptions.ResizeBilinearOptions, version=3)
    q = dict(in_h=h, in_w=w, channels=c, out_h=oh, out_w=ow, scale_h_q10=resize_bilinear.scale_q10(mode, h, oh),
             scale_w_q10=resize_bilinear.scale_q10(mode, w, ow), half_pixel_centers=int(mode == "half_pixel"))
    for _ in range(3):
        x = RNG.integers(-128, 128, (1, h, w, c)).astype(np.int8)
        theirs = np.asarray(tfo.tflm_run(model, [x])).reshape(-1)
        np.testing.assert_array_equal(resize_bilinear.golden(x[0], q).reshape(-1), theirs)


# -- what stays unsupported ------------------------------------------------------------
def _refusal(tmp_path, node, x_shape, inits, opset=13):
    path = _save(tmp_path / "bad.onnx", [node], x_shape, None, inits, opset)
    with pytest.raises(Exception) as err:
        api.compile(path, quantize="float32")
    return str(err.value)


def test_weights_quantized_per_input_channel_are_refused(tmp_path):
    with pytest.raises(Exception) as err:
        api.compile(qdq_decoder(tmp_path / "qdq.onnx", w_axis=0))
    assert str(err.value) == ("node 'up': ConvTranspose weights quantized along axis 0; only "
                              "per-output-channel (axis 1) or per-tensor weights are supported")


def test_three_d_conv_transpose_is_refused(tmp_path):
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up3d", kernel_shape=[2, 2, 2],
                            strides=[2, 2, 2])
    assert _refusal(tmp_path, node, [1, 3, 4, 4, 4], [_const("w", (3, 2, 2, 2, 2))]) == (
        "node 'up3d' (ConvTranspose): only 1-D and 2-D transposed convolutions (inputs of rank 3 or 4) "
        "are supported, got an input of rank 5")


def _resize(mode="linear", coord="half_pixel", **attrs):
    return helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode=mode,
                            coordinate_transformation_mode=coord, **attrs)


def _scales(*v):
    return [numpy_helper.from_array(np.array(v, np.float32), "scales")]


@pytest.mark.parametrize("node, x_shape, scales, message", [
    (_resize(), [1, 3, 4, 4], (1, 2, 2, 2),
     "mode 'linear' resizes axis 1 from 3 to 6; only the spatial axes (2 and 3 of NCHW) can be resized "
     "bilinearly"),
    (_resize(), [1, 3, 8], (1, 1, 2),
     "mode 'linear' is supported on 4-D NCHW tensors (resizing H and W), got rank 3"),
    (_resize(coord="tf_half_pixel_for_nn"), [1, 3, 4, 4], (1, 1, 2, 2),
     "coordinate_transformation_mode 'tf_half_pixel_for_nn' is not supported for linear resizing "
     "(supported: half_pixel, pytorch_half_pixel, align_corners, asymmetric)"),
    (_resize(), [1, 3, 5, 4], (1, 1, 1.5, 2),
     "the scale 1.5 of axis 2 does not map its 5 elements to exactly 7; give scales with a whole output "
     "size, or sizes"),
    (_resize(exclude_outside=1), [1, 3, 4, 4], (1, 1, 2, 2), "exclude_outside=1 is not supported"),
    (_resize(mode="cubic"), [1, 3, 4, 4], (1, 1, 2, 2),
     "mode 'cubic' is not supported yet (supported: nearest with integer scale factors, linear over H and W); "
     "export the model with nearest or bilinear upsampling"),
])
def test_unsupported_resizing_is_refused(tmp_path, node, x_shape, scales, message):
    assert _refusal(tmp_path, node, x_shape, _scales(*scales)) == f"node 'up' (Resize): {message}"


# -- the C kernels against the golden kernels, over random geometries -------------------
import ctypes as ct  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

RUNTIME = ROOT.parent / "runtime_c"
KERNELS = [RUNTIME / "src" / "s8" / "conv_transpose_s8.c", RUNTIME / "src" / "s8" / "resize_bilinear_s8.c",
           RUNTIME / "src" / "f32" / "conv_transpose.c", RUNTIME / "src" / "f32" / "resize_bilinear.c"]
WARN = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror"]
CROSS = {"arm-none-eabi-gcc": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
         "riscv64-unknown-elf-gcc": ["-march=rv32imc_zicsr", "-mabi=ilp32", "--specs=picolibc.specs"]}
GUARD = 16
P_I32, P_I8, P_F32 = ct.POINTER(ct.c_int32), ct.POINTER(ct.c_int8), ct.POINTER(ct.c_float)
TCONV_FIELDS = ("in_h in_w in_c out_h out_w out_c k_h k_w stride_h stride_w dil_h dil_w pad_top pad_left "
                "groups").split()


class TconvS8(ct.Structure):
    _fields_ = [(n, ct.c_int32) for n in TCONV_FIELDS + "per_channel input_offset output_offset act_min "
                "act_max".split()] + [("multiplier", P_I32), ("shift", P_I32)]


class TconvF32(ct.Structure):
    _fields_ = [(n, ct.c_int32) for n in TCONV_FIELDS] + [("act_min", ct.c_float), ("act_max", ct.c_float)]


class ResizeS8(ct.Structure):
    _fields_ = [(n, ct.c_int32) for n in "in_h in_w channels out_h out_w scale_h_q10 scale_w_q10 "
                "half_pixel_centers".split()]


class ResizeF32(ct.Structure):
    _fields_ = [(n, ct.c_int32) for n in "in_h in_w channels out_h out_w coord_mode".split()] + \
        [("scale_h", ct.c_float), ("scale_w", ct.c_float)]


@pytest.mark.parametrize("cc", sorted(CROSS))
def test_kernels_compile_cleanly_for_the_cores(cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    for src in KERNELS:
        proc = subprocess.run([cc, *WARN, *CROSS[cc], "-I", str(RUNTIME / "include"), "-I", str(src.parent),
                               "-c", str(src), "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr, f"{src.name}:\n{proc.stderr[-2000:]}"


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("kernels") / "libtd_tconv.so"
    cmd = ["gcc", *WARN, "-shared", "-fPIC", "-I", str(RUNTIME / "include"), "-I", str(RUNTIME / "src" / "f32"),
           *map(str, KERNELS), "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-3000:]
    return ct.CDLL(str(out))


def _guarded(n, ctype, poison):
    buf = np.full(n + 2 * GUARD, poison, ctype)
    return buf, buf[GUARD:GUARD + n]


def _check_guards(buf, poison):
    assert np.all(buf[:GUARD] == poison) and np.all(buf[-GUARD:] == poison), "write outside the output"


@st.composite
def tconv_geometry(draw):
    groups = draw(st.integers(1, 3))
    cg, ocg = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    out = []
    for n, k, s, d in ((h, kh, sh, dh), (w, kw, sw, dw)):
        full = (n - 1) * s + (k - 1) * d + 1
        p0 = draw(st.integers(0, (k - 1) * d))
        p1 = draw(st.integers(0, max(full - p0 - 1, 0)))
        op = draw(st.integers(0, max(s, d) - 1))
        out.append((full + op - p0 - p1, p0))
    return dict(in_h=h, in_w=w, in_c=cg * groups, out_h=out[0][0], out_w=out[1][0], out_c=ocg * groups, k_h=kh,
                k_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=out[0][1], pad_left=out[1][1],
                groups=groups)


@settings(deadline=None, max_examples=150, suppress_health_check=list(HealthCheck))
@given(geo=tconv_geometry(), seed=st.integers(0, 2**31), per_channel=st.booleans(), bias=st.booleans())
def test_conv_transpose_s8_kernel_matches_golden(lib, geo, seed, per_channel, bias):
    rng = np.random.default_rng(seed)
    oc, cg = geo["out_c"], geo["in_c"] // geo["groups"]
    w = rng.integers(-127, 128, (oc, geo["k_h"], geo["k_w"], cg)).astype(np.int8)
    x = rng.integers(-128, 128, (geo["in_h"], geo["in_w"], geo["in_c"])).astype(np.int8)
    b = rng.integers(-20000, 20000, oc).astype(np.int32) if bias else None
    ws = (0.001 + 0.01 * rng.random(oc if per_channel else 1)).astype(np.float32)
    lo = int(rng.integers(-128, 0))
    q = qmath.conv_params(0.05, int(rng.integers(-128, 128)), ws if per_channel else ws[0], 0.2,
                          int(rng.integers(-128, 128)), act_range=(lo, int(rng.integers(lo, 128))))
    q.update(geo)
    want = conv_transpose.golden(x, w, b, q)
    mult, shift = np.ascontiguousarray(q["multiplier"], np.int32), np.ascontiguousarray(q["shift"], np.int32)
    p = TconvS8(**{k: int(v) for k, v in q.items() if k not in ("multiplier", "shift")},
                multiplier=mult.ctypes.data_as(P_I32), shift=shift.ctypes.data_as(P_I32))
    buf, out = _guarded(want.size, np.int8, 0x5A)
    lib.td_conv_transpose_s8(ct.byref(p), x.ctypes.data_as(P_I8), w.ctypes.data_as(P_I8),
                             b.ctypes.data_as(P_I32) if bias else None, out.ctypes.data_as(P_I8))
    _check_guards(buf, 0x5A)
    np.testing.assert_array_equal(out.reshape(want.shape), want)


@settings(deadline=None, max_examples=100, suppress_health_check=list(HealthCheck))
@given(geo=tconv_geometry(), seed=st.integers(0, 2**31), bias=st.booleans())
def test_conv_transpose_f32_kernel_matches_reference(lib, geo, seed, bias):
    rng = np.random.default_rng(seed)
    oc, cg = geo["out_c"], geo["in_c"] // geo["groups"]
    w = rng.normal(0, 1, (oc, geo["k_h"], geo["k_w"], cg)).astype(np.float32)
    x = rng.normal(0, 1, (geo["in_h"], geo["in_w"], geo["in_c"])).astype(np.float32)
    b = rng.normal(0, 1, oc).astype(np.float32)
    want = conv_transpose.accumulate(x, w, geo, np.float64) + (b if bias else 0)
    want = np.clip(want, -2.5, np.inf)
    p = TconvF32(**geo, act_min=-2.5, act_max=np.finfo(np.float32).max)
    buf, out = _guarded(want.size, np.float32, np.float32(12345.0))
    lib.td_conv_transpose_f32(ct.byref(p), x.ctypes.data_as(P_F32), w.ctypes.data_as(P_F32),
                              b.ctypes.data_as(P_F32) if bias else None, out.ctypes.data_as(P_F32))
    _check_guards(buf, np.float32(12345.0))
    np.testing.assert_allclose(out.reshape(want.shape), want, rtol=1e-5, atol=1e-5)


@st.composite
def resize_geometry(draw):
    mode = draw(st.sampled_from(sorted(resize_bilinear.MODES)))
    h, w, c = draw(st.integers(1, 7)), draw(st.integers(1, 7)), draw(st.integers(1, 5))
    return mode, dict(in_h=h, in_w=w, channels=c, out_h=draw(st.integers(1, 15)), out_w=draw(st.integers(1, 15)))


@settings(deadline=None, max_examples=150, suppress_health_check=list(HealthCheck))
@given(case=resize_geometry(), seed=st.integers(0, 2**31))
def test_resize_bilinear_kernels_match_golden_and_reference(lib, case, seed):
    mode, geo = case
    rng = np.random.default_rng(seed)
    shape = (geo["in_h"], geo["in_w"], geo["channels"])
    q = dict(geo, scale_h_q10=resize_bilinear.scale_q10(mode, geo["in_h"], geo["out_h"]),
             scale_w_q10=resize_bilinear.scale_q10(mode, geo["in_w"], geo["out_w"]),
             half_pixel_centers=int(mode == "half_pixel"))
    x8 = rng.integers(-128, 128, shape).astype(np.int8)
    want = resize_bilinear.golden(x8, q)
    buf, out = _guarded(want.size, np.int8, 0x5A)
    lib.td_resize_bilinear_s8(ct.byref(ResizeS8(**q)), x8.ctypes.data_as(P_I8), out.ctypes.data_as(P_I8))
    _check_guards(buf, 0x5A)
    np.testing.assert_array_equal(out.reshape(want.shape), want)

    from tinydeploy.ir import Graph, Op
    g = Graph("g")
    g.add_activation("y", (1, geo["out_h"], geo["out_w"], geo["channels"]))
    xf = rng.normal(0, 1, shape).astype(np.float32)
    ref = resize_bilinear._float_ref(g, Op("resize_bilinear", "r", ["x"], ["y"], {"mode": mode}), [xf[None]])[0]
    p = ResizeF32(**geo, coord_mode=resize_bilinear.MODES[mode],
                  scale_h=resize_bilinear.float_scale(mode, geo["in_h"], geo["out_h"]),
                  scale_w=resize_bilinear.float_scale(mode, geo["in_w"], geo["out_w"]))
    buf, out = _guarded(ref.size, np.float32, np.float32(12345.0))
    lib.td_resize_bilinear_f32(ct.byref(p), xf.ctypes.data_as(P_F32), out.ctypes.data_as(P_F32))
    _check_guards(buf, np.float32(12345.0))
    np.testing.assert_allclose(out.reshape(ref.shape), ref, rtol=1e-5, atol=1e-5)


def test_fpn_lateral_conv_fused_with_its_add_runs_after_the_upsampled_operand(tmp_path):
    """An FPN step as exported: the lateral 1x1 conv of the finer level comes before the
    coarser level's conv and upsampling, and the add joins them. The int8 conv+add kernel
    runs at the conv's place, so the schedule must put the conv after the upsampling even
    when that does not lower the peak (it used to keep the graph's order: C != golden)."""
    two = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "two")
    nodes = [_conv("x", "w_c3", "c3", "stage3", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             _conv("c3", "w_c4", "c4", "stage4", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             _conv("c3", "w_in3", "in3", "lateral3", kernel_shape=[1, 1]),
             _conv("c4", "w_in4", "in4", "lateral4", kernel_shape=[1, 1]),
             helper.make_node("Resize", ["in4", "", "two"], ["up"], name="up", mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Add", ["in3", "up"], ["y"], name="add")]
    inits = [_const("w_c3", (5, 3, 3, 3)), _const("b_c3", (5,), 0.1), _const("w_c4", (7, 5, 3, 3), 0.3),
             _const("b_c4", (7,), 0.1), _const("w_in3", (4, 5, 1, 1)), _const("b_in3", (4,), 0.1),
             _const("w_in4", (4, 7, 1, 1)), _const("b_in4", (4,), 0.1), two]
    path = _save(tmp_path / "fpn.onnx", nodes, [1, 3, 8, 12], [1, 4, 4, 6], inits)
    calib = {"x": RNG.normal(0, 1, (16, 3, 8, 12)).astype(np.float32)}
    result = api.compile(path, calib=calib)
    g = result.graph
    order = [op.name for op in g.ops]
    assert result.plan.fused_into.get("add") == "lateral3"
    assert order.index("lateral3") > order.index("up"), order
    x = {"x": calib["x"][:3]}
    np.testing.assert_array_equal(api.run(path, x, target="host", calib=calib).outputs["y"],
                                  api.run(path, x, target="host", calib=calib, golden=True).outputs["y"])
