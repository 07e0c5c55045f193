"""MatMul of two activations (batch_matmul): attention blocks shaped like PyTorch exports
(q @ k.transpose(-2, -1), softmax, @ v), numpy broadcasting of batch axes, 1-D operands
and constant operands. Float32 against onnxruntime; int8 C against the golden model on the
host and emulated Arm and RISC-V cores, bit for bit, and close to the float model; the
refusals' messages."""
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api, checks, ops
from tinydeploy.errors import TinydeployError
from tinydeploy.ir import Graph, Int8Params, Op

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(11)
T, D, H = 17, 24, 4
HEAD = D // H


@pytest.fixture(autouse=True)
def _rng_per_test(request):
    """Each test draws from its own seeded generator (independent of test order)."""
    global RNG
    RNG = np.random.default_rng([11, zlib.crc32(request.node.name.encode())])


def _save(path, nodes, inputs, outputs, inits=(), opset=13, check=True):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if check:
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return str(path)


def _f(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _attention(path, gather=True):
    """x [1, T, D] -> qkv projection (a constant MatMul: fully connected) -> Reshape
    [1, T, 3, H, d] -> Transpose [2, 0, 3, 1, 4] -> q, k, v (Gather 0/1/2 of axis 0, or a
    Split) -> q @ k^T (Transpose [0, 1, 3, 2]) * 1/sqrt(d) -> Softmax -> @ v -> Transpose
    [0, 2, 1, 3] -> Reshape [1, T, D] -> output projection: as torch.onnx exports
    nn.MultiheadAttention-style code."""
    ints = lambda n, v: numpy_helper.from_array(np.array(v, np.int64), n)  # noqa: E731
    inits = [numpy_helper.from_array(RNG.normal(0, D ** -0.5, (D, 3 * D)).astype(np.float32), "w_qkv"),
             numpy_helper.from_array(RNG.normal(0, D ** -0.5, (D, D)).astype(np.float32), "w_out"),
             ints("shape5", [1, T, 3, H, HEAD]), ints("shape3", [1, T, D]),
             ints("i0", 0), ints("i1", 1), ints("i2", 2),
             numpy_helper.from_array(np.array(1 / np.sqrt(HEAD), np.float32), "scale")]
    nodes = [helper.make_node("MatMul", ["x", "w_qkv"], ["qkv"], name="qkv_proj"),
             helper.make_node("Reshape", ["qkv", "shape5"], ["qkv5"], name="split_heads"),
             helper.make_node("Transpose", ["qkv5"], ["qkvt"], perm=[2, 0, 3, 1, 4], name="heads_first")]
    nodes += [helper.make_node("Gather", ["qkvt", f"i{i}"], [n], axis=0, name=n) for i, n in enumerate("qkv")]
    nodes += [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2], name="k_t"),
              helper.make_node("MatMul", ["q", "kt"], ["s"], name="q_kt"),
              helper.make_node("Mul", ["s", "scale"], ["ss"], name="scale"),
              helper.make_node("Softmax", ["ss"], ["p"], axis=-1, name="softmax"),
              helper.make_node("MatMul", ["p", "v"], ["o"], name="p_v"),
              helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3], name="merge"),
              helper.make_node("Reshape", ["ot", "shape3"], ["o3"], name="merge_heads"),
              helper.make_node("MatMul", ["o3", "w_out"], ["y"], name="out_proj")]
    return _save(path, nodes, [_f("x", [1, T, D])], [_f("y", [1, T, D])], inits)


def _ort_batch1(path, x: dict) -> np.ndarray:
    """onnxruntime on each sample; inputs declared with a leading 1 get it added back."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    decl = {i.name: i.shape for i in sess.get_inputs()}
    n = len(next(iter(x.values())))
    out = []
    for i in range(n):
        feed = {k: (v[i][None] if len(decl[k]) == v.ndim else v[i]) for k, v in x.items()}
        y = sess.run(None, feed)[0]
        out.append(y)
    return np.stack(out)


def _sqnr_db(ref, got) -> float:
    ref = ref.astype(np.float64).reshape(-1)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got.reshape(-1)) ** 2)))


# --------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------
def test_float_attention_matches_onnxruntime(tmp_path):
    path = _attention(tmp_path / "attn.onnx")
    x = {"x": RNG.normal(0, 1, (4, T, D)).astype(np.float32)}
    want = _ort_batch1(path, x).reshape(4, T, D)
    got = api.run(path, x, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)


def test_attention_transposes_are_read_in_place(tmp_path, monkeypatch):
    """k^T, the heads' split and their merge cost no copy before the matmuls: the kernels
    read k's rows as B's columns (b_k_stride 1); the one transpose left restores the merged
    heads' order for the output projection. The MACs count the attention products.
    (The separate layers: the fusion into one attention layer, tests/test_attention.py, off.)"""
    monkeypatch.setattr(ops.attention, "FUSE", False)
    res = api.compile(_attention(tmp_path / "attn.onnx"), quantize="float32")
    kinds = [op.kind for op in res.graph.ops if op.kind != "reshape"]
    assert kinds == ["fully_connected", "slice", "slice", "slice", "batch_matmul", "binary", "softmax",
                     "batch_matmul", "transpose", "fully_connected"]
    q_kt, p_v = (op for op in res.graph.ops if op.kind == "batch_matmul")
    assert q_kt.name == "q_kt" and p_v.name == "p_v"
    geo = ops.matmul.geometry(res.graph.tensors[q_kt.inputs[0]].shape, q_kt.attrs["a_perm"],
                              res.graph.tensors[q_kt.inputs[1]].shape, q_kt.attrs["b_perm"])
    assert (geo["m"], geo["k"], geo["n"], geo["a_k_stride"], geo["b_k_stride"]) == (T, HEAD, T, 1, 1)
    assert ops.macs(res.graph, q_kt) == ops.macs(res.graph, p_v) == H * T * T * HEAD


@pytest.mark.parametrize("target", ["host", "stm32f746", "cortex-m55", "rv32-zve32x"])
def test_int8_attention_bit_exact_with_golden(tmp_path, target):
    path = _attention(tmp_path / "attn.onnx")
    calib = {"x": RNG.normal(0, 1, (32, T, D)).astype(np.float32)}
    x = {"x": RNG.normal(0, 1, (3, T, D)).astype(np.float32)}
    run = api.run(path, x, target=target, calib=calib)
    golden = api.run(path, x, target=target, calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(run.outputs["y"], golden)
    assert _sqnr_db(_ort_batch1(path, x), run.outputs["y"]) > 25


# --------------------------------------------------------------------------
# Broadcasting, ranks, constant operands
# --------------------------------------------------------------------------
# (A shape, B shape, constant operand: None, "a" or "b")
CASES = {
    "broadcast_4d_3d": ([2, 1, 5, 7], [3, 7, 4], None),
    "act_2d": ([5, 7], [7, 3], None),
    "vector_lhs": ([7], [3, 7, 4], None),
    "vector_rhs": ([2, 5, 7], [7], None),
    "const_batched_rhs": ([2, 5, 7], [2, 7, 3], "b"),
    "const_lhs": ([4, 7], [2, 7, 6], "a"),
}


def _pair(path, a_shape, b_shape, const):
    """Relu on each activation operand (so neither is a model input read in place), MatMul."""
    nodes, inputs, inits, names = [], [], [], []
    for name, shape in (("a", a_shape), ("b", b_shape)):
        if const == name:
            inits.append(numpy_helper.from_array(RNG.normal(0, 1, shape).astype(np.float32), name))
            names.append(name)
        else:
            inputs.append(_f(name, shape))
            nodes.append(helper.make_node("Relu", [name], [name + "_r"], name="relu_" + name))
            names.append(name + "_r")
    nodes.append(helper.make_node("MatMul", names, ["y"], name="mm"))
    out_shape = np.matmul(np.zeros(a_shape), np.zeros(b_shape)).shape
    return _save(path, nodes, inputs, [_f("y", list(out_shape))], inits)


def _inputs(a_shape, b_shape, const, n):
    return {k: RNG.normal(0, 1, [n] + s).astype(np.float32)
            for k, s in (("a", a_shape), ("b", b_shape)) if k != const}


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_matmul_matches_onnxruntime(tmp_path, case):
    a_shape, b_shape, const = CASES[case]
    path = _pair(tmp_path / "m.onnx", a_shape, b_shape, const)
    x = _inputs(a_shape, b_shape, const, 3)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {k: v[i] for k, v in x.items()})[0] for i in range(3)])
    got = api.run(path, x, target="host", quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)
    res = api.compile(path, quantize="float32")
    assert [op.kind for op in res.graph.ops if op.kind not in ("reshape", "clip")] == ["batch_matmul"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_matmul_bit_exact_on_host(tmp_path, case):
    a_shape, b_shape, const = CASES[case]
    path = _pair(tmp_path / "m.onnx", a_shape, b_shape, const)
    calib = _inputs(a_shape, b_shape, const, 32)
    x = _inputs(a_shape, b_shape, const, 3)
    c = api.run(path, x, calib=calib).outputs["y"]
    golden = api.run(path, x, calib=calib, golden=True).outputs["y"]
    np.testing.assert_array_equal(c, golden)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {k: v[i] for k, v in x.items()})[0] for i in range(3)])
    assert _sqnr_db(want, c) > 25


@pytest.mark.parametrize("target", ["stm32f746", "rv32-zve32x"])
def test_int8_broadcast_bit_exact_on_mcus(tmp_path, target):
    a_shape, b_shape, const = CASES["broadcast_4d_3d"]
    path = _pair(tmp_path / "m.onnx", a_shape, b_shape, const)
    calib, x = _inputs(a_shape, b_shape, const, 32), _inputs(a_shape, b_shape, const, 2)
    c = api.run(path, x, target=target, calib=calib).outputs["y"]
    np.testing.assert_array_equal(c, api.run(path, x, target=target, calib=calib, golden=True).outputs["y"])


def test_constant_2d_rhs_stays_fully_connected(tmp_path):
    w = numpy_helper.from_array(RNG.normal(0, 1, (7, 3)).astype(np.float32), "w")
    path = _save(tmp_path / "fc.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                 [_f("x", [1, 5, 7])], [_f("y", [1, 5, 3])], [w])
    res = api.compile(path, quantize="float32")
    assert [op.kind for op in res.graph.ops] == ["fully_connected"]


# --------------------------------------------------------------------------
# int8 arithmetic bounds, refusals
# --------------------------------------------------------------------------
@pytest.mark.parametrize("k,shift,problem", [
    (32767, 0, None),  # 32767 * 256 * 256 < 2^31
    (32768, 0, "the int32 sum of 32,768 products of offset operands can reach 2,147,483,648"),
    (16, 10, None),  # 16 * 256 * 256 = 2^20, shifted left by 10: 2^30
    (16, 11, "shifted left by 11 bits"),
])
def test_overflow_bound(k, shift, problem):
    g = Graph("g")
    q = dict(k=k, a_offset=128, b_offset=128, shift=shift)
    g.ops.append(Op("batch_matmul_s8", "layer", ["a", "b"], ["y"], int8_params=Int8Params(q)))
    problems = checks.layer_problems(g)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith("layer 'layer' (batch_matmul_s8): ")
        assert problem in problems[0], problems[0]


def _refused(tmp_path, a_shape, b_shape, b_const=None):
    inputs = [_f("a", a_shape)] + ([] if b_const is not None else [_f("b", b_shape)])
    inits = [] if b_const is None else [numpy_helper.from_array(b_const, "b")]
    path = _save(tmp_path / "bad.onnx", [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")],
                 inputs, [_f("y", None)], inits, check=False)
    with pytest.raises(TinydeployError) as err:
        api.compile(path, quantize="float32")
    return str(err.value)


@pytest.mark.parametrize("a,b,message", [
    ([2, 3, 4], [3, 4, 5], "the batch dimensions of [2, 3, 4] and [3, 4, 5] do not broadcast"),
    ([2, 3, 4], [2, 5, 6], "inputs of shapes [2, 3, 4] and [2, 5, 6] do not multiply (A has 4 columns, B 5 rows)"),
    ([1, 2, 1, 2, 1, 3, 4], [4, 5], "5 batch dimensions; at most 4 are supported (operands of rank up to 6)"),
])
def test_shapes_the_kernel_cannot_take_are_refused(a, b, message):
    """(ONNX shape inference refuses the first two before the lowering; the lowering checks
    them anyway, for graphs whose shapes come from --input-shape.)"""
    with pytest.raises(TinydeployError) as err:
        ops.matmul.check_shapes("node 'mm' (MatMul)", a, b)
    assert str(err.value) == f"node 'mm' (MatMul): {message}"


def test_incompatible_operands_give_a_message_not_a_traceback(tmp_path):
    assert _refused(tmp_path, [2, 3, 4], [3, 4, 5]).endswith("Incompatible dimensions")


def test_integer_constant_operand_is_refused(tmp_path):
    msg = _refused(tmp_path, [2, 3, 4], None, np.ones((2, 4, 5), np.int64))
    assert msg == "node 'mm' (MatMul): the right-hand side must be float (or DequantizeLinear of int8), got int64"


# --------------------------------------------------------------------------
# Gather of a constant index array (strided slices, concatenated when needed)
# --------------------------------------------------------------------------
# (indices, axis, the IR kinds after the Relu)
GATHERS = {
    "every_second": ([0, 2], 1, ["slice"]),
    "reversed": ([4, 3, 2, 1, 0], 2, ["slice"]),
    "repeated": ([1, 1, 1], 0, ["slice"]),
    "one_element_vector": ([2], 1, ["slice"]),
    "runs_negative": ([0, -1, 2, 3, -5], 2, ["slice", "slice", "slice", "concat"]),
    "matrix": ([[3, 1], [0, 0]], 2, ["slice", "slice", "concat", "reshape"]),
}


def _gather_model(path, idx, axis):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Gather", ["r", "idx"], ["y"], axis=axis, name="pick")]
    shape = [3, 4, 5]
    out = np.take(np.zeros(shape), np.array(idx), axis=axis).shape
    return _save(path, nodes, [_f("x", shape)], [_f("y", list(out))],
                 [numpy_helper.from_array(np.array(idx, np.int64), "idx")])


@pytest.mark.parametrize("case", sorted(GATHERS))
def test_gather_of_constant_indices(tmp_path, case):
    idx, axis, kinds = GATHERS[case]
    path = _gather_model(tmp_path / "g.onnx", idx, axis)
    x = {"x": RNG.normal(0, 1, (3, 3, 4, 5)).astype(np.float32)}
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {"x": v})[0] for v in x["x"]])
    got = api.run(path, x, quantize="float32").outputs["y"]
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    res = api.compile(path, quantize="float32")
    assert [op.kind for op in res.graph.ops][1:] == kinds
    calib = {"x": RNG.normal(0, 1, (16, 3, 4, 5)).astype(np.float32)}
    c = api.run(path, x, calib=calib).outputs["y"]
    np.testing.assert_array_equal(c, api.run(path, x, calib=calib, golden=True).outputs["y"])


def test_int8_gather_runs_bit_exact_on_an_mcu(tmp_path):
    path = _gather_model(tmp_path / "g.onnx", *GATHERS["matrix"][:2])
    calib = {"x": RNG.normal(0, 1, (16, 3, 4, 5)).astype(np.float32)}
    x = {"x": RNG.normal(0, 1, (2, 3, 4, 5)).astype(np.float32)}
    c = api.run(path, x, target="cortex-m55", calib=calib).outputs["y"]
    np.testing.assert_array_equal(c, api.run(path, x, target="cortex-m55", calib=calib, golden=True).outputs["y"])


def test_gather_refusals(tmp_path):
    idx = numpy_helper.from_array(np.array([0, 7], np.int64), "idx")
    bad = _save(tmp_path / "bad.onnx", [helper.make_node("Gather", ["x", "idx"], ["y"], axis=1, name="pick")],
                [_f("x", [1, 4, 3])], [_f("y", None)], [idx], check=False)
    with pytest.raises(TinydeployError) as err:
        api.compile(bad, quantize="float32")
    assert str(err.value) == "node 'pick' (Gather): index 7 is out of range for axis 1 of size 4"
    many = numpy_helper.from_array(np.random.default_rng(0).permutation(200).astype(np.int64), "idx")
    bad = _save(tmp_path / "many.onnx", [helper.make_node("Gather", ["x", "idx"], ["y"], axis=1, name="pick")],
                [_f("x", [1, 200])], [_f("y", [1, 200])], [many])
    with pytest.raises(TinydeployError) as err:
        api.compile(bad, quantize="float32")
    assert str(err.value).startswith("node 'pick' (Gather): the 200 indices form ")
    assert str(err.value).endswith("runs of evenly spaced indices; at most 64 are supported (each is one strided "
                                   "copy); reorder the tensor with a Transpose or Slice instead")


# --------------------------------------------------------------------------
# C hygiene of the new kernels (as tests/test_hygiene.py checks the MLPerf models)
# --------------------------------------------------------------------------
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]


@pytest.mark.parametrize("fused", [False, True], ids=["layers", "fused"])
@pytest.mark.parametrize("quantize", ["float32", "int8"])
def test_attention_c_is_warning_free_and_sanitizer_clean(tmp_path, quantize, fused, monkeypatch):
    """The separate layers' kernels, and the fused attention kernel (ops/attention.py)."""
    import shutil
    import subprocess

    from tinydeploy import golden, hostrun
    monkeypatch.setattr(ops.attention, "FUSE", fused)
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:halt_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    path = _attention(tmp_path / "attn.onnx")
    opts = {"quantize": "float32"} if quantize == "float32" else \
        {"calib": {"x": RNG.normal(0, 1, (16, T, D)).astype(np.float32)}}
    res = api.compile(path, out_dir=tmp_path / "lib", name="attn", **opts)
    sources = sorted(str(p) for p in res.out_dir.glob("*.c"))
    kernel = "attention" if fused else "batch_matmul"
    assert any(s.endswith(f"{kernel}.c" if quantize == "float32" else f"{kernel}_s8.c") for s in sources)
    for cc in ("gcc", "clang"):
        if shutil.which(cc) is None:
            continue
        proc = subprocess.run([cc, *WARNINGS, "-O2", "-I", str(res.out_dir), "-c", *sources],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr[-3000:]
    if shutil.which("cppcheck") is not None:
        proc = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability",
                               "--error-exitcode=1", "--inline-suppr", "-q", "-U__ARM_FEATURE_DSP",
                               "-U__ARM_FEATURE_MVE", "-U__riscv", "-I", str(res.out_dir), *sources],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr[-3000:]
    x = RNG.normal(0, 1, (2, T, D)).astype(np.float32)
    if quantize == "int8":
        s, z = res.io["input"]["scale"], res.io["input"]["zero_point"]
        x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
    (tmp_path / "san").mkdir()
    exe = hostrun.build(res.out_dir, res.name, res.io, tmp_path / "san" / "model", extra_flags=SANITIZE)
    y = hostrun.run(exe, x, res.io["output"]["dtype"], res.io["output"]["shape"][1:]).reshape(len(x), -1)
    np.testing.assert_allclose(y, golden.reference_outputs(res.graph, x).reshape(len(x), -1), atol=1e-5)


# --------------------------------------------------------------------------
# The Arm DSP-extension variant (arm/dsp_batch_matmul_s8.c) against the golden model
# --------------------------------------------------------------------------
def _odd_shapes(path):
    """MatMuls of odd shapes (M 1, K 3 and 9, N 4, 5 and 7) through both fast paths (B along
    K: an operand transposed in place; B along N), the portable fallback (A stored
    transposed) and extreme zero points (ReLU outputs: zero point -128; Neg of a ReLU: 127)."""
    t = lambda x, y, perm: helper.make_node("Transpose", [x], [y], perm=perm)  # noqa: E731
    nodes = [helper.make_node("Relu", ["u"], ["ur"]), helper.make_node("Relu", ["v"], ["vr"]),
             helper.make_node("Neg", ["vr"], ["vn"]), helper.make_node("Relu", ["w"], ["wr"]),
             t("w", "wt", [0, 2, 1]), t("v", "vt", [0, 2, 1]), t("s", "st", [1, 0]),
             helper.make_node("MatMul", ["ur", "wt"], ["y1"], name="along_k"),
             helper.make_node("MatMul", ["ur", "vn"], ["y2"], name="along_n"),
             helper.make_node("MatMul", ["vt", "wt"], ["y3"], name="a_transposed"),
             helper.make_node("MatMul", ["wr", "vr"], ["y4"], name="along_n_rows"),
             helper.make_node("MatMul", ["s", "st"], ["y5"], name="short_k")]
    inputs = [_f("u", [2, 1, 9]), _f("w", [2, 7, 9]), _f("v", [2, 9, 5]), _f("s", [4, 3])]
    outputs = [_f("y1", [2, 1, 7]), _f("y2", [2, 1, 5]), _f("y3", [2, 5, 7]), _f("y4", [2, 7, 5]),
               _f("y5", [4, 4])]
    return _save(path, nodes, inputs, outputs)


ODD_SHAPES_INPUTS = {"u": [2, 1, 9], "w": [2, 7, 9], "v": [2, 9, 5], "s": [4, 3]}


@pytest.mark.parametrize("target,toolchain", [("nucleo-l4r5zi", "gcc"), ("stm32f746", "gcc"),
                                              ("cortex-m55", "gcc"), ("stm32f746", "clang"),
                                              ("rv32-zve32x", "gcc"), ("rv32-zve32x", "clang")])
def test_simd_variants_bit_exact_on_odd_shapes(tmp_path, target, toolchain):
    """The Arm DSP and Helium variants (arm/dsp_batch_matmul_s8.c, arm/mve_batch_matmul_s8.c;
    A stored transposed keeps the portable kernel) and the RISC-V vector one (riscv/rvv_batch_matmul_s8.c, every layout; N = 7
    and 5 leave a partial vector) against the golden model."""
    path = _odd_shapes(tmp_path / "odd.onnx")
    calib = {k: RNG.normal(0, 1, [32] + s).astype(np.float32) for k, s in ODD_SHAPES_INPUTS.items()}
    x = {k: RNG.normal(0, 1.5, [3] + s).astype(np.float32) for k, s in ODD_SHAPES_INPUTS.items()}
    run = api.run(path, x, target=target, calib=calib, toolchain=toolchain)
    variants = {l["name"]: l["variant"] for l in run.report["layers"]}
    fast = ["along_k", "along_n", "along_n_rows", "short_k"]
    if target.startswith("rv32"):
        assert [variants[n] for n in fast + ["a_transposed"]] == ["rvv_batch_matmul"] * 5
    else:
        family = "arm_mve_batch_matmul" if target == "cortex-m55" else "arm_dsp_batch_matmul"
        assert [variants[n] for n in fast] == [family] * 4
        assert not variants["a_transposed"].startswith("arm_")
    gold = api.run(path, x, target=target, calib=calib, golden=True).outputs
    for name in ("y1", "y2", "y3", "y4", "y5"):
        np.testing.assert_array_equal(run.outputs[name], gold[name], err_msg=name)


def test_helium_variant_bit_exact_on_long_rows(tmp_path):
    """The Helium variant past one vector: K 33 (two full chunks of 16 and a tail of 1) read
    along K, N 21 (a full pass of 16 output columns and a tail of 5) read along N, three rows
    and two batch entries, operands with extreme zero points."""
    t = lambda x, y, perm: helper.make_node("Transpose", [x], [y], perm=perm)  # noqa: E731
    nodes = [helper.make_node("Relu", ["u"], ["ur"]), helper.make_node("Neg", ["v"], ["vn"]),
             t("w", "wt", [0, 2, 1]),
             helper.make_node("MatMul", ["ur", "wt"], ["y1"], name="along_k"),
             helper.make_node("MatMul", ["ur", "vn"], ["y2"], name="along_n")]
    shapes = {"u": [2, 3, 33], "w": [2, 21, 33], "v": [2, 33, 21]}
    path = _save(tmp_path / "long.onnx", nodes, [_f(k, s) for k, s in shapes.items()],
                 [_f("y1", [2, 3, 21]), _f("y2", [2, 3, 21])])
    calib = {k: RNG.normal(0, 1, [32] + s).astype(np.float32) for k, s in shapes.items()}
    x = {k: RNG.normal(0, 1.5, [3] + s).astype(np.float32) for k, s in shapes.items()}
    run = api.run(path, x, target="cortex-m55", calib=calib)
    variants = {l["name"]: l["variant"] for l in run.report["layers"]}
    assert [variants["along_k"], variants["along_n"]] == ["arm_mve_batch_matmul"] * 2
    gold = api.run(path, x, target="cortex-m55", calib=calib, golden=True).outputs
    for name in ("y1", "y2"):
        np.testing.assert_array_equal(run.outputs[name], gold[name], err_msg=name)


# --------------------------------------------------------------------------
# .tflite BATCH_MATMUL against the TFLite Micro interpreter, bit for bit
# --------------------------------------------------------------------------
TFLITE_CASES = {  # (A shape, B shape, adj_x, adj_y)
    "3d": ([2, 3, 5], [2, 5, 4], False, False),
    "adj_y_broadcast": ([1, 2, 3, 5], [2, 4, 5], False, True),
    "adj_x_2d_rhs": ([2, 5, 3], [5, 4], True, False),
    "adj_both_broadcast": ([3, 1, 5, 3], [2, 4, 5], True, True),
    "2d": ([4, 9], [9, 7], False, False),
}


def _tests_on_path():
    """tests/ on sys.path (the .tflite Builder and the TFLM runner live there)."""
    import sys
    from pathlib import Path
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)


def _tflite_batch_matmul(case, b_const):
    _tests_on_path()
    from test_tflite_input import O, Builder
    from tflite_oracle import schema
    a_shape, b_shape, adj_x, adj_y = TFLITE_CASES[case]
    b = Builder()
    x = b.tensor(a_shape, "int8", 0.05, -3)
    data = RNG.integers(-128, 128, b_shape).astype(np.int8) if b_const else None
    y = b.tensor(b_shape, "int8", 0.04, 7, data)
    a0, b0 = np.zeros(a_shape), np.zeros(b_shape)
    out_shape = np.matmul(np.swapaxes(a0, -1, -2) if adj_x else a0, np.swapaxes(b0, -1, -2) if adj_y else b0).shape
    k = a_shape[-2] if adj_x else a_shape[-1]
    out = b.tensor(list(out_shape), "int8", 0.05 * 0.04 * 74 * 74 * np.sqrt(k) / 40, 2)
    b.op("BATCH_MATMUL", [x, y], [out], schema.BatchMatMulOptionsT(), O.BatchMatMulOptions, adjX=adj_x, adjY=adj_y)
    return b.finish([x] if b_const else [x, y], out)


@pytest.mark.parametrize("b_const", [False, True], ids=["two_inputs", "constant_rhs"])
@pytest.mark.parametrize("case", sorted(TFLITE_CASES))
def test_tflite_batch_matmul_bit_exact_with_tflm(tmp_path, case, b_const):
    pytest.importorskip("tflite")
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    _tests_on_path()
    from tflite_oracle import tflm_run
    model = _tflite_batch_matmul(case, b_const)
    path = tmp_path / "bmm.tflite"
    path.write_bytes(model)
    a_shape, b_shape = TFLITE_CASES[case][:2]
    n = 4
    xs = RNG.integers(-128, 128, [n] + a_shape).astype(np.int8)
    ys = RNG.integers(-128, 128, [n] + b_shape).astype(np.int8)
    theirs = np.stack([np.asarray(tflm_run(model, [xs[i]] if b_const else [xs[i], ys[i]])).reshape(-1)
                       for i in range(n)])
    sample = lambda v, shape: v.reshape([n] + shape[1:]) if shape[0] == 1 else v  # noqa: E731 (batch-1 axis)
    inputs = {"t0": sample(xs, a_shape)} if b_const else {"t0": sample(xs, a_shape), "t1": sample(ys, b_shape)}
    ours = next(iter(api.run(path, inputs, raw=True).outputs.values())).reshape(n, -1)
    np.testing.assert_array_equal(ours, theirs)
    assert np.mean(np.abs(theirs.astype(int)) == 128) < 0.2  # mostly unsaturated outputs


# --------------------------------------------------------------------------
# A real PyTorch export (the TorchScript exporter), when torch is installed
# --------------------------------------------------------------------------
def test_torch_exported_attention(tmp_path):
    torch = pytest.importorskip("torch")
    import warnings

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj = torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)

        def forward(self, x):
            b, t, d = x.shape
            qkv = self.qkv(x).reshape(b, t, 3, H, d // H).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            a = ((q @ k.transpose(-2, -1)) * (d // H) ** -0.5).softmax(dim=-1)
            return self.proj((a @ v).transpose(1, 2).reshape(b, t, d))

    torch.manual_seed(0)
    path = str(tmp_path / "attn.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Attention().eval(), (torch.randn(1, T, D),), path, input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    x = {"x": RNG.normal(0, 1, (3, T, D)).astype(np.float32)}
    want = _ort_batch1(path, x).reshape(3, T, D)
    got = api.run(path, x, quantize="float32").outputs["y"]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-4)
    calib = {"x": RNG.normal(0, 1, (32, T, D)).astype(np.float32)}
    run = api.run(path, x, calib=calib)
    np.testing.assert_array_equal(run.outputs["y"], api.run(path, x, calib=calib, golden=True).outputs["y"])
    assert _sqnr_db(want, run.outputs["y"]) > 25
    assert run.report["macs"] == T * D * 3 * D + 2 * H * T * T * (D // H) + T * D * D


@pytest.mark.parametrize("target", ["stm32f746", "rv32-zve32x"])
def test_simd_variant_sources_compile_strictly_at_every_level(tmp_path, target, monkeypatch):
    """The MCU libraries of the attention block (the variants' sources copied in) compile
    with the hygiene flags at -O0, -O2 and -Os, and pass cppcheck in the target's
    configuration. (Attention fusion off: the block keeps its batch MatMuls.)"""
    import shutil
    import subprocess

    monkeypatch.setattr(ops.attention, "FUSE", False)
    from tinydeploy import targets
    tgt = targets.load_target(target)
    lib = tmp_path / "lib"
    api.compile(_attention(tmp_path / "attn.onnx"), target=target, out_dir=lib,
                calib={"x": RNG.normal(0, 1, (8, T, D)).astype(np.float32)})
    sources = sorted(str(p) for p in lib.glob("*.c"))
    variant = "td_riscv_rvv_batch_matmul_s8.c" if target.startswith("rv32") else "td_arm_dsp_batch_matmul_s8.c"
    assert variant in {p.rsplit("/", 1)[-1] for p in sources}
    arch = [f for f in tgt.cflags if f.startswith(("-march", "-mabi", "--specs", "-mcpu", "-mthumb", "-mfpu",
                                                    "-mfloat-abi"))]
    for opt in ("-O0", "-O2", "-Os"):
        proc = subprocess.run([tgt.cc, *arch, *WARNINGS, opt, "-I", str(lib), "-c", *sources],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, f"{opt}:\n{proc.stderr[-3000:]}"
    if shutil.which("cppcheck"):
        defines = ["-D__riscv", "-D__riscv_xlen=32", "-D__riscv_mul", "-D__riscv_vector"] \
            if target.startswith("rv32") else ["-D__arm__", "-D__ARM_ARCH_PROFILE='M'", "-D__ARM_FEATURE_DSP"]
        proc = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability",
                               "--error-exitcode=1", "--inline-suppr", "-q", "-D__GNUC__", *defines,
                               "-I", str(lib), str(lib / variant)], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr[-3000:]


# --------------------------------------------------------------------------
# QDQ models (onnxruntime's static quantization), int8 and uint8 activations
# --------------------------------------------------------------------------
@pytest.mark.parametrize("activations", ["QInt8", "QUInt8"])
def test_qdq_attention_from_onnxruntime_quantizer(tmp_path, activations):
    """The QDQ model's own scales. With uint8 activations the constants are uint8 too (the
    softmax scale 1/sqrt(d) of the Mul): shifted to int8 with their zero points."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    import logging
    path = _attention(tmp_path / "attn.onnx")

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.samples = iter([{"x": RNG.normal(0, 1, (1, T, D)).astype(np.float32)} for _ in range(16)])

        def get_next(self):
            return next(self.samples, None)

    qdq = str(tmp_path / "attn_qdq.onnx")
    logging.getLogger().setLevel(logging.ERROR)
    quantization.quantize_static(path, qdq, Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 activation_type=getattr(quantization.QuantType, activations),
                                 weight_type=quantization.QuantType.QInt8, per_channel=False)
    x = {"x": RNG.normal(0, 1, (3, T, D)).astype(np.float32)}
    c = api.run(qdq, x).outputs["y"]
    np.testing.assert_array_equal(c, api.run(qdq, x, golden=True).outputs["y"])
    want = _ort_batch1(path, x).reshape(c.shape)
    ort_qdq = _ort_batch1(qdq, x).reshape(c.shape)
    assert _sqnr_db(want, c) > 20 and _sqnr_db(ort_qdq, c) > 25
