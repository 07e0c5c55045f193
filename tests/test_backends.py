"""Kernel backends behind one interface: the target's JSON names its backend,
found by module name in tinydeploy/backends; any backend's build stays
bit-exact with the golden model."""
import json

import numpy as np

from conftest import EXAMPLES

from tinydeploy import api, backends
from tinydeploy.targets import TARGETS_DIR, load_target

DIGITS = EXAMPLES / "digits"


def test_backends_are_found_by_name():
    assert backends.available() == ["arm", "portable", "riscv"]
    for name in backends.available():
        assert callable(backends.load(name).choose)


def test_builtin_targets_name_their_backend():
    expect = {"arm": "arm", "riscv": "riscv", "host": "portable"}
    for path in TARGETS_DIR.glob("*.json"):
        t = load_target(path.stem)
        assert t.backend == expect[t.arch] == json.loads(path.read_text())["backend"], path.name


def _variants(result) -> set:
    return {layer["variant"] for layer in result.report["layers"]}


def test_a_board_file_chooses_the_portable_backend(tmp_path):
    """The same Cortex-M4 board with "backend": "portable" runs only portable kernels,
    and both builds give the golden model's outputs on the emulator."""
    data = json.loads((TARGETS_DIR / "nucleo-l4r5zi.json").read_text())
    data.update(name="m4-portable", backend="portable",
                linker_script=str(TARGETS_DIR / data["linker_script"]),
                startup=[str(TARGETS_DIR / s) for s in data["startup"]])
    board = tmp_path / "m4-portable.json"
    board.write_text(json.dumps(data))
    with np.load(DIGITS / "test.npz") as d:
        x = {"input": d["input"][:3]}
    calib = DIGITS / "calib.npz"
    outs = {}
    for label, options in (("arm", dict(target="nucleo-l4r5zi")), ("portable", dict(target_file=str(board)))):
        compiled = api.compile(DIGITS / "digits_cnn.onnx", calib=calib, **options)
        assert (_variants(compiled) == {"portable"}) == (label == "portable"), _variants(compiled)
        c = api.run(DIGITS / "digits_cnn.onnx", x, calib=calib, **options).outputs
        golden = api.run(DIGITS / "digits_cnn.onnx", x, calib=calib, golden=True, **options).outputs
        for k in c:
            np.testing.assert_array_equal(c[k], golden[k])
        outs[label] = c
    for k in outs["arm"]:
        np.testing.assert_array_equal(outs["arm"][k], outs["portable"][k])


def _wide_pad_conv(path, pads, k=1, c=5, m=6):
    """An ONNX Conv whose own pads are as wide as its window (output pixels of padding
    only), plus a 3x3 conv that the Arm kernels do run."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(6)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (m, c, k, k)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.2, m).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (4, m, 3, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], kernel_shape=[k, k], pads=pads, name="wide"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv3")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 7, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w1, b1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


def test_arm_leaves_convolutions_with_pads_as_wide_as_the_window_to_the_portable_kernel(tmp_path):
    """Differential-fuzzer bug 6: the DSP and Helium convolutions assume every window touches
    the input; a pad as wide as the window is the portable kernel's. C == golden on both."""
    for pads, k in (([0, 0, 0, 1], 1), ([2, 1, 0, 3], 3)):
        path = _wide_pad_conv(tmp_path / f"m{k}.onnx", pads, k)
        calib = {"x": np.random.default_rng(1).normal(0, 1, (16, 5, 7, 9)).astype(np.float32)}
        for target, options in (("nucleo-l4r5zi", dict(optimize="size")), ("cortex-m55", dict(optimize="size"))):
            res = api.compile(path, target=target, calib=calib, **options)
            variants = {l["name"]: l["variant"] for l in res.report["layers"]}
            assert variants["wide"] == "portable" and variants["conv3"].startswith(("arm_", "mve_")), variants
            x = {"x": calib["x"][:2]}
            c = api.run(path, x, target=target, calib=calib, **options).outputs["y"]
            golden = api.run(path, x, target=target, calib=calib, golden=True, **options).outputs["y"]
            np.testing.assert_array_equal(c, golden)
