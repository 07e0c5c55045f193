"""The Python API: compile, run, verify, bench, report (the CLI is a thin layer over these).

The facade that orchestrates: it compiles, loads user data (data.py) and hands
the results to the services (on_target for the emulated runs, report_html for
the page); no module below it imports it.
"""
from __future__ import annotations

import dataclasses

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import codegen, data, frontend, kernel_select, on_target, ops, passes, planner, report_html, shards, summary
from .data import load_inputs_for  # noqa: F401 (public here since before data.py)
from .errors import TinydeployError
from .golden import reference_outputs
from .ir import Graph
from .on_target import BenchResult, VerifyResult
from .report_html import ReportResult
from .validation import ValidateResult

PathLike = Union[str, Path]
REPORT = "report.json"
REPORT_HTML = "report.html"
MAX_NAME = 64  # the generated identifiers and file names start with it


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
    if target_file is not None and not Path(target_file).is_file():
        raise TinydeployError(f"target file not found: {target_file}")
    return targets.load_target(target_file or target)


def _is_prequantized(g: Graph) -> bool:
    """QDQ ops, int8 constants, or (an int8 .tflite file without weights: e.g. one
    BATCH_MATMUL of two inputs) quantized activations."""
    return any(op.kind in ("quantize", "dequantize") for op in g.ops) or \
        any(t.qdata is not None or (not t.is_const and t.quant is not None) for t in g.tensors.values())


def build_graph(model: PathLike, input_shapes=None, quantize: str = "int8", calib=None,
                calib_method: str = "minmax", name: Optional[str] = None, progress=None,
                weights: str = "int8", int4_budget_db: float = 1.0) -> Graph:
    """ONNX file -> optimized (and, for int8, quantized) IR.  weights / int4_budget_db:
    int8, int4 or mixed weights (quantize.to_int8)."""
    if quantize not in ("int8", "float32"):
        raise TinydeployError(f"--quantize must be int8 or float32, not '{quantize}'")
    from .progress import get as get_progress
    bar = get_progress(progress)
    with bar.stage(f"reading {Path(model).name}"):
        g = frontend.load(str(model), input_shapes, name)
    prequantized = _is_prequantized(g)
    if quantize == "float32":
        if weights != "int8":
            raise TinydeployError(f"--weights {weights} applies to int8 builds, not --quantize float32")
        if any(op.kind in ("quantize", "dequantize") for op in g.ops):
            raise TinydeployError("the model is pre-quantized (QuantizeLinear/DequantizeLinear on "
                                  "activations); compile it with --quantize int8")
        with bar.stage("optimizing the graph"):
            return passes.optimize(g, fuse_attention=True)
    from . import quantize as quant  # the int8 stage
    if not prequantized and calib is None:
        raise TinydeployError("the model is a float model: pass calibration data with --calib DATA.npz "
                              "to quantize it to int8, or compile it as float with --quantize float32")
    return quant.to_int8(g, calib=calib, method=calib_method, progress=progress, weights=weights,
                         int4_budget_db=int4_budget_db)


def compile(model: PathLike, target: str = "host", out_dir: Optional[PathLike] = None,
            name: str = "net", input_shapes=None, quantize: str = "int8", calib=None,
            calib_method: str = "minmax", target_file: Optional[PathLike] = None,
            progress=None, report: bool = False, inplace: bool = True,
            planner_method: str = "auto", kernel_scratch=planner.SCRATCH_GROWTH,
            weights_section: Optional[str] = None, arena_section: Optional[str] = None,
            optimize: str = "balanced", weights: str = "int8",
            int4_budget_db: float = 1.0) -> CompileResult:
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
    optimize: "size" (int8 weights in every fast kernel), "speed" (pre-widened int16 weights
    where a kernel has them) or "balanced" (int8, except the layers where int16 saves the
    most instructions per byte; see kernel_select).
    weights: "int8", "int4" (every convolution and fully connected layer, packed two per
    byte) or "mixed" (int4 where the model's output SQNR on the calibration data drops by
    at most int4_budget_db in all; quantize.choose_int4).
    """
    if not name.isidentifier() or not name.isascii():
        raise TinydeployError(f"--name '{name}' is not a valid C identifier")
    if len(name) > MAX_NAME:
        raise TinydeployError(f"--name is {len(name)} characters long; give a C prefix of at most {MAX_NAME}")
    from .progress import get as get_progress
    bar = get_progress(progress)
    for option, section in (("weights_section", weights_section), ("arena_section", arena_section)):
        if section is not None and not re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.$]*", section):
            raise TinydeployError(f"{option.replace('_', '-')} '{section}' is not a linker "
                                  "section name (letters, digits, '_', '.', '$')")
    tgt = _load_target(target, target_file)
    if optimize not in kernel_select.OPTIMIZE_MODES:
        raise TinydeployError(f"optimize must be one of {', '.join(kernel_select.OPTIMIZE_MODES)}, "
                              f"not '{optimize}'")
    if kernel_scratch not in planner.SCRATCH_POLICIES and \
            not (isinstance(kernel_scratch, (int, float)) and kernel_scratch >= 0):
        raise TinydeployError(f"kernel_scratch must be one of {', '.join(planner.SCRATCH_POLICIES)} "
                              "or a fraction >= 0 (the arena may grow by that much for kernel scratch)")
    if weights not in ("int8", "int4", "mixed"):
        raise TinydeployError(f"weights must be one of int8, int4, mixed, not '{weights}'")
    if not (isinstance(int4_budget_db, (int, float)) and 0 <= int4_budget_db < float("inf")):
        raise TinydeployError(f"--int4-budget-db must be a number of dB >= 0, not {int4_budget_db}")
    g = build_graph(model, input_shapes, quantize, calib, calib_method, name, bar, weights, int4_budget_db)
    from . import checks  # refuse int8 layers whose int32 arithmetic could overflow
    checks.check_graph(g)
    g.make_op_names_unique()
    with bar.stage(f"planning memory for {tgt.name}"):
        plan = plan_memory(g, tgt, inplace, planner_method, kernel_scratch, optimize)
    with tempfile.TemporaryDirectory(prefix="tinydeploy-") as tmp:
        staging = Path(tmp) / "out"

        def generate(plan, where: Path = staging):
            from . import stack  # worst-case stack of one inference, by the compiler
            if where.exists():
                shutil.rmtree(where)
            gen = codegen.generate(g, plan, where, name, Path(model).name, tgt.name, tgt,
                                   weights_section, arena_section)
            gen["stack"] = stack.measure(where, name, tgt)
            return gen
        with bar.stage("generating C"):
            gen = generate(plan)
            if optimize == "balanced":
                plan, gen = _balance(g, plan, gen, generate, lambda fast: plan_memory(
                    g, tgt, inplace, planner_method, kernel_scratch, optimize, fast), tgt.flash_bytes)
            size_flash, fallback = None, None
            chosen = library_flash(gen)

            def take(trial_plan, trial_gen, where: Path) -> tuple:
                """The trial build in `where` becomes the output (no second generation)."""
                shutil.rmtree(staging)
                shutil.move(str(where), str(staging))
                return (dict(mode="size", chosen_flash_bytes=chosen,
                             portable_layers=_fit_only_layers(trial_plan),
                             extra_instructions=_extra_instructions(trial_plan) -
                             _extra_instructions(plan)), trial_plan, trial_gen)
            if tgt.flash_bytes and chosen > tgt.flash_bytes and optimize != "size":
                # over the board's flash: would the compact kernels of --optimize size fit?
                small = plan_memory(g, tgt, inplace, planner_method, kernel_scratch, "size")
                small_gen = generate(small, Path(tmp) / "size")
                size_flash = library_flash(small_gen)
                if optimize == "balanced" and size_flash <= tgt.flash_bytes:
                    # balanced fits the board where a mode can: it takes size's kernels
                    fallback, plan, gen = take(small, small_gen, Path(tmp) / "size")
            fit_flash, least = None, None
            if (tgt.flash_bytes and fallback is None and
                    (size_flash if size_flash is not None else chosen) > tgt.flash_bytes):
                # even size's build is over: the portable kernel where a fast one's code is
                # large (kernel_select.FIT), if that fits (balanced and size take it)
                least = plan_memory(g, tgt, inplace, planner_method, kernel_scratch, kernel_select.FIT)
                least_gen = generate(least, Path(tmp) / "fit")
                fit_flash = library_flash(least_gen)
                if fit_flash <= tgt.flash_bytes and optimize != "speed":
                    fallback, plan, gen = take(least, least_gen, Path(tmp) / "fit")
        figures = make_report(g, plan, gen, Path(model).name, tgt)
        # how a float model's ranges were calibrated (None: float32 build or a QDQ model's own)
        figures["calib_method"] = calib_method if calib is not None and quantize == "int8" else None
        figures["sections"] = dict(weights=weights_section, arena=arena_section)
        figures["optimize"] = optimize
        # over the board's flash as chosen, so built as --optimize size (and with the portable
        # kernel in portable_layers where even that was over); None: as chosen
        figures["optimize_fallback"] = fallback
        figures["weights"] = dict(mode=weights, int4_budget_db=int4_budget_db if weights == "mixed" else None,
                                  int4_layers=sum(1 for op in g.ops if g.int4_weights(op)))
        hint = ""
        ram_fits = not tgt.sram_bytes or figures["total_ram_bytes"] <= tgt.sram_bytes
        flash = figures["flash_bytes"]
        if tgt.flash_bytes and flash > tgt.flash_bytes and optimize != "size" and ram_fits:
            # would the compact kernels make it fit?  (measured above, on failure only)
            flash = size_flash
            if flash <= tgt.flash_bytes:
                extra = _extra_instructions(small) - _extra_instructions(plan)
                hint = (f"\n--optimize size makes it fit: flash {flash:,} bytes (int8 weights in "
                        f"every fast kernel, about {extra:,} more instructions per inference)")
            elif fit_flash is not None and fit_flash <= tgt.flash_bytes:
                flash = fit_flash
                extra = _extra_instructions(least) - _extra_instructions(plan)
                n = len(_fit_only_layers(least))
                hint = (f"\n--optimize size makes it fit: flash {flash:,} bytes (int8 weights in "
                        f"every fast kernel and the portable kernel in {n} layer{'s' if n > 1 else ''}, "
                        f"about {extra:,} more instructions per inference)")
            else:
                flash = min(flash, fit_flash if fit_flash is not None else flash)
                hint = (f"\n--optimize size does not make it fit either: flash {flash:,} bytes "
                        f"({flash - tgt.flash_bytes:,} bytes over)")
        if tgt.flash_bytes and flash > tgt.flash_bytes and ram_fits and weights == "int8":
            hint += _int4_hint(g, flash, tgt.flash_bytes)
        check_fits(figures, tgt, hint)
        (staging / REPORT).write_text(json.dumps(figures, indent=2) + "\n")
        result = CompileResult(None, name, g, plan, figures, gen["io"], tgt)
        if report:
            report_html.write(result, staging / REPORT_HTML)
        if out_dir is not None:
            result.out_dir = _install(staging, Path(out_dir))
    return result


def plan_memory(g: Graph, tgt, inplace: bool = True, method: str = "auto",
                scratch=planner.SCRATCH_GROWTH, optimize: str = "balanced",
                keep_fast: frozenset = frozenset()) -> planner.MemoryPlan:
    """Schedule, in-place decisions, kernel selection and the arena plan (in this order:
    kernel providers see the in-place decisions, the planner sees their scratch needs).
    Each stage returns its decisions; the plan holds the ones codegen emits
    (MemoryPlan.inplace_modes, MemoryPlan.choices, MemoryPlan.schedule).  Only the
    schedule's order is applied to the graph (g.ops).  scratch: the kernel-scratch policy of planner.plan
    (a growth fraction, "fit" or "any")."""
    from . import inplace as ip, schedule
    if method not in planner.METHODS:
        raise TinydeployError(f"--planner must be one of {', '.join(planner.METHODS)}, not '{method}'")
    modes = ip.fuse_residual_adds(g) if inplace else {}
    sched = schedule.reorder(g, use_inplace=inplace, modes=modes)
    schedule.apply(g, sched)
    if inplace:
        modes = ip.mark(g, planner.dies_at_fn(g, modes), modes)
    choices = kernel_select.select(g, tgt, modes, optimize, keep_fast)
    plan = planner.plan(g, method, scratch=scratch, modes=modes, choices=choices)
    if inplace:
        kept = ip.release(modes, plan.inplace_used)  # unused: let the op get a faster variant
        if kept != modes:
            retry = planner.plan(g, method, scratch=scratch, modes=kept,
                                 choices=kernel_select.select(g, tgt, kept, optimize, keep_fast))
            if retry.arena_bytes <= plan.arena_bytes:
                plan = retry
    return replace(plan, schedule=sched, inplace=inplace)


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


WEIGHTED_KINDS = ("conv2d_s8", "depthwise_conv2d_s8", "fully_connected_s8")  # int8 or int4 weights


def code_breakdown(gen: dict) -> Optional[dict]:
    """The library's code bytes by where they are (None when the compiler did not measure
    them): "layers", the layers' own generated functions in NAME.c; "run_and_parameters",
    the rest of NAME.c (the run functions and the layers' parameter structs); "runtime",
    each runtime kernel file's object.  They add up to report.json's code_bytes."""
    stack_result = gen.get("stack") or {}
    units = stack_result.get("units")
    if not units:
        return None
    main = stack_result["entry"][:-len("_run")] + ".c"
    own = {l.function for l in gen["layers"] if l.shared_with is None}
    functions = units.get(main, {}).get("functions", {})
    layers = sum(functions.get(f, 0) for f in own)
    return dict(layers=layers, run_and_parameters=units.get(main, {}).get("flash_bytes", 0) - layers,
                runtime={n: u["flash_bytes"] for n, u in sorted(units.items()) if n != main},
                functions=functions)


def make_report(g: Graph, plan: planner.MemoryPlan, gen: dict, model_name: str, tgt) -> dict:
    from . import inplace as ip
    code = code_breakdown(gen)
    layers = []
    for layer in gen["layers"]:
        op = layer.op
        mode = plan.mode(op.name)
        out = ip.layer_output(op, mode)
        p = plan.placements[out]
        choice = plan.choice(op.name)
        reads = [i for i in op.inputs if i and not g.tensors[i].is_const]
        if mode is not None and mode.fused:
            reads.append(mode.residual)
        entry = dict(name=op.name, op=op.kind if mode is None or not mode.fused
                     else f"{op.kind}+add_s8", kernel=layer.call.fn,
                     variant=choice.name if choice is not None else "portable", macs=ops.macs(g, op),
                     out_shape=list(g.tensors[out].shape), dtype=g.tensors[out].dtype,
                     output=out, arena_offset=p.offset, buffer=p.region, bytes=p.nbytes,
                     inputs=[dict(tensor=i, arena_offset=plan.placements[i].offset,
                                  bytes=g.tensors[i].nbytes) for i in reads],
                     weight_bytes=layer.weight_bytes,
                     # the C function the layer calls; shared_with: the index of the earlier layer
                     # whose generated function it runs (one copy of the code), else null
                     function=layer.function, shared_with=layer.shared_with,
                     # bytes of the layer's own generated function (0: it runs an earlier
                     # layer's, shared_with, or a runtime kernel: "code" "runtime")
                     code_bytes=None if code is None else
                     0 if layer.shared_with is not None else code["functions"].get(layer.function, 0))
        if mode is not None and op.name in plan.inplace_used:
            entry["inplace"] = mode.mode + (f" ({mode.direction})" if mode.direction else "")
        if op.name in plan.scratch:
            entry["scratch"] = dict(arena_offset=plan.scratch[op.name], bytes=choice.scratch_bytes)
        if op.name in plan.own_scratch:  # the scratch the op's own kernel needs (OpDef.scratch)
            offset, nbytes = plan.own_scratch[op.name]
            entry["scratch"] = dict(arena_offset=offset, bytes=nbytes)
        if choice is not None and choice.detail:
            entry["variant_detail"] = choice.detail + (
                f" ({layer.call.detail})" if layer.call.detail else "")
        if op.kind in ("attention", "attention_s8"):  # how its memory grows with the tokens
            entry["attention"] = ops.attention.report_entry(g, op)
            if op.name in plan.own_scratch:
                entry["attention"]["scratch_offset"] = plan.own_scratch[op.name][0]
        q = g.tensors[out].quant
        if q is not None and g.tensors[out].dtype == "int8":
            entry["quant"] = dict(scale=float(q.scale.reshape(-1)[0]), zero_point=int(q.zero_point.reshape(-1)[0]))
        if op.sqnr_db is not None:
            entry["sqnr_db"] = op.sqnr_db
        if op.kind in WEIGHTED_KINDS:  # the type its weights ship in, and what int4 cost (mixed)
            entry["weights"] = "int4" if g.int4_weights(op) else "int8"
            if op.int4_cost_db is not None:
                entry["int4_sqnr_cost_db"] = op.int4_cost_db
        layers.append(entry)
    # The input and output live in the arena (NAME_input()/NAME_output()): no RAM outside it.
    # The generated code has no other static RAM (parameters and weights are const).
    io_outside = sum(g.tensors[n].nbytes for n in g.inputs + g.outputs
                     if plan.placements[n].region != "arena")
    flash = library_flash(gen)
    layer_index = {l.op.name: i for i, l in enumerate(gen["layers"])}
    timeline = [dict(step=layer_index[e["op"]], op=e["op"], live_bytes=e["live_bytes"],
                     live=[dict(t, kind="scratch") if t["tensor"].startswith("scratch:") else t
                           for t in e["live"]])
                for e in plan.timeline if e["op"] in layer_index]
    sched = plan.schedule
    figures = {
        "model": model_name, "target": tgt.name, "macs": sum(ops.macs(g, op) for op in g.ops),
        "flash_bytes": flash, "weights_bytes": gen["weight_bytes"],
        "code_bytes": flash - gen["weight_bytes"], "weights_int8_bytes": int8_weight_bytes(g),
        # code_bytes by where the code is (code_breakdown; None: not compiled)
        "code": None if code is None else {k: v for k, v in code.items() if k != "functions"},
        "arena_bytes": plan.arena_bytes, "io_bytes": io_outside,
        "peak_ram_bytes": plan.arena_bytes + io_outside,
        "ram_lower_bound_bytes": plan.lower_bound_bytes,
        "memory": {
            "planner": plan.method, "optimal": plan.optimal, "greedy_bytes": plan.greedy_bytes,
            "exact_bytes": plan.exact_bytes, "inplace": plan.inplace,
            "inplace_layers": sum(1 for l in layers if "inplace" in l),
            "schedule": sched.method if sched is not None else None, "io_in_arena": True,
            "variants_dropped_for_ram": dict(plan.dropped_variants),
            "input_offset": plan.placements[g.inputs[0]].offset,
            "output_offset": plan.placements[g.outputs[0]].offset,
        },
        "inputs": gen["io"]["inputs"], "outputs": gen["io"]["outputs"],
        "max_stack_bytes": (gen.get("stack") or {}).get("max_stack_bytes"),
        # the RAM one inference needs: the arena (and any I/O outside it) plus the worst-case
        # stack of the library's call tree; the fit check holds this against the SRAM
        "total_ram_bytes": plan.arena_bytes + io_outside + ((gen.get("stack") or {}).get("max_stack_bytes") or 0),
        "stack": gen.get("stack"),
        "input": gen["io"]["input"], "output": gen["io"]["output"],
        "kernels": gen["sources"], "layers": layers, "timeline": timeline,
    }
    fused = [dict(layer=l["name"], **l["attention"]) for l in layers if "attention" in l]
    if fused:  # graphs with fused attention: how peak RAM grows with the sequence length
        figures["attention"] = {
            "fused_layers": len(fused), "tokens": max(f["tokens"] for f in fused),
            "scratch_bytes": max(f["scratch_bytes"] for f in fused),
            "unfused_scores_bytes": max(f["unfused_scores_bytes"] for f in fused),
            "note": ops.attention.NOTE, "layers": fused}
    return figures


# --optimize balanced: the library's flash may exceed the model's int8 weights by this
# much (code, parameters, int16 copies of the weights where they save instructions)
BALANCED_HEADROOM = 32 * 1024


def _balance(g: Graph, compact, gen: dict, generate, replan, flash_bytes: Optional[int] = None):
    """--optimize balanced: the flash the compact build leaves below int8 weights +
    BALANCED_HEADROOM (for a compact build already over that line: BALANCED_MIN_SPEND above
    it; never beyond the target's flash_bytes) buys the fast (int16-weight) kernels where
    they save the most instructions per byte.  The choice counts the bytes of their weight
    streams; the code they bring is known only once compiled: when a build goes over, the
    byte budget of the next round is scaled by what the trial spent per counted byte (a few
    rounds, then the compact build)."""
    # the flash it may reach: int8 weights + the headroom; a model whose compact build is
    # already over that line may go BALANCED_MIN_SPEND above it (int16 weights in its few
    # layers where they pay the most); one below the line never crosses it
    line = BALANCED_HEADROOM + int8_weight_bytes(g)
    base = library_flash(gen)
    limit = line if base <= line else base + BALANCED_MIN_SPEND
    if flash_bytes:
        # a board smaller than that: what the compact build leaves of it
        limit = min(limit, max(base, flash_bytes))
    budget = headroom = limit - base
    tried = False
    for _ in range(BALANCE_ROUNDS):
        fast = kernel_select.balance(compact.choices, headroom)
        if not fast:
            break
        plan = replan(fast)
        trial = generate(plan)
        tried = True
        if library_flash(trial) <= limit:
            return plan, trial
        counted = sum(compact.choices[k].flash_saved for k in fast)
        spent = library_flash(trial) - base
        headroom = min(counted - 1, counted * budget // max(spent, 1))
    # nothing bought (or nothing fits): the compact build, generated again when a trial
    # has overwritten it
    return compact, (generate(compact) if tried else gen)


BALANCE_ROUNDS = 5
BALANCED_MIN_SPEND = 4 * 1024


def library_flash(gen: dict) -> int:
    """The library's flash: its constant data plus the code and parameters, as compiled
    for the target when the stack measurement compiled them (else an estimate)."""
    code = (gen.get("stack") or {}).get("code_bytes")
    return gen["weight_bytes"] + (code if code is not None else _code_estimate(gen))


def int8_weight_bytes(g: Graph) -> int:
    """The model's parameters as an int8 .tflite file stores them: the int8 constants
    (weights; int4 ones packed, two per byte) and the int32 ones (biases)."""
    used = {i for op in g.ops for i in op.inputs}
    return sum(t.nbytes for n, t in g.tensors.items()
               if t.is_const and t.dtype in ("int8", "int4", "int32") and n in used)


def _code_estimate(gen: dict) -> int:
    """Flash for code and parameter structs before measuring an ELF: a per-layer estimate."""
    return 2048 + 96 * len(gen["layers"]) + 1536 * len(gen["sources"])


def _int4_hint(g: Graph, flash: int, have: int) -> str:
    """What int4 weights would do to a library of `flash` bytes (size mode's build) that is
    over the board's `have`: the convolution and fully connected weights in half the bytes,
    plus the shift word a channel that the int4 kernels keep and size mode packs into the
    bias word (an estimate)."""
    layers = [op for op in g.ops
              if op.kind in WEIGHTED_KINDS and g.tensors[op.inputs[1]].dtype == "int8"]
    weights = {op.inputs[1]: g.tensors[op.inputs[1]].nbytes for op in layers}
    total = sum(weights.values())
    if not total:
        return ""
    channels = sum(g.tensors[op.outputs[0]].shape[-1] for op in layers)  # NHWC, [rows][out]
    est = flash - total // 2 + 4 * channels
    verdict = "fits" if est <= have else f"still {est - have:,} bytes over"
    return (f"\n--weights int4 stores the {total:,} bytes of convolution and fully connected "
            f"weights in half: about {est:,} bytes of flash ({verdict}); --weights mixed takes int4 "
            "only where it costs at most --int4-budget-db of output SQNR on the --calib data")


def _fit_only_layers(plan: planner.MemoryPlan) -> list:
    """The layers that run the portable kernel because even size's build was over the
    board's flash (Choice.fit_only)."""
    return sorted(k for k, c in plan.choices.items() if c is not None and c.fit_only)


def _extra_instructions(plan: planner.MemoryPlan) -> int:
    """Estimated instructions per inference the plan's compact (int8-weight) variants cost."""
    return sum(c.extra_instructions for c in plan.choices.values() if c is not None)


def check_fits(report: dict, tgt, hint: str = "") -> None:
    problems = []
    stack = report.get("max_stack_bytes") or 0
    ram_detail = (f" (arena {report['peak_ram_bytes']:,} B + worst-case stack {stack:,} B)" if stack else "")
    for what, need, have, detail in (
            ("RAM", report.get("total_ram_bytes", report["peak_ram_bytes"]), tgt.sram_bytes, ram_detail),
            ("flash", report["flash_bytes"], tgt.flash_bytes, "")):
        if have and need > have:
            problems.append(f"{what}: needs {need:,} bytes{detail}, {tgt.name} has {have:,} "
                            f"({need - have:,} bytes over)")
    if problems:
        raise TinydeployError("the model does not fit the target:\n  " + "\n  ".join(problems) +
                              (hint or "\nchoose a target with more memory or a smaller model"))


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------
def load_inputs(path_or_arrays, result: CompileResult):
    """The samples for the model's input from an npz file (or dict), checked: one array
    [N, ...]; a model with several inputs: {input name: array}, one per input."""
    return data.load_model_inputs(path_or_arrays, result.io)


@dataclass
class RunResult:
    """Outputs of `run` ({output name: array [samples, ...]}, every output of the model
    in its order) and the build's figures."""

    outputs: dict
    report: dict
    instructions: Optional[list] = None  # per sample, on emulated targets
    est_ms: Optional[list] = None        # per sample: the cycle model's estimate (docs/cycle-model.md)
    cycle_model: Optional[str] = None


def run(model: PathLike, inputs, target: str = "host", raw: bool = False, golden: bool = False,
        toolchain: str = "gcc", **compile_options) -> RunResult:
    """Compile, build, and run every sample of `inputs` (npz path or {name: array}; a model
    with several inputs takes one array per input, named as the input).
    golden=True: the reference model instead of C (the bit-exact golden model for int8
    builds, the float interpreter for float32 builds). toolchain: "gcc" or "clang" builds the C."""
    from .progress import get as get_progress
    bar = get_progress(compile_options.get("progress"))
    with tempfile.TemporaryDirectory(prefix="tinydeploy-run-") as tmp:
        result = compile(model, target=target, out_dir=Path(tmp) / "lib", **compile_options)
        x = load_inputs(inputs, result)
        xq = data.to_library_inputs(x, result.io, raw)
        n = len(xq)
        instructions = est_ms = cycle_model = None
        if golden:
            y = reference_outputs(result.graph, bar(xq, "golden model"))
        else:
            y, instructions, est_ms, cycle_model = _execute(result, xq, Path(tmp), bar, toolchain)
        outputs = data.from_library_outputs(y.reshape(n, -1), result.io, raw, data.input_dtype(x))
        return RunResult(outputs, result.report, instructions, est_ms, cycle_model)


def _execute(result: CompileResult, xq: np.ndarray, work: Path, bar, toolchain: str = "gcc",
             executor: Optional[shards.Executor] = None) -> tuple:
    """Run the library in result.out_dir on samples xq (as the library takes them; several
    inputs packed per sample): built for the host and run there, or built for the MCU and
    run on its emulator. (outputs [N, ...], instructions, estimated ms per sample, the cycle
    model's name; the last three None on the host). toolchain: "gcc" or "clang" builds the C."""
    from . import hostrun
    if result.target.arch == "host":
        with bar.stage("building for the host"):
            exe = hostrun.build(result.out_dir, result.name, result.io, work / "model",
                                cc=None if toolchain == "gcc" else toolchain)
        with bar.stage(f"running {len(xq)} sample(s)"):
            return hostrun.run(exe, xq, result.io["output"]["dtype"],
                               (hostrun.packed_io(result.io)["out_size"],)), None, None, None
    with bar.stage(f"building and running {len(xq)} sample(s) on {result.target.name}'s emulator"):
        return on_target.run_estimated(result, xq, work, toolchain, executor)


# --------------------------------------------------------------------------
# On the target's emulator
# --------------------------------------------------------------------------
def verify(model: PathLike, target: str, inputs=None, samples: int = on_target.DEFAULT_SAMPLES,
           progress=None, toolchain: str = "gcc", jobs: int = 1, ray_address: Optional[str] = None,
           **compile_options) -> VerifyResult:
    """Compile for `target`, run on its emulator, compare with the golden model (bit for bit).
    toolchain: "gcc" (the target's) or "clang" compiles the library. jobs > 1 or ray_address
    ("auto", host:port, "local"): split the samples into shards run in parallel, on local
    workers or as Ray tasks (the same results as one run; see tinydeploy.shards).

    progress: None (silent), True, or a tinydeploy.progress.Progress for bars on stderr."""
    with tempfile.TemporaryDirectory(prefix="tinydeploy-verify-") as tmp:
        work = Path(tmp)
        result = compile(model, target=target, out_dir=work / "lib", progress=progress,
                         **compile_options)
        if inputs is None:
            xq = data.default_inputs(result.io, samples)
        else:
            xq = data.to_library_inputs(load_inputs(inputs, result), result.io, raw=False)
        return on_target.compare(result, xq, work, progress, toolchain, shards.Executor(jobs, ray_address))


def validate(model: PathLike, target: str, inputs, reference: Optional[PathLike] = None,
             progress=None, jobs: int = 1, ray_address: Optional[str] = None,
             **compile_options) -> ValidateResult:
    """The deployed model against the original: run the generated C for `target` (on its
    emulator, or on the host) and the original model (`reference`, by default `model`
    itself) in onnxruntime on the same float inputs; per output the metric set of
    validation.OutputMetrics, with accuracy when the inputs have labels; the C == golden
    check beside it; and for int8 builds each layer's SQNR against the float model.
    jobs > 1 or ray_address: the emulator runs the samples in shards, as in `verify`."""
    with tempfile.TemporaryDirectory(prefix="tinydeploy-validate-") as tmp:
        result = compile(model, target=target, out_dir=Path(tmp) / "lib", progress=progress,
                         **compile_options)
        return validate_compiled(result, model, inputs, reference, Path(tmp), progress,
                                 compile_options.get("input_shapes"), shards.Executor(jobs, ray_address))


def validate_compiled(result: CompileResult, model: PathLike, inputs, reference: Optional[PathLike] = None,
                      work: Optional[Path] = None, progress=None, input_shapes=None,
                      executor: Optional[shards.Executor] = None) -> ValidateResult:
    """`validate` for a library `compile` already wrote (result.out_dir) from `model`."""
    from . import quantize, validation
    from .progress import get as get_progress
    bar = get_progress(progress)
    x = load_inputs(inputs, result)
    ins = data.io_list(result.io, "input")
    xs = x if isinstance(x, dict) else {ins[0]["name"]: x}
    for name, v in xs.items():
        if v.dtype != np.float32:
            raise TinydeployError(f"validate compares with the original float model: give float32 inputs "
                                  f"(input '{name}' is {v.dtype})")
    xq = data.to_library_inputs(x, result.io, raw=False)
    n = len(xq)
    with tempfile.TemporaryDirectory(prefix="tinydeploy-validate-") as tmp:
        work = Path(work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        y, instructions, _, _ = _execute(result, xq, work, bar, executor=executor)
    dtype = result.io["output"]["dtype"]
    want = reference_outputs(result.graph, bar(xq, "golden model"))
    match, diff = on_target.matches_reference(y.reshape(want.shape), want, dtype)
    deployed = data.from_library_outputs(y.reshape(n, -1), result.io, False, np.float32)
    outs = data.io_list(result.io, "output")
    ref_path = str(reference or model)
    with bar.stage(f"running the original model ({Path(ref_path).name}) in onnxruntime"):
        quant = {o["name"]: (o["scale"], o["zero_point"]) for o in outs if o["dtype"] == "int8"}
        int8_inputs = {i["name"]: data.to_library_input(xs[i["name"]], result.io, False, i) for i in ins}
        original = validation.run_original(ref_path, xs, [o["name"] for o in outs], int8_inputs, quant)
    labels = data.labels_by_output(inputs, [o["name"] for o in outs])
    metrics = []
    for name, want_out in original.items():
        truth = None
        per_sample = int(np.prod(want_out.shape[1:]))
        if name in labels and per_sample > 1:
            truth = data.class_labels(labels[name], n, per_sample, inputs if isinstance(inputs, (str, Path))
                                      else "the inputs")
        metrics.append(validation.output_metrics(name, deployed[name], want_out, truth))
    layers = []
    if dtype == "int8":
        with bar.stage("per-layer SQNR against the float model"):
            float_graph = quantize.optimized_float(frontend.load(str(model), input_shapes, result.name))
            layers = validation.layer_sqnr(float_graph, result.graph, xs)
    ipi = int(np.mean(instructions)) if instructions else None
    return ValidateResult(Path(model).name, Path(ref_path).name, result.target.name, dtype, n,
                          bool(match), diff, metrics, layers, ipi)


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
           min_sqnr_db: float = summary.DEFAULT_MIN_SQNR_DB, progress=None, validate_inputs=None,
           reference: Optional[PathLike] = None, **compile_options) -> ReportResult:
    """Compile `model` for `target` and write the HTML report to `output`.

    With bench=True the model is also run on the target's emulator (from the same
    compile) and the page shows instruction counts per layer and the latency estimate.
    With validate_inputs (an npz path or {name: array}), the page has a section that
    validates the deployed model against the original (`reference`, default `model`) on
    those inputs, as `validate` does. The library itself is not kept: out_dir is None.
    """
    with tempfile.TemporaryDirectory(prefix="tinydeploy-report-") as tmp:
        work = Path(tmp)
        # the emulator (or host build) needs the library's files; the page alone needs none
        runs = bench or validate_inputs is not None
        result = compile(model, target=target, out_dir=work / "lib" if runs else None,
                         progress=progress, **compile_options)
        bench_result = on_target.measure(result, work, progress) if bench else None
        validation = None
        if validate_inputs is not None:
            validation = validate_compiled(result, model, validate_inputs, reference, work / "validate",
                                           progress, compile_options.get("input_shapes"))
        result.out_dir = None  # the temporary directory is gone on return
    path = report_html.write(result, output, bench_result, min_sqnr_db, validation=validation)
    return ReportResult(path, result, bench_result,
                        summary.figures(result.report, result.target, bench_result), min_sqnr_db, validation)
