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
