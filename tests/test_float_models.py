"""float32 end to end on the host: generated C against onnxruntime's reference outputs."""
import subprocess

import numpy as np
import pytest

import tinydeploy
from conftest import MLPERF, model_path, reference

FLOAT_MODELS = [(m, "float.onnx") for m in MLPERF] + \
    [(m, "float_nchw.onnx") for m in ("resnet8", "vww", "ad")]


@pytest.mark.parametrize("name,kind", FLOAT_MODELS, ids=[f"{m}-{k}" for m, k in FLOAT_MODELS])
def test_float_model_matches_onnxruntime(name, kind):
    ref = reference(name)
    x = ref["float_inputs"]
    if kind == "float_nchw.onnx" and x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    result = tinydeploy.run(model_path(name, kind), {"x": x}, target="host", quantize="float32")
    y = next(iter(result.outputs.values()))
    want = ref["float_outputs"]
    assert y.shape == want.shape
    assert np.all(np.abs(y - want) <= 1e-4 * (1 + np.abs(want)))


def test_generated_c_is_warning_free_c99(tmp_path):
    out = tmp_path / "lib"
    tinydeploy.compile(model_path("resnet8", "float_nchw.onnx"), out_dir=out, quantize="float32")
    sources = sorted(str(p) for p in out.glob("*.c"))
    proc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wpedantic",
                           "-c", *sources], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_output_files_and_api(tmp_path):
    out = tmp_path / "lib"
    res = tinydeploy.compile(model_path("kws", "float.onnx"), out_dir=out, name="kws", quantize="float32")
    names = {p.name for p in out.iterdir()}
    assert {"kws.h", "kws.c", "kws_weights.c", "CMakeLists.txt", "report.json"} <= names
    header = (out / "kws.h").read_text()
    assert "int kws_run(const float *input, float *output);" in header
    assert "#define KWS_INPUT_SIZE 490" in header and "#define KWS_OUTPUT_SIZE 12" in header
    assert f"#define KWS_ARENA_SIZE {res.report['arena_bytes']}" in header
    # only the kernels the model uses are shipped
    assert not any("transpose" in n or "pad" in n for n in names)
    assert res.report["macs"] == sum(l["macs"] for l in res.report["layers"])
