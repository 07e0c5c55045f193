"""Models with several inputs and outputs (issue 14 item 2): one pointer per input and
output in NAME_run, all in the arena, handled by name by run/verify/compile and npz files."""
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinydeploy
from conftest import cli

ARM, RISCV = "nucleo-l4r5zi", "rv32-zve32x"
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]


def _save(nodes, inputs, outputs, inits, path):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def two_input_model(path):
    """Sensor fusion: a 1x8x8 image and a 2x4x4 map (inputs of different shapes), each
    through its own conv branch to 4x4x4 (the image's with stride 2), added, then FC."""
    rng = np.random.default_rng(7)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.4  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["image", "wa", "ba"], ["ca"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv_a"),
        helper.make_node("Relu", ["ca"], ["ra"], name="relu_a"),
        helper.make_node("Conv", ["map", "wb", "bb"], ["cb"], pads=[1, 1, 1, 1], name="conv_b"),
        helper.make_node("Relu", ["cb"], ["rb"], name="relu_b"),
        helper.make_node("Add", ["ra", "rb"], ["sum"], name="fuse"),
        helper.make_node("Flatten", ["sum"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], transB=1, name="fc"),
    ]
    inits = dict(wa=w(4, 1, 3, 3), ba=w(4), wb=w(4, 2, 3, 3), bb=w(4), wf=w(5, 64), bf=w(5))
    return _save(nodes, [("image", [1, 1, 8, 8]), ("map", [1, 2, 4, 4])], [("logits", [1, 5])], inits, path)


def detector_model(path):
    """Shared conv backbone, two heads: class scores (softmax over 3 classes per cell)
    and box regression (4 values per cell), outputs of different shapes."""
    rng = np.random.default_rng(8)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.4  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="backbone1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="backbone2"),
        helper.make_node("Relu", ["c2"], ["feat"], name="relu2"),
        helper.make_node("Conv", ["feat", "wc", "bc"], ["cls"], name="cls_head"),
        helper.make_node("Softmax", ["cls"], ["scores"], axis=1, name="cls_softmax"),
        helper.make_node("Conv", ["feat", "wr", "br"], ["boxes"], name="box_head"),
    ]
    inits = dict(w1=w(6, 3, 3, 3), b1=w(6), w2=w(8, 6, 3, 3), b2=w(8), wc=w(3, 8, 1, 1), bc=w(3),
                 wr=w(4, 8, 1, 1), br=w(4))
    return _save(nodes, [("x", [1, 3, 8, 8])], [("scores", [1, 3, 4, 4]), ("boxes", [1, 4, 4, 4])], inits, path)


def output_also_read_model(path):
    """An output ('hidden') that a later layer also reads; two inputs, the second one
    read by two layers."""
    rng = np.random.default_rng(9)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.4  # noqa: E731
    nodes = [
        helper.make_node("Gemm", ["a", "w1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("Add", ["h1", "b"], ["h2"], name="add_b"),
        helper.make_node("Relu", ["h2"], ["hidden"], name="relu"),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["h3"], transB=1, name="fc2"),
        helper.make_node("Mul", ["h3", "b"], ["out"], name="mul_b"),
    ]
    inits = dict(w1=w(12, 10), b1=w(12), w2=w(12, 12), b2=w(12))
    return _save(nodes, [("a", [1, 10]), ("b", [1, 12])], [("hidden", [1, 12]), ("out", [1, 12])], inits, path)


MODELS = {"two_inputs": two_input_model, "detector": detector_model, "output_also_read": output_also_read_model}


def _ort(path, feeds):
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    n = len(next(iter(feeds.values())))
    rows = [sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)]
    return {name: np.concatenate([r[j] for r in rows]) for j, name in enumerate(names)}


def _feeds(path, n, seed=0):
    m = onnx.load(str(path))
    rng = np.random.default_rng(seed)
    return {i.name: rng.uniform(-1, 1, [n] + [d.dim_value for d in i.type.tensor_type.shape.dim][1:])
            .astype(np.float32) for i in m.graph.input}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi_io")
    out = {}
    for name, build in MODELS.items():
        path = build(d / f"{name}.onnx")
        np.savez(d / f"{name}_calib.npz", **_feeds(path, 64, seed=1))
        out[name] = path
    return out


def same_tensor_twice_model(path):
    """Two outputs that are one tensor ('y' and its Identity 'y_copy'), and an output
    ('a_copy') that is an Identity of the first input."""
    rng = np.random.default_rng(10)
    nodes = [
        helper.make_node("Gemm", ["a", "w1", "b1"], ["h"], transB=1, name="fc1"),
        helper.make_node("Add", ["h", "b"], ["y"], name="add_b"),
        helper.make_node("Identity", ["y"], ["y_copy"], name="copy"),
        helper.make_node("Identity", ["a"], ["a_copy"], name="copy_a"),
    ]
    inits = dict(w1=rng.standard_normal((6, 4)) * 0.5, b1=rng.standard_normal(6) * 0.5)
    return _save(nodes, [("a", [1, 4]), ("b", [1, 6])], [("y", [1, 6]), ("y_copy", [1, 6]), ("a_copy", [1, 4])],
                 inits, path)


MODELS["same_tensor_twice"] = same_tensor_twice_model


@pytest.mark.parametrize("name", list(MODELS))
def test_float32_matches_onnxruntime(models, name):
    feeds = _feeds(models[name], 6, seed=3)
    want = _ort(models[name], feeds)
    got = tinydeploy.run(models[name], feeds, quantize="float32").outputs
    assert list(got) == list(want)  # every output, by name, in the model's order
    for k, w in want.items():
        assert got[k].shape == w.shape
        assert np.all(np.abs(got[k] - w) <= 1e-4 * (1 + np.abs(w))), k


@pytest.mark.parametrize("name", list(MODELS))
def test_int8_host_c_equals_golden(models, name):
    calib = models[name].with_name(f"{name}_calib.npz")
    with np.load(calib) as d:  # samples within the calibrated ranges (else outputs saturate)
        feeds = {k: d[k][:6] for k in d.files}
    c = tinydeploy.run(models[name], feeds, calib=calib, raw=False)
    golden = tinydeploy.run(models[name], feeds, calib=calib, golden=True)
    want = _ort(models[name], feeds)
    assert list(c.outputs) == list(golden.outputs) == list(want)
    for k in want:
        assert np.array_equal(c.outputs[k], golden.outputs[k]), k
        # and int8 is close to the float model (a sanity check of each output's quantization)
        assert np.max(np.abs(c.outputs[k] - want[k])) < 0.15 * (1 + np.max(np.abs(want[k]))), k
    # int8 in, int8 out: each input quantized by its own scale / zero point
    qin = {}
    for i in c.report["inputs"]:
        qin[i["name"]] = np.clip(np.round(feeds[i["name"]] / i["scale"]) + i["zero_point"], -128, 127).astype(np.int8)
    raw = tinydeploy.run(models[name], qin, calib=calib)
    for o in c.report["outputs"]:
        y = raw.outputs[o["name"]]
        assert y.dtype == np.int8
        deq = (y.astype(np.float32) - o["zero_point"]) * np.float32(o["scale"])
        assert np.array_equal(deq, c.outputs[o["name"]])


@pytest.mark.parametrize("target", [ARM, RISCV])
@pytest.mark.parametrize("name", ["two_inputs", "detector", "output_also_read"])
def test_int8_bit_exact_on_emulated_targets(models, name, target):
    calib = models[name].with_name(f"{name}_calib.npz")
    r = tinydeploy.verify(models[name], target, inputs=_feeds(models[name], 3, seed=5), calib=calib)
    assert r.match and r.max_abs_diff == 0 and r.samples == 3
    outputs = [o.name for o in onnx.load(str(models[name])).graph.output]
    assert [o["name"] for o in r.outputs] == outputs and all(o["match"] for o in r.outputs)


def test_outputs_and_inputs_in_the_arena(models):
    """Every input and output has its place in the arena; no tensor ever takes an output's
    bytes once it is computed; inputs stay intact until their last reader."""
    for name in MODELS:
        res = tinydeploy.compile(models[name], calib=models[name].with_name(f"{name}_calib.npz"))
        g, plan = res.graph, res.plan
        assert res.report["io_bytes"] == 0 and res.report["memory"]["io_in_arena"]
        for e in res.report["inputs"] + res.report["outputs"]:
            assert e["arena_offset"] == plan.placements[e["name"]].offset
        from tinydeploy.planner import alias_roots
        root = alias_roots(g)
        outs = {root.get(o, o) for o in g.outputs}
        for step in plan.timeline:
            live = step["live"]
            for a in live:
                # (at its own step an output may take the bytes of an input that dies there)
                if a["tensor"] not in outs or step["step"] <= plan.lifetimes[a["tensor"]][0]:
                    continue
                for b in live:
                    if b is a or b["tensor"] == a["tensor"]:
                        continue
                    disjoint = b["offset"] + b["bytes"] <= a["offset"] or a["offset"] + a["bytes"] <= b["offset"]
                    assert disjoint, (name, step["op"], a, b)
        spans = plan.lifetimes
        for o in outs:
            assert spans[o][1] == len(g.ops)  # live until the caller reads it


DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "net.h"

int main(void)
{
    static int8_t a[NET_INPUT_A_SIZE], b[NET_INPUT_B_SIZE];
    static int8_t hidden[NET_OUTPUT_HIDDEN_SIZE], out[NET_OUTPUT_OUT_SIZE];
    static int8_t both[NET_OUTPUT_HIDDEN_SIZE + NET_OUTPUT_OUT_SIZE];
    int i;
    for (i = 0; i < NET_INPUT_A_SIZE; i++) a[i] = (int8_t)(i * 37 - 100);
    for (i = 0; i < NET_INPUT_B_SIZE; i++) b[i] = (int8_t)(90 - i * 29);
    if (net_run(a, b, hidden, out) != NET_OK) return 10;
    /* zero copy: the same inference through the arena pointers */
    memcpy(net_input_a(), a, sizeof a);
    memcpy(net_input_b(), b, sizeof b);
    if (net_invoke() != NET_OK) return 11;
    if (memcmp(net_output_hidden(), hidden, sizeof hidden) || memcmp(net_output_out(), out, sizeof out)) return 12;
    /* mixed: one input already in place, one output read in place */
    memcpy(net_input_b(), b, sizeof b);
    if (net_run(a, net_input_b(), (int8_t *)net_output_hidden(), out) != NET_OK) return 13;
    if (memcmp(net_output_hidden(), hidden, sizeof hidden)) return 14;
    if (net_run(a, NULL, hidden, out) != NET_ERR_NULL_POINTER) return 15;
    if (net_run(a, b, hidden, NULL) != NET_ERR_NULL_POINTER) return 16;
    if (net_run(a, b, both, both + 4) != NET_ERR_OVERLAP) return 17;  /* two outputs overlap */
    if (net_run(a, b, hidden, (int8_t *)b) != NET_ERR_OVERLAP) return 18;  /* an input and an output */
    if (net_run(a, b, both, both + NET_OUTPUT_HIDDEN_SIZE) != NET_OK) return 19;  /* adjacent: fine */
    if (memcmp(both, hidden, sizeof hidden) || memcmp(both + NET_OUTPUT_HIDDEN_SIZE, out, sizeof out)) return 20;
    for (i = 0; i < NET_OUTPUT_HIDDEN_SIZE; i++) printf("%d ", hidden[i]);
    for (i = 0; i < NET_OUTPUT_OUT_SIZE; i++) printf("%d ", out[i]);
    printf("\n");
    return 0;
}
"""


def test_generated_api_two_inputs_two_outputs(models, tmp_path):
    """One pointer per input and output in the model's order; per-tensor macros; the
    zero-copy accessors; NULL and overlap checks; pedantic C99 without warnings."""
    lib = tmp_path / "lib"
    res = tinydeploy.compile(models["output_also_read"], out_dir=lib,
                             calib=models["output_also_read"].with_name("output_also_read_calib.npz"))
    h = (lib / "net.h").read_text()
    assert "int net_run(const int8_t *in_a, const int8_t *in_b, int8_t *out_hidden, int8_t *out_out);" in h
    for role, t in (("INPUT", "A"), ("INPUT", "B"), ("OUTPUT", "HIDDEN"), ("OUTPUT", "OUT")):
        for what in ("SIZE", "RANK", "SHAPE", "SCALE", "ZERO_POINT"):
            assert f"#define NET_{role}_{t}_{what} " in h
    assert "#define NET_NUM_INPUTS 2" in h and "#define NET_NUM_OUTPUTS 2" in h
    assert "#define NET_INPUT_SIZE" not in h and "net_input(void)" not in h  # the single-I/O API only for one of each
    for fn in ("int8_t *net_input_a(void);", "int8_t *net_input_b(void);", "const int8_t *net_output_hidden(void);",
               "const int8_t *net_output_out(void);"):
        assert fn in h
    b = next(i for i in res.report["inputs"] if i["name"] == "b")
    assert f"#define NET_INPUT_B_ZERO_POINT ({b['zero_point']})" in h
    (tmp_path / "main.c").write_text(DRIVER)
    exe = tmp_path / "drv"
    proc = subprocess.run(["gcc", *WARNINGS, *SANITIZE, "-I", str(lib), *sorted(str(p) for p in lib.glob("*.c")),
                           str(tmp_path / "main.c"), "-o", str(exe), "-lm"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True,
                         env={"ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1"})
    assert run.returncode == 0 and not run.stderr, f"driver check {run.returncode} failed: {run.stderr[-2000:]}"
    got = np.array(run.stdout.split(), np.int8)
    a = np.array([(i * 37 - 100) for i in range(10)]).astype(np.int8)  # the driver's int8 wraps
    bb = np.array([(90 - i * 29) for i in range(12)]).astype(np.int8)
    want = tinydeploy.golden.run_sample(res.graph, {"a": a, "b": bb})
    assert np.array_equal(got, np.concatenate([want["hidden"].reshape(-1), want["out"].reshape(-1)]))


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_generated_c_hygiene(models, tmp_path, cc):
    """The several-inputs/outputs API compiles without warnings (-Wconversion too) with gcc
    and clang, float32 and int8, and cppcheck finds nothing."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    for name in ("two_inputs", "detector", "output_also_read"):
        for kw in ({"quantize": "float32"}, {"calib": models[name].with_name(f"{name}_calib.npz")}):
            lib = tmp_path / f"{name}-{len(kw)}-{kw.get('quantize', 'int8')}"
            tinydeploy.compile(models[name], out_dir=lib, **kw)
            sources = sorted(str(p) for p in lib.glob("*.c"))
            proc = subprocess.run([cc, *WARNINGS, "-O2", "-I", str(lib), "-c", *sources], capture_output=True,
                                  text=True, cwd=tmp_path)
            assert proc.returncode == 0 and not proc.stderr, f"{name} {kw}:\n{proc.stderr[-3000:]}"
            if cc == "gcc" and shutil.which("cppcheck"):
                proc = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability",
                                       "--error-exitcode=1", "--inline-suppr", "-q", "-U__ARM_FEATURE_DSP",
                                       "-U__ARM_FEATURE_MVE", "-U__riscv", "-I", str(lib), *sources],
                                      capture_output=True, text=True)
                assert proc.returncode == 0 and not proc.stderr.strip(), f"{name} {kw}:\n{proc.stderr[-3000:]}"


def test_cli_run_two_inputs_writes_every_output_by_name(models, tmp_path):
    m = models["output_also_read"]
    feeds = _feeds(m, 4, seed=6)
    np.savez(tmp_path / "in.npz", **feeds)
    proc = cli("run", m, "--calib", m.with_name("output_also_read_calib.npz"), "--inputs", tmp_path / "in.npz",
               "-o", tmp_path / "out.npz", "-q")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "out.npz") as d:
        assert sorted(d.files) == ["hidden", "out"]
        assert d["hidden"].shape == (4, 12) and d["out"].shape == (4, 12)
    assert "hidden: 4 samples of shape (12,)" in proc.stdout and "out: 4 samples of shape (12,)" in proc.stdout


def test_cli_missing_input_is_a_clear_error(models, tmp_path):
    m = models["output_also_read"]
    feeds = _feeds(m, 4, seed=6)
    np.savez(tmp_path / "in.npz", a=feeds["a"], B=feeds["b"], label=np.zeros(4))
    for flag, what in (("--inputs", "inputs"), ("--calib", "calibration data")):
        args = ["run", m, "--calib", m.with_name("output_also_read_calib.npz"), "--inputs", tmp_path / "in.npz",
                "-o", tmp_path / "out.npz", "-q"]
        args[args.index(flag) + 1] = tmp_path / "in.npz"
        proc = cli(*args)
        assert proc.returncode == 2
        assert proc.stderr == (f"error: the {what} file has no array named 'b': the model has 2 inputs ('a', 'b') "
                               "and takes one array per input, named as the input; arrays found: B, a, label\n")
        assert "Traceback" not in proc.stderr and not (tmp_path / "out.npz").exists()


def test_inputs_with_different_sample_counts(models, tmp_path):
    m = models["two_inputs"]
    f = _feeds(m, 4)
    f["map"] = f["map"][:3]
    with pytest.raises(tinydeploy.TinydeployError, match="different numbers of samples: 'image' 4, 'map' 3"):
        tinydeploy.run(m, f, calib=m.with_name("two_inputs_calib.npz"))


def test_verify_cli_prints_each_output(models):
    m = models["detector"]
    proc = cli("verify", m, "--calib", m.with_name("detector_calib.npz"), "-t", RISCV, "--samples", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "output 'scores': bit-exact" in proc.stdout and "output 'boxes': bit-exact" in proc.stdout


def test_tflite_two_inputs_two_outputs_bit_exact_with_tflm(tmp_path):
    """A .tflite model with two inputs and two outputs: C on the host == TFLite Micro."""
    pytest.importorskip("tflite")
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from test_tflite_input import O, Builder, _weights, schema
    b = Builder()
    a, c = b.tensor((1, 16), scale=0.02, zp=-3), b.tensor((1, 8), scale=0.05, zp=4)
    outs = []
    for x, n_in, scale, n_out in ((a, 16, 0.02, 5), (c, 8, 0.05, 3)):
        w, bias = _weights(b, (n_out, n_in), scale, n_out)
        outs.append(b.op("FULLY_CONNECTED", [x, w, bias], [b.tensor((1, n_out), scale=0.07, zp=1)],
                         schema.FullyConnectedOptionsT(), O.FullyConnectedOptions, fusedActivationFunction=0))
    model_bytes = b.finish([a, c], outs)
    path = tmp_path / "two.tflite"
    path.write_bytes(model_bytes)
    rng = np.random.default_rng(3)
    xs = {"t0": rng.integers(-128, 128, (4, 16), dtype=np.int8), "t1": rng.integers(-128, 128, (4, 8), dtype=np.int8)}
    res = tinydeploy.run(path, xs)
    assert [i["name"] for i in res.report["inputs"]] == ["t0", "t1"] and len(res.outputs) == 2
    for s in range(4):
        interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=1 << 20)
        interp.set_input(xs["t0"][s:s + 1], 0)
        interp.set_input(xs["t1"][s:s + 1], 1)
        interp.invoke()
        for k, y in enumerate(res.outputs.values()):
            assert np.array_equal(y[s].reshape(-1), np.asarray(interp.get_output(k)).reshape(-1))


def test_cli_run_accuracy_per_labelled_output(models, tmp_path):
    """'label' labels the first output, 'label:NAME' the output NAME; run prints the
    accuracy of each labelled output, from the outputs it wrote."""
    m = models["output_also_read"]
    feeds = _feeds(m, 6, seed=11)
    rng = np.random.default_rng(3)
    labels = {"label": rng.integers(0, 12, 6), "label:out": rng.integers(0, 12, 6)}
    np.savez(tmp_path / "in.npz", **feeds, **labels)
    proc = cli("run", m, "--calib", m.with_name("output_also_read_calib.npz"), "--inputs", tmp_path / "in.npz",
               "-o", tmp_path / "out.npz", "-q")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "out.npz") as d:
        for name, key in (("hidden", "label"), ("out", "label:out")):
            correct = int(np.sum(d[name].argmax(axis=1) == labels[key]))
            assert f"accuracy of '{name}': {correct / 6:.2%} ({correct}/6) [host, int8 C]" in proc.stdout


@pytest.mark.parametrize("labels, message", [
    ({"label:nope": np.zeros(4)}, "error: the inputs file's array 'label:nope' labels no output of the model; its "
                                  "outputs are 'hidden', 'out' ('label' labels the first, 'label:NAME' the output "
                                  "NAME)\n"),
    ({"label": np.zeros(4), "label:hidden": np.zeros(4)},
     "error: the inputs file's arrays 'label' and 'label:hidden' both label output 'hidden'; keep one\n"),
])
def test_cli_run_bad_output_labels(models, tmp_path, labels, message):
    m = models["output_also_read"]
    np.savez(tmp_path / "in.npz", **_feeds(m, 4, seed=6), **labels)
    proc = cli("run", m, "--calib", m.with_name("output_also_read_calib.npz"), "--inputs", tmp_path / "in.npz",
               "-o", tmp_path / "out.npz", "-q")
    assert proc.returncode == 2 and proc.stderr == message


def test_validate_labels_only_the_labelled_output(models, tmp_path):
    """A detector's class labels apply to its scores, not to its boxes (which have another
    number of values per sample)."""
    m = models["detector"]
    feeds = _feeds(m, 4, seed=12)
    np.savez(tmp_path / "in.npz", **feeds, **{"label:boxes": np.arange(4) % 64})
    r = tinydeploy.validate(m, "host", tmp_path / "in.npz", calib=m.with_name("detector_calib.npz"))
    by_name = {o.name: o for o in r.outputs}
    assert by_name["scores"].accuracy is None and by_name["boxes"].accuracy is not None
