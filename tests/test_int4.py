"""int4 weights (issue 16 item 4): --weights int4 packs the weights of every convolution and
fully connected layer two per byte and runs them with the s4 kernels (runtime_c/src/s4); the
golden model computes with the same integers, so the C must equal it bit for bit on every
core. --weights mixed keeps int4 only where the model's output SQNR on the calibration data
stays within --int4-budget-db; INT4 QDQ models (opset 21) are imported as int4."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import model_gen
from conftest import model_path

from tinydeploy import api
from tinydeploy.errors import TinydeployError
from tinydeploy.ops.common import pack_int4

ort = pytest.importorskip("onnxruntime")
INT4_KERNELS = {"td_conv2d_s4", "td_depthwise_conv2d_s4", "td_fully_connected_s4"}


def test_pack_int4_puts_element_i_in_byte_i_half_low_nibble_first():
    v = np.random.default_rng(4).integers(-8, 8, 37)
    packed = pack_int4(v)
    assert packed.dtype == np.uint8 and packed.size == 19
    nibbles = np.stack([packed & 15, packed >> 4], axis=1).reshape(-1).astype(np.int64)
    assert np.array_equal(np.where(nibbles >= 8, nibbles - 16, nibbles)[:37], v)
    assert packed[-1] >> 4 == 0  # the odd count's spare nibble


def _odd_model():
    """Shapes that stress the packed layout and the windows: channels not a multiple of 2 or 4
    (weight runs that start mid-byte), padding on every side (all four different), dilation,
    stride 2, a depthwise multiplier, groups, a residual add after a conv (the int8 build fuses
    such pairs), a 1x1-spatial conv and a fully connected layer with an odd input count."""
    rng = np.random.default_rng(16)
    inits, nodes = [], []

    def const(name, shape, scale=0.3):
        inits.append(helper.make_tensor(name, TensorProto.FLOAT, shape,
                                        (rng.normal(0, scale, shape)).astype(np.float32).ravel()))
        return name

    def conv(x, y, w_shape, **attrs):
        nodes.append(helper.make_node("Conv", [x, const(y + "_w", w_shape), const(y + "_b", [w_shape[0]], 0.1)],
                                      [y], **attrs))
        return y

    a = conv("x", "a", [7, 5, 3, 3], pads=[1, 2, 2, 0])
    nodes.append(helper.make_node("Relu", [a], ["a_r"]))
    d = conv("a_r", "d", [14, 1, 3, 3], group=7, dilations=[2, 2], strides=[2, 2], pads=[2, 1, 2, 3])
    gr = conv("d", "gr", [6, 7, 1, 1], group=2)
    nodes.append(helper.make_node("Relu", [gr], ["gr_r"]))
    b = conv("gr_r", "b", [6, 6, 3, 3], pads=[1, 1, 1, 1])
    nodes.append(helper.make_node("Add", [b, "gr_r"], ["res"]))
    nodes.append(helper.make_node("GlobalAveragePool", ["res"], ["gap"]))
    one = conv("gap", "one", [9, 6, 1, 1])
    nodes.append(helper.make_node("Flatten", [one], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", const("fc_w", [5, 9]), const("fc_b", [5], 0.1)], ["y"],
                                  transB=1))
    graph = helper.make_graph(nodes, "odd_int4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 9, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    path = tmp_path_factory.mktemp("int4") / "odd.onnx"
    onnx.save(_odd_model(), str(path))
    calib = np.random.default_rng(7).uniform(-1, 1, (24, 1, 5, 9, 7)).astype(np.float32)
    return str(path), {"x": calib[:, 0]}


def _weighted(report) -> list:
    return [l for l in report["layers"] if "weights" in l]


@pytest.mark.parametrize("target", ["nucleo-l4r5zi", "cortex-m55", "rv32-zve32x", "esp32-c3"])
def test_int4_c_equals_golden_on_emulated_cores(odd, target):
    path, calib = odd
    r = api.verify(path, target, samples=3, calib=calib, weights="int4")
    assert r.match, (r.max_abs_diff, r.first_mismatch)


def test_int4_layers_ship_packed_weights_and_are_reported(odd, tmp_path):
    path, calib = odd
    int8 = api.compile(path, "host", tmp_path / "int8", calib=calib).report
    int4 = api.compile(path, "host", tmp_path / "int4", calib=calib, weights="int4").report
    layers = _weighted(int4)
    assert len(layers) == 6 and all(l["weights"] == "int4" and l["kernel"] in INT4_KERNELS for l in layers)
    assert all(l["weights"] == "int8" for l in _weighted(int8))
    assert int4["weights"] == dict(mode="int4", int4_budget_db=None, int4_layers=6)
    # the weight arrays are packed: every layer's weights take half the bytes (rounded up)
    text = (tmp_path / "int4" / "net_weights.c").read_text()
    assert text.count("two per byte") == 6
    assert int4["weights_bytes"] < int8["weights_bytes"]
    assert "inplace" not in next(l for l in int4["layers"] if l["name"] == "b")  # not fused with the add


def test_int4_weights_stay_within_seven_and_track_the_float_model(odd):
    path, calib = odd
    x = {"x": calib["x"][:8]}
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.concatenate([ref.run(None, {"x": x["x"][i:i + 1]})[0] for i in range(8)])
    got = api.run(path, x, target="host", calib=calib, weights="int4").outputs["y"].reshape(want.shape)
    res = api.compile(path, "host", None, calib=calib, weights="int4")
    for op in res.graph.ops:
        if res.graph.int4_weights(op):
            w = res.graph.const(op.inputs[1])
            assert w.dtype == np.int8 and np.abs(w).max() == 7  # per-channel symmetric, [-7, 7]
    sqnr = 10 * np.log10(np.sum(want ** 2) / np.sum((want - got) ** 2))
    assert sqnr > 12.0, sqnr


@pytest.mark.parametrize("seed,target", [(3, "nucleo-l4r5zi"), (11, "cortex-m55"), (24, "rv32-zve32x")])
def test_int4_random_models_bit_exact(seed, target, tmp_path):
    """Generated models (tests/model_gen.py, as in the differential fuzzer) with int4 weights."""
    model, calib = model_gen.build(model_gen.random_spec(seed))
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    r = api.verify(path, target, samples=2, calib={"x": calib}, weights="int4")
    assert r.match, (seed, target, r.max_abs_diff, r.first_mismatch)


def test_mixed_keeps_the_output_sqnr_within_the_budget(odd):
    path, calib = odd
    x = {"x": calib["x"]}
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x["x"][i:i + 1]})[0] for i in range(len(x["x"]))])

    def sqnr(**kw):
        r = api.run(path, x, target="host", calib=calib, golden=True, **kw)
        got = r.outputs["y"].reshape(want.shape)
        return 10 * np.log10(np.sum(want ** 2) / np.sum((want - got) ** 2)), r.report

    base, _ = sqnr()
    for budget in (0.5, 2.0):
        mixed, report = sqnr(weights="mixed", int4_budget_db=budget)
        layers = _weighted(report)
        int4 = [l for l in layers if l["weights"] == "int4"]
        assert report["weights"] == dict(mode="mixed", int4_budget_db=budget, int4_layers=len(int4))
        assert all(l["int4_sqnr_cost_db"] <= budget for l in int4)
        assert mixed >= base - budget - 1e-6, (budget, base, mixed)
    _, report = sqnr(weights="mixed", int4_budget_db=1000.0)
    assert all(l["weights"] == "int4" for l in _weighted(report))


def _int4_qdq_model():
    """A QDQ model as a quantizer writes int4 weights (opset 21): int8 activations, INT4
    per-channel conv weights and per-tensor Gemm weights, int32 biases."""
    rng = np.random.default_rng(21)
    inits, nodes = [], []

    def q_act(x, y, scale, zp):
        inits.extend([helper.make_tensor(y + "_s", TensorProto.FLOAT, [], [scale]),
                      helper.make_tensor(y + "_z", TensorProto.INT8, [], [zp])])
        nodes.append(helper.make_node("QuantizeLinear", [x, y + "_s", y + "_z"], [y + "_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [y + "_q", y + "_s", y + "_z"], [y]))
        return y

    def dq_weight(name, q, scale, axis=None):
        inits.append(helper.make_tensor(name + "_q", TensorProto.INT4, list(q.shape), q.ravel().tolist()))
        inits.append(helper.make_tensor(name + "_s", TensorProto.FLOAT, list(np.shape(scale)),
                                        np.ravel(scale).tolist()))
        inits.append(helper.make_tensor(name + "_z", TensorProto.INT4, list(np.shape(scale)),
                                        [0] * int(np.size(scale))))
        kw = {} if axis is None else dict(axis=axis)
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"], [name], **kw))
        return name

    def dq_bias(name, values, scale):
        inits.append(helper.make_tensor(name + "_q", TensorProto.INT32, [values.size], values.tolist()))
        inits.append(helper.make_tensor(name + "_s", TensorProto.FLOAT, list(np.shape(scale)),
                                        np.ravel(scale).tolist()))
        kw = {} if np.size(scale) == 1 else dict(axis=0)
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s"], [name], **kw))
        return name

    x = q_act("x", "xq", 0.02, -3)
    w_scale = rng.uniform(0.01, 0.05, 6).astype(np.float32)
    w = dq_weight("cw", rng.integers(-8, 8, (6, 3, 3, 3)).astype(np.int8), w_scale, axis=0)
    b = dq_bias("cb", rng.integers(-200, 200, 6).astype(np.int32), (0.02 * w_scale).astype(np.float32))
    nodes.append(helper.make_node("Conv", [x, w, b], ["c"], pads=[1, 0, 1, 2], strides=[2, 2]))
    c = q_act("c", "cq", 0.05, 5)
    nodes.append(helper.make_node("Flatten", [c], ["f"]))
    n_in = 6 * 4 * 4
    fw = dq_weight("fw", rng.integers(-8, 8, (n_in, 7)).astype(np.int8), np.float32(0.03))
    nodes.append(helper.make_node("MatMul", ["f", fw], ["m"]))
    q_act("m", "y", 0.1, 0)
    graph = helper.make_graph(nodes, "int4_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_int4_qdq_model_is_imported_as_int4_and_matches_onnxruntime(tmp_path):
    path = str(tmp_path / "int4_qdq.onnx")
    onnx.save(_int4_qdq_model(), path)
    x = np.random.default_rng(3).uniform(-1, 1, (6, 1, 3, 8, 7)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": s})[0] for s in x])
    r = api.run(path, {"x": x[:, 0]}, target="host")
    assert [l["weights"] for l in _weighted(r.report)] == ["int4", "int4"]
    # onnxruntime requantizes in float: within one step of the output scale (0.1)
    np.testing.assert_allclose(r.outputs["y"].reshape(want.shape), want, atol=0.1 + 1e-6)
    v = api.verify(path, "cortex-m55", samples=2)
    assert v.match, (v.max_abs_diff, v.first_mismatch)


def test_int4_constant_outside_dequantize_is_refused(tmp_path):
    model = _int4_qdq_model()
    model.graph.node.append(helper.make_node("Identity", ["cw_q"], ["stray"], name="stray_identity"))
    model.graph.output.append(helper.make_tensor_value_info("stray", TensorProto.INT4, [6, 3, 3, 3]))
    path = str(tmp_path / "stray.onnx")
    onnx.save(model, path)
    with pytest.raises(TinydeployError) as exc:
        api.compile(path, "host", None)
    assert str(exc.value) == ("node 'stray_identity' (Identity): input 'cw_q' is an INT4 constant; tinydeploy "
                              "takes INT4 data only as int4 weights, the input of a DequantizeLinear")


def test_ad_int4_halves_the_flash(tmp_path):
    """issue 16: --weights int4 on ad gives flash <= 0.55x of its int8 default flash."""
    path = model_path("ad", "int8_qdq.onnx")
    int8 = api.compile(path, "stm32f746", None).report["flash_bytes"]
    int4 = api.compile(path, "stm32f746", None, weights="int4").report["flash_bytes"]
    assert int4 <= 0.55 * int8, (int4, int8)


@pytest.mark.parametrize("kwargs,message", [
    (dict(weights="mixed"), "--weights mixed measures what int4 weights cost on the calibration data: "
                            "pass --calib DATA.npz (or use --weights int4)"),
    (dict(weights="int4", quantize="float32"), "--weights int4 applies to int8 builds, not --quantize float32"),
    (dict(weights="int2"), "weights must be one of int8, int4, mixed, not 'int2'"),
    (dict(weights="mixed", int4_budget_db=-1.0), "--int4-budget-db must be a number of dB >= 0, not -1.0"),
    (dict(weights="mixed", int4_budget_db=float("nan")), "--int4-budget-db must be a number of dB >= 0, not nan"),
])
def test_bad_weight_options_are_refused(kwargs, message):
    with pytest.raises(TinydeployError) as exc:
        api.compile(model_path("ad", "int8_qdq.onnx"), "host", None, **kwargs)
    assert str(exc.value) == message


def test_error_feedback_rounding_is_nearest_rounding_for_uncorrelated_inputs():
    from tinydeploy.weight_rounding import round_int4
    rng = np.random.default_rng(5)
    w, s = rng.normal(0, 1, (6, 20)), np.full(6, 0.3, np.float32)
    h = np.diag(rng.uniform(0.5, 2.0, 20))
    assert np.array_equal(round_int4(w, s, h), np.clip(np.round(w / 0.3), -7, 7))


def test_error_feedback_rounding_lowers_the_output_error():
    """On correlated inputs X, ||X (w - s q)|| is lower than with nearest rounding, and the
    per-channel scale choice lowers it again (each row no worse than at f = 1)."""
    from tinydeploy.weight_rounding import best_rounding, round_int4
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (400, 3)) @ rng.normal(0, 1, (3, 24)) + 0.3 * rng.normal(0, 1, (400, 24))
    w = rng.normal(0, 1, (8, 24))
    s = (np.abs(w).max(axis=1) / 7).astype(np.float32)
    h = x.T @ x

    def err(q, scales):
        return np.sum((x @ (w - q * scales[:, None]).T) ** 2, axis=0)
    nearest = err(np.clip(np.round(w / s[:, None]), -7, 7), s)
    fed_back = err(round_int4(w, s, h), s)
    q, best_s = best_rounding(w, s, h)
    assert fed_back.sum() < 0.8 * nearest.sum(), (fed_back.sum(), nearest.sum())
    assert np.all(err(q, best_s) <= fed_back * (1 + 1e-9)) and np.all(np.abs(q) <= 7)


def test_int4_from_a_qdq_model_requantizes_its_biases_too():
    """--weights int4 on an int8 QDQ model quantizes the weights again at int4 scales: the int32
    biases must follow (their integers assume the int8 scales), or the outputs drift."""
    from conftest import reference
    path = model_path("ad", "int8_qdq.onnx")
    name = onnx.load(path).graph.input[0].name
    x = {name: reference("ad")["float_inputs"][:8]}
    out = {w: api.run(path, x, target="host", golden=True, weights=w).outputs for w in ("int8", "int4")}
    a, b = (next(iter(out[w].values())).astype(np.float64) for w in ("int8", "int4"))
    assert 10 * np.log10(np.sum(a ** 2) / np.sum((a - b) ** 2)) > 12.0


def test_inspect_shows_the_int4_parameter_bytes():
    """Issue 16 item 5: `inspect` gives the bytes a --weights int4 build ships (packed weights,
    int32 biases), compile's weights_int8_bytes (the model's parameters as shipped) for it."""
    import json
    from conftest import cli
    proc = cli("inspect", model_path("ad", "float.onnx"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    report = api.compile(model_path("ad", "int8_qdq.onnx"), "stm32f746", None, weights="int4").report
    assert info["int4_parameter_bytes"] == report["weights_int8_bytes"]
    assert sum(l["int4_parameter_bytes"] for l in info["layers"]) == info["int4_parameter_bytes"]
    assert info["int4_parameter_bytes"] < 0.52 * info["int8_parameter_bytes"]


def _fc_model(with_rows: bool):
    """Fully connected layers for the Arm int4 kernel: 5, 3 and 1 features (blocks of two and
    a single one), 48, 16 and 8 inputs (steps of eight), a dead output feature, ReLU; 5- and
    3-input layers (not a multiple of 8: the portable kernel); with_rows, 24 -> 7 over 3 rows."""
    rng = np.random.default_rng(8)
    inits, nodes = [], []
    shape_in = [1, 3, 24] if with_rows else [1, 48]

    def fc(x, y, n_in, n_out, relu=False, dead=None):
        w = rng.normal(0, 0.4, (n_in, n_out)).astype(np.float32)
        if dead is not None:
            w[:, dead] = 0
        inits.append(helper.make_tensor(y + "_w", TensorProto.FLOAT, [n_in, n_out], w.ravel()))
        inits.append(helper.make_tensor(y + "_b", TensorProto.FLOAT, [n_out], rng.normal(0, 0.2, n_out).astype(np.float32)))
        nodes.append(helper.make_node("MatMul", [x, y + "_w"], [y + "_m"]))
        nodes.append(helper.make_node("Add", [y + "_m", y + "_b"], [y if not relu else y + "_a"]))
        if relu:
            nodes.append(helper.make_node("Relu", [y + "_a"], [y]))
        return y
    if with_rows:
        last = fc(fc("x", "r1", 24, 7, relu=True), "r2", 7, 5)
        out_shape = [1, 3, 5]
    else:
        h = fc("x", "f1", 48, 5, relu=True, dead=2)
        h = fc(h, "f2", 5, 16)
        h = fc(h, "f3", 16, 3, relu=True)
        h = fc(h, "f4", 3, 8)
        last = fc(h, "f5", 8, 1)
        out_shape = [1, 1]
    graph = helper.make_graph(nodes, "fc_int4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
                              [helper.make_tensor_value_info(last, TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), shape_in


@pytest.mark.parametrize("with_rows", [False, True])
@pytest.mark.parametrize("target", ["nucleo-l4r5zi", "stm32f746", "cortex-m55"])
def test_arm_dsp_int4_fully_connected_bit_exact(with_rows, target, tmp_path):
    """td_arm_fc_s4 (packed weights widened in registers; on the Cortex-M55 the Helium
    td_mve_fc_s4) against the golden model on the emulated Arm cores; layers whose inputs are
    not a multiple of 8 (odd, for Helium) keep the portable kernel."""
    model, shape = _fc_model(with_rows)
    path = str(tmp_path / "fc.onnx")
    onnx.save(model, path)
    calib = {"x": np.random.default_rng(9).normal(0, 1, (16, *shape[1:])).astype(np.float32)}
    r = api.verify(path, target, samples=3, calib=calib, weights="int4")
    assert r.match, (r.max_abs_diff, r.first_mismatch)
    layers = _weighted(api.compile(path, target, None, calib=calib, weights="int4").report)
    fast = "arm_mve_fc_s4" if target == "cortex-m55" else "arm_dsp_fc_s4"
    dsp = [l["name"] for l in layers if l["variant"] == fast]
    assert all(l["weights"] == "int4" for l in layers)
    # the 48-, 16-, 8- and 24-input layers; the 5-, 3- and 7-input ones stay portable
    assert (len(dsp), len(layers) - len(dsp)) == ((1, 1) if with_rows else (3, 2)), [l["variant"] for l in layers]


def _conv_model():
    """Convolutions for the Arm int4 kernel: 3 input channels (a window row of 9 bytes: a
    leftover element; window length 27, padded to 32), padding on every side, stride 2,
    5 and 7 output channels, ReLU6 (a clamp), a dead output channel, a 1x1 layer of 12 channels
    (window 12: one 8-step and a padded one) over an odd pixel count (blocks of 1 and 2
    pixels at the end), a 3x3 layer whose window is a multiple of 8, and a grouped one
    (portable)."""
    rng = np.random.default_rng(12)
    inits, nodes = [], []

    def conv(x, y, w_shape, act=None, dead=None, **attrs):
        w = rng.normal(0, 0.3, w_shape).astype(np.float32)
        if dead is not None:
            w[dead] = 0
        inits.append(helper.make_tensor(y + "_w", TensorProto.FLOAT, w_shape, w.ravel()))
        inits.append(helper.make_tensor(y + "_b", TensorProto.FLOAT, [w_shape[0]],
                                        rng.normal(0, 0.1, w_shape[0]).astype(np.float32)))
        out = y if act is None else y + "_c"
        nodes.append(helper.make_node("Conv", [x, y + "_w", y + "_b"], [out], **attrs))
        if act == "relu6":
            inits.append(helper.make_tensor(y + "_lo", TensorProto.FLOAT, [], [0.0]))
            inits.append(helper.make_tensor(y + "_hi", TensorProto.FLOAT, [], [6.0]))
            nodes.append(helper.make_node("Clip", [out, y + "_lo", y + "_hi"], [y]))
        elif act == "relu":
            nodes.append(helper.make_node("Relu", [out], [y]))
        return y
    a = conv("x", "a", [5, 3, 3, 3], act="relu6", dead=2, pads=[1, 2, 0, 1], strides=[2, 2])
    b = conv(a, "b", [12, 5, 1, 1], act="relu")
    c = conv(b, "c", [7, 12, 3, 3], pads=[1, 1, 1, 1])
    d = conv(c, "d", [8, 7, 1, 1], act="relu")
    e = conv(d, "e", [8, 4, 3, 3], group=2, pads=[1, 1, 1, 1])
    graph = helper.make_graph(nodes, "conv_int4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 11, 9])],
                              [helper.make_tensor_value_info(e, TensorProto.FLOAT, [1, 8, 5, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("target,variant", [("nucleo-l4r5zi", "arm_dsp_conv_s4"),
                                            ("stm32f746", "arm_dsp_conv_s4"),
                                            ("cortex-m55", "arm_mve_conv_s4"),
                                            ("rv32-zve32x", "rvv_conv_s4")])
def test_int4_convolution_kernels_bit_exact(target, variant, tmp_path):
    """td_arm_conv_s4 (the windows copied by td_arm_im2col_rt, packed weights widened in
    registers) on the emulated Cortex-M4 and M7, td_mve_conv_s4 (Helium: strips unpacked
    once per block of pixels, the requantization in vector registers) on the M55, td_rvv_conv_s4 (lanes over two channel blocks of
    packed bytes; odd channel counts padded) on RISC-V vector, against the golden model; the
    grouped layer keeps the portable kernel.  (Scratch as the Arm kernel needs: the 108-long
    windows take more than the default growth of this small arena.)"""
    path = str(tmp_path / "conv.onnx")
    onnx.save(_conv_model(), path)
    calib = {"x": np.random.default_rng(13).normal(0, 1, (16, 3, 11, 9)).astype(np.float32)}
    r = api.verify(path, target, samples=3, calib=calib, weights="int4", kernel_scratch="any")
    assert r.match, (r.max_abs_diff, r.first_mismatch)
    layers = _weighted(api.compile(path, target, None, calib=calib, weights="int4",
                                   kernel_scratch="any").report)
    assert [l["variant"] for l in layers] == [variant] * 4 + ["portable"]
    assert all(l["weights"] == "int4" for l in layers)


@pytest.mark.parametrize("with_rows", [False, True])
def test_rvv_int4_fully_connected_bit_exact(with_rows, tmp_path):
    """td_rvv_fc_s4 (weights packed in halves, sign-extended in vector registers) against the
    golden model on the RISC-V vector emulator; odd input counts keep the portable kernel."""
    model, shape = _fc_model(with_rows)
    path = str(tmp_path / "fc.onnx")
    onnx.save(model, path)
    calib = {"x": np.random.default_rng(9).normal(0, 1, (16, *shape[1:])).astype(np.float32)}
    r = api.verify(path, "rv32-zve32x", samples=3, calib=calib, weights="int4")
    assert r.match, (r.max_abs_diff, r.first_mismatch)
    layers = _weighted(api.compile(path, "rv32-zve32x", None, calib=calib, weights="int4").report)
    vec = [l["name"] for l in layers if l["variant"] == "rvv_fc_s4"]
    assert all(l["weights"] == "int4" for l in layers)
    assert (len(vec), len(layers) - len(vec)) == ((1, 1) if with_rows else (3, 2)), [l["variant"] for l in layers]


def _dw_model(channels=(8, 24, 7), same_range=False):
    """Depthwise layers for the vector int4 kernels: channels[0] with padding different on
    every side, ReLU6 and a dead channel, channels[1] at stride 2 with a 5x3 window (24: three
    strips at VLEN 128), channels[2] for a layer the kernel must leave to the portable one.
    same_range: every channel's weights span the same range (one weight scale a layer)."""
    c0, c1, c2 = channels
    rng = np.random.default_rng(21)
    inits, nodes = [], []

    def dw(x, y, ch, k, act=None, dead=None, **attrs):
        w = rng.normal(0, 0.4, (ch, 1, *k)).astype(np.float32)
        if same_range:
            w = w / np.abs(w).reshape(ch, -1).max(1).reshape(ch, 1, 1, 1)
        if dead is not None:
            w[dead] = 0
        inits.append(helper.make_tensor(y + "_w", TensorProto.FLOAT, [ch, 1, *k], w.ravel()))
        inits.append(helper.make_tensor(y + "_b", TensorProto.FLOAT, [ch], rng.normal(0, 0.1, ch).astype(np.float32)))
        out = y if act is None else y + "_c"
        nodes.append(helper.make_node("Conv", [x, y + "_w", y + "_b"], [out], group=ch, kernel_shape=list(k), **attrs))
        if act == "relu6":
            inits.append(helper.make_tensor(y + "_lo", TensorProto.FLOAT, [], [0.0]))
            inits.append(helper.make_tensor(y + "_hi", TensorProto.FLOAT, [], [6.0]))
            nodes.append(helper.make_node("Clip", [out, y + "_lo", y + "_hi"], [y]))
        return y

    def pw(x, y, cin, cout):
        inits.append(helper.make_tensor(y + "_w", TensorProto.FLOAT, [cout, cin, 1, 1],
                                        rng.normal(0, 0.4, (cout, cin, 1, 1)).astype(np.float32).ravel()))
        nodes.append(helper.make_node("Conv", [x, y + "_w"], [y]))
        return y
    a = dw("x", "a", c0, (3, 3), act="relu6", dead=3, pads=[1, 0, 2, 1])
    b = pw(a, "b", c0, c1)
    c = dw(b, "c", c1, (5, 3), pads=[2, 1, 2, 1], strides=[2, 2])
    d = pw(c, "d", c1, c2)
    e = dw(d, "e", c2, (3, 3), pads=[1, 1, 1, 1])
    graph = helper.make_graph(nodes, "dw_int4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c0, 9, 11])],
                              [helper.make_tensor_value_info(e, TensorProto.FLOAT, [1, c2, 6, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("target,channels,variant,last", [
    ("rv32-zve32x", (8, 24, 7), "rvv_dw_s4", "portable"),
    ("cortex-m55", (16, 32, 24), "arm_mve_dw_s4", "arm_dsp_dw_s4"),
    ("nucleo-l4r5zi", (12, 20, 7), "arm_dsp_dw_s4", "arm_dsp_dw_s4"),
    ("stm32f746", (8, 24, 7), "arm_dsp_dw_s4", "arm_dsp_dw_s4")])
def test_int4_depthwise_kernels_bit_exact(target, channels, variant, last, tmp_path):
    """td_rvv_dw_s4 (per window tap the channels in halves, both blocks' inputs as vectors)
    on rv32-zve32x, td_mve_dw_s4 (16 channels in int16 lanes, 25 taps) on the Cortex-M55,
    td_arm_dw_s4 (8 channels a word, SMLABB / SMLATT; 12, 20 and 7 channels: the remainder
    one channel at a time) on the Cortex-M4 and M7, against the golden model; on RISC-V the
    last layer (an odd channel count) runs the portable kernel, on the M55 (24 channels:
    not a multiple of 16) the DSP kernel."""
    path = str(tmp_path / "dw.onnx")
    onnx.save(_dw_model(channels), path)
    calib = {"x": np.random.default_rng(22).normal(0, 1, (16, channels[0], 9, 11)).astype(np.float32)}
    r = api.verify(path, target, samples=3, calib=calib, weights="int4")
    assert r.match, (r.max_abs_diff, r.first_mismatch)
    layers = _weighted(api.compile(path, target, None, calib=calib, weights="int4").report)
    dws = [l["variant"] for l in layers if l["op"] == "depthwise_conv2d_s8"]
    assert dws == [variant, variant, last], [l["variant"] for l in layers]


def test_int4_depthwise_uniform_requantization_bit_exact(tmp_path):
    """One weight scale in each layer: td_arm_dw_s4 takes the records' uniform mode (one
    shift for the layer, SMMLA) and equals the golden model on the M4."""
    import re
    path = str(tmp_path / "dw.onnx")
    onnx.save(_dw_model((12, 20, 7), same_range=True), path)
    calib = {"x": np.random.default_rng(22).normal(0, 1, (16, 12, 9, 11)).astype(np.float32)}
    r = api.verify(path, "nucleo-l4r5zi", samples=3, calib=calib, weights="int4")
    assert r.match, (r.max_abs_diff, r.first_mismatch)
    api.compile(path, "nucleo-l4r5zi", tmp_path / "lib", calib=calib, weights="int4")
    cfgs = re.findall(r"static const td_arm_dw_s4_cfg .*?\n};", (tmp_path / "lib" / "net.c").read_text(), re.S)
    shifts = [int(re.search(r"\.uniform_shift = (-?\d+)", c).group(1)) for c in cfgs]
    assert len(shifts) == 3 and sum(e >= 0 for e in shifts) >= 2, shifts


@pytest.mark.parametrize("channels", [12, 9])
def test_int4_depthwise_on_a_1x1_image_bit_exact(channels, tmp_path):
    """A 3x3 depthwise layer on a 1x1 image (every tap but the centre is padding), channels
    a multiple of 8 plus 4, or plus 1: td_arm_dw_s4 on the M4 equals the golden model."""
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.4, (channels, 1, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, channels).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], group=channels, kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "dw1x1", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                             [1, channels, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 1, 1])],
                              inits)
    path = str(tmp_path / "dw1.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    calib = {"x": rng.normal(0, 1, (16, channels, 1, 1)).astype(np.float32)}
    r = api.verify(path, "nucleo-l4r5zi", samples=4, calib=calib, weights="int4")
    assert r.match, (r.max_abs_diff, r.first_mismatch)
    layers = _weighted(api.compile(path, "nucleo-l4r5zi", None, calib=calib, weights="int4").report)
    assert [l["variant"] for l in layers] == ["arm_dsp_dw_s4"], layers


@pytest.mark.parametrize("mode", ["channel", "portable"])
def test_int4_depthwise_other_requantizations_bit_exact(mode, monkeypatch, tmp_path):
    """td_arm_dw_s4 takes compact records where they are exact (the test above), else
    full per-channel ones ("channel": as when a channel's shift is 0), else, where
    requant_plan cannot prove the Arm arithmetic, the portable one on records
    {multiplier, shift}: forced here, every depthwise layer takes that path on the M4 and
    still equals the golden model."""
    import re
    from tinydeploy.backends import arm
    if mode == "channel":
        monkeypatch.setattr(arm, "_compact_records", lambda plan: None)
    else:
        monkeypatch.setattr(arm, "requant_plan", lambda *args, **kwargs: None)
    path = str(tmp_path / "dw.onnx")
    onnx.save(_dw_model((12, 20, 7)), path)
    calib = {"x": np.random.default_rng(22).normal(0, 1, (16, 12, 9, 11)).astype(np.float32)}
    r = api.verify(path, "nucleo-l4r5zi", samples=3, calib=calib, weights="int4")
    assert r.match, (r.max_abs_diff, r.first_mismatch)
    result = api.compile(path, "nucleo-l4r5zi", tmp_path / "lib", calib=calib, weights="int4")
    dws = [l["variant"] for l in _weighted(result.report) if l["op"] == "depthwise_conv2d_s8"]
    assert dws == ["arm_dsp_dw_s4"] * 3, dws
    cfgs = re.findall(r"static const td_arm_dw_s4_cfg .*?\n};", (tmp_path / "lib" / "net.c").read_text(), re.S)
    want = ".portable = 1" if mode == "portable" else ".uniform_shift = -1,"
    assert len(cfgs) == 3 and all(want in c for c in cfgs), cfgs
