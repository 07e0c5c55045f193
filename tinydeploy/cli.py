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
                kernel_scratch=_scratch_policy(kw.get("kernel_scratch", "0.0625")))


def _scratch_policy(text: str):
    if text in ("fit", "any"):
        return text
    try:
        value = float(text)
        if value < 0:
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


def _sqnr_option(f):
    return click.option("--min-sqnr", "min_sqnr", type=float, default=20.0, show_default=True,
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
    labels = data.load_labels(inputs)
    accuracy = None
    if labels is not None:
        accuracy = data.top1(next(iter(result.outputs.values())), labels, inputs)
    ipi = int(np.mean(result.instructions)) if result.instructions else None
    if as_json:
        _echo_json(dict(model=r["model"], target=r["target"], out=str(out_path),
                        engine="golden" if golden else "c",
                        outputs={n: dict(samples=int(a.shape[0]), shape=list(a.shape[1:]),
                                         dtype=str(a.dtype)) for n, a in result.outputs.items()},
                        accuracy=accuracy, flash_bytes=r["flash_bytes"],
                        weights_bytes=r["weights_bytes"], peak_ram_bytes=r["peak_ram_bytes"],
                        arena_bytes=r["arena_bytes"], instructions_per_inference=ipi,
                        instructions=[int(i) for i in result.instructions] if result.instructions else None))
        return
    for name, arr in result.outputs.items():
        click.echo(f"{name}: {arr.shape[0]} samples of shape {arr.shape[1:]} {arr.dtype} -> {out_path}")
    if accuracy is not None:
        click.echo(f"accuracy: {accuracy['accuracy']:.2%} ({accuracy['correct']}/{accuracy['samples']}) "
                   f"[{r['target']}, {'golden model' if golden else r['input']['dtype'] + ' C'}]")
    click.echo(f"flash ~{r['flash_bytes']:,} B (weights {r['weights_bytes']:,} B), "
               f"RAM {r['peak_ram_bytes']:,} B (arena {r['arena_bytes']:,} B)")
    if ipi:
        click.echo(f"instructions per inference: {ipi:,}")


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
def verify_cmd(model, inputs, samples, emulator, as_json, quiet, toolchain, **kw):
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
                   toolchain=toolchain, **_compile_kwargs(kw))
    if as_json:
        click.echo(json.dumps(r.to_json()))
    else:
        exact = r.max_abs_diff == 0
        state = ("bit-exact" if exact else "within 1e-4 (float32)") if r.match else "MISMATCH"
        click.echo(f"{r.target}: {state} on {r.samples} samples (max |diff| {r.max_abs_diff:g}), "
                   f"{r.instructions_per_inference:,} instructions per inference"
                   if r.instructions_per_inference else f"{r.target}: {state}")
        if r.first_mismatch:
            click.echo(f"first mismatching layer: {r.first_mismatch}")
    sys.exit(0 if r.match else 1)


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
    click.echo(f"{'#':>3} {'op':<22} {'instructions':>13} {'MACs':>11} {'MAC/instr':>9}  name")
    for i, l in enumerate(r.layers):
        ins = l["instructions"] or 0
        click.echo(f"{i:>3} {l['op']:<22} {ins:>13,} {l['macs']:>11,} "
                   f"{(l['macs'] / ins if ins else 0):>9.2f}  {l['name']}")


@main.command("report")
@click.argument("model", type=click.Path())
@click.option("-o", "--out", "out_path", default="report.html", show_default=True,
              type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--bench", "run_bench", is_flag=True,
              help="Also run the model on the target's emulator: instructions per layer, latency.")
@_common_compile_options
@_sqnr_option
@_quiet_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def report_cmd(model, out_path, run_bench, min_sqnr, quiet, as_json, **kw):
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
    """
    from . import api, summary
    if run_bench:
        _check_bench_target(_compile_kwargs(kw))
    res = api.report(model, output=out_path, bench=run_bench, min_sqnr_db=min_sqnr,
                     progress=_progress(quiet), **_compile_kwargs(kw))
    if as_json:
        _echo_json(res.to_json())
        return
    click.echo(f"{res.compile.report['model']} on {res.compile.target.name}: report -> {res.path}")
    click.echo(summary.format_table(res.figures))
    _warn(summary.sqnr_warnings(res.compile.report, min_sqnr))


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
