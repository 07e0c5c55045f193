"""The Python API: compile, run, verify, bench, report (the CLI is a thin layer over these).

The facade that orchestrates: it compiles, loads user data (data.py) and hands
the results to the services (on_target for the emulated runs, report_html for
the page); no module below it imports it.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import codegen, data, frontend, kernel_select, on_target, ops, passes, planner, report_html, summary
from .data import load_inputs_for  # noqa: F401 (public here since before data.py)
from .errors import TinydeployError
from .golden import reference_outputs
from .ir import Graph
from .on_target import BenchResult, VerifyResult
from .report_html import ReportResult

PathLike = Union[str, Path]
REPORT = "report.json"
REPORT_HTML = "report.html"


@dataclass
class CompileResult:
    """What `compile` produced: the files, the optimized graph, its memory plan and figures."""

    out_dir: Optional[Path]
    name: str
    graph: Graph
    plan: planner.MemoryPlan
    report: dict
    io: dict = field(default_factory=dict)
    target: object = None


def _load_target(target, target_file=None):
    from . import targets
    return targets.load_target(target_file or target)


def _is_prequantized(g: Graph) -> bool:
    return any(op.kind in ("quantize", "dequantize") for op in g.ops) or \
        any(t.qdata is not None for t in g.tensors.values())


def build_graph(model: PathLike, input_shapes=None, quantize: str = "int8", calib=None,
                calib_method: str = "minmax", name: Optional[str] = None, progress=None) -> Graph:
    """ONNX file -> optimized (and, for int8, quantized) IR."""
    if quantize not in ("int8", "float32"):
        raise TinydeployError(f"--quantize must be int8 or float32, not '{quantize}'")
    g = frontend.load(str(model), input_shapes, name)
    prequantized = _is_prequantized(g)
    if quantize == "float32":
        if any(op.kind in ("quantize", "dequantize") for op in g.ops):
            raise TinydeployError("the model is pre-quantized (QuantizeLinear/DequantizeLinear on "
                                  "activations); compile it with --quantize int8")
        return passes.optimize(g)
    from . import quantize as quant  # the int8 stage
    if not prequantized and calib is None:
        raise TinydeployError("the model is a float model: pass calibration data with --calib DATA.npz "
                              "to quantize it to int8, or compile it as float with --quantize float32")
    return quant.to_int8(g, calib=calib, method=calib_method, progress=progress)


def compile(model: PathLike, target: str = "host", out_dir: Optional[PathLike] = None,
            name: str = "net", input_shapes=None, quantize: str = "int8", calib=None,
            calib_method: str = "minmax", target_file: Optional[PathLike] = None,
            progress=None, report: bool = False, inplace: bool = True,
            planner_method: str = "auto", kernel_scratch=planner.SCRATCH_GROWTH,
            weights_section: Optional[str] = None, arena_section: Optional[str] = None) -> CompileResult:
    """Compile an ONNX model into a C library in out_dir (or only plan it when out_dir is None).

    progress: a `progress(iterable, label)` wrapper for long work (calibration), e.g.
    tinydeploy.progress.Progress(); report: also write the HTML report (report.html).
    inplace: let outputs overwrite inputs that die (False: --no-inplace); planner_method:
    "auto" (greedy, plus the exact method on small graphs), "greedy" or "exact";
    kernel_scratch: how much kernel variants' scratch buffers may grow the arena: a fraction
    (default 1/16; a variant whose scratch does not fit falls back to the portable kernel),
    "fit" (0: only bytes that are free anyway) or "any" (no limit).
    weights_section / arena_section: linker section names for the weights (const arrays) and
    the arena (e.g. ".qspi_rodata", ".dtcm"); None: the compiler's default sections.
    """
    if not name.isidentifier() or not name.isascii():
        raise TinydeployError(f"--name '{name}' is not a valid C identifier")
    from .progress import get as get_progress
    for option, section in (("weights_section", weights_section), ("arena_section", arena_section)):
        if section is not None and not re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.$]*", section):
            raise TinydeployError(f"{option.replace('_', '-')} '{section}' is not a linker "
                                  "section name (letters, digits, '_', '.', '$')")
    tgt = _load_target(target, target_file)
    g = build_graph(model, input_shapes, quantize, calib, calib_method, name, get_progress(progress))
    from . import checks  # refuse int8 layers whose int32 arithmetic could overflow
    checks.check_graph(g)
    if kernel_scratch not in planner.SCRATCH_POLICIES and \
            not (isinstance(kernel_scratch, (int, float)) and kernel_scratch >= 0):
        raise TinydeployError(f"kernel_scratch must be one of {', '.join(planner.SCRATCH_POLICIES)} "
                              "or a fraction >= 0 (the arena may grow by that much for kernel scratch)")
    plan = plan_memory(g, tgt, inplace, planner_method, kernel_scratch)
    with tempfile.TemporaryDirectory(prefix="tinydeploy-") as tmp:
        staging = Path(tmp) / "out"
        gen = codegen.generate(g, plan, staging, name, Path(model).name, tgt.name, tgt,
                               weights_section, arena_section)
        from . import stack  # worst-case stack of one inference, by the compiler
        gen["stack"] = stack.measure(staging, name, tgt)
        figures = make_report(g, plan, gen, Path(model).name, tgt)
        figures["sections"] = dict(weights=weights_section, arena=arena_section)
        check_fits(figures, tgt)
        (staging / REPORT).write_text(json.dumps(figures, indent=2) + "\n")
        result = CompileResult(None, name, g, plan, figures, gen["io"], tgt)
        if report:
            report_html.write(result, staging / REPORT_HTML)
        if out_dir is not None:
            result.out_dir = _install(staging, Path(out_dir))
    return result


def plan_memory(g: Graph, tgt, inplace: bool = True, method: str = "auto",
                scratch=planner.SCRATCH_GROWTH) -> planner.MemoryPlan:
    """Schedule, in-place decisions, kernel selection and the arena plan (in this order:
    kernel providers see op.attrs["inplace"], the planner sees their scratch needs).
    scratch: the kernel-scratch policy of planner.plan (a growth fraction, "fit" or "any")."""
    from . import inplace as ip, schedule
    if method not in planner.METHODS:
        raise TinydeployError(f"--planner must be one of {', '.join(planner.METHODS)}, not '{method}'")
    ip.unfuse(g)
    if inplace:
        ip.fuse_residual_adds(g)
    sched = schedule.reorder(g, use_inplace=inplace)
    if inplace:
        ip.mark(g, planner.dies_at_fn(g))
    kernel_select.select(g, tgt)
    plan = planner.plan(g, method, scratch=scratch)
    if inplace:
        dropped = ip.release(g, plan.inplace_used)  # unused: let the op get a faster variant
        if dropped:
            kernel_select.select(g, tgt)
            retry = planner.plan(g, method, scratch=scratch)
            if retry.arena_bytes <= plan.arena_bytes:
                plan = retry
            else:
                ip.mark(g, planner.dies_at_fn(g))
                kernel_select.select(g, tgt)
                plan = planner.plan(g, method, scratch=scratch)
    plan.schedule = sched
    plan.inplace = inplace
    return plan


def _install(staging: Path, out_dir: Path) -> Path:
    """Move the finished output into place, replacing an earlier tinydeploy output only."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise TinydeployError(f"output path {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / REPORT).exists():
            raise TinydeployError(f"output directory {out_dir} is not empty and was not written by "
                                  "tinydeploy; choose another directory with -o")
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(staging, out_dir)
    return out_dir


def make_report(g: Graph, plan: planner.MemoryPlan, gen: dict, model_name: str, tgt) -> dict:
    from . import inplace as ip
    layers = []
    for layer in gen["layers"]:
        op = layer.op
        out = ip.layer_output(op)
        p = plan.placements[out]
        choice = op.attrs.get("choice")
        reads = [i for i in op.inputs if i and not g.tensors[i].is_const]
        mode = op.attrs.get("inplace")
        if mode is not None and mode["mode"] == "conv_add":
            reads.append(mode["residual"])
        entry = dict(name=op.name, op=op.kind if mode is None or mode["mode"] != "conv_add"
                     else f"{op.kind}+add_s8", kernel=layer.call.fn,
                     variant=choice.name if choice is not None else "portable", macs=ops.macs(g, op),
                     out_shape=list(g.tensors[out].shape), dtype=g.tensors[out].dtype,
                     output=out, arena_offset=p.offset, buffer=p.region, bytes=p.nbytes,
                     inputs=[dict(tensor=i, arena_offset=plan.placements[i].offset,
                                  bytes=g.tensors[i].nbytes) for i in reads],
                     weight_bytes=layer.weight_bytes)
        if mode is not None and op.name in plan.inplace_used:
            entry["inplace"] = mode["mode"] + (f" ({mode['direction']})" if mode.get("direction") else "")
        if op.name in plan.scratch:
            entry["scratch"] = dict(arena_offset=plan.scratch[op.name], bytes=choice.scratch_bytes)
        if choice is not None and choice.detail:
            entry["variant_detail"] = choice.detail
        q = g.tensors[out].quant
        if q is not None and g.tensors[out].dtype == "int8":
            entry["quant"] = dict(scale=float(q.scale.reshape(-1)[0]), zero_point=int(q.zero_point.reshape(-1)[0]))
        entry.update(op.attrs.get("report", {}))
        layers.append(entry)
    # The input and output live in the arena (NAME_input()/NAME_output()): no RAM outside it.
    # The generated code has no other static RAM (parameters and weights are const).
    io_outside = sum(g.tensors[n].nbytes for n in g.inputs + g.outputs
                     if plan.placements[n].region != "arena")
    flash = gen["weight_bytes"] + _code_estimate(gen)
    layer_index = {l.op.name: i for i, l in enumerate(gen["layers"])}
    timeline = [dict(step=layer_index[e["op"]], op=e["op"], live_bytes=e["live_bytes"],
                     live=[dict(t, kind="scratch") if t["tensor"].startswith("scratch:") else t
                           for t in e["live"]])
                for e in plan.timeline if e["op"] in layer_index]
    sched = getattr(plan, "schedule", None) or {}
    return {
        "model": model_name, "target": tgt.name, "macs": sum(ops.macs(g, op) for op in g.ops),
        "flash_bytes": flash, "weights_bytes": gen["weight_bytes"],
        "arena_bytes": plan.arena_bytes, "io_bytes": io_outside,
        "peak_ram_bytes": plan.arena_bytes + io_outside,
        "ram_lower_bound_bytes": plan.lower_bound_bytes,
        "memory": {
            "planner": plan.method, "optimal": plan.optimal, "greedy_bytes": plan.greedy_bytes,
            "exact_bytes": plan.exact_bytes, "inplace": bool(getattr(plan, "inplace", True)),
            "inplace_layers": sum(1 for l in layers if "inplace" in l),
            "schedule": sched.get("method"), "io_in_arena": True,
            "variants_dropped_for_ram": dict(plan.dropped_variants),
            "input_offset": plan.placements[g.inputs[0]].offset,
            "output_offset": plan.placements[g.outputs[0]].offset,
        },
        "max_stack_bytes": (gen.get("stack") or {}).get("max_stack_bytes"),
        "stack": gen.get("stack"),
        "input": gen["io"]["input"], "output": gen["io"]["output"],
        "kernels": gen["sources"], "layers": layers, "timeline": timeline,
    }


def _code_estimate(gen: dict) -> int:
    """Flash for code and parameter structs before measuring an ELF: a per-layer estimate."""
    return 2048 + 96 * len(gen["layers"]) + 1536 * len(gen["sources"])


def check_fits(report: dict, tgt) -> None:
    problems = []
    for what, need, have in (("RAM", report["peak_ram_bytes"], tgt.sram_bytes),
                             ("flash", report["flash_bytes"], tgt.flash_bytes)):
        if have and need > have:
            problems.append(f"{what}: needs {need:,} bytes, {tgt.name} has {have:,} "
                            f"({need - have:,} bytes over)")
    if problems:
        raise TinydeployError("the model does not fit the target:\n  " + "\n  ".join(problems) +
                              "\nchoose a target with more memory or a smaller model")


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------
def load_inputs(path_or_arrays, result: CompileResult) -> np.ndarray:
    """The samples for the model's one input from an npz file (or dict), checked."""
    return data.load_model_inputs(path_or_arrays, result.io)


@dataclass
class RunResult:
    """Outputs of `run` ({output name: array [samples, ...]}) and the build's figures."""

    outputs: dict
    report: dict
    instructions: Optional[list] = None  # per sample, on emulated targets


def run(model: PathLike, inputs, target: str = "host", raw: bool = False, golden: bool = False,
        toolchain: str = "gcc", **compile_options) -> RunResult:
    """Compile, build, and run every sample of `inputs` (npz path or {name: array}).
    golden=True: the reference model instead of C (the bit-exact golden model for int8
    builds, the float interpreter for float32 builds). toolchain: "gcc" or "clang" builds the C."""
    from . import hostrun
    from .progress import get as get_progress
    bar = get_progress(compile_options.get("progress"))
    with tempfile.TemporaryDirectory(prefix="tinydeploy-run-") as tmp:
        result = compile(model, target=target, out_dir=Path(tmp) / "lib", **compile_options)
        x = load_inputs(inputs, result)
        xq = data.to_library_input(x, result.io, raw)
        out = result.io["output"]
        sample_shape = out["shape"][1:] if out["shape"] and out["shape"][0] == 1 else out["shape"]
        instructions = None
        if golden:
            y = reference_outputs(result.graph, bar(xq, "golden model"))
        elif result.target.arch == "host":
            with bar.stage("building for the host"):
                exe = hostrun.build(result.out_dir, result.name, result.io, Path(tmp) / "model",
                                    cc=None if toolchain == "gcc" else toolchain)
            with bar.stage(f"running {len(xq)} sample(s)"):
                y = hostrun.run(exe, xq, out["dtype"], sample_shape)
        else:
            with bar.stage(f"building and running {len(xq)} sample(s) on {result.target.name}'s "
                           "emulator"):
                y, instructions = on_target.run_on_target(result, xq, Path(tmp), toolchain)
        y = data.from_library_output(y.reshape((len(x),) + tuple(sample_shape)), result.io, raw, x.dtype)
        return RunResult({out["name"]: y}, result.report, instructions)


# --------------------------------------------------------------------------
# On the target's emulator
# --------------------------------------------------------------------------
def verify(model: PathLike, target: str, inputs=None, samples: int = on_target.DEFAULT_SAMPLES,
           progress=None, toolchain: str = "gcc", **compile_options) -> VerifyResult:
    """Compile for `target`, run on its emulator, compare with the golden model (bit for bit).
    toolchain: "gcc" (the target's) or "clang" compiles the library.

    progress: None (silent), True, or a tinydeploy.progress.Progress for bars on stderr."""
    with tempfile.TemporaryDirectory(prefix="tinydeploy-verify-") as tmp:
        work = Path(tmp)
        result = compile(model, target=target, out_dir=work / "lib", progress=progress,
                         **compile_options)
        if inputs is None:
            xq = data.default_inputs(result.io, samples)
        else:
            xq = data.to_library_input(load_inputs(inputs, result), result.io, raw=False)
        return on_target.compare(result, xq, work, progress, toolchain)


def bench(model: PathLike, target: str, progress=None, toolchain: str = "gcc",
          **compile_options) -> BenchResult:
    """Instructions per inference (total and per layer), flash and RAM on the emulated target
    (the library compiled with `toolchain`: "gcc" or "clang")."""
    with tempfile.TemporaryDirectory(prefix="tinydeploy-bench-") as tmp:
        result = compile(model, target=target, out_dir=Path(tmp) / "lib", progress=progress,
                         **compile_options)
        return on_target.measure(result, Path(tmp), progress, toolchain)


def bench_compiled(result: CompileResult, progress=None) -> BenchResult:
    """`bench` for a library `compile` already wrote (result.out_dir): no second compile."""
    if result.out_dir is None:
        raise TinydeployError("bench needs the compiled library: compile with an out_dir")
    with tempfile.TemporaryDirectory(prefix="tinydeploy-bench-") as tmp:
        return on_target.measure(result, Path(tmp), progress)


def report(model: PathLike, target: str = "host", output="report.html", bench: bool = False,
           min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB, progress=None,
           **compile_options) -> ReportResult:
    """Compile `model` for `target` and write the HTML report to `output`.

    With bench=True the model is also run on the target's emulator (from the same
    compile) and the page shows instruction counts per layer and the latency estimate.
    The library itself is not kept: the result's out_dir is None.
    """
    with tempfile.TemporaryDirectory(prefix="tinydeploy-report-") as tmp:
        work = Path(tmp)
        # the emulator needs the library's files; the page alone needs none
        result = compile(model, target=target, out_dir=work / "lib" if bench else None,
                         progress=progress, **compile_options)
        bench_result = on_target.measure(result, work, progress) if bench else None
        result.out_dir = None  # the temporary directory is gone on return
    path = report_html.write(result, output, bench_result, min_sqnr_db)
    return ReportResult(path, result, bench_result,
                        summary.figures(result.report, result.target, bench_result), min_sqnr_db)
