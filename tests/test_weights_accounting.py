"""Constant data: every constant array ships in NAME_weights.c, report.json's
weight figures are exactly what that file holds, and code generation is a pure
function of the graph and the plan (twice in a row: same files, same graph)."""
import re

import numpy as np
import pytest

from conftest import EXAMPLES

import tinydeploy
from tinydeploy import codegen

DIGITS = EXAMPLES / "digits"
# bytes per element, independent of the generator's own table (the struct
# types hold five int32_t fields; NAME_weights.c also checks it when built)
ELEM = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "float": 4,
        "td_rv_rq": 20, "td_concat_s8_input": 20}
ARRAY = re.compile(r"^const (\w+) (\w+)\[(\d+)\]", re.M)
STATIC_ARRAY = re.compile(r"static const (?:int8_t|uint8_t|int16_t|uint16_t|int32_t|float|"
                          r"td_rv_rq|td_concat_s8_input) \w+\[")


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "calib200.npz"
    with np.load(DIGITS / "calib.npz") as d:
        np.savez(path, input=d["input"][:200])
    return path


BUILDS = [("int8", "host"), ("int8", "nucleo-l4r5zi"), ("int8", "cortex-m55"),
          ("int8", "rv32-zve32x"), ("int8", "esp32-c3"), ("float32", "host"),
          ("float32", "nucleo-l4r5zi")]


def _compile(quantize, target, out, calib):
    return tinydeploy.compile(DIGITS / "digits_cnn.onnx", target, out, quantize=quantize,
                              calib=calib if quantize == "int8" else None)


@pytest.mark.parametrize("quantize,target", BUILDS, ids=[f"{q}-{t}" for q, t in BUILDS])
def test_report_weight_bytes_are_the_shipped_arrays(tmp_path, calib, quantize, target):
    result = _compile(quantize, target, tmp_path / "lib", calib)
    weights_c = (result.out_dir / "net_weights.c").read_text()
    arrays = ARRAY.findall(weights_c)
    assert arrays
    shipped = sum(ELEM[ctype] * int(n) for ctype, _, n in arrays)
    r = result.report
    assert r["weights_bytes"] == shipped
    assert sum(l["weight_bytes"] for l in r["layers"]) == shipped
    # every array is declared for net.c, and net.c holds no constant arrays of its own
    net_c = (result.out_dir / "net.c").read_text()
    for ctype, sym, n in arrays:
        assert f"extern const {ctype} {sym}[{n}];" in net_c
    assert not STATIC_ARRAY.findall(net_c)


@pytest.mark.parametrize("quantize,target", [("int8", "nucleo-l4r5zi"), ("int8", "cortex-m55"),
                                             ("int8", "esp32-c3"), ("int8", "rv32-zve32x"),
                                             ("float32", "nucleo-l4r5zi")])
def test_generate_twice_is_identical_and_leaves_the_graph_alone(tmp_path, calib, quantize, target):
    result = _compile(quantize, target, None, calib)
    g, plan = result.graph, result.plan
    def choice(op):  # by value: an emitter must not change its Choice either
        c = plan.choice(op.name)
        return c and (c.name, c.emit, c.scratch_bytes, c.alias_inplace, c.smaller, c.detail)

    def state():
        return ([(n, t.shape, t.dtype) for n, t in g.tensors.items()],
                [(op.name, list(op.inputs), list(op.outputs), sorted(op.attrs), choice(op)) for op in g.ops],
                {k: (p.region, p.offset) for k, p in plan.placements.items()}, dict(plan.scratch),
                dict(plan.inplace_modes))
    before = state()
    outs = []
    for i in range(2):
        out = tmp_path / f"gen{i}"
        gen = codegen.generate(g, plan, out, "net", "digits_cnn.onnx", target)
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
        assert state() == before  # same tensors, ops, kernel choices and plan
        assert gen["weight_bytes"] == sum(l.weight_bytes for l in gen["layers"])
    assert outs[0] == outs[1]
