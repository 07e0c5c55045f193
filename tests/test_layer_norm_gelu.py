"""LayerNormalization (opset 17, and the decomposed form of opset 13), GELU (erf and
tanh forms, opset-20 Gelu), SiLU and decomposed HardSwish, on token tensors
[1, 17, 64] shaped like tiny vision-transformer exports: float32 against
onnxruntime, int8 C against the golden model bit for bit (host, Cortex-M7 DSP,
Cortex-M55 Helium, RISC-V vector), int8 against the float model (SQNR), the
fusions (one layer_norm layer, one table per activation) and the refusals."""
import math
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api
from tinydeploy.errors import TinydeployError
from tinydeploy.ops import layer_norm as ln

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(11)
TOKENS, DIM, HIDDEN = 17, 64, 96


@pytest.fixture(autouse=True)
def _rng_per_test(request):
    global RNG
    RNG = np.random.default_rng([11, zlib.crc32(request.node.name.encode())])


class _G:
    """A graph under construction: nodes, initializers, fresh names."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, hint):
        self.n += 1
        return f"/{hint}_{self.n}"

    def const(self, value, hint="c"):
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op, inputs, scope="m", **attrs):
        out = self.name(f"{scope}/{op}")
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"/{scope}/{op}_{self.n}", **attrs))
        return out

    def linear(self, x, n_in, n_out, scope):
        w = self.const(RNG.normal(0, 1 / math.sqrt(n_in), (n_in, n_out)), "w")
        b = self.const(RNG.normal(0, 0.1, n_out), "b")
        return self.node("Add", [b, self.node("MatMul", [x, w], scope)], scope)  # torch's order

    def layer_norm(self, x, form, opset, eps=1e-5):
        gamma = self.const(RNG.uniform(0.5, 1.5, DIM), "gamma")
        beta = self.const(RNG.normal(0, 0.2, DIM), "beta")
        if form == "op":
            return self.node("LayerNormalization", [x, gamma, beta], "ln", axis=-1, epsilon=eps)
        mean_attrs = dict(axes=[-1])
        mean = self.node("ReduceMean", [x], "ln", **mean_attrs)
        d = self.node("Sub", [x, mean], "ln")
        sq = self.node("Pow", [d, self.const(2.0)], "ln") if form == "pow" else self.node("Mul", [d, d], "ln")
        var = self.node("ReduceMean", [sq], "ln", **mean_attrs)
        std = self.node("Sqrt", [self.node("Add", [var, self.const(eps)], "ln")], "ln")
        y = self.node("Div", [d, std], "ln")
        return self.node("Add", [self.node("Mul", [y, gamma], "ln"), beta], "ln")

    def activation(self, x, kind):
        s = kind
        if kind == "gelu":  # torch: Div sqrt(2), Erf, Add 1, Mul x, Mul 0.5
            e = self.node("Erf", [self.node("Div", [x, self.const(1.4142135381698608)], s)], s)
            return self.node("Mul", [self.node("Mul", [x, self.node("Add", [e, self.const(1.0)], s)], s),
                                     self.const(0.5)], s)
        if kind == "gelu_mul":  # another order: 0.5 * x * (1 + erf(x * 0.7071))
            e = self.node("Erf", [self.node("Mul", [self.const(0.7071067690849304), x], s)], s)
            half = self.node("Mul", [self.const(0.5), x], s)
            return self.node("Mul", [half, self.node("Add", [self.const(1.0), e], s)], s)
        if kind == "gelu_tanh":  # torch: x*x*x, 0.044715 *, x +, sqrt(2/pi) *, tanh, 1 +, x*0.5 *
            cube = self.node("Mul", [self.node("Mul", [x, x], s), x], s)
            inner = self.node("Add", [x, self.node("Mul", [self.const(0.044715), cube], s)], s)
            t = self.node("Tanh", [self.node("Mul", [self.const(0.7978845834732056), inner], s)], s)
            half = self.node("Mul", [x, self.const(0.5)], s)
            return self.node("Mul", [half, self.node("Add", [self.const(1.0), t], s)], s)
        if kind == "gelu_pow":
            cube = self.node("Pow", [x, self.const(3.0)], s)
            inner = self.node("Add", [x, self.node("Mul", [cube, self.const(0.044715)], s)], s)
            t = self.node("Tanh", [self.node("Mul", [inner, self.const(0.7978845834732056)], s)], s)
            return self.node("Mul", [self.node("Mul", [x, self.const(0.5)], s),
                                     self.node("Add", [t, self.const(1.0)], s)], s)
        if kind == "silu":
            return self.node("Mul", [x, self.node("Sigmoid", [x], s)], s)
        if kind == "hardswish":  # x * relu6(x + 3) / 6
            r = self.node("Clip", [self.node("Add", [x, self.const(3.0)], s), self.const(0.0), self.const(6.0)], s)
            return self.node("Div", [self.node("Mul", [x, r], s), self.const(6.0)], s)
        if kind in ("gelu20", "gelu20_tanh"):
            return self.node("Gelu", [x], s, approximate="tanh" if kind.endswith("tanh") else "none")
        raise ValueError(kind)

    def save(self, path, y, opset):
        graph = helper.make_graph(
            self.nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TOKENS, DIM])],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, TOKENS, DIM])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
        return str(path)


def _block(path, ln_form="op", act="gelu", opset=None):
    """x -> Linear -> LayerNorm -> Linear -> activation -> Linear (a transformer MLP)."""
    opset = opset or (20 if (act or "").startswith("gelu20") else 17 if ln_form == "op" else 13)
    g = _G()
    h = g.linear("x", DIM, DIM, "fc1")
    if ln_form:
        h = g.layer_norm(h, ln_form, opset)
    if act:
        h = g.activation(g.linear(h, DIM, HIDDEN, "fc2"), act)
        h = g.linear(h, HIDDEN, DIM, "fc3")
    return g.save(path, h, opset)


def _ort(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x])


def _x(n):
    return RNG.normal(0, 1, (n, TOKENS, DIM)).astype(np.float32)


def _sqnr(ref, got):
    ref = ref.astype(np.float64).reshape(-1)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got.reshape(-1)) ** 2))


# -- float32 ----------------------------------------------------------------------
@pytest.mark.parametrize("ln_form,act", [("op", "gelu"), ("pow", "gelu_tanh"), ("mul", "silu"),
                                         ("pow", "gelu_mul"), ("op", "gelu20"), ("op", "gelu20_tanh"),
                                         ("op", "hardswish"), ("pow", "gelu_pow")])
def test_float_matches_onnxruntime(tmp_path, ln_form, act):
    path = _block(tmp_path / "m.onnx", ln_form, act)
    x = _x(3)
    want = _ort(path, x)
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs
    got = next(iter(got.values())).reshape(want.shape)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("target", ["stm32f746", "rv32-zve32x"])
def test_float_on_mcus(tmp_path, target):
    """The float kernels (layer_norm, gelu/gelu_tanh/silu) with the target's libm."""
    g = _G()
    h = g.layer_norm(g.linear("x", DIM, DIM, "fc1"), "op", 17)
    for act in ("gelu", "gelu_tanh", "silu"):
        h = g.activation(h, act)
    path = g.save(tmp_path / "m.onnx", h, 17)
    x = _x(2)
    got = next(iter(api.run(path, {"x": x}, target=target, quantize="float32").outputs.values()))
    np.testing.assert_allclose(got.reshape(x.shape), _ort(path, x), atol=1e-5, rtol=1e-4)


def _decomposed(path, axes=(-1,), affine=True, eps_first=False, shape=(1, TOKENS, DIM)):
    """The decomposed LayerNorm alone, in variants exporters write."""
    g = _G()
    block = shape[len(shape) + min(axes):]
    mean = g.node("ReduceMean", ["x"], "ln", axes=list(axes))
    d = g.node("Sub", ["x", mean], "ln")
    var = g.node("ReduceMean", [g.node("Pow", [d, g.const(2.0)], "ln")], "ln", axes=list(axes))
    eps = g.const(1e-6)
    std = g.node("Sqrt", [g.node("Add", [eps, var] if eps_first else [var, eps], "ln")], "ln")
    y = g.node("Div", [d, std], "ln")
    if affine:
        y = g.node("Add", [g.const(RNG.normal(0, 0.3, block), "beta"),
                           g.node("Mul", [g.const(RNG.uniform(0.5, 1.5, block), "gamma"), y], "ln")], "ln")
    graph = helper.make_graph(g.nodes, "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, list(shape))], g.inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


@pytest.mark.parametrize("variant", [dict(), dict(affine=False), dict(eps_first=True), dict(axes=(-2, -1))])
def test_decomposed_layer_norm_variants(tmp_path, variant):
    """Without scale and bias, epsilon first, constants on the left, two trailing axes: one
    layer_norm op, float against onnxruntime, int8 C == golden."""
    path = _decomposed(tmp_path / "m.onnx", **variant)
    g = api.build_graph(path, quantize="float32")
    assert [op.kind for op in g.ops] == ["layer_norm"]
    assert (g.ops[0].inputs[1] != "") == variant.get("affine", True)
    x = {"x": _x(2)}
    want = _ort(path, x["x"])
    got = next(iter(api.run(path, x, target="host", quantize="float32").outputs.values()))
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)
    calib = {"x": _x(8)}
    c = next(iter(api.run(path, x, target="host", calib=calib).outputs.values()))
    np.testing.assert_array_equal(c, next(iter(api.run(path, x, target="host", calib=calib, golden=True)
                                               .outputs.values())))
    assert _sqnr(want, c) > 30


def test_float_layer_norm_is_one_layer(tmp_path):
    path = _block(tmp_path / "m.onnx", "pow", None)
    g = api.build_graph(path, quantize="float32")
    assert [op.kind for op in g.ops] == ["fully_connected", "layer_norm"]
    assert g.ops[1].name == "/ln/layer_norm"


@pytest.mark.parametrize("act,kind", [("gelu", "gelu"), ("gelu_mul", "gelu"), ("gelu20", "gelu"),
                                      ("gelu_tanh", "gelu_tanh"), ("gelu_pow", "gelu_tanh"), ("silu", "silu"),
                                      ("hardswish", None)])
def test_float_activation_kernels(tmp_path, act, kind):
    """GELU, tanh-GELU and SiLU run as one float kernel (other compositions keep their ops)."""
    g = api.build_graph(_block(tmp_path / "m.onnx", "op", act), quantize="float32")
    kinds = [op.kind for op in g.ops]
    if kind is None:
        assert len(kinds) > 5 and "elementwise_fn" not in kinds
    else:
        assert kinds == ["fully_connected", "layer_norm", "fully_connected", kind, "fully_connected"]
        assert g.ops[3].name.endswith("/" + kind)


# -- int8 ---------------------------------------------------------------------------
def _int8_graph(path):
    return api.build_graph(path, calib={"x": _x(16)})


@pytest.mark.parametrize("ln_form,act,fn", [("op", "gelu", "gelu"), ("pow", "gelu_tanh", "gelu_tanh"),
                                            ("mul", "silu", "silu"), ("op", "gelu_mul", "gelu"),
                                            ("op", "gelu20", "gelu"), ("op", "gelu20_tanh", "gelu_tanh"),
                                            ("op", "hardswish", "hard_swish"), ("op", "gelu_pow", "gelu_tanh")])
def test_int8_fuses_layer_norm_and_activation(tmp_path, ln_form, act, fn):
    g = _int8_graph(_block(tmp_path / "m.onnx", ln_form, act))
    kinds = [op.kind for op in g.ops]
    assert kinds == ["fully_connected_s8", "layer_norm_s8", "fully_connected_s8", "lut_s8",
                     "fully_connected_s8"], kinds
    assert g.ops[3].name == f"/{act}/{fn}"


@pytest.mark.parametrize("target", ["host", "stm32f746", "cortex-m55", "rv32-zve32x"])
def test_int8_c_bit_exact_with_golden(tmp_path, target):
    path = _block(tmp_path / "m.onnx", "pow", "gelu")
    calib, x = {"x": _x(16)}, {"x": _x(3)}
    c = api.run(path, x, target=target, calib=calib).outputs
    golden = api.run(path, x, target=target, calib=calib, golden=True).outputs
    (name, got), = c.items()
    np.testing.assert_array_equal(got, golden[name])
    if target == "host":
        assert _sqnr(_ort(path, x["x"]), got) > 25


@pytest.mark.parametrize("ln_form,act", [("op", None), ("pow", None), ("op", "gelu"), ("op", "gelu_tanh"),
                                         ("op", "silu")])
def test_int8_accuracy_against_float(tmp_path, ln_form, act):
    path = _block(tmp_path / "m.onnx", ln_form, act)
    calib, x = {"x": _x(32)}, {"x": _x(8)}
    got = next(iter(api.run(path, x, target="host", calib=calib, golden=True).outputs.values()))
    assert _sqnr(_ort(path, x["x"]), got) > (30 if act is None else 28)


def test_int8_layer_norm_kernel_on_extreme_rows(tmp_path):
    """Constant rows (zero variance), rows of the extreme codes, one outlier: C equals the
    golden kernel on the host, which stays within a code of the real function."""
    path = _ln_only(tmp_path / "m.onnx", gamma=RNG.uniform(-2, 2, DIM), beta=RNG.normal(0, 0.5, DIM))
    calib = {"x": RNG.normal(0, 2, (8, TOKENS, DIM)).astype(np.float32)}
    rows = np.stack([np.full(DIM, 5), np.full(DIM, -128), np.tile([-128, 127], DIM // 2),
                     np.r_[np.full(DIM - 1, -3), 100]] + list(RNG.integers(-128, 128, (TOKENS - 4, DIM))))
    x = {"x": rows.astype(np.int8)[None]}
    c = api.run(path, x, target="host", calib=calib, raw=True).outputs["y"]
    golden = api.run(path, x, target="host", calib=calib, raw=True, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    g = api.build_graph(path, calib=calib)
    op = next(o for o in g.ops if o.kind == "layer_norm_s8")
    (s_in, z_in), (s_out, z_out) = (g.tensors[n].quant.scalar() for n in (op.inputs[0], op.outputs[0]))
    consts = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    gamma, beta = consts["gamma"], consts["beta"]
    real = (rows.astype(np.float64) - z_in) * s_in
    want = (real - real.mean(1, keepdims=True)) / np.sqrt(real.var(1, keepdims=True) + 1e-5) * gamma + beta
    want_q = np.clip(np.round(want / s_out) + z_out, -128, 127)
    assert np.max(np.abs(c.reshape(want_q.shape).astype(np.int64) - want_q)) <= 1
    assert np.array_equal(c.reshape(want_q.shape)[:2], want_q[:2])  # zero variance: the bias, exactly


def test_int8_layer_norm_kernel_with_a_huge_element_scale(tmp_path):
    """An element whose scale is far above the output scale (its normalized value was near
    zero in calibration): its requantization shift is below 32 and its requantized values
    exceed int32, so the kernel's 64-bit arithmetic matters; its outputs saturate. C equals
    the golden kernel on the host (truncating them to 32 bits fails it)."""
    gamma = RNG.uniform(-2, 2, DIM)
    gamma[0] = 1.0e6
    path = _ln_only(tmp_path / "m.onnx", gamma=gamma, beta=RNG.normal(0, 0.5, DIM))
    calib = RNG.normal(0, 2, (8, TOKENS, DIM))
    calib[..., 0] = calib[..., 1:].mean(-1)  # element 0 at its row's mean: normalized ~0
    calib = {"x": calib.astype(np.float32)}
    g = api.build_graph(path, calib=calib)
    op = next(o for o in g.ops if o.kind == "layer_norm_s8")
    assert op.int8_params["shift"][0] < 32 <= min(op.int8_params["shift"][1:])
    x = {"x": RNG.integers(-128, 128, (3, TOKENS, DIM)).astype(np.int8)}
    c = api.run(path, x, target="host", calib=calib, raw=True).outputs["y"]
    golden = api.run(path, x, target="host", calib=calib, raw=True, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    assert set(np.unique(c.reshape(-1, DIM)[:, 0])) <= {-128, 127}


@pytest.mark.parametrize("target,variant", [("rv32-zve32x", "rvv_layer_norm"), ("cortex-m55", "arm_mve_layer_norm")])
@pytest.mark.parametrize("size", [37, 4200])
def test_int8_layer_norm_vector_variant_bit_exact(tmp_path, size, target, variant):
    """The vector-lane layer norms (riscv/rvv_layer_norm_s8.c, arm/mve_layer_norm_s8.c)
    against the golden model on rv32-zve32x and the Cortex-M55: rows of 37 (partial
    vectors) and of 4,200 codes, whose
    rows reach every form of the normalizing shift: alternating extreme codes (shift 33),
    uniform codes (shift 32), small deviations (shift < 32) and a constant row (zero
    variance)."""
    rng = np.random.default_rng(size)
    # calibration on rows of +-1 (normalized to about +-1), outputs from about -2.2 to 8 (one
    # element's bias): each element's multiplier (scale / output scale) is 12-55 (shift 33),
    # large enough that a normalized value one unit (2^-16) off changes some outputs
    gamma = rng.uniform(0.5, 1.0, size) * rng.choice([-1, 1], size)
    gamma[0], beta = 2.2, np.zeros(size)
    beta[1] = 8.0
    path = _ln_only(tmp_path / "m.onnx", shape=(1, 6, size), gamma=gamma, beta=beta)
    calib = {"x": (np.resize([-1.0, 1.0], (4, 6, size)) * rng.uniform(0.5, 3, (4, 6, 1))).astype(np.float32)}
    samples = [[np.resize([-128, 127], size), rng.integers(-128, 128, size), rng.integers(-128, 128, size),
                rng.integers(-3, 4, size), np.full(size, 9), rng.integers(-60, 60, size)] for _ in range(7)]
    samples.append([np.r_[np.full(size - 1, -3), 100]] + [rng.integers(-20, 20, size) for _ in range(5)])
    x = {"x": np.stack([np.stack(rows) for rows in samples]).astype(np.int8)}
    rows = samples[0]
    c = api.run(path, x, target=target, calib=calib, raw=True)
    assert [l["variant"] for l in c.report["layers"] if l["op"] == "layer_norm_s8"] == [variant]
    golden = api.run(path, x, target=target, calib=calib, raw=True, golden=True).outputs["y"]
    np.testing.assert_array_equal(c.outputs["y"], golden)
    if size == 4200:  # the rows' normalizing shifts: 28 + e with T = t 4^e, t in [2^28, 2^30)
        t = size * (np.stack(rows).astype(np.int64) ** 2).sum(1) - np.stack(rows).astype(np.int64).sum(1) ** 2
        shifts = {28 + (int(v).bit_length() - 29) // 2 for v in t if v > 0}
        assert {33, 32} <= shifts and min(shifts) < 32, shifts


def test_rsqrt_precision():
    t = np.r_[np.arange(1 << 28, 1 << 30, 4099, dtype=np.int64), (1 << 30) - 1]
    y = ln.rsqrt_q29(t).astype(np.float64)
    true = 2.0 ** 29 / np.sqrt(t / 2.0 ** 30)
    assert np.max(np.abs(y - true) / true) < 2.0 ** -28


def test_qdq_intermediates_keep_their_ops(tmp_path):
    """A QDQ SiLU (each step quantized by the model) is not fused into a table."""
    g = _G()
    s, z = g.const(0.05), numpy_helper.from_array(np.array(0, np.int8), "zp")
    g.inits.append(z)

    def qdq(t):
        return g.node("DequantizeLinear", [g.node("QuantizeLinear", [t, s, "zp"]), s, "zp"])
    x = qdq("x")
    y = qdq(g.node("Mul", [x, qdq(g.node("Sigmoid", [x]))]))
    path = g.save(tmp_path / "q.onnx", y, 13)
    kinds = [op.kind for op in api.build_graph(path).ops]
    assert kinds == ["lut_s8", "mul_s8"]  # the sigmoid's own table, then the product


@pytest.mark.parametrize("ln_form,act,kinds", [
    ("op", "gelu", ["layer_norm_s8", "lut_s8"]),  # its Div -> Erf has no QDQ pair: one table
    ("pow", "silu", ["layer_norm_s8", "lut_s8", "mul_s8"])])  # every step quantized: kept
def test_onnxruntime_qdq_models(tmp_path, ln_form, act, kinds):
    """Models quantized by onnxruntime.quantization (QDQ): the decomposed LayerNorm fuses (its
    intermediates' quantization is dropped), GELU becomes one table; C == golden on the host."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    path = _block(tmp_path / "f.onnx", ln_form, act)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.samples = iter([{"x": s[None]} for s in _x(16)])

        def get_next(self):
            return next(self.samples, None)

    q = str(tmp_path / "q.onnx")
    quantization.quantize_static(path, q, Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 activation_type=quantization.QuantType.QInt8,
                                 weight_type=quantization.QuantType.QInt8)
    assert [op.kind for op in api.build_graph(q).ops if op.kind != "fully_connected_s8"] == kinds
    x = {"x": _x(3)}
    c = next(iter(api.run(q, x, target="host").outputs.values()))
    np.testing.assert_array_equal(c, next(iter(api.run(q, x, target="host", golden=True).outputs.values())))
    assert _sqnr(_ort(path, x["x"]), c) > 25


# -- refusals -----------------------------------------------------------------------
def _ln_only(path, axis=-1, const_gamma=True, shape=(1, TOKENS, DIM), outputs=1, opset=17, gamma=None, beta=None):
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))]
    block = shape[axis:]
    inits = [numpy_helper.from_array(np.ones(block, np.float32) if beta is None else beta.astype(np.float32), "beta")]
    if const_gamma:
        inits.append(numpy_helper.from_array(np.ones(block, np.float32) if gamma is None else
                                             gamma.astype(np.float32), "gamma"))
    else:
        inputs.append(helper.make_tensor_value_info("gamma", TensorProto.FLOAT, list(shape[axis:])))
    outs = ["y", "mean", "inv_std"][:outputs]
    nodes = [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], outs, name="ln", axis=axis)]
    graph = helper.make_graph(nodes, "ln", inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                                    for o in outs], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return str(path)


def test_layer_norm_over_two_trailing_axes(tmp_path):
    path = _ln_only(tmp_path / "m.onnx", axis=-2, shape=(1, 4, 5, 6))
    x = RNG.normal(0, 1, (2, 4, 5, 6)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {"x": s[None]})[0][0] for s in x])
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)
    calib = {"x": RNG.normal(0, 1, (8, 4, 5, 6)).astype(np.float32)}
    c = api.run(path, {"x": x}, target="host", calib=calib).outputs["y"]
    np.testing.assert_array_equal(c, api.run(path, {"x": x}, target="host", calib=calib, golden=True).outputs["y"])
    assert _sqnr(want, c) > 30


@pytest.mark.parametrize("axis", [-1, 1])
def test_layer_norm_of_a_conv_output(tmp_path, axis):
    """NCHW conv output normalized over W (axis -1: the layout pass moves W innermost) or
    over C, H, W (axis 1); float against onnxruntime, int8 C against golden."""
    w = numpy_helper.from_array(RNG.normal(0, 0.4, (6, 3, 3, 3)).astype(np.float32), "w")
    block = (6, 5, 7)[axis:] if axis > 0 else (7,)
    gamma = numpy_helper.from_array(RNG.uniform(0.5, 1.5, block).astype(np.float32), "gamma")
    beta = numpy_helper.from_array(RNG.normal(0, 0.3, block).astype(np.float32), "beta")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("LayerNormalization", ["c", "gamma", "beta"], ["n"], axis=axis, name="ln"),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 5, 7])], [w, gamma, beta])
    path = str(tmp_path / "m.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = {"x": RNG.normal(0, 1, (2, 3, 5, 7)).astype(np.float32)}
    want = _ort(path, x["x"])
    got = api.run(path, x, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)
    calib = {"x": RNG.normal(0, 1, (8, 3, 5, 7)).astype(np.float32)}
    c = api.run(path, x, target="host", calib=calib).outputs["y"]
    np.testing.assert_array_equal(c, api.run(path, x, target="host", calib=calib, golden=True).outputs["y"])
    assert _sqnr(want, c) > 30


def test_non_constant_scale_is_refused(tmp_path):
    path = _ln_only(tmp_path / "m.onnx", const_gamma=False)
    with pytest.raises(TinydeployError) as err:
        api.compile(path, quantize="float32")
    assert str(err.value) == ("node 'ln' (LayerNormalization): the scale must be a constant (an initializer); "
                              "tinydeploy compiles static graphs only")


@pytest.mark.parametrize("axis", [-1, 1])
def test_statistics_outputs_match_onnxruntime(tmp_path, axis):
    """Mean and InvStdDev (used by training graphs), float32 against onnxruntime."""
    path = _ln_only(tmp_path / "m.onnx", axis=axis, outputs=3,
                    gamma=RNG.normal(1, 0.2, (TOKENS, DIM)[axis:]), beta=RNG.normal(0, 0.2, (TOKENS, DIM)[axis:]))
    x = RNG.normal(0.3, 1.5, (3, TOKENS, DIM)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = api.run(path, {"x": x}, target="host", quantize="float32").outputs
    for i, name in enumerate(["y", "mean", "inv_std"]):
        want = np.stack([sess.run(None, {"x": s[None]})[i][0] for s in x])
        np.testing.assert_allclose(got[name].reshape(want.shape), want, rtol=1e-4, atol=1e-5)


def test_int8_mean_output_and_inv_std_dev_refusal(tmp_path):
    """In int8 the Mean output is a Mean layer (C == golden); InvStdDev needs x - mean of two
    activations, which has no int8 kernel: a clear error."""
    x = RNG.normal(0.3, 1.5, (3, TOKENS, DIM)).astype(np.float32)
    path = _ln_only(tmp_path / "m.onnx", outputs=2)
    c = api.run(path, {"x": x}, target="host", calib={"x": x}).outputs
    golden = api.run(path, {"x": x}, target="host", calib={"x": x}, golden=True).outputs
    for name in ("y", "mean"):
        np.testing.assert_array_equal(c[name], golden[name])
    np.testing.assert_allclose(c["mean"].reshape(3, TOKENS), x.mean(axis=-1), atol=0.05)
    path = _ln_only(tmp_path / "m3.onnx", outputs=3)
    with pytest.raises(TinydeployError) as err:
        api.compile(path, calib={"x": x})
    assert str(err.value) == ("node 'ln_inv_std_dev_centred': there is no int8 kernel for element-wise 'sub' "
                              "(supported: add, mul, max, min, and sub or div by a constant); compile with "
                              "--quantize float32")


def test_out_of_range_axis_is_refused(tmp_path):
    path = _ln_only(tmp_path / "m.onnx", axis=-1)
    model = onnx.load(path)
    model.graph.node[0].attribute[0].i = 3
    onnx.save(model, path)
    with pytest.raises(TinydeployError) as err:
        api.compile(path, quantize="float32")
    assert str(err.value) == "node 'ln' (LayerNormalization): axis 3 is out of range for a tensor of rank 3"


def test_int8_rows_longer_than_the_kernel_takes_are_refused(tmp_path):
    path = _ln_only(tmp_path / "m.onnx", shape=(1, 65537))
    with pytest.raises(TinydeployError) as err:
        api.build_graph(path, calib={"x": RNG.normal(0, 1, (2, 65537)).astype(np.float32)})
    assert str(err.value) == ("node 'ln' (layer_norm): the int8 kernel normalizes at most 65,536 values per row, "
                              "this one 65,537; compile with --quantize float32")


def test_gelu_with_an_unknown_approximation_is_refused(tmp_path):
    g = _G()
    y = g.node("Gelu", ["x"], "act", approximate="fast")
    nodes = g.nodes
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    with pytest.raises(TinydeployError) as err:
        api.compile(path, quantize="float32")
    assert str(err.value) == "node '/act/Gelu_1' (Gelu): approximate 'fast' is not one of none, tanh"


# -- a real PyTorch export -------------------------------------------------------------
@pytest.mark.parametrize("opset", [13, 17])
def test_torch_export(tmp_path, opset):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.ln, self.fc2 = nn.Linear(DIM, DIM), nn.LayerNorm(DIM), nn.Linear(DIM, HIDDEN)
            self.acts = nn.ModuleList([nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU()])
            self.fc3 = nn.ModuleList([nn.Linear(HIDDEN, HIDDEN) for _ in range(2)] + [nn.Linear(HIDDEN, DIM)])

        def forward(self, x):
            h = self.fc2(self.ln(self.fc1(x)))
            for act, fc in zip(self.acts, self.fc3):
                h = fc(act(h))
            return h

    torch.manual_seed(0)
    path = str(tmp_path / "block.onnx")
    torch.onnx.export(Block().eval(), torch.randn(1, TOKENS, DIM), path, opset_version=opset, dynamo=False,
                      input_names=["x"])
    x = _x(3)
    want = _ort(path, x)
    got = next(iter(api.run(path, {"x": x}, target="host", quantize="float32").outputs.values()))
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)
    kinds = [op.kind for op in api.build_graph(path, quantize="float32").ops]
    assert [k for k in kinds if k != "fully_connected"] == ["layer_norm", "gelu", "gelu_tanh", "silu"]
    calib = {"x": _x(16)}
    g = api.build_graph(path, calib=calib)
    assert [op.kind for op in g.ops].count("layer_norm_s8") == 1
    assert [op.name.rsplit("/", 1)[-1] for op in g.ops if op.kind == "lut_s8"] == ["gelu", "gelu_tanh", "silu"]
    c = next(iter(api.run(path, {"x": x}, target="host", calib=calib).outputs.values()))
    golden = next(iter(api.run(path, {"x": x}, target="host", calib=calib, golden=True).outputs.values()))
    np.testing.assert_array_equal(c, golden)
    assert _sqnr(want, c) > 20
