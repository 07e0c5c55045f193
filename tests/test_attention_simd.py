"""The SIMD variants of the fused int8 attention (tinydeploy/ops/attention.py): Arm DSP
(arm/attention_dsp.c on the Cortex-M7), Helium (arm/attention_mve.c on the Cortex-M55) and
RISC-V vector (riscv/attention_rvv.c on rv32-zve32x), each C == golden model bit for bit
on the emulated core, on odd shapes: head dims that are no multiple of 4, sequence
lengths 1, 2, 5, 17, 65, q/k/v read as strided slices of one qkv tensor (FOLD_SLICES)
or as tensors of their own with k not transposed (keys contiguous) and v transposed,
several heads, with and without the scale, the plain softmax and the table one."""
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import transformer_models as tm
from test_attention import attention_block

from tinydeploy import api
from tinydeploy.ops import softmax

VARIANTS = {"stm32f746": "arm_dsp_attention", "cortex-m55": "arm_mve_attention",
            "rv32-zve32x": "rvv_attention"}


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def separate_inputs(m: int, n: int, hd: int, heads: int, scale: bool, q_transposed: bool) -> onnx.ModelProto:
    """Attention on three model inputs: q [1, h, m, hd] (or q^T [1, h, hd, m], transposed
    in the graph), k^T [1, h, hd, n] (the keys contiguous: k not transposed in memory) and
    v^T [1, h, hd, n] (transposed in the graph: each value column contiguous)."""
    g = tm._Graph(np.random.default_rng(0))
    s = "/attn"
    q = g.node("Transpose", ["qt"], s, perm=[0, 1, 3, 2]) if q_transposed else "q"
    scores = g.node("MatMul", [q, "kt"], s)
    if scale:
        scores = g.node("Mul", [scores, g.const(f"{s}.scale", hd ** -0.5)], s)
    probs = g.node("Softmax", [scores], s, axis=-1)
    y = g.node("MatMul", [probs, g.node("Transpose", ["vt"], s, perm=[0, 1, 3, 2])], s)
    f = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    qin = f("qt", [1, heads, hd, m]) if q_transposed else f("q", [1, heads, m, hd])
    return g.model([qin, f("kt", [1, heads, hd, n]), f("vt", [1, heads, hd, n])],
                   [f(y, [1, heads, m, hd])], 13, "attention_inputs")


# (tokens, head dim, heads, scale): q, k, v strided slices of one qkv tensor
SLICED = [(1, 3, 2, "mul"), (2, 5, 3, "none"), (5, 7, 2, "div"), (17, 5, 4, "none"), (65, 17, 1, "mul")]
# (queries, tokens, head dim, heads, scale, q transposed): k not transposed, v transposed
SEPARATE = [(5, 7, 3, 2, True, False), (1, 1, 5, 3, True, True), (2, 65, 17, 1, False, False),
            (3, 5, 7, 2, False, True)]


def _check(path: str, calib: dict, x: dict, target: str, table: bool, scaled: bool) -> None:
    c = api.run(path, x, target=target, calib=calib)
    golden = api.run(path, x, target=target, calib=calib, golden=True)
    layers = [layer for layer in c.report["layers"] if layer["op"] == "attention_s8"]
    assert [layer["variant"] for layer in layers] == [VARIANTS[target]]
    # the layer's constant data: the table softmax's exponential table, and on the DSP
    # core the scale's 256-byte table (the vector variants requantize the scale in lanes)
    scale_table = 256 if scaled and VARIANTS[target] == "arm_dsp_attention" else 0
    assert layers[0]["weight_bytes"] >= scale_table
    assert (layers[0]["weight_bytes"] - scale_table > 0) == table
    for name in c.outputs:
        np.testing.assert_array_equal(c.outputs[name], golden.outputs[name])


@pytest.mark.parametrize("target", list(VARIANTS))
@pytest.mark.parametrize("n,hd,heads,scale", SLICED)
def test_sliced_qkv_bit_exact(tmp_path, target, n, hd, heads, scale):
    path = str(tmp_path / "a.onnx")
    onnx.save(attention_block(scale, n=n, d=hd * heads, heads=heads), path)
    rng = _rng(f"sliced{n}{hd}{heads}{scale}")
    calib = {"x": rng.normal(0, 1, (8, n, hd * heads)).astype(np.float32)}
    x = {"x": rng.normal(0, 1, (2, n, hd * heads)).astype(np.float32)}
    _check(path, calib, x, target, table=heads * n * n >= softmax.TABLE_MIN_ELEMENTS, scaled=scale != "none")


@pytest.mark.parametrize("target", list(VARIANTS))
@pytest.mark.parametrize("m,n,hd,heads,scale,q_transposed", SEPARATE)
def test_k_not_transposed_v_transposed_bit_exact(tmp_path, target, m, n, hd, heads, scale, q_transposed):
    path = str(tmp_path / "a.onnx")
    onnx.save(separate_inputs(m, n, hd, heads, scale, q_transposed), path)
    rng = _rng(f"separate{m}{n}{hd}{heads}{scale}{q_transposed}")
    shapes = {"qt" if q_transposed else "q": (heads, hd, m) if q_transposed else (heads, m, hd),
              "kt": (heads, hd, n), "vt": (heads, hd, n)}
    calib = {k: rng.normal(0, 1, (8, *s)).astype(np.float32) for k, s in shapes.items()}
    x = {k: rng.normal(0, 1.5, (2, *s)).astype(np.float32) for k, s in shapes.items()}
    _check(path, calib, x, target, table=heads * m * n >= softmax.TABLE_MIN_ELEMENTS, scaled=scale)
