"""The int8 softmax with a compile-time exponential table (td_softmax_table_s8, chosen
for softmaxes of at least TABLE_MIN_ELEMENTS elements, e.g. attention): bit for bit
the golden model (golden_kernels.softmax, TFLite's int8 softmax) on the host kernel,
on whole graphs on the host and the emulated stm32f746, cortex-m55 and rv32-zve32x,
at depths 1..1000 and input scales from tiny (every difference far above diff_min)
to huge (every difference but 0 below it); below the threshold the generated C is
the old td_softmax_s8 call; the table's exponentials against TensorFlow Lite Micro."""
import ctypes as ct
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tinydeploy import api, golden_kernels as gk, qmath  # noqa: E402
from tinydeploy.ops import softmax as sm  # noqa: E402

WARN = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror"]
KERNEL = ROOT / "runtime_c" / "src" / "s8" / "softmax_table_s8.c"
INCLUDE = ROOT / "runtime_c" / "include"
# tiny (the sum of 1000 near-equal exponentials), usual, large (most differences below
# diff_min), huge (diff_min 0: only the maxima count)
SCALES = [1.6e-8, 1e-4, 0.003, 0.02, 0.0625, 0.1, 0.3, 1.0, 3.0, 50.0]
DEPTHS = [1, 7, 65, 255, 1000]


def rows(rng, outer, depth):
    """Random rows, and the corner cases first: a constant row, the two extreme codes,
    one maximum above a floor, a maximum at the end, every difference 0..255 once."""
    x = rng.integers(-128, 128, (outer, depth))
    special = [np.full(depth, 5), rng.choice([-128, 127], depth), np.r_[127, np.full(depth - 1, -128)],
               np.r_[rng.integers(-128, 0, depth - 1), 0], np.resize(np.arange(-128, 128), depth),
               rng.integers(100, 128, depth)]
    for k, r in enumerate(special[:outer]):
        x[k] = r
    return x.astype(np.int8)


# -- numpy mirror and table --------------------------------------------------------
@pytest.mark.parametrize("scale", SCALES)
def test_table_mirror_equals_golden(scale):
    q = qmath.softmax_params(scale)
    table, last = sm.exp_table(q)
    assert table.dtype == np.int32 and 1 <= last <= 256 and len(table) == min(last + 1, 256)
    assert last == 256 or table[last] == 0
    assert table[0] == 2 ** 31 - 1 and np.all(table[:last] > 0) and np.all(np.diff(table[:last]) <= 0)
    rng = np.random.default_rng(int(scale * 1e6) + 1)
    for depth in DEPTHS + [4095]:
        p = {**q, "outer": 8, "depth": depth}
        x = rows(rng, 8, depth)
        np.testing.assert_array_equal(sm.table_softmax(x, p, table, last), gk.softmax(x, p))


def test_table_is_cut_after_the_last_nonzero_exponential():
    assert sm.exp_table(qmath.softmax_params(50.0))[1] == 1      # diff_min 0
    assert sm.exp_table(qmath.softmax_params(1.0))[1] == 16      # diff_min -15
    assert sm.exp_table(qmath.softmax_params(0.1))[1] == 222     # exp underflows Q0.31
    assert sm.exp_table(qmath.softmax_params(0.003))[1] == 256


# -- the C kernel on the host ------------------------------------------------------
class Params(ct.Structure):
    _fields_ = [("outer", ct.c_int32), ("depth", ct.c_int32), ("table_last", ct.c_int32),
                ("table", ct.POINTER(ct.c_int32))]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    so = tmp_path_factory.mktemp("smax") / "libsmax.so"
    extra = os.environ.get("TD_TEST_CFLAGS", "").split()  # e.g. "-fsanitize=undefined -g"
    subprocess.run([cc, *WARN, *extra, "-shared", "-fPIC", "-I", str(INCLUDE), str(KERNEL), "-o", str(so)],
                   check=True, capture_output=True, text=True)
    lib = ct.CDLL(str(so))
    lib.td_softmax_table_s8.restype = None
    return lib


def run_c(lib, x, q, inplace=False):
    table, last = sm.exp_table(q)
    outer, depth = x.shape
    t = np.ascontiguousarray(table)
    p = Params(outer, depth, last, t.ctypes.data_as(ct.POINTER(ct.c_int32)))
    buf = np.ascontiguousarray(x, np.int8).copy()
    guard = 16
    out = np.full(x.size + 2 * guard, 0x5A, np.int8)
    dst = buf if inplace else out[guard:guard + x.size]
    src_p = buf.ctypes.data_as(ct.c_void_p)
    lib.td_softmax_table_s8(ct.byref(p), src_p, dst.ctypes.data_as(ct.c_void_p))
    if not inplace:
        assert np.all(out[:guard] == 0x5A) and np.all(out[-guard:] == 0x5A)
    return dst.reshape(x.shape)


@pytest.mark.parametrize("depth", DEPTHS + [2, 256, 4095])
@pytest.mark.parametrize("scale", SCALES)
def test_c_kernel_equals_golden(lib, scale, depth):
    q = qmath.softmax_params(scale)
    rng = np.random.default_rng(depth * 7919 + int(scale * 1e5))
    x = rows(rng, 9, depth)
    p = {**q, "outer": 9, "depth": depth}
    want = gk.softmax(x, p).reshape(x.shape)
    np.testing.assert_array_equal(run_c(lib, x, q), want)
    np.testing.assert_array_equal(run_c(lib, x, q, inplace=True), want)


@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_c_kernel_with_beta(lib, beta):
    for scale in (0.01, 0.2, 1.5):
        q = qmath.softmax_params(scale, beta)
        x = rows(np.random.default_rng(5), 7, 300)
        want = gk.softmax(x, {**q, "outer": 7, "depth": 300}).reshape(x.shape)
        np.testing.assert_array_equal(run_c(lib, x, q), want)


# -- whole graphs: host and emulated targets -------------------------------------------
# (name, outer, depth, input scale); 7x2 stays below the threshold (td_softmax_s8) in the
# same model; the two 65-deep softmaxes at 0.1 share one table
CASES = [("d1", 1100, 1, 0.1), ("d7", 160, 7, 0.02), ("d65a", 20, 65, 0.1), ("d65b", 17, 65, 0.1),
         ("d255", 5, 255, 3.0), ("d1000", 2, 1000, 1e-4), ("huge", 16, 65, 50.0), ("tiny", 3, 400, 1.6e-8),
         ("d3", 400, 3, 0.05), ("d33", 40, 33, 0.2), ("d129", 9, 129, 0.01), ("small", 2, 7, 0.1)]


def softmax_model(path, cases, zp=3):
    n, c = helper.make_node, numpy_helper.from_array
    nodes, inits, ins, outs = [], [], [], []
    inits += [c(np.float32(1 / 256), "so"), c(np.int8(-128), "zo"), c(np.int8(zp), "z")]
    for name, outer, depth, scale in cases:
        inits.append(c(np.float32(scale), f"s_{name}"))
        nodes += [n("QuantizeLinear", [f"x_{name}", f"s_{name}", "z"], [f"xq_{name}"]),
                  n("DequantizeLinear", [f"xq_{name}", f"s_{name}", "z"], [f"xf_{name}"]),
                  n("Softmax", [f"xf_{name}"], [f"sm_{name}"], axis=-1, name=f"softmax_{name}"),
                  n("QuantizeLinear", [f"sm_{name}", "so", "zo"], [f"yq_{name}"]),
                  n("DequantizeLinear", [f"yq_{name}", "so", "zo"], [f"y_{name}"])]
        ins.append(helper.make_tensor_value_info(f"x_{name}", TensorProto.FLOAT, [outer, depth]))
        outs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [outer, depth]))
    g = helper.make_graph(nodes, "softmaxes", ins, outs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


def case_inputs(cases, samples=2, seed=11):
    rng = np.random.default_rng(seed)
    return {f"x_{name}": np.stack([rows(rng, outer, depth) for _ in range(samples)])
            for name, outer, depth, _ in cases}


@pytest.mark.parametrize("target", ["host", "stm32f746", "cortex-m55", "rv32-zve32x"])
def test_graph_c_equals_golden(tmp_path, target):
    path = softmax_model(tmp_path / "sm.onnx", CASES)
    x = case_inputs(CASES)
    c = api.run(path, x, target=target, raw=True).outputs
    golden = api.run(path, x, target=target, raw=True, golden=True).outputs
    for name, outer, depth, scale in CASES:
        got = c[f"y_{name}"]
        np.testing.assert_array_equal(got, golden[f"y_{name}"], err_msg=f"{target} {name}")
        # and the golden model is TFLite's softmax, row by row
        q = {**qmath.softmax_params(np.float32(scale)), "outer": outer, "depth": depth}
        for s in range(len(got)):
            np.testing.assert_array_equal(got[s].reshape(outer, depth),
                                          gk.softmax(x[f"x_{name}"][s], q).reshape(outer, depth))


def test_kernel_choice_and_shared_table(tmp_path):
    path = softmax_model(tmp_path / "sm.onnx", CASES)
    out = tmp_path / "lib"
    api.compile(path, target="host", out_dir=out)
    model_c = (out / "net.c").read_text()
    weights_c = (out / "net_weights.c").read_text()
    assert model_c.count("td_softmax_table_s8(") == len(CASES) - 1
    assert model_c.count("td_softmax_s8(") == 1  # the 7x2 softmax: below the threshold
    assert (out / "td_s8_softmax_table_s8.c").is_file() and (out / "td_softmax_table_s8.h").is_file()
    # one table per input quantization: d1, d65a and d65b (all at 0.1) share theirs
    tables = [line for line in weights_c.splitlines() if line.startswith("const int32_t net_softmax_exp_")]
    assert len(tables) == len({scale for _, _, _, scale in CASES[:-1]}) == len(CASES) - 3, tables
    q = qmath.softmax_params(np.float32(0.1))
    sym = f"net_softmax_exp_m{q['input_multiplier']}_s{q['input_left_shift']}"
    assert model_c.count(f".table = {sym},") == 3  # d1, d65a, d65b


def test_below_the_threshold_nothing_changes(tmp_path):
    """A final softmax over a few classes (kws, resnet8, vww) keeps td_softmax_s8 and
    its files: no table, no table kernel source or header."""
    small = [("a", 1, 12, 0.1), ("b", 1023, 1, 0.1), ("c", 31, 33, 0.02)]
    path = softmax_model(tmp_path / "sm.onnx", small)
    out = tmp_path / "lib"
    api.compile(path, target="host", out_dir=out)
    text = "".join(f.read_text() for f in sorted(out.iterdir()) if f.suffix in (".c", ".h"))
    assert (out / "net.c").read_text().count("td_softmax_s8(") == 3
    assert "td_softmax_table" not in text and "softmax_exp" not in text
    big = [("a", 1, 1024, 0.1), ("b", 1, 512, 0.1)]
    out2 = tmp_path / "lib2"
    api.compile(softmax_model(tmp_path / "sm2.onnx", big), target="host", out_dir=out2)
    assert (out2 / "net.c").read_text().count("td_softmax_table_s8(") == 2


def test_long_constant_rows_round_as_the_golden_model(tmp_path):
    """Rows of 512 and more take the table kernel even when short of 1024 elements: a
    constant row's sum reaches 2^28 and the final rounding shift 32 or more, which the
    table kernel rounds to 0 like the golden model (td_softmax_s8 would shift an int32 by
    32 or more)."""
    cases = [("a", 1, 600, 1e-4), ("b", 1, 1000, 0.003)]
    path = softmax_model(tmp_path / "sm.onnx", cases)
    x = {f"x_{n}": np.full((1, depth), 5, np.int8) for n, _, depth, _ in cases}  # (samples, depth)
    c = api.run(path, x, target="host", raw=True).outputs
    for n, _, depth, _ in cases:
        np.testing.assert_array_equal(c[f"y_{n}"].reshape(-1), np.full(depth, -128, np.int8))


# -- the golden model (and so the table) against TensorFlow Lite Micro -----------------
@pytest.mark.parametrize("scale,depth", [(0.1, 65), (0.02, 255), (1.7, 65), (0.0005, 300), (4.0, 33)])
def test_table_softmax_vs_tflm(scale, depth):
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from tflite_oracle import make_single_op_model, schema, tflm_run
    o = schema.SoftmaxOptionsT()
    o.beta = 1.0
    outer = 12
    model = make_single_op_model("SOFTMAX", [{"shape": (outer, depth), "scale": scale, "zp": -7}],
                                 {"shape": (outer, depth), "scale": 1 / 256, "zp": -128}, o,
                                 schema.BuiltinOptions.SoftmaxOptions)
    x = np.random.default_rng(depth).integers(-128, 128, (outer, depth)).astype(np.int8)
    x[0] = np.resize(np.arange(-128, 128), depth)
    x[1] = np.r_[127, np.full(depth - 1, -128)]
    theirs = np.asarray(tflm_run(model, [x])).reshape(outer, depth)
    q = qmath.softmax_params(np.float32(scale))
    ours = sm.table_softmax(x, {**q, "outer": outer, "depth": depth}, *sm.exp_table(q))
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("target,fn", [("cortex-m55", "td_mve_softmax_table_s8"),
                                       ("stm32f746", "td_softmax_table_s8"),
                                       ("rv32-zve32x", "td_rvv_softmax_table_s8")])
def test_variant_per_target(tmp_path, target, fn):
    path = softmax_model(tmp_path / "sm.onnx", CASES)
    out = tmp_path / "lib"
    api.compile(path, target=target, out_dir=out)
    model_c = (out / "net.c").read_text()
    assert model_c.count(f"{fn}(") == len(CASES) - 1
    assert model_c.count("td_softmax_s8(") == 1


STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
@pytest.mark.parametrize("target", ["host", "stm32f746", "cortex-m55", "rv32-zve32x"])
def test_library_compiles_warning_free(tmp_path, target):
    """The table kernels (portable, Helium, RVV) under clang and gcc, -O0/-O2/-Os."""
    from tinydeploy import toolchain
    result = api.compile(softmax_model(tmp_path / "sm.onnx", CASES), target=target, out_dir=tmp_path / "lib")
    code = sorted(p for p in result.out_dir.glob("*.c") if not p.name.endswith("_weights.c"))
    assert any("softmax_table" in p.name for p in code)
    for tc in ("clang", "gcc"):
        for opt in ("-O0", "-O2", "-Os"):
            cmd = [toolchain.find_compiler(result.target, tc), *toolchain.cflags(result.target, tc), *STRICT,
                   opt, f"-I{result.out_dir}", "-c", *map(str, code)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
            assert proc.returncode == 0 and not proc.stderr.strip(), f"{tc} {opt}:\n{proc.stderr[-3000:]}"


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
@pytest.mark.parametrize("target", ["cortex-m55", "rv32-zve32x"])
def test_clang_built_vector_kernels_equal_golden(tmp_path, target):
    cases = [c for c in CASES if c[0] in ("d7", "d65a", "d255", "d1000", "small")]
    path = softmax_model(tmp_path / "sm.onnx", cases)
    x = case_inputs(cases, samples=1)
    c = api.run(path, x, target=target, raw=True, toolchain="clang").outputs
    golden = api.run(path, x, target=target, raw=True, golden=True).outputs
    for name, *_ in cases:
        np.testing.assert_array_equal(c[f"y_{name}"], golden[f"y_{name}"], err_msg=f"{target} {name}")
