"""ONNX's own backend node tests as a tinydeploy suite (issue 14, item 6).

The installed `onnx` package no longer ships the tests' data files, so the cases are
generated from its case modules (onnx.backend.test.case.node.collect_testcases).
Selected: the float32 tests (every graph output float32, the data inputs float32;
integer inputs are parameters such as axes or shapes) whose every node is an op
tinydeploy lowers (tinydeploy.frontend.LOWERINGS), or a Constant/Shape node that
constant folding removes.

Each case is compiled with tinydeploy for the host as float32 and run on the test's
inputs through the float IR interpreter and (optionally) the generated C, and compared
with the test's expected outputs (rtol 1e-4, atol 1e-5, exact shape). Graph inputs
that feed a weight or parameter operand (Conv W and B, Gemm B and C, MatMul's right-hand
side, BatchNormalization's statistics, Pad's pads, Resize's scales, Reshape's shape,
axes, ...) are frozen into initializers from the test's data first, as a deployed model
ships them: tinydeploy compiles static weights.

Outcomes (STATUSES): pass; pass (weights frozen); out of scope (with the reason);
refused (tinydeploy's error, first line); FAIL wrong numbers; FAIL crash (a traceback,
not a TinydeployError). The last two are bugs.

Used by tests/test_onnx_node_suite.py and tools/node_suite_table.py (which writes the
expectations, tests/data/onnx_node_suite.json, and README's per-op table).
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import pickle
import re
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXPECTED = REPO / "tests" / "data" / "onnx_node_suite.json"
README = REPO / "README.md"
TABLE_BEGIN = "<!-- onnx-node-suite:begin (tools/node_suite_table.py writes this table) -->"
TABLE_END = "<!-- onnx-node-suite:end -->"

RTOL, ATOL = 1e-4, 1e-5

PASS = "pass"
PASS_FROZEN = "pass (weights frozen)"
OUT_OF_SCOPE = "out of scope"
REFUSED = "refused"
WRONG = "FAIL wrong numbers"
CRASH = "FAIL crash"
STATUSES = (PASS, PASS_FROZEN, OUT_OF_SCOPE, REFUSED, WRONG, CRASH)
PASSING = (PASS, PASS_FROZEN)
FAILING = (WRONG, CRASH)

# Nodes that constant folding removes before lowering (README: constant subgraphs are
# folded at compile time).
FOLDED = {"Constant", "Shape"}

# Operand indices that are weights or parameters, by op: a graph input feeding one of
# them is frozen into an initializer from the test's data.
PARAMETERS = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1,),
    "BatchNormalization": (1, 2, 3, 4), "Pad": (1, 2, 3), "Resize": (1, 2, 3),
    "Upsample": (1,), "Clip": (1, 2), "Dropout": (1, 2), "Reshape": (1,), "Expand": (1,),
    "Tile": (1,), "Slice": (1, 2, 3, 4), "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
    "Gather": (1,), "ReduceMax": (1,), "ReduceMean": (1,), "ReduceSum": (1,), "Pow": (1,),
    "LSTM": (1, 2, 3, 4), "GRU": (1, 2, 3, 4), "LayerNormalization": (1, 2),
}

# Cases that test what a deployed inference library does not do, by name: the reason.
OUT_OF_SCOPE_CASES = {
    "test_batchnorm_example_training_mode": "training mode (updates running statistics)",
    "test_batchnorm_epsilon_training_mode": "training mode (updates running statistics)",
}

# Cases whose expected outputs are written with fewer digits than float32 gives: the
# tolerance they get, and why (onnxruntime and onnx's reference implementation agree with
# tinydeploy to 1e-7 on them).
ROUNDED_EXPECTATIONS = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad": (1e-4, "expected values written with 4 decimals"),
}

_FLOAT, _INT64, _INT32 = 1, 7, 6


# --------------------------------------------------------------------------
# Collecting the cases
# --------------------------------------------------------------------------
class Case:
    """One selected test: name, the ONNX model, data sets [(inputs, outputs)] as lists."""

    def __init__(self, name: str, model_bytes: bytes, data_sets: list):
        self.name, self.model_bytes, self.data_sets = name, model_bytes, data_sets

    @property
    def model(self):
        import onnx
        return onnx.load_from_string(self.model_bytes)

    @property
    def op(self) -> str:
        """The op the case tests: the graph's one op type, else the function whose body
        the graph is ("Softmax (expanded)": onnx names its nodes' outputs
        FUNCTION_test_..._function_...), else MULTI."""
        g = self.model.graph
        kinds = {n.op_type for n in g.node} - FOLDED
        if len(kinds) == 1:
            return next(iter(kinds))
        for out in (o for n in g.node for o in n.output):
            if "_function_" in out and "_test_" in out:
                return out.split("_test_", 1)[0] + EXPANDED
        return MULTI

    @property
    def ops(self) -> list:
        return sorted({n.op_type for n in self.model.graph.node})


MULTI = "several ops"
EXPANDED = " (expanded)"


def _float32_test(model) -> bool:
    """A float32 test of standard-domain ops: float32 outputs, float32 data inputs (integer
    inputs are parameters: axes, shapes, indices)."""
    g = model.graph
    if not g.node or any(n.domain not in ("", "ai.onnx") for n in g.node):
        return False
    kinds = [v.type.tensor_type.elem_type for v in g.input]
    return (all(v.type.tensor_type.elem_type == _FLOAT for v in g.output)
            and _FLOAT in kinds and set(kinds) <= {_FLOAT, _INT64, _INT32})


def _lowered(model) -> bool:
    """Every node is an op tinydeploy lowers, or one constant folding removes."""
    from tinydeploy.frontend import LOWERINGS
    return {n.op_type for n in model.graph.node} <= set(LOWERINGS) | FOLDED


def _cache_path() -> Path:
    import onnx
    return Path(tempfile.gettempdir()) / f"tinydeploy-onnx-node-cases-{onnx.__version__}.pkl"


def collect() -> list:
    """The selected cases, in the onnx package's order. The float32 tests are cached per
    onnx version (the case modules take ~25 s to generate every test's data); the ops
    tinydeploy lowers are checked on every call."""
    import onnx
    cache = _cache_path()
    cases = None
    if cache.exists():
        try:
            with open(cache, "rb") as f:
                cases = pickle.load(f)
        except Exception:
            cases = None
    if cases is None:
        from onnx.backend.test.case import node
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            every = node.collect_testcases(None)
        cases = [(c.name, c.model.SerializeToString(),
                  [([np.asarray(a) for a in ins], [np.asarray(a) for a in outs]) for ins, outs in c.data_sets])
                 for c in every if c.kind == "node" and _float32_test(c.model)]
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(cases, f)
        os.replace(tmp, cache)
    return [Case(*c) for c in cases if _lowered(onnx.load_from_string(c[1]))]


# --------------------------------------------------------------------------
# Running one case
# --------------------------------------------------------------------------
def frozen_model(case: Case, inputs: list):
    """The case's model with the graph inputs that are parameters (PARAMETERS, or integer
    inputs) turned into initializers holding the test's values; (model, frozen names)."""
    import onnx
    from onnx import numpy_helper
    model = case.model
    g = model.graph
    names = [i.name for i in g.input]
    values = dict(zip(names, inputs))
    freeze = set()
    for n in g.node:
        for k, name in enumerate(n.input):
            if name in values and k in PARAMETERS.get(n.op_type, ()):
                freeze.add(name)
    for vi in g.input:
        if vi.type.tensor_type.elem_type != _FLOAT:
            freeze.add(vi.name)
    keep = [vi for vi in g.input if vi.name not in freeze]
    del g.input[:]
    g.input.extend(keep)
    for name in names:
        if name in freeze:
            g.initializer.append(numpy_helper.from_array(np.asarray(values[name]), name))
    onnx.checker.check_model(model)
    return model, sorted(freeze, key=names.index)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _compare(got: dict, outputs: list, names: list, atol: float = ATOL) -> Optional[str]:
    """None when every output matches, else what differs."""
    from tinydeploy.data import sample_shape
    for name, want in zip(names, outputs):
        want = np.asarray(want)
        y = got[name]
        if tuple(y.shape[1:]) != sample_shape(want.shape):
            return f"output '{name}': shape {list(y.shape[1:])}, expected {list(sample_shape(want.shape))}"
        y = y[0].reshape(want.shape)
        if not np.allclose(y, want, rtol=RTOL, atol=atol, equal_nan=True):
            err = np.abs(y.astype(np.float64) - want)
            return f"output '{name}': max abs error {np.nanmax(err):.3g}"
    return None


def run_case(case: Case, c_code: bool = True, work: Optional[Path] = None) -> dict:
    """Compile and run one case. c_code: also build and run the generated C (else only
    the float IR interpreter). Returns {status, detail, frozen}."""
    from tinydeploy import api, data
    from tinydeploy.errors import TinydeployError
    from tinydeploy.golden import reference_outputs
    if case.name in OUT_OF_SCOPE_CASES:
        return dict(status=OUT_OF_SCOPE, detail=OUT_OF_SCOPE_CASES[case.name], frozen=[])
    with tempfile.TemporaryDirectory(prefix="td-node-", dir=work) as tmp:
        tmp = Path(tmp)
        frozen: list = []
        try:
            for k, (inputs, outputs) in enumerate(case.data_sets):
                import onnx
                model, frozen = frozen_model(case, inputs)
                path = tmp / f"{case.name}_{k}.onnx"
                onnx.save(model, str(path))
                live = {i.name for i in model.graph.input}
                feed = {vi.name: np.asarray(x).reshape((1,) + data.sample_shape(np.shape(x)))
                        for vi, x in zip(case.model.graph.input, inputs) if vi.name in live}
                result = api.compile(path, target="host", out_dir=tmp / f"lib{k}", quantize="float32")
                x = api.load_inputs(feed, result)
                xq = data.to_library_inputs(x, result.io, raw=False)
                runs = [reference_outputs(result.graph, xq)]
                if c_code:
                    runs.append(api._execute(result, xq, tmp, _NoBar())[0])
                names = [o.name for o in model.graph.output]
                for how, y in zip(("interpreter", "C"), runs):
                    got = data.from_library_outputs(y.reshape(len(xq), -1), result.io, False, data.input_dtype(x))
                    diff = _compare(got, outputs, names, ROUNDED_EXPECTATIONS.get(case.name, (ATOL,))[0])
                    if diff:
                        return dict(status=WRONG, detail=f"{how}: {diff}", frozen=frozen)
        except TinydeployError as exc:
            return dict(status=REFUSED, detail=_first_line(exc), frozen=frozen)
        except Exception as exc:  # a traceback: a bug
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            return dict(status=CRASH, detail=f"{type(exc).__name__}: {_first_line(exc)}",
                        traceback="".join(tb[-6:]), frozen=frozen)
    return dict(status=PASS_FROZEN if frozen else PASS, detail="", frozen=frozen)


class _NoBar:
    """A silent progress bar for api._execute."""

    def stage(self, label):
        return contextlib.nullcontext()

    def __call__(self, iterable, label=""):
        return iterable


# --------------------------------------------------------------------------
# The expectations file and README's table
# --------------------------------------------------------------------------
def load_expected() -> dict:
    return json.loads(EXPECTED.read_text())["cases"] if EXPECTED.exists() else {}


def save_expected(results: dict, cases: list) -> None:
    import onnx
    doc = dict(onnx=onnx.__version__, cases={c.name: dict(op=c.op, **{k: v for k, v in results[c.name].items()
                                                                       if k != "traceback"})
                                              for c in cases})
    EXPECTED.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def table(expected: dict) -> str:
    """README's per-op table (and the lists of refused and out-of-scope cases) as
    Markdown, from the expectations {case: {op, status, detail}}."""
    by_op = collections.defaultdict(list)
    for name, e in expected.items():
        by_op[e["op"]].append((name, e))
    counts = collections.Counter(e["status"] for e in expected.values())
    passed = counts[PASS] + counts[PASS_FROZEN]
    lines = [
        f"ONNX's own backend node tests (onnx {_onnx_version()}), generated from the `onnx` package's "
        "case modules: every float32 test whose ops tinydeploy lowers, compiled as float32 for the host "
        "and compared with the test's outputs (rtol 1e-4, atol 1e-5, exact shape) through the generated "
        "C and the float interpreter (`tests/test_onnx_node_suite.py`, docs/testing.md). "
        f"{passed} of {len(expected)} pass ({counts[PASS_FROZEN]} of them with weights given as graph "
        "inputs frozen into initializers, as a deployed model ships them), "
        f"{counts[OUT_OF_SCOPE]} are out of scope, {counts[REFUSED]} are refused with a message, "
        f"{counts[WRONG] + counts[CRASH]} fail.",
        "",
        "| ONNX op | node tests passed / selected | weights frozen | out of scope | refused |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in sorted(by_op, key=lambda o: (o == MULTI, o.endswith(EXPANDED), o)):
        st = collections.Counter(e["status"] for _, e in by_op[op])
        label = op.replace(EXPANDED, " (function body, `_expanded` tests)")
        lines.append(f"| {label} | {st[PASS] + st[PASS_FROZEN]} / {len(by_op[op])} | {st[PASS_FROZEN]} "
                     f"| {st[OUT_OF_SCOPE]} | {st[REFUSED]} |")
    reasons = collections.defaultdict(list)  # (op, status, message without the node name): cases
    for name, e in expected.items():
        if e["status"] not in PASSING:
            reasons[(e["op"], e["status"], re.sub(r"^node '[^']*' \(\w+\): ", "", e["detail"]))].append(name)
    if reasons:
        lines += ["", "Not passing, and why (tinydeploy's message, without the node's name):", ""]
        for (op, status, detail), names in reasons.items():
            cases = ", ".join(f"`{n}`" for n in names)
            lines.append(f"- {op}, {status} ({len(names)}): {detail.replace('|', chr(92) + '|')}: {cases}")
    return "\n".join(lines) + "\n"


def _onnx_version() -> str:
    if EXPECTED.exists():
        return json.loads(EXPECTED.read_text()).get("onnx", "?")
    import onnx
    return onnx.__version__


def readme_table() -> Optional[str]:
    """The generated part of README (between the markers), or None when absent."""
    text = README.read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        return None
    return text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].lstrip("\n")


def write_readme(expected: dict) -> None:
    text = README.read_text()
    block = f"{TABLE_BEGIN}\n{table(expected)}{TABLE_END}"
    if TABLE_BEGIN in text and TABLE_END in text:
        head, rest = text.split(TABLE_BEGIN, 1)
        text = head + block + rest.split(TABLE_END, 1)[1]
    else:
        anchor = "\nConstant subgraphs (Shape"
        head, tail = text.split(anchor, 1)
        text = head + "\n" + block + "\n" + anchor + tail
    README.write_text(text)
