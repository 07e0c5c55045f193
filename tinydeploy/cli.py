"""The `tinydeploy` command line: parses arguments and calls the Python API."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .version import __version__
from .errors import TinydeployError


class _Group(click.Group):
    """Turns every TinydeployError into one message on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return result
        except BrokenPipeError:
            # Whoever read our output stopped (`tinydeploy targets | head -1`): not an error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except TinydeployError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except OSError as exc:  # a path the user gave that cannot be read or written
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(f"error: cannot use{where}: {exc.strerror or exc}; check the path and its "
                       "permissions", err=True)
            sys.exit(2)
        except Exception as exc:  # a bug: still no traceback for users
            click.echo(f"internal error: {type(exc).__name__}: {exc}\n"
                       "This is a bug in tinydeploy; please report it with the model that caused it.",
                       err=True)
            sys.exit(3)


def _common_compile_options(f, emulated: bool = False):
    """The compile options; emulated: the command runs on an MCU emulator, so there is no
    default target (the host has none)."""
    target = click.option("-t", "--target", default=None, metavar="TARGET",
                          help="Emulated MCU target (see `tinydeploy targets`); required unless "
                               "--target-file is given.") if emulated else \
        click.option("-t", "--target", default="host", show_default=True,
                     help="Target board or core (see `tinydeploy targets`).")
    options = [
        target,
        click.option("--target-file", type=click.Path(dir_okay=False),
                     help="A target description JSON file of your own (instead of --target)."),
        click.option("--name", default="net", show_default=True,
                     help="Prefix of the generated C API (NAME_run, NAME.h)."),
        click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D,D,...",
                     help="Fix the shape of a model input with non-fixed dimensions."),
        click.option("--quantize", type=click.Choice(["int8", "float32"]), default="int8",
                     show_default=True, help="Arithmetic of the generated code."),
        click.option("--calib", type=click.Path(dir_okay=False),
                     help="Calibration data (.npz) to quantize a float model to int8."),
        click.option("--calib-method", type=click.Choice(["minmax", "percentile", "mse"]),
                     default="minmax", show_default=True, help="How activation ranges are chosen."),
        click.option("--no-inplace", "no_inplace", is_flag=True,
                     help="Memory planning without in-place execution (every output gets bytes of its own)."),
        click.option("--planner", "planner_method", type=click.Choice(["auto", "greedy", "exact"]),
                     default="auto", show_default=True,
                     help="Arena offsets: greedy, exact (branch and bound, time-limited; keeps the better "
                          "of both), auto (exact on small graphs)."),
        click.option("--kernel-scratch", "kernel_scratch", default="0.0625", show_default=True,
                     metavar="FRACTION|fit|any",
                     help="How much fast kernels' scratch buffers may grow the arena: a fraction of "
                          "it (or 512 bytes, whichever is more), 'fit' (only into free bytes) or "
                          "'any' (speed over RAM)."),
        click.option("--optimize", type=click.Choice(["size", "balanced", "speed"]), default="balanced",
                     show_default=True,
                     help="Flash against speed of the Arm DSP kernels: 'size' reads int8 weights "
                          "and compact requantization records everywhere and builds adds' rescale "
                          "tables in RAM, 'speed' pre-widened "
                          "int16 weights (about 2x their flash, fewer instructions), 'balanced' "
                          "int16 only where it buys the most."),
        click.option("--weights", "weights", type=click.Choice(["int8", "int4", "mixed"]), default="int8",
                     show_default=True,
                     help="Weights of convolutions and fully connected layers: int8, int4 (half the "
                          "flash, packed two per byte), or mixed (int4 where it costs at most "
                          "--int4-budget-db of output SQNR on the --calib data)."),
        click.option("--int4-budget-db", "int4_budget_db", type=float, default=1.0, show_default=True,
                     help="--weights mixed: the output SQNR (dB) int4 weights may cost in all."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _emulated_compile_options(f):
    return _common_compile_options(f, emulated=True)


def _compile_kwargs(kw: dict) -> dict:
    from .frontend import parse_input_shapes
    if kw["target"] is None and not kw["target_file"]:
        raise TinydeployError("this command runs the model on an emulated MCU: choose the target with -t "
                              "(e.g. -t stm32f746; `tinydeploy targets` lists them) or --target-file")
    return dict(target=kw["target"], target_file=kw["target_file"], name=kw["name"],
                input_shapes=parse_input_shapes(kw["input_shapes"]), quantize=kw["quantize"],
                calib=kw["calib"], calib_method=kw["calib_method"],
                inplace=not kw.get("no_inplace", False), planner_method=kw.get("planner_method", "auto"),
                kernel_scratch=_scratch_policy(kw.get("kernel_scratch", "0.0625")),
                optimize=kw.get("optimize", "balanced"), weights=kw.get("weights", "int8"),
                int4_budget_db=kw.get("int4_budget_db", 1.0))


def _scratch_policy(text: str):
    if text in ("fit", "any"):
        return text
    try:
        value = float(text)
        if not (0 <= value < float("inf")):  # also refuses nan
            raise ValueError
        return value
    except ValueError:
        raise TinydeployError(f"--kernel-scratch must be a non-negative fraction, 'fit' or 'any', "
                              f"not '{text}'") from None


def _toolchain_option(f):
    return click.option("--toolchain", type=click.Choice(["gcc", "clang"]), default="gcc",
                        show_default=True,
                        help="Compiler for the generated C: the target's gcc, or clang (for Arm and "
                             "RISC-V targets with the gcc toolchain's C library; linked by gcc).")(f)


def _quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress bars (they are also off when stderr is not a terminal).")(f)


def _finite(ctx, param, value):
    if value is not None and value != value:  # NaN passes click's range check
        raise click.BadParameter("must be a number, not nan")
    return value


def _sqnr_option(f):
    return click.option("--min-sqnr", "min_sqnr", type=click.FloatRange(-1000, 1000), default=20.0,
                        show_default=True, callback=_finite,
                        metavar="DB", help="Warn about layers whose quantization SQNR (dB, measured "
                                           "when calibrating a float model) is below this.")(f)


def _progress(quiet: bool):
    from .progress import Progress, enabled_by_default
    return Progress(enabled=enabled_by_default(quiet))


def _echo_json(data, indent=2) -> None:
    click.echo(json.dumps(data, indent=indent))


def _warn(messages) -> None:
    for msg in messages:
        click.echo(f"warning: {msg}", err=True)


def _check_bench_target(options: dict) -> None:
    """--bench needs an emulator: say so before compiling."""
    from .targets import load_target
    tgt = load_target(options["target_file"] or options["target"])
    if tgt.emulator is None:
        raise TinydeployError(f"--bench runs the model on the target's emulator, and target "
                              f"'{tgt.name}' has none: choose an MCU target (see `tinydeploy targets`)")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinydeploy")
def main():
    """Compile ONNX models into small, fast, dependency-free C libraries for microcontrollers.

    \b
    Example:
      tinydeploy compile model.onnx --target stm32f746 -o out/
    """


@main.command("compile")
@click.argument("model", type=click.Path())
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory for the C library and report.json.")
@_common_compile_options
@click.option("--report", "html", is_flag=True,
              help="Also write report.html (memory timeline, per-layer costs) into the output directory.")
@click.option("--bench", "run_bench", is_flag=True,
              help="Also run the model on the target's emulator: instruction counts, latency estimate.")
@click.option("--weights-section", metavar="NAME",
              help="Put the weights (const arrays) in this linker section, e.g. .qspi_rodata "
                   "(see docs/integration.md).")
@click.option("--arena-section", metavar="NAME",
              help="Put the arena (the working RAM) in this linker section, e.g. .dtcm.")
@_sqnr_option
@_quiet_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a summary.")
def compile_cmd(model, out_dir, html, run_bench, min_sqnr, quiet, as_json, weights_section,
                arena_section, **kw):
    """Compile MODEL (.onnx or .tflite) into a C library.

    \b
    Writes NAME.h, NAME.c, NAME_weights.c, the runtime kernels the model uses,
    a CMakeLists.txt and report.json into the output directory, then prints a
    summary: layers, MACs, flash and RAM against the target's capacity, the
    latency (with --bench) and warnings about layers that quantize badly.

    \b
    Examples:
      tinydeploy compile model.onnx -t stm32f746 --calib calib.npz -o out/
      tinydeploy compile model_qdq.onnx -t host -o out/
      tinydeploy compile model.onnx --quantize float32 -o out/
      tinydeploy compile model_qdq.onnx -t stm32f746 --bench --report -o out/
    """
    from . import api, summary
    progress = _progress(quiet)
    options = _compile_kwargs(kw)
    if run_bench:
        _check_bench_target(options)
    # with --bench the page is written once the instruction counts are known
    result = api.compile(model, out_dir=out_dir, progress=progress, report=html and not run_bench,
                         weights_section=weights_section, arena_section=arena_section, **options)
    bench = None
    if run_bench:
        bench = api.bench_compiled(result, progress=progress)  # the library just written
        if html:
            from . import report_html
            report_html.write(result, result.out_dir / api.REPORT_HTML, bench, min_sqnr)
    r = result.report
    fig = summary.figures(r, result.target, bench)
    warnings = summary.sqnr_warnings(r, min_sqnr)
    if as_json:
        _echo_json(dict(r, out_dir=str(result.out_dir), summary=fig, warnings=warnings,
                        bench=bench.to_json() if bench is not None else None))
        return
    click.echo(f"{r['model']} -> {result.out_dir}/ ({result.name}.h, {result.name}.c, "
               f"{result.name}_weights.c, {len(r['kernels'])} kernel files)")
    click.echo(f"  target {r['target']}: {len(r['layers'])} layers, {r['macs']:,} MACs, "
               f"flash ~{r['flash_bytes']:,} B, RAM {r['peak_ram_bytes']:,} B "
               f"(arena {r['arena_bytes']:,} B)")
    click.echo(summary.format_table(fig))
    if summary.fallback_note(r):
        click.echo(summary.fallback_note(r))
    if html:
        click.echo(f"  report: {result.out_dir / api.REPORT_HTML}")
    _warn(warnings)


@main.command("run")
@click.argument("model", type=click.Path())
@click.option("--inputs", required=True, type=click.Path(dir_okay=False),
              help="Input samples (.npz): one array per model input, first axis = samples.")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the outputs (.npz).")
@click.option("--raw", is_flag=True, help="int8 builds: take and return int8 data unconverted.")
@click.option("--golden", is_flag=True, help="Run the Python reference instead of C: the bit-exact golden model (int8 builds) "
                   "or the float interpreter (float32 builds).")
@_common_compile_options
@_quiet_option
@_toolchain_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def run_cmd(model, inputs, out_path, raw, golden, quiet, as_json, toolchain, **kw):
    """Compile MODEL, build it, and run every sample of INPUTS through it.

    \b
    Example:
      tinydeploy run model.onnx -t host --inputs in.npz -o out.npz
    """
    import numpy as np
    from . import api, data
    result = api.run(model, inputs, raw=raw, golden=golden, progress=_progress(quiet),
                     toolchain=toolchain, **_compile_kwargs(kw))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_path, **result.outputs)
    r = result.report
    labels = data.labels_by_output(inputs, list(result.outputs))
    accuracies = {name: data.top1(result.outputs[name], truth, inputs) for name, truth in labels.items()}
    accuracy = next(iter(accuracies.values())) if len(accuracies) == 1 else None
    ipi = int(np.mean(result.instructions)) if result.instructions else None
    if as_json:
        _echo_json(dict(model=r["model"], target=r["target"], out=str(out_path),
                        engine="golden" if golden else "c",
                        outputs={n: dict(samples=int(a.shape[0]), shape=list(a.shape[1:]),
                                         dtype=str(a.dtype)) for n, a in result.outputs.items()},
                        accuracy=accuracy, accuracy_by_output=accuracies or None, flash_bytes=r["flash_bytes"],
                        weights_bytes=r["weights_bytes"], peak_ram_bytes=r["peak_ram_bytes"],
                        arena_bytes=r["arena_bytes"], instructions_per_inference=ipi,
                        instructions=[int(i) for i in result.instructions] if result.instructions else None,
                        est_ms=result.est_ms, cycle_model=result.cycle_model))
        return
    for name, arr in result.outputs.items():
        click.echo(f"{name}: {arr.shape[0]} samples of shape {arr.shape[1:]} {arr.dtype} -> {out_path}")
    engine = 'golden model' if golden else r['input']['dtype'] + ' C'
    for name, acc in accuracies.items():
        label = "accuracy" if len(result.outputs) == 1 else f"accuracy of '{name}'"
        click.echo(f"{label}: {acc['accuracy']:.2%} ({acc['correct']}/{acc['samples']}) [{r['target']}, {engine}]")
    click.echo(f"flash ~{r['flash_bytes']:,} B (weights {r['weights_bytes']:,} B), "
               f"RAM {r['peak_ram_bytes']:,} B (arena {r['arena_bytes']:,} B)")
    if ipi:
        est = (f", est. {np.mean(result.est_ms):.3f} ms ({result.cycle_model} cycle model)"
               if result.est_ms else "")
        click.echo(f"instructions per inference: {ipi:,}{est}")


@main.command("inspect")
@click.argument("model", type=click.Path())
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D,D,...",
              help="Fix the shape of a model input with non-fixed dimensions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inspect_cmd(model, input_shapes, as_json):
    """Show MODEL's layers as tinydeploy sees them: ops, shapes, parameters, MACs.

    \b
    Example:
      tinydeploy inspect model.onnx
    """
    from . import inspection as insp
    from .frontend import parse_input_shapes
    info = insp.inspect_model(model, parse_input_shapes(input_shapes))
    click.echo(json.dumps(info, indent=2) if as_json else insp.format_table(info))
    if info["unsupported"]:
        sys.exit(2)


def _shard_options(f):
    """--jobs/--ray: run the samples in shards (verify, validate)."""
    f = click.option("--ray", "ray_address", metavar="ADDRESS|auto|local", default=None,
                     help="Run the samples in shards as Ray tasks on this cluster: 'auto' (a running "
                          "cluster), host:port or ray://..., or 'local' (start one here). Needs "
                          "pip install 'tinydeploy[ray]'.")(f)
    return click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                        help="Split the samples into this many shards, each built and run on its "
                             "own emulator in parallel; results are identical to one run.")(f)


def _executor_kwargs(jobs, ray_address) -> dict:
    if ray_address is not None and jobs != 1:
        raise TinydeployError("--jobs is for local shards; with --ray the cluster's CPUs run the "
                              "shards: give one or the other")
    return dict(jobs=jobs, ray_address=ray_address)


@main.command("verify")
@click.argument("model", type=click.Path())
@click.option("--inputs", type=click.Path(dir_okay=False),
              help="Input samples (.npz); default: a few deterministic random inputs.")
@click.option("--samples", default=3, show_default=True, type=click.IntRange(min=1),
              help="Number of random samples.")
@click.option("--emulator", type=click.Choice(["qemu", "renode"]), default="qemu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_emulated_compile_options
@_quiet_option
@_toolchain_option
@_shard_options
def verify_cmd(model, inputs, samples, emulator, as_json, quiet, toolchain, jobs, ray_address, **kw):
    """Run MODEL on the target's emulator and compare every output with the golden model.

    \b
    Exit code 0 only when the outputs are bit-exact (int8) or within 1e-4
    (float32); otherwise 1, naming the first layer that differs.

    \b
    Example:
      tinydeploy verify model_qdq.onnx -t stm32f746
    """
    from . import api
    if emulator == "renode":
        from . import renode
        renode.require()
    r = api.verify(model, inputs=inputs, samples=samples, progress=_progress(quiet),
                   toolchain=toolchain, **_executor_kwargs(jobs, ray_address), **_compile_kwargs(kw))
    if as_json:
        click.echo(json.dumps(r.to_json()))
    else:
        exact = r.max_abs_diff == 0
        state = ("bit-exact" if exact else "within 1e-4 (float32)") if r.match else "MISMATCH"
        click.echo(f"{r.target}: {state} on {r.samples} samples (max |diff| {r.max_abs_diff:g}), "
                   f"{r.instructions_per_inference:,} instructions per inference"
                   if r.instructions_per_inference else f"{r.target}: {state}")
        if len(r.outputs) > 1:  # each output of the model on its own
            for o in r.outputs:
                o_state = ("bit-exact" if o["max_abs_diff"] == 0 else "within 1e-4 (float32)") \
                    if o["match"] else "MISMATCH"
                click.echo(f"  output '{o['name']}': {o_state} (max |diff| {o['max_abs_diff']:g})")
        if r.first_mismatch:
            click.echo(f"first mismatching layer: {r.first_mismatch}")
    sys.exit(0 if r.match else 1)


@main.command("validate")
@click.argument("model", type=click.Path())
@click.option("--inputs", required=True, type=click.Path(dir_okay=False),
              help="Float32 input samples (.npz), with a 'label' array for accuracy.")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="The original model to compare with (default: MODEL itself), e.g. the float "
                   "model a QDQ or .tflite file was made from.")
@click.option("--layers", "show_layers", default=5, show_default=True, type=click.IntRange(min=0),
              help="How many of the lowest-SQNR layers to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_common_compile_options
@_quiet_option
@_shard_options
def validate_cmd(model, inputs, reference, show_layers, as_json, quiet, jobs, ray_address, **kw):
    """Compare the deployed model with the original one on your data.

    \b
    Runs the generated C (on the target's emulator, or on the host) and the
    original model in onnxruntime on the same inputs, and reports per output:
    top-1 agreement, accuracy (with labels), RMSE, MAE, L2 relative error,
    cosine similarity and SQNR; the C == golden model check beside it; and for
    int8 builds each layer's SQNR against the float model. Exit code 0 unless
    the C differs from the golden model (1).

    \b
    Example:
      tinydeploy validate model.onnx -t stm32f746 --calib calib.npz --inputs test.npz
    """
    from . import api
    r = api.validate(model, inputs=inputs, reference=reference, progress=_progress(quiet),
                     **_executor_kwargs(jobs, ray_address), **_compile_kwargs(kw))
    if as_json:
        _echo_json(r.to_json())
        sys.exit(0 if r.matches_golden else 1)
    exact = "bit-exact" if r.max_abs_diff_golden == 0 else "within 1e-4 (float32)"
    click.echo(f"{r.model} on {r.target} ({r.dtype}) against {r.reference} in onnxruntime, "
               f"{r.samples} samples")
    click.echo(f"C == golden model: {exact if r.matches_golden else 'MISMATCH'} "
               f"(max |diff| {r.max_abs_diff_golden:g})")
    for m in r.outputs:
        click.echo(f"output '{m.name}' {tuple(m.shape)}:")
        if m.top1_agreement is not None:
            click.echo(f"  top-1 agreement  {m.top1_agreement:.2%}")
        if m.accuracy is not None:
            click.echo(f"  accuracy         {m.accuracy:.2%} deployed, {m.reference_accuracy:.2%} original")
        click.echo(f"  RMSE {m.rmse:.4g}   MAE {m.mae:.4g}   L2 relative {m.l2_relative:.4g}   "
                   f"cosine {m.cosine:.6f}   "
                   + (f"SQNR {m.sqnr_db:.1f} dB" if m.sqnr_db is not None else "identical outputs"))
    if r.layers and show_layers:
        click.echo(f"lowest per-layer SQNR, int8 against float ({len(r.layers)} layers):")
        for layer in r.layers[:show_layers]:
            click.echo(f"  {layer['sqnr_db']:6.1f} dB  {layer['name']} ({layer['op']})")
    if r.instructions_per_inference:
        click.echo(f"instructions per inference: {r.instructions_per_inference:,}")
    sys.exit(0 if r.matches_golden else 1)


@main.command("bench")
@click.argument("model", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_emulated_compile_options
@_quiet_option
@_toolchain_option
def bench_cmd(model, as_json, quiet, toolchain, **kw):
    """Measure MODEL on the target's emulator: instructions (total and per layer), flash, RAM.

    \b
    Instruction counts are exact and deterministic (QEMU -icount shift=0).

    \b
    Example:
      tinydeploy bench model_qdq.onnx -t nucleo-l4r5zi
    """
    from . import api
    r = api.bench(model, progress=_progress(quiet), toolchain=toolchain, **_compile_kwargs(kw))
    if as_json:
        click.echo(json.dumps(r.to_json(), indent=2))
        return
    click.echo(f"{r.model} on {r.target}: {r.instructions_per_inference:,} instructions per inference, "
               f"{r.macs:,} MACs ({r.macs_per_instruction:.3f} MACs/instruction)")
    click.echo(f"flash {r.flash_bytes:,} B (model library incl. weights), RAM {r.ram_bytes:,} B static "
               f"(arena {r.arena_bytes:,} B); peak RAM incl. input/output {r.peak_ram_bytes:,} B")
    est = r.est_cycles is not None
    if est:
        cm = r.cycle_model
        click.echo(f"estimated {r.est_cycles:,} cycles = {r.est_ms:.3f} ms at {r.clock_hz / 1e6:g} MHz "
                   f"({cm['cost_model']} cycle model v{cm['version']}, {cm['cpi']} cycles/instruction; "
                   "docs/cycle-model.md)")
    elif r.cycle_model_note:
        click.echo(f"note: {r.cycle_model_note}; latency = instructions / clock (1 per cycle)")
    click.echo(f"{'#':>3} {'op':<22} {'instructions':>13} {'MACs':>11} {'MAC/instr':>9}" +
               (f" {'est. cycles':>12} {'est. ms':>9}" if est else "") + "  name")
    for i, l in enumerate(r.layers):
        ins = l["instructions"] or 0
        cyc = (f" {l['est_cycles']:>12,} {l['est_ms']:>9.3f}" if est and l.get("est_cycles") is not None
               else "")
        click.echo(f"{i:>3} {l['op']:<22} {ins:>13,} {l['macs']:>11,} "
                   f"{(l['macs'] / ins if ins else 0):>9.2f}{cyc}  {l['name']}")


@main.command("report")
@click.argument("model", type=click.Path())
@click.option("-o", "--out", "out_path", default="report.html", show_default=True,
              type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--bench", "run_bench", is_flag=True,
              help="Also run the model on the target's emulator: instructions per layer, latency.")
@click.option("--validate", "validate_inputs", type=click.Path(dir_okay=False), metavar="DATA.npz",
              help="Add a section validating the deployed model against the original on these "
                   "float32 inputs (as `tinydeploy validate`).")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="With --validate: the original model to compare with (default: MODEL).")
@_common_compile_options
@_sqnr_option
@_quiet_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def report_cmd(model, out_path, run_bench, validate_inputs, reference, min_sqnr, quiet, as_json, **kw):
    """Write a self-contained HTML report of MODEL built for a target.

    \b
    One file that needs no network: the target's memory budget, a memory
    timeline (every arena buffer over the steps it is live, the peak marked),
    per-layer cost bars and a per-layer table (op, shapes, MACs, weight bytes,
    arena offset, SQNR, and instructions with --bench).

    \b
    Examples:
      tinydeploy report model_qdq.onnx -t stm32f746 -o report.html
      tinydeploy report model.onnx -t stm32f746 --calib calib.npz --bench -o report.html
      tinydeploy report model.onnx -t stm32f746 --calib calib.npz --validate test.npz
    """
    from . import api, summary
    if run_bench:
        _check_bench_target(_compile_kwargs(kw))
    res = api.report(model, output=out_path, bench=run_bench, min_sqnr_db=min_sqnr,
                     progress=_progress(quiet), validate_inputs=validate_inputs, reference=reference,
                     **_compile_kwargs(kw))
    if as_json:
        _echo_json(res.to_json())
        return
    click.echo(f"{res.compile.report['model']} on {res.compile.target.name}: report -> {res.path}")
    click.echo(summary.format_table(res.figures))
    _warn(summary.sqnr_warnings(res.compile.report, min_sqnr))


@main.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for results.jsonl, results.csv and pareto.html (a sweep resumes there).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: the machine's cores).")
@click.option("--ray", "ray_address", metavar="ADDRESS|auto|local", default=None,
              help="Run each configuration as a Ray task (num_cpus=1) on this cluster: 'auto' (the "
                   "running cluster), host:port or ray://..., or 'local' (start one here). "
                   "Needs pip install 'tinydeploy[ray]'.")
@click.option("--retry-errors", is_flag=True,
              help="Also re-run configurations whose earlier row is an error.")
@_quiet_option
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def sweep_cmd(spec, out_dir, jobs, ray_address, retry_errors, quiet, as_json):
    """Compile, fit-check, bench (and validate) every configuration of SPEC.

    \b
    SPEC (.json, or .yaml/.yml with PyYAML) lists models (paths or globs),
    targets and option dicts (the long option names with underscores,
    e.g. {"kernel_scratch": "fit"}; {} = the defaults), and optionally
    "calib" and "inputs" .npz files (inputs with labels: accuracy).
    A failing configuration is a row with its error. Configurations that
    results.jsonl already has are skipped, so an interrupted sweep resumes.
    Writes results.jsonl, results.csv and pareto.html (flash-RAM-latency
    Pareto front per target). Exit code 0 unless a configuration failed (1).

    \b
    Examples:
      tinydeploy sweep sweep.json -o results/
      tinydeploy sweep sweep.yaml -o results/ --jobs 8
      tinydeploy sweep sweep.yaml -o results/ --ray auto
    """
    from .sweep import sweep
    if ray_address is not None and jobs is not None:
        raise TinydeployError("--jobs is for the local process pool; with --ray the cluster's CPUs run "
                              "the configurations (one task per configuration)")
    rows = sweep(spec, out_dir, executor="ray" if ray_address is not None else "local", jobs=jobs,
                 ray_address=ray_address, progress=_progress(quiet), retry_errors=retry_errors)
    if as_json:
        _echo_json(dict(rows=list(rows), ran=rows.ran, skipped=rows.skipped, errors=rows.errors,
                        **rows.paths))
        sys.exit(1 if rows.errors else 0)
    click.echo(f"{len(rows)} configurations: {rows.ran} ran, {rows.skipped} skipped (done before), "
               f"{len(rows) - rows.errors} ok, {rows.errors} failed")
    for r in rows:
        if r.get("status") != "ok":
            first = str(r.get("error")).splitlines()[0] if r.get("error") else "?"
            click.echo(f"  failed: {Path(r['model']).name} on {r['target']} {json.dumps(r['options'])}: {first}")
    click.echo(f"rows: {rows.paths['jsonl']}\ncsv:  {rows.paths['csv']}\nhtml: {rows.paths['html']}")
    sys.exit(1 if rows.errors else 0)


@main.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def targets_cmd(as_json):
    """List the known targets.

    \b
    Example:
      tinydeploy targets
    """
    from . import targets
    rows = [targets.load_target(n) for n in targets.list_targets()]
    if as_json:
        click.echo(json.dumps([dict(name=t.name, description=t.description, core=t.core, arch=t.arch,
                                    features=list(t.features), sram_bytes=t.sram_bytes,
                                    flash_bytes=t.flash_bytes, clock_hz=t.clock_hz,
                                    emulator=t.emulator.machine if t.emulator else None)
                               for t in rows], indent=2))
        return
    click.echo(f"{'name':<15} {'core':<24} {'SRAM':>9} {'flash':>10} {'clock':>9}  features")
    for t in rows:
        sram = f"{t.sram_bytes // 1024} KB" if t.sram_bytes else "-"
        flash = f"{t.flash_bytes // 1024} KB" if t.flash_bytes else "-"
        clock = f"{t.clock_hz // 1_000_000} MHz" if t.clock_hz else "-"
        click.echo(f"{t.name:<15} {t.core:<24} {sram:>9} {flash:>10} {clock:>9}  "
                   f"{','.join(t.features) or '-'}")


if __name__ == "__main__":
    main()
