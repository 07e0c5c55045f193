"""Generated C hygiene and numerical safety.

For the four MLPerf Tiny int8 models and the bundled digits example (float32
and calibrated int8):
* gcc and clang compile every generated file with
  -std=c99 -Wall -Wextra -Wpedantic -Wconversion -Werror;
* cppcheck finds nothing (host configuration);
* a host build under AddressSanitizer + UndefinedBehaviorSanitizer runs the
  reference inputs with no finding and the same outputs (TFLite Micro's and
  the golden model's for int8), and NAME_run returns its documented error
  codes for NULL and overlapping buffers;
* report.json carries max_stack_bytes, measured with -fstack-usage (and with
  the target's cross compiler for an MCU target).
Numerical safety: int8 layers at the edge of int32 overflow are accepted
exactly up to the bound (and run without overflow at the extreme inputs),
refused past it; outputs saturate at the int8 limits like the golden model.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import api, golden, hostrun
from tinydeploy.errors import TinydeployError
from conftest import EXAMPLES, MLPERF, model_path, reference

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
            "-g", "-O1"]
DIGITS = EXAMPLES / "digits"
CONFIGS = {**{m: (m, "int8_qdq.onnx", {}) for m in MLPERF},
           "digits_f32": ("digits", None, {"quantize": "float32"}),
           "digits_s8": ("digits", None, {"calib": str(DIGITS / "calib.npz")}),
           # the int4 kernels (td_kernels_s4.h): convolution, depthwise, fully connected
           "kws_int4": ("kws", "int8_qdq.onnx", {"weights": "int4"})}
# cppcheck needs minutes for initializers of hundreds of thousands of numbers: it checks the
# weights files up to this size (all come from the same template; gcc and clang check them all).
CPPCHECK_MAX_WEIGHTS = 64_000


def _model(key: str) -> Path:
    name, kind, _ = CONFIGS[key]
    return DIGITS / "digits_cnn.onnx" if kind is None else model_path(name, kind)


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    """Every configuration compiled once for the host: {key: CompileResult}."""
    base = tmp_path_factory.mktemp("hygiene")
    return {key: api.compile(_model(key), out_dir=base / key, name=CONFIGS[key][0],
                             **CONFIGS[key][2]) for key in CONFIGS}


def _sources(lib: Path) -> list[str]:
    return sorted(str(p) for p in lib.glob("*.c"))


# --------------------------------------------------------------------------
# Warnings, cppcheck
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_generated_c_compiles_without_warnings(libs, cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    for key, result in libs.items():
        for opt in ("-O0", "-O2"):
            proc = subprocess.run([cc, *WARNINGS, opt, "-I", str(result.out_dir), "-c",
                                   *_sources(result.out_dir)], capture_output=True, text=True, cwd=tmp_path)
            assert proc.returncode == 0 and not proc.stderr, f"{key} {cc} {opt}:\n{proc.stderr[-3000:]}"


def test_cppcheck_is_clean(libs):
    if shutil.which("cppcheck") is None:
        pytest.skip("cppcheck is not installed")
    for key, result in libs.items():
        lib = result.out_dir
        files = [f for f in _sources(lib) if not f.endswith("_weights.c")
                 or Path(f).stat().st_size <= CPPCHECK_MAX_WEIGHTS]
        proc = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability",
                               "--error-exitcode=1", "--inline-suppr", "-q",
                               # the host configuration (MCU kernel headers are not used on the host)
                               "-U__ARM_FEATURE_DSP", "-U__ARM_FEATURE_MVE", "-U__riscv",
                               "-I", str(lib), *files], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr.strip(), f"{key}:\n{proc.stderr[-3000:]}"
    assert any(f.endswith("_weights.c") and Path(f).stat().st_size <= CPPCHECK_MAX_WEIGHTS
               for r in libs.values() for f in _sources(r.out_dir)), "no weights file was checked"


# --------------------------------------------------------------------------
# Sanitizers
# --------------------------------------------------------------------------
@pytest.fixture
def sanitizer_env(monkeypatch):
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:halt_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")


def _run_sanitized(result, x: np.ndarray, workdir: Path) -> np.ndarray:
    workdir.mkdir(parents=True, exist_ok=True)
    out = result.io["output"]
    exe = hostrun.build(result.out_dir, result.name, result.io, workdir / "model", extra_flags=SANITIZE)
    shape = out["shape"][1:] if out["shape"] and out["shape"][0] == 1 else out["shape"]
    return hostrun.run(exe, x, out["dtype"], shape).reshape(len(x), -1)


def _inputs(key: str, result) -> np.ndarray:
    if CONFIGS[key][0] in MLPERF:
        return reference(CONFIGS[key][0])["int8_inputs"]
    with np.load(DIGITS / "test.npz") as d:
        x = d["input"][:24]
    if key == "digits_f32":
        return x
    s, z = result.io["input"]["scale"], result.io["input"]["zero_point"]
    return np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)


@pytest.mark.parametrize("key", list(CONFIGS))
def test_sanitized_host_build_runs_the_reference_inputs(libs, key, tmp_path, sanitizer_env):
    result = libs[key]
    x = _inputs(key, result)
    y = _run_sanitized(result, x, tmp_path)
    if key == "digits_f32":
        plain = hostrun.run(hostrun.build(result.out_dir, result.name, result.io, tmp_path / "plain"),
                            x, "float32", result.io["output"]["shape"][1:]).reshape(len(x), -1)
        np.testing.assert_allclose(y, plain, rtol=1e-5, atol=1e-6)
        return
    assert np.array_equal(y, golden.run(result.graph, x).reshape(len(x), -1))
    if key in MLPERF:
        assert np.array_equal(y, reference(key)["tflm_int8_outputs"].reshape(len(x), -1))


DRIVER = r"""
#include <stdio.h>
#include "{name}.h"
static {cin} x[{NAME}_INPUT_SIZE];
static {cout} y[{NAME}_OUTPUT_SIZE];
static union {{ {cin} in[{NAME}_INPUT_SIZE]; {cout} out[{NAME}_OUTPUT_SIZE]; }} both;
int main(void)
{{
    int bad = 0;
    bad |= {name}_run(NULL, y) != {NAME}_ERR_NULL_POINTER;
    bad |= {name}_run(x, NULL) != {NAME}_ERR_NULL_POINTER;
    bad |= {name}_run(NULL, NULL) != {NAME}_ERR_NULL_POINTER;
    bad |= {name}_run(both.in, both.out) != {NAME}_ERR_OVERLAP;
    bad |= {name}_run(x, y) != {NAME}_OK;
    bad |= {name}_run(x, y) != {NAME}_OK;
    printf("%s\n", bad ? "BAD" : "OK");
    return bad;
}}
"""


@pytest.mark.parametrize("key", ["ad", "digits_f32"])
def test_run_rejects_null_and_overlapping_buffers(libs, key, tmp_path, sanitizer_env):
    result = libs[key]
    name = result.name
    main = tmp_path / "driver.c"
    main.write_text(DRIVER.format(name=name, NAME=name.upper(), cin=result.io["input"]["ctype"],
                                  cout=result.io["output"]["ctype"]))
    lib = result.out_dir
    srcs = [str(p) for p in lib.glob("*.c")] + [str(main)]
    exe = tmp_path / "driver"
    build = subprocess.run(["gcc", *WARNINGS, *SANITIZE, "-I", str(lib), *srcs, "-o", str(exe), "-lm"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "OK\n", proc.stdout + proc.stderr[-3000:]


# --------------------------------------------------------------------------
# Stack usage
# --------------------------------------------------------------------------
def test_report_has_max_stack_bytes(libs):
    for key, result in libs.items():
        report = json.loads((result.out_dir / "report.json").read_text())
        stack = report["stack"]
        assert isinstance(report["max_stack_bytes"], int) and report["max_stack_bytes"] > 0, (key, stack)
        assert stack["compiler"] == "gcc" and stack["entry"] == f"{result.name}_run"
        frames = stack["functions"]
        kernels = {l["kernel"] for l in report["layers"]}
        assert f"{result.name}_run" in frames and kernels <= set(frames), (key, kernels - set(frames))
        deepest_kernel = max(frames[k] for k in kernels)
        assert report["max_stack_bytes"] >= frames[f"{result.name}_run"] + deepest_kernel
        assert stack["path"][0] == f"{result.name}_run"
        assert report["max_stack_bytes"] == sum(frames[f] for f in stack["path"])
        assert not stack["notes"], (key, stack["notes"])
        assert report["max_stack_bytes"] < 4096, key  # no large local arrays in the generated code


@pytest.mark.parametrize("target", ["stm32f746", "rp2040"])
def test_max_stack_bytes_with_the_cross_compiler(target):
    from tinydeploy import targets
    tgt = targets.load_target(target)
    if shutil.which(tgt.cc) is None:
        pytest.skip(f"{tgt.cc} is not installed")
    report = api.compile(model_path("kws", "int8_qdq.onnx"), target=target).report
    assert report["stack"]["compiler"] == tgt.cc
    assert isinstance(report["max_stack_bytes"], int) and 0 < report["max_stack_bytes"] < 4096


def test_stack_call_graph_parser():
    from tinydeploy import stack
    ci = """graph: { title: "m.c"
node: { title: "net_run" label: "net_run\\nm.c:3:5\\n32 bytes (static)" }
node: { title: "td_a" label: "td_a\\nk.h:1:6" shape : ellipse }
edge: { sourcename: "net_run" targetname: "td_a" label: "m.c:4:5" }
node: { title: "memcpy" label: "__builtin_memcpy\\n<built-in>" shape : ellipse }
edge: { sourcename: "net_run" targetname: "memcpy" }
}"""
    kernel = """graph: { title: "k.c"
node: { title: "td_a" label: "td_a\\nk.c:9:6\\n48 bytes (static)" }
node: { title: "/x/k.c:helper" label: "helper\\nk.c:2:13\\n64 bytes (static)" }
edge: { sourcename: "td_a" targetname: "__indirect_call" }
node: { title: "/x/k.c:cb" label: "cb\\nk.c:5:13\\n16 bytes (static)" }
edge: { sourcename: "td_a" targetname: "/x/k.c:helper" }
}"""
    units = {"m.c": stack.parse_callgraph(ci), "k.c": stack.parse_callgraph(kernel)}
    r = stack.deepest(units, "net_run")
    assert r["max_stack_bytes"] == 32 + 48 + 64 and r["path"] == ["net_run", "td_a", "k.c:helper"]
    assert r["unresolved"] == ["memcpy"] and r["notes"] == []


# --------------------------------------------------------------------------
# Numerical safety: int32 accumulator bounds and int8 saturation
# --------------------------------------------------------------------------
def qdq_fc_model(w_q: np.ndarray, b_q: np.ndarray, x_scale=0.5, x_zp=0, w_scale=0.01, y_scale=0.05,
                 y_zp=0, relu6=False, name="fc") -> onnx.ModelProto:
    """x [1, n] -> Q/DQ -> Gemm(DQ(int8 weights [out, n]), DQ(int32 bias)) [-> Clip 0..6] -> Q/DQ -> y."""
    n_out, n_in = w_q.shape
    h = helper.make_node
    nodes = [h("QuantizeLinear", ["x", "sx", "zx"], ["xq"], name="x_q"),
             h("DequantizeLinear", ["xq", "sx", "zx"], ["xf"], name="x_dq"),
             h("DequantizeLinear", ["wq", "sw", "zw"], ["w"], name="w_dq"),
             h("DequantizeLinear", ["bq", "sb", "zb"], ["b"], name="b_dq"),
             h("Gemm", ["xf", "w", "b"], ["acc"], name=name, transB=1)]
    last = "acc"
    if relu6:
        nodes.append(h("Clip", ["acc", "lo", "hi"], ["act"], name=name + "_relu6"))
        last = "act"
    nodes += [h("QuantizeLinear", [last, "sy", "zy"], ["yq"], name="y_q"),
              h("DequantizeLinear", ["yq", "sy", "zy"], ["y"], name="y_dq")]
    c = numpy_helper.from_array
    inits = [c(np.float32(x_scale), "sx"), c(np.int8(x_zp), "zx"), c(w_q.astype(np.int8), "wq"),
             c(np.float32(w_scale), "sw"), c(np.int8(0), "zw"), c(b_q.astype(np.int32), "bq"),
             c(np.float32(np.float32(x_scale) * np.float32(w_scale)), "sb"), c(np.int32(0), "zb"),
             c(np.float32(y_scale), "sy"), c(np.int8(y_zp), "zy"),
             c(np.float32(0.0), "lo"), c(np.float32(6.0), "hi")]
    g = helper.make_graph(nodes, "qdq_fc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def qdq_binary_model(op: str, a_scale, a_zp, b_scale, b_zp, y_scale, y_zp, n=8) -> onnx.ModelProto:
    """x [1, n] -> Q/DQ = a; b = Q/DQ(Relu(a)); y = Q/DQ(a op b)."""
    h = helper.make_node
    nodes = [h("QuantizeLinear", ["x", "sa", "za"], ["aq"], name="a_q"),
             h("DequantizeLinear", ["aq", "sa", "za"], ["a"], name="a_dq"),
             h("Relu", ["a"], ["r"], name="relu"),
             h("QuantizeLinear", ["r", "sb", "zb"], ["bq"], name="b_q"),
             h("DequantizeLinear", ["bq", "sb", "zb"], ["b"], name="b_dq"),
             h(op, ["a", "b"], ["o"], name=op.lower()),
             h("QuantizeLinear", ["o", "sy", "zy"], ["yq"], name="y_q"),
             h("DequantizeLinear", ["yq", "sy", "zy"], ["y"], name="y_dq")]
    c = numpy_helper.from_array
    inits = [c(np.float32(a_scale), "sa"), c(np.int8(a_zp), "za"), c(np.float32(b_scale), "sb"),
             c(np.int8(b_zp), "zb"), c(np.float32(y_scale), "sy"), c(np.int8(y_zp), "zy")]
    g = helper.make_graph(nodes, "qdq_binary", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _compile(model: onnx.ModelProto, path: Path, **kw):
    onnx.save(model, path)
    return api.compile(path, out_dir=path.with_suffix(""), name="sat", **kw)


N_IN = 16
BOUND_BIAS = (1 << 31) - 1 - 128 * 127 * N_IN  # (128 + |0|) * sum|w| + |bias| == INT32_MAX


def test_accumulator_bound_is_exact_and_the_extreme_runs_without_overflow(tmp_path, sanitizer_env):
    w = np.full((2, N_IN), -127, np.int8)
    ok = _compile(qdq_fc_model(w, np.array([BOUND_BIAS, -BOUND_BIAS]), y_scale=1.0), tmp_path / "ok.onnx")
    # x = -128 everywhere: acc = bias + 16 * 16256 = INT32_MAX exactly in channel 0.
    x = np.stack([np.full(N_IN, -128, np.int8), np.full(N_IN, 127, np.int8), np.zeros(N_IN, np.int8)])
    y = _run_sanitized(ok, x, tmp_path / "run")
    assert np.array_equal(y, golden.run(ok.graph, x).reshape(len(x), -1))
    assert y[0, 0] == 127 and y[1, 1] == -128  # saturated at the int8 limits
    with pytest.raises(TinydeployError, match="could overflow int32"):
        _compile(qdq_fc_model(w, np.array([BOUND_BIAS + 1, 0])), tmp_path / "over.onnx")
    with pytest.raises(TinydeployError, match="could overflow int32"):
        _compile(qdq_fc_model(w, np.array([0, -BOUND_BIAS - 1])), tmp_path / "under.onnx")


def test_requantization_left_shift_bound(tmp_path):
    """An effective scale > 1 shifts the accumulator left before the multiply: bounded too."""
    w = np.full((1, 32), 127, np.int8)
    # M = 0.5 * 0.01 / 1e-6 = 5000 -> shift 13; |acc| <= 128 * 127 * 32 = 520192; << 13 > 2^31
    with pytest.raises(TinydeployError, match="shifted left by 13 bits"):
        _compile(qdq_fc_model(w, np.zeros(1), y_scale=1e-6), tmp_path / "shift.onnx")
    # M = 50 (shift 6) fits: 520192 << 6 < 2^31
    _compile(qdq_fc_model(w, np.zeros(1), y_scale=1e-4), tmp_path / "shift_ok.onnx")


@pytest.mark.parametrize("relu6", [False, True])
def test_fc_saturates_at_the_int8_limits(tmp_path, sanitizer_env, relu6):
    rng = np.random.default_rng(3)
    w = rng.choice(np.array([-127, 127], np.int8), size=(12, 32))
    result = _compile(qdq_fc_model(w, rng.integers(-3000, 3000, 12), x_zp=-128, y_scale=0.01, y_zp=-5,
                                   relu6=relu6), tmp_path / "sat.onnx")
    x = np.stack([np.full(32, -128, np.int8), np.full(32, 127, np.int8),
                  rng.integers(-128, 128, 32).astype(np.int8)])
    y = _run_sanitized(result, x, tmp_path / "run")
    assert np.array_equal(y, golden.run(result.graph, x).reshape(len(x), -1))
    lo, hi = (-5, min(127, -5 + round(6 / 0.01))) if relu6 else (-128, 127)
    assert y.min() == lo and y.max() == hi  # both limits reached
    assert np.all((y >= lo) & (y <= hi))


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_add_and_mul_saturate_at_the_int8_limits(tmp_path, sanitizer_env, op):
    result = _compile(qdq_binary_model(op, 0.5, 0, 0.5, -128, 0.01, 0), tmp_path / f"{op}.onnx")
    x = np.array([[-128, 127, 0, 1, -1, 64, -64, 127]] * 2, np.int8)
    x[1] = [127] * 8
    y = _run_sanitized(result, x, tmp_path / "run")
    assert np.array_equal(y, golden.run(result.graph, x).reshape(len(x), -1))
    assert y[1].tolist() == [127] * 8  # 63.5 + 63.5 (or their product) is far beyond 1.27
    assert y[0, 0] == (-128 if op == "Add" else 0)


@pytest.mark.parametrize("kind,q,problem", [
    ("add_s8", dict(input1_offset=128, input2_offset=-127, left_shift=20, input1_shift=-1, input2_shift=-1,
                    output_shift=3), "the sum of the rescaled inputs shifted left by 3 bits"),
    ("add_s8", dict(input1_offset=0, input2_offset=0, left_shift=20, input1_shift=-1, input2_shift=-1,
                    output_shift=0), None),
    ("mul_s8", dict(input1_offset=128, input2_offset=128, output_shift=15), "the product of the inputs"),
    ("mul_s8", dict(input1_offset=128, input2_offset=128, output_shift=14), None),
    ("mean_s8", dict(reduce=1 << 24, input_offset=0, shift=-20), "the sum over 16,777,216 values can reach"),
    ("mean_s8", dict(reduce=1000, input_offset=128, shift=14), "shifted left by 14 bits"),
    ("mean_s8", dict(reduce=1000, input_offset=128, shift=-10), None),
    ("avg_pool_s8", dict(k_h=4096, k_w=4096), "the sum over a 4096x4096 window"),
    ("softmax_s8", dict(depth=4095), None),
    ("softmax_s8", dict(depth=4096), "the Q12.19 sum of 4,096 exponentials"),
    ("requantize_s8", dict(input_zero_point=0, shift=23), None),
    ("requantize_s8", dict(input_zero_point=0, shift=24), "shifted left by 24 bits"),
    ("requantize_s8", dict(input_zero_point=0, shift=-32), "the requantization shift -32 is out of range"),
    ("leaky_relu_s8", dict(input_zero_point=-128, output_shift_alpha=0, output_shift_identity=23),
     "(identity branch) shifted left by 23 bits"),
    ("sigmoid_s8", dict(input_left_shift=-32), "the input rescaling shift -32 is out of range"),
    ("tanh_s8", dict(input_left_shift=40), None),  # input range radius 0: never shifted
    ("concat_s8", dict(inputs=[dict(requantize=0, input_zero_point=0, shift=30),
                               dict(requantize=1, input_zero_point=5, shift=25)]), "input 1 minus its zero point"),
])
def test_overflow_bounds_of_every_int8_kind(kind, q, problem):
    from tinydeploy import checks
    from tinydeploy.ir import Graph, Int8Params, Op
    g = Graph("g")
    g.ops.append(Op(kind, "layer", ["x"], ["y"], int8_params=Int8Params(q)))
    problems = checks.layer_problems(g)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(f"layer 'layer' ({kind}): ") and problem in problems[0]
