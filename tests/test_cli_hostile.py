"""Hostile command lines (issue 19 item 3): every command and option with hostile values
(negative, zero, huge, non-numeric, empty; paths that are directories, missing or
unwritable; npz files with wrong keys, dtypes, shapes, NaN and inf; bad models and target
files). Each must end with exit 0, 1 or 2 and one clear message: never exit 3 (an internal
error) or a traceback. Runs the CLI in this process (click's runner) to stay fast."""
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import EXAMPLES, REPO, model_path

from tinydeploy.cli import main

DIGITS = EXAMPLES / "digits"
MODEL = str(DIGITS / "digits_cnn.onnx")
CALIB = str(DIGITS / "calib.npz")
FLOAT = ["--quantize", "float32"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Hostile files, made once: {name: path}."""
    d = tmp_path_factory.mktemp("hostile")
    x = np.random.default_rng(19).random((3, 1, 8, 8), dtype=np.float32)
    paths = {"dir": d / "a_directory", "missing": d / "missing.npz", "empty": d / "empty.npz",
             "text": d / "text.npz", "model_text": d / "model.onnx", "model_empty": d / "empty.onnx",
             "tflite_junk": d / "junk.tflite", "unwritable": d / "no_such_dir" / "deeper" / "out.npz"}
    paths["dir"].mkdir()
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("not an npz file\n")
    paths["model_text"].write_text("ir_version: 7\n")
    paths["model_empty"].write_bytes(b"")
    paths["tflite_junk"].write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    arrays = {
        "good": dict(input=x),
        "wrong_key": dict(a=x, b=x),
        "int64": dict(input=(x * 10).astype(np.int64)),
        "complex": dict(input=x.astype(np.complex64)),
        "bool": dict(input=x > 0.5),
        "strings": dict(input=np.array(["a", "b", "c"])),
        "wrong_shape": dict(input=x[:, :, :4]),
        "flat": dict(input=x.reshape(3, -1)),
        "scalar": dict(input=np.float32(1)),
        "nan": dict(input=np.where(x > 0.5, np.nan, x).astype(np.float32)),
        "inf": dict(input=np.where(x > 0.5, np.inf, x).astype(np.float32)),
        "no_samples": dict(input=x[:0]),
        "huge_values": dict(input=(x * 1e30).astype(np.float32)),
        "labels_2d": dict(input=x, label=np.zeros((3, 2, 2))),
        "labels_str": dict(input=x, label=np.array(["a", "b", "c"])),
        "labels_nan": dict(input=x, label=np.array([np.nan, 1, 2])),
        "labels_neg": dict(input=x, label=np.array([-1, 0, 1])),
    }
    for name, a in arrays.items():
        paths[name] = d / f"{name}.npz"
        np.savez(paths[name], **a)
    tgt = json.loads((REPO / "targets" / "stm32f746.json").read_text())
    for name, text in {"target_junk": "{not json", "target_empty": "{}",
                       "target_list": "[1, 2]",
                       "target_negative": json.dumps(dict(tgt, name="neg", sram_bytes=-5)),
                       "target_strings": json.dumps(dict(tgt, name="str", clock_hz="fast"))}.items():
        paths[name] = d / f"{name}.json"
        paths[name].write_text(text)
    return {k: str(v) for k, v in paths.items()}


CASES = [
    # models
    ("compile", "{missing}", *FLOAT), ("compile", "{dir}", *FLOAT), ("compile", "{model_text}", *FLOAT),
    ("compile", "{model_empty}", *FLOAT), ("compile", "{tflite_junk}"), ("compile", "", *FLOAT),
    ("inspect", "{dir}"), ("inspect", "{model_empty}"), ("inspect", MODEL, "--input-shape", "input=1,1,0,8"),
    # names, shapes, targets, numbers
    ("compile", MODEL, *FLOAT, "--name", ""), ("compile", MODEL, *FLOAT, "--name", "1net"),
    ("compile", MODEL, *FLOAT, "--name", "net-x"), ("compile", MODEL, *FLOAT, "--name", "a" * 5000),
    ("compile", MODEL, *FLOAT, "--input-shape", "input="), ("compile", MODEL, *FLOAT, "--input-shape", "=1,2"),
    ("compile", MODEL, *FLOAT, "--input-shape", "input=a,b"),
    ("compile", MODEL, *FLOAT, "--input-shape", "input=1,1,-8,8"),
    ("compile", MODEL, *FLOAT, "--input-shape", "input=1,1,100000,100000"),
    ("compile", MODEL, *FLOAT, "--input-shape", "input=1,1,8,8,8"),
    ("compile", MODEL, *FLOAT, "--input-shape", "nope=1,1,8,8"),
    ("compile", MODEL, *FLOAT, "--input-shape", "input=99999999999999999999,1,8,8"),
    ("compile", MODEL, *FLOAT, "-t", "no-such-board"), ("compile", MODEL, *FLOAT, "-t", ""),
    ("compile", MODEL, *FLOAT, "--target-file", "{dir}"), ("compile", MODEL, *FLOAT, "--target-file", "{missing}"),
    ("compile", MODEL, *FLOAT, "--target-file", "{target_junk}"),
    ("compile", MODEL, *FLOAT, "--target-file", "{target_empty}"),
    ("compile", MODEL, *FLOAT, "--target-file", "{target_list}"),
    ("compile", MODEL, *FLOAT, "--target-file", "{target_negative}"),
    ("compile", MODEL, *FLOAT, "--target-file", "{target_strings}"),
    ("compile", MODEL, *FLOAT, "--kernel-scratch", "-1"), ("compile", MODEL, *FLOAT, "--kernel-scratch", "nan"),
    ("compile", MODEL, *FLOAT, "--kernel-scratch", "inf"), ("compile", MODEL, *FLOAT, "--kernel-scratch", ""),
    ("compile", MODEL, *FLOAT, "--min-sqnr", "abc"), ("compile", MODEL, "--calib", CALIB, "--min-sqnr", "nan"),
    ("compile", MODEL, *FLOAT, "--quantize", "int4"), ("compile", MODEL, "--calib-method", "best"),
    ("compile", MODEL, "--calib", CALIB, "--weights", "int2"), ("compile", MODEL, "--calib", CALIB, "--weights", ""),
    ("compile", MODEL, *FLOAT, "--weights", "int4"),
    *[("compile", MODEL, "--calib", CALIB, "--weights", "mixed", "--int4-budget-db", v)
      for v in ("-1", "nan", "inf", "abc", "")],
    ("compile", str(model_path("kws", "int8_qdq.onnx")), "--weights", "mixed"),  # a QDQ model: no --calib
    # output paths
    ("compile", MODEL, *FLOAT, "-o", "{text}"), ("compile", MODEL, *FLOAT, "-o", "/proc/tinydeploy-out"),
    ("run", MODEL, *FLOAT, "--inputs", "{good}", "-o", "{dir}"),
    ("run", MODEL, *FLOAT, "--inputs", "{good}", "-o", "/proc/out.npz"),
    ("report", MODEL, *FLOAT, "-o", "{dir}"), ("report", MODEL, *FLOAT, "-o", "/proc/r.html"),
    # calibration data
    *[("compile", MODEL, "--calib", "{" + k + "}") for k in (
        "missing", "dir", "empty", "text", "wrong_key", "int64", "complex", "bool", "strings", "wrong_shape",
        "flat", "scalar", "nan", "inf", "no_samples")],
    ("compile", MODEL, "--calib", "{good}:nope"), ("compile", MODEL, "--calib", "{good}:"),
    # inputs of run (float and int8 builds) and labels
    *[("run", MODEL, *FLOAT, "--inputs", "{" + k + "}", "-o", "{dir}/o.npz") for k in (
        "missing", "dir", "empty", "text", "wrong_key", "int64", "complex", "bool", "strings", "wrong_shape",
        "flat", "scalar", "nan", "inf", "no_samples", "labels_2d", "labels_str", "labels_nan", "labels_neg")],
    *[("run", MODEL, "--calib", CALIB, "--inputs", "{" + k + "}", "-o", "{dir}/o.npz") for k in (
        "int64", "nan", "inf", "no_samples")],
    ("run", MODEL, "--calib", CALIB, "--inputs", "{good}", "--raw", "-o", "{dir}/o.npz"),
    # emulated commands: stop before the emulator
    ("verify", MODEL, *FLOAT), ("verify", MODEL, *FLOAT, "-t", "host"),
    ("verify", MODEL, *FLOAT, "-t", "stm32f746", "--samples", "-1"),
    ("verify", MODEL, *FLOAT, "-t", "stm32f746", "--samples", "x"),
    ("verify", MODEL, *FLOAT, "-t", "stm32f746", "--inputs", "{wrong_shape}"),
    ("verify", MODEL, *FLOAT, "-t", "stm32f746", "--emulator", "bochs"),
    ("bench", MODEL, *FLOAT, "-t", "host"), ("bench", MODEL, *FLOAT, "--target-file", "{target_junk}"),
    ("validate", MODEL, *FLOAT), ("validate", MODEL, *FLOAT, "--inputs", "{int64}"),
    ("validate", MODEL, *FLOAT, "--inputs", "{labels_str}"), ("validate", MODEL, *FLOAT, "--inputs", "{good}",
                                                              "--reference", "{model_text}"),
    ("validate", MODEL, *FLOAT, "--inputs", "{good}", "--reference", "{tflite_junk}"),
    ("validate", MODEL, *FLOAT, "--inputs", "{good}", "--layers", "-2"),
    ("report", MODEL, *FLOAT, "--validate", "{wrong_key}", "-o", "{dir}/r.html"),
    ("targets", "--json", "extra"), ("nonsense-command",), ("compile",), ("run", MODEL),
]
# hostile but valid: these must work (exit 0)
VALID = [
    ("compile", MODEL, "--calib", "{huge_values}"),  # saturating ranges are still ranges
    ("run", MODEL, "--calib", CALIB, "--inputs", "{huge_values}", "-o", "{dir}/big.npz"),  # int8 saturates
    ("run", MODEL, "--calib", CALIB, "--inputs", "{good}:input", "-o", "{dir}/picked.npz"),
    ("compile", MODEL, *FLOAT, "--name", "a" * 64),
    ("compile", MODEL, "--calib", CALIB, "--weights", "int4"),
    ("compile", MODEL, "--calib", CALIB, "--weights", "mixed", "--int4-budget-db", "0"),
]


# compile needs -o: give every compile case its own output directory, unless it tests -o
def _with_out(cases, tag):
    return [c + ("-o", "{dir}/%s%d" % (tag, i)) if c[0] == "compile" and "-o" not in c else c
            for i, c in enumerate(cases)]


CASES, VALID = _with_out(CASES, "bad"), _with_out(VALID, "ok")


def _ids(cases):
    return [re.sub(r"[^A-Za-z0-9=._-]+", "_", " ".join(c).replace(str(DIGITS), ""))[:90] for c in cases]


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_hostile_but_valid_command_line_works(case, files):
    result = CliRunner().invoke(main, [a.format(**files) for a in case])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_hostile_command_line_ends_cleanly(case, files):
    args = [a.format(**files) for a in case]
    result = CliRunner().invoke(main, args)
    err = result.stderr
    assert result.exit_code == 2, f"exit {result.exit_code}: {err}{result.output}"
    assert "Traceback" not in err and "internal error" not in err and "Traceback" not in result.output
    if result.exit_code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        if lines and lines[0].startswith("Usage:"):  # click's own usage error: names the option
            assert lines[-1].startswith("Error: "), err
        else:
            # one clear message (a not-fitting model also lists what is over, indented)
            assert lines and lines[0].startswith("error: ") and len(lines[0]) > 20, err
            assert all(line.startswith(("  ", "choose ")) for line in lines[1:]), err
