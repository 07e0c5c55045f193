"""Regenerate BENCHMARKS.md: `tinydeploy bench` on the MLPerf Tiny models for every MCU target.

    .venv/bin/python tools/benchmarks.py [--models DIR] [--out BENCHMARKS.md]
    .venv/bin/python tools/benchmarks.py --cycles-only   # only the estimated-latency section
    .venv/bin/python tools/benchmarks.py --sequence-only # only the transformer section
    .venv/bin/python tools/benchmarks.py --modes-only    # only the flash / --optimize section
    .venv/bin/python tools/benchmarks.py --int4-only     # only the --weights int4 / mixed section

Instruction counts come from QEMU with -icount shift=0 (exact and repeatable;
on the Arm mps2/mps3 machines the timer resolution is 40 instructions).
"""
from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinydeploy import api  # noqa: E402

MODELS = ["kws", "resnet8", "vww", "ad"]
TARGETS = ["stm32f746", "nucleo-l4r5zi", "nrf52840", "rp2040", "cortex-m55", "esp32-c3", "rv32-zve32x"]
# Peer figures (from the issues): instructions per inference on the same emulated Cortex-M4.
CMSIS_NN = {"kws": 7_700_560, "resnet8": 29_864_000, "vww": 24_103_720, "ad": 583_400}
TFLM_REF = {"kws": 198_639_080, "resnet8": 824_062_440, "vww": 552_355_240, "ad": 1_952_800}
M4_REQUIRED = {"kws": 2_660_000, "resnet8": 12_500_000, "vww": 7_490_000, "ad": 377_000}
MURISCV = {"resnet8": (62.5e6, 9.67e6)}
TFLM_ARENA = {"kws": 24_272, "resnet8": 55_984, "vww": 103_680, "ad": 3_984}
RAM_REQUIRED = {"kws": 10_000, "resnet8": 36_000, "vww": 42_000, "ad": 1_200}
EMX_FLOAT = {"resnet8": 287.5e6, "kws": 29.1e6}
# Published MLPerf Tiny latencies (ms per inference = 1000 / median throughput of the
# performance run, results/<board>/<model>/performance/results.txt; "ic" is resnet8).
MLPERF_PUBLISHED = {
    "nucleo-l4r5zi": [
        ("TFLM 2.3.1 reference, MLPerf Tiny v0.5 (mlcommons/tiny_results_v0.5, "
         "closed/reference, Nucleo-L4R5ZI, 120 MHz)",
         {"kws": 1000 / 5.497, "resnet8": 1000 / 1.420, "vww": 1000 / 1.665, "ad": 1000 / 99.487}),
        ("X-CUBE-AI 7.3.0, MLPerf Tiny v1.0 (mlcommons/tiny_results_v1.0, "
         "closed/STMicroelectronics, NUCLEO_L4R5ZI, 120 MHz)",
         {"kws": 1000 / 13.323, "resnet8": 1000 / 4.407, "vww": 1000 / 4.339, "ad": 1000 / 131.950}),
    ],
}
CYCLES_BEGIN = "<!-- cycle-model: begin (tools/benchmarks.py --cycles-only) -->"
CYCLES_END = "<!-- cycle-model: end -->"
SEQ_BEGIN = "<!-- sequence-models: begin (tools/benchmarks.py --sequence-only) -->"
SEQ_END = "<!-- sequence-models: end -->"
SEQ_TARGETS = ["stm32f746", "cortex-m55", "rv32-zve32x"]
MODES_BEGIN = "<!-- optimize-modes: begin (tools/benchmarks.py --modes-only) -->"
MODES_END = "<!-- optimize-modes: end -->"
MODES = ["speed", "balanced", "size"]
INT4_BEGIN = "<!-- int4-weights: begin (tools/benchmarks.py --int4-only) -->"
INT4_END = "<!-- int4-weights: end -->"
INT4_TARGETS = ["nucleo-l4r5zi", "cortex-m55", "rv32-zve32x"]  # issue 16: int4 builds verify on these
# TFLite Micro + CMSIS-NN on stm32f746: its code plus the .tflite file (issue 16)
TFLM_FLASH = {"kws": 172_000, "resnet8": 211_000, "vww": 451_000, "ad": 335_000}
# Issue 16, default mode: flash <= int8 weights + 32 KB, and these M4 instruction counts
FLASH_M4_REQUIRED = {"kws": 2_796_000, "resnet8": 13_159_000, "vww": 7_883_000, "ad": 377_000}


def fmt(n) -> str:
    return f"{n:,}" if isinstance(n, int) else n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(REPO.parent / "shared" / "models" / "mlperf_tiny"))
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--cycles-only", action="store_true",
                    help="bench again and replace only the estimated-latency section of --out")
    ap.add_argument("--sequence-only", action="store_true",
                    help="bench the transformer models again and replace only their section of --out")
    ap.add_argument("--modes-only", action="store_true",
                    help="measure the --optimize modes again and replace only their section of --out")
    ap.add_argument("--int4-only", action="store_true",
                    help="measure --weights int4 / mixed again and replace only their section of --out")
    args = ap.parse_args()
    models = Path(args.models)
    if args.int4_only:
        out = Path(args.out)
        out.write_text(replace_section(out.read_text(), render_int4(bench_int4(models)), INT4_BEGIN, INT4_END))
        print(f"updated the int4 section of {out}", file=sys.stderr)
        return
    if args.modes_only:
        out = Path(args.out)
        out.write_text(replace_section(out.read_text(), render_modes(bench_modes(models)), MODES_BEGIN,
                                       MODES_END))
        print(f"updated the --optimize section of {out}", file=sys.stderr)
        return
    if args.sequence_only:
        out = Path(args.out)
        out.write_text(replace_section(out.read_text(), render_sequence(bench_sequence()), SEQ_BEGIN, SEQ_END))
        print(f"updated the sequence-model section of {out}", file=sys.stderr)
        return
    if args.cycles_only:
        res = {}
        for m in MODELS:
            for t in TARGETS:
                print(f"bench {m} on {t}", file=sys.stderr)
                res[m, t] = api.bench(models / m / "int8_qdq.onnx", t, optimize="speed")
        out = Path(args.out)
        out.write_text(replace_cycles(out.read_text(), render_cycles(res)))
        print(f"updated the estimated-latency section of {out}", file=sys.stderr)
        return
    res = {}
    for m in MODELS:
        for t in TARGETS:
            print(f"bench {m} on {t}", file=sys.stderr)
            res[m, t] = api.bench(models / m / "int8_qdq.onnx", t, optimize="speed")
    floats = {}
    for m in ("kws", "resnet8"):
        print(f"bench {m} float32 on stm32f746", file=sys.stderr)
        floats[m] = api.bench(models / m / "float.onnx", "stm32f746", quantize="float32")
    reports = {m: api.compile(models / m / "int8_qdq.onnx", target="stm32f746", optimize="speed").report
               for m in MODELS}
    fast = {}
    for m in MODELS:  # speed over RAM: kernel scratch may grow the arena freely
        for t in ("nucleo-l4r5zi", "cortex-m55"):
            print(f"bench {m} on {t} --kernel-scratch any", file=sys.stderr)
            fast[m, t] = api.bench(models / m / "int8_qdq.onnx", t, kernel_scratch="any", optimize="speed")
    Path(args.out).write_text(render(res, floats, reports) + "\n" + render_modes(bench_modes(models))
                              + render_fast(fast) + render_cycles(res) + "\n" + render_sequence(bench_sequence())
                              + "\n" + render_int4(bench_int4(models)))
    print(f"wrote {args.out}", file=sys.stderr)


def render(res, floats, reports) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    L = ["# Benchmarks", "",
         f"Measured {datetime.date.today()} at commit `{commit}` with",
         "", "    .venv/bin/python tools/benchmarks.py", "",
         "which runs `tinydeploy bench MODEL -t TARGET` (and `tinydeploy compile` for the RAM figures)",
         "on the MLPerf Tiny int8 models (`int8_qdq.onnx`). Instructions per inference are counted by",
         "QEMU with `-icount shift=0`: exact and identical on every run (the Arm machines' timer ticks",
         "every 40 instructions, so Arm counts are multiples of 40 give or take the calibration).",
         "They are instructions, not cycles. Every build here is also verified bit-exact against the",
         "golden model (`tests/test_emulated_targets.py`).", "",
         "The instruction, RAM and profile tables are `--optimize speed` (int16 weights in the Arm DSP",
         "kernels, the fastest code); the default, `balanced`, and `size` trade instructions for flash:",
         "see [Flash and the --optimize modes](#flash-and-the---optimize-modes).", ""]
    L += ["## Instructions per inference (int8)", "",
          "| model | MACs | " + " | ".join(TARGETS) + " |",
          "|---|---:|" + "---:|" * len(TARGETS)]
    for m in MODELS:
        L.append(f"| {m} | {fmt(res[m, TARGETS[0]].macs)} | " +
                 " | ".join(fmt(res[m, t].instructions_per_inference) for t in TARGETS) + " |")
    L += ["", "MACs per instruction:", "",
          "| model | " + " | ".join(TARGETS) + " |", "|---|" + "---:|" * len(TARGETS)]
    for m in MODELS:
        L.append(f"| {m} | " + " | ".join(f"{res[m, t].macs_per_instruction:.3f}" for t in TARGETS) + " |")
    L += ["", "## Cortex-M4 (nucleo-l4r5zi) against TensorFlow Lite Micro", "",
          "Peer figures measured the same way on the same emulated core (from the project's issue 9).",
          "On the M4, SMLAD does two MACs per instruction: MACs / 2 is the floor. The Helium column is",
          "the same model on cortex-m55 (limit: 0.35x of its own M4 count).", "",
          "| model | MACs | floor (MACs/2) | tinydeploy | MAC/instr | TFLM + CMSIS-NN | MAC/instr | "
          "TFLM reference | limit | ours / CMSIS-NN | cortex-m55 | M55 / M4 |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in MODELS:
        r, h = res[m, "nucleo-l4r5zi"], res[m, "cortex-m55"]
        ours, macs = r.instructions_per_inference, r.macs
        L.append(f"| {m} | {fmt(macs)} | {fmt(macs // 2)} | {fmt(ours)} | {macs / ours:.2f} | {fmt(CMSIS_NN[m])} | "
                 f"{macs / CMSIS_NN[m]:.2f} | {fmt(TFLM_REF[m])} | <= {fmt(M4_REQUIRED[m])} | "
                 f"{ours / CMSIS_NN[m]:.2f}x | {fmt(h.instructions_per_inference)} | "
                 f"{h.instructions_per_inference / ours:.2f}x |")
    L += ["", "Against the issues' limits:", ""] + [f"- {v}" for v in _verdicts(res, reports, floats)] + [""]
    L += ["", "## RISC-V", "",
          "| model | MACs | esp32-c3 (rv32imc) | MAC/instr | rv32-zve32x (VLEN 128) | MAC/instr | vector / scalar |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for m in MODELS:
        s, v = res[m, "esp32-c3"], res[m, "rv32-zve32x"]
        L.append(f"| {m} | {fmt(s.macs)} | {fmt(s.instructions_per_inference)} | {s.macs_per_instruction:.3f} | "
                 f"{fmt(v.instructions_per_inference)} | {v.macs_per_instruction:.3f} | "
                 f"{v.instructions_per_inference / s.instructions_per_inference:.2f} |")
    L += ["", "muRISCV-NN (TFLite Micro, its README) on resnet8: 62.5 M scalar, 9.67 M with RVV at VLEN 128.", ""]
    L += ["## Memory (stm32f746)", "",
          "`peak_ram_bytes` is all RAM the library needs during inference: the arena, other static RAM,",
          "and the model's input and output tensors. Flash is the model library's code + constants",
          "(weights included), measured from the object files of the Cortex-M7 build.", "",
          "| model | peak RAM | arena | lower bound (no in-place) | TFLM arena | target | flash |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for m in MODELS:
        r = reports[m]
        L.append(f"| {m} | {fmt(r['peak_ram_bytes'])} | {fmt(r['arena_bytes'])} | "
                 f"{fmt(r['ram_lower_bound_bytes'])} | {fmt(TFLM_ARENA[m])} | <= {fmt(RAM_REQUIRED[m])} | "
                 f"{fmt(res[m, 'stm32f746'].flash_bytes)} |")
    L += ["", "## float32 on stm32f746 (FPU)", "",
          "| model | tinydeploy | emx-onnx-cgen (-O2 -ffast-math) | ratio |", "|---|---:|---:|---:|"]
    for m, b in floats.items():
        L.append(f"| {m} | {fmt(b.instructions_per_inference)} | {EMX_FLOAT[m] / 1e6:.1f} M | "
                 f"{b.instructions_per_inference / EMX_FLOAT[m]:.2f}x |")
    slow = max(MODELS, key=lambda m: res[m, "nucleo-l4r5zi"].instructions_per_inference)
    b = res[slow, "nucleo-l4r5zi"]
    L += ["", f"## Per-layer profile: {slow} on nucleo-l4r5zi", "",
          "| # | op | variant | MACs | instructions | MAC/instr |", "|---:|---|---|---:|---:|---:|"]
    variants = {l["name"]: l.get("variant", "") for l in reports[slow]["layers"]}
    for i, l in enumerate(b.layers):
        ins = l["instructions"] or 0
        L.append(f"| {i} | {l['op']} | {variants.get(l['name'], '')} | {fmt(l['macs'])} | {fmt(ins)} | "
                 f"{(l['macs'] / ins if ins else 0):.2f} |")
    return "\n".join(L) + "\n"


def _verdicts(res, reports, floats) -> list:
    """Each issue limit against the measured figure, met or not."""
    out = []
    for m in MODELS:
        a, h = res[m, "nucleo-l4r5zi"].instructions_per_inference, res[m, "cortex-m55"].instructions_per_inference
        ram = reports[m]["peak_ram_bytes"]
        ok = a <= M4_REQUIRED[m] and h <= 0.35 * a and ram <= RAM_REQUIRED[m]
        out.append(f"{m} M4 {a / 1e6:.3f} M (<= {M4_REQUIRED[m] / 1e6:.3f} M), M55 {h / a:.2f}x (<= 0.35x), "
                   f"RAM {fmt(ram)} B (<= {fmt(RAM_REQUIRED[m])}): {'met' if ok else 'NOT met'}")
    for m, b in floats.items():
        r = b.instructions_per_inference / EMX_FLOAT[m]
        out.append(f"float {m} {r:.2f}x emx-onnx-cgen (<= 0.25x): {'met' if r <= 0.25 else 'NOT met'}")
    return out


def bench_modes(models: Path) -> dict:
    """Per model and --optimize mode: the stm32f746 report (flash from the compiled objects),
    the flash of the linked stm32f746 firmware's library, and the nucleo-l4r5zi (M4) count."""
    out = {}
    for m in MODELS:
        for mode in MODES:
            print(f"modes: {m} --optimize {mode}", file=sys.stderr)
            path = models / m / "int8_qdq.onnx"
            out[m, mode] = (api.compile(path, target="stm32f746", optimize=mode).report,
                            api.bench(path, "stm32f746", optimize=mode),
                            api.bench(path, "nucleo-l4r5zi", optimize=mode))
    return out


def render_modes(res) -> str:
    L = [MODES_BEGIN, "", "## Flash and the --optimize modes", "",
         "`--optimize speed` stores the Arm DSP kernels' weights pre-widened to int16; `size` stores",
         "int8 weights (widened in registers by SXTB16) in every convolution, depthwise and fully",
         "connected kernel, copies windows with one shared im2col, keeps compact requantization",
         "records (8 bytes a channel instead of 12; 4 in the convolutions and the 3x3 depthwise, whose",
         "shift sits in the bias word), gives the convolutions their shape as run-time data (one",
         "function for the layers of a kind; the 3x3 depthwise layers too where that lets more of",
         "them share one function), and builds an Add's two rescale tables (2 KiB)",
         "in the layer's scratch at run time where the arena has room; `balanced` (the",
         "default) is the int8-weight build",
         "(full records; where the arena has room, a convolution's weights are widened to int16 once",
         "per tile of up to 48 output pixels and shared by them) plus int16 weights where they save",
         "the most instructions per byte, while the",
         "library stays within its int8 weights + 32 KiB. Flash: the library's code + constants on",
         "stm32f746 as `bench` links it (compile's figure from the object files is within 0.5%);",
         "int8 weights: the model's int8 weights and int32 biases; TFLM: TFLite Micro + CMSIS-NN's",
         "code plus the .tflite file (issue 16). Instructions: nucleo-l4r5zi (Cortex-M4). Made by",
         "`tools/benchmarks.py --modes-only`.", "",
         "| model | mode | flash | code | constants | int8 weights | TFLM flash | ratio | M4 instructions |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in MODELS:
        for mode in MODES:
            r, b7, b4 = res[m, mode]
            L.append(f"| {m} | {mode} | {fmt(b7.flash_bytes)} | {fmt(r['code_bytes'])} | {fmt(r['weights_bytes'])} | "
                     f"{fmt(r['weights_int8_bytes'])} | ~{fmt(TFLM_FLASH[m])} | "
                     f"{b7.flash_bytes / TFLM_FLASH[m]:.2f}x | {fmt(b4.instructions_per_inference)} |")
    L += ["", "Issue 16's limits for the default mode (flash <= int8 weights + 32 KB and the M4 count at",
          "the same time):", ""]
    for m in MODELS:
        r, b7, b4 = res[m, "balanced"]
        limit = r["weights_int8_bytes"] + 32 * 1024
        ok_f, ok_i = b7.flash_bytes <= limit, b4.instructions_per_inference <= FLASH_M4_REQUIRED[m]
        L.append(f"- {m}: flash {fmt(b7.flash_bytes)} B (<= {fmt(limit)}: {'met' if ok_f else 'NOT met'}), "
                 f"M4 {fmt(b4.instructions_per_inference)} (<= {fmt(FLASH_M4_REQUIRED[m])}: "
                 f"{'met' if ok_i else 'NOT met'})")
    L += ["", MODES_END]
    return "\n".join(L) + "\n"


def render_fast(fast) -> str:
    L = ["", "## Speed over RAM: `--kernel-scratch any` (Cortex-M4 and Cortex-M55)", "",
         "By default kernel scratch may grow the arena by 1/16 or 512 bytes, whichever is more (a",
         "depthwise ring then covers fewer channels; other variants fall back to portable kernels).",
         "With `--kernel-scratch any` every variant gets its full scratch:", "",
         "| model | nucleo-l4r5zi | limit (M4) | peak RAM | cortex-m55 | M55 / M4 |",
         "|---|---:|---:|---:|---:|---:|"]
    for m in MODELS:
        a, b = fast[m, "nucleo-l4r5zi"], fast[m, "cortex-m55"]
        L.append(f"| {m} | {fmt(a.instructions_per_inference)} | <= {fmt(M4_REQUIRED[m])} | "
                 f"{fmt(a.peak_ram_bytes)} | {fmt(b.instructions_per_inference)} | "
                 f"{b.instructions_per_inference / a.instructions_per_inference:.2f}x |")
    return "\n".join(L) + "\n"


def render_cycles(res) -> str:
    """Estimated cycles and ms (docs/cycle-model.md) per target, and published MLPerf Tiny latencies."""
    L = [CYCLES_BEGIN, "", "## Estimated latency (cycle model)", "",
         "`bench` weights the executed instructions by class with per-core costs (QEMU plugin +",
         "disassembly; tables and limits in [docs/cycle-model.md](docs/cycle-model.md)). Estimated ms",
         "at each target's clock, with the estimated cycles per instruction; code and data are",
         "assumed in zero-wait-state memory.", "",
         "| model | " + " | ".join(TARGETS) + " |", "|---|" + "---:|" * len(TARGETS)]
    for m in MODELS:
        cells = []
        for t in TARGETS:
            r = res[m, t]
            cells.append(f"{r.est_ms:.2f} ms ({r.est_cycles / r.instructions_per_inference:.2f})"
                         if r.est_cycles else "-")
        L.append(f"| {m} | " + " | ".join(cells) + " |")
    clocks = {t: res[MODELS[0], t].clock_hz for t in TARGETS}
    L += ["", "Clocks: " + ", ".join(f"{t} {clocks[t] / 1e6:g} MHz" for t in TARGETS) + ".", ""]
    L += ["### Against published MLPerf Tiny latencies", "",
          "Published figures are whole-inference latencies measured on the boards (EEMBC runner, median",
          "throughput), with other inference engines: they compare the engines as much as they check",
          "the model. Only boards with published results are listed.", ""]
    for t, sources in MLPERF_PUBLISHED.items():
        L += [f"| model ({t}) | tinydeploy est. | " + " | ".join(f"published [{i + 1}]" for i in range(len(sources)))
              + " |", "|---|---:|" + "---:|" * len(sources)]
        for m in MODELS:
            r = res[m, t]
            est = f"{r.est_ms:.1f} ms" if r.est_ms else "-"
            L.append(f"| {m} | {est} | " + " | ".join(f"{src[m]:.1f} ms" for _, src in sources) + " |")
        L += [""] + [f"[{i + 1}] {name}" + ("  " if i < len(sources) - 1 else "")
                     for i, (name, _) in enumerate(sources)] + [""]
    m4 = {m: res[m, "nucleo-l4r5zi"] for m in MODELS}
    L += ["A rough check of the model against [1], which ran TFLM with CMSIS-NN kernels: the",
          "TFLM + CMSIS-NN instruction counts measured on the same emulated M4 (table above), costed",
          "at the cycles per instruction the model gives tinydeploy's M4 code, and what [1] measured:", "",
          "| model | TFLM + CMSIS-NN instr. | x est. CPI / 120 MHz | published [1] | published / model |",
          "|---|---:|---:|---:|---:|"]
    ref = MLPERF_PUBLISHED["nucleo-l4r5zi"][0][1]
    for m in MODELS:
        r = m4[m]
        if not r.est_cycles:
            continue
        ms = CMSIS_NN[m] * r.est_cycles / r.instructions_per_inference / 120e3
        L.append(f"| {m} | {fmt(CMSIS_NN[m])} | {ms:.1f} ms | {ref[m]:.1f} ms | {ref[m] / ms:.1f}x |")
    L += ["", "The gap is what the model leaves out: flash wait states (5 at 120 MHz behind the ART",
          "accelerator), a CPI borrowed from tinydeploy's kernels for TFLM's different instruction mix, and an",
          "older TFLM/CMSIS-NN (v2.3.1, 2020) than the one counted on the emulator. Read the estimates",
          "as a lower bound for a board running from flash.", ""]
    L += ["stm32f746: no published MLPerf Tiny result for this board was found (v0.5-v1.1 results",
          "repositories), so there is nothing to compare with.", "", CYCLES_END]
    return "\n".join(L) + "\n"


def replace_section(text: str, section: str, begin: str, end: str) -> str:
    """`text` with the section between the markers replaced by `section` (appended if absent)."""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        return head + section + ("\n" + tail if tail else "")
    return text.rstrip("\n") + "\n\n" + section


def replace_cycles(text: str, section: str) -> str:
    return replace_section(text, section, CYCLES_BEGIN, CYCLES_END)


def bench_sequence() -> dict:
    """The tiny ViT of issue 15 (tests/transformer_models.py, 4 blocks, width 64, 4 heads,
    65 tokens) in int8, calibrated on 32 normal(0, 1) images, on the SEQ_TARGETS."""
    import tempfile

    import numpy as np
    import onnx
    sys.path.insert(0, str(REPO / "tests"))
    import transformer_models as tm
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in (("tiny ViT, opset 13", dict(opset=13)), ("tiny ViT, opset 17", dict(opset=17))):
            path = Path(tmp) / "vit.onnx"
            onnx.save(tm.tiny_vit(**kw), path)
            calib = {"image": np.random.default_rng(0).normal(0, 1, (32, 3, 32, 32)).astype(np.float32)}
            for t in SEQ_TARGETS:
                print(f"bench {name} on {t}", file=sys.stderr)
                res[name, t] = api.bench(path, t, calib=calib, optimize="speed")
    return res


def render_sequence(res) -> str:
    L = [SEQ_BEGIN, "", "## Transformers (int8)", "",
         "The 4-block ViT of issue 15 (width 64, 4 heads, 65 tokens, patch embedding by a strided conv,",
         "class token; `tests/transformer_models.py`, random weights), calibrated on 32 images; attention",
         "= the layers of the attention sub-blocks (q/k/v projection, q·kᵀ, softmax, a·v, output",
         "projection). `--optimize speed`. Made by `tools/benchmarks.py --sequence-only`.", "",
         "| model | target | instructions | MACs/instr. | attention share | est. ms | flash | peak RAM |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (name, t), r in res.items():
        attn = sum(layer["instructions"] for layer in r.layers if "/attn/" in layer["name"])
        est = f"{r.est_ms:.1f}" if r.est_ms else "-"
        L.append(f"| {name} | {t} | {fmt(r.instructions_per_inference)} | {r.macs_per_instruction:.2f} | "
                 f"{attn / r.instructions_per_inference:.0%} | {est} | {fmt(r.flash_bytes)} | "
                 f"{fmt(r.peak_ram_bytes)} |")
    L += ["", "The opset-13 export (LayerNorm and GELU decomposed into element-wise ops) and the opset-17",
          "export (LayerNormalization) compile to the same layers: the same figures.", "", SEQ_END]
    return "\n".join(L) + "\n"



def proxy_images(seed: int, n: int):
    """Smooth random 32x32 RGB images in 0..255 (blocks of 8x8 pixels, box-blurred, plus
    noise): resnet8's calibration and evaluation data here, a stand-in for CIFAR-10, which
    does not ship with the project (uniform noise makes every image one class)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 255, (n, 4, 4, 3)).repeat(8, 1).repeat(8, 2)
    img = sliding_window_view(np.pad(img, ((0, 0), (3, 4), (3, 4), (0, 0)), mode="edge"), (8, 8),
                              axis=(1, 2)).mean(axis=(-1, -2))
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.float32)


def bench_int4(models: Path) -> dict:
    """--weights int4 on the four int8_qdq.onnx models (weights requantized to int4), and
    --weights mixed on resnet8's float model calibrated on 64 proxy images: flash on
    stm32f746 next to the int8 build, top-1 agreement with the float model (onnxruntime)
    on 200 other proxy images, and C == golden on the INT4_TARGETS with instructions."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    rows = {}
    for m in MODELS:
        path = models / m / "int8_qdq.onnx"
        print(f"int4 {m}", file=sys.stderr)
        int8 = api.compile(path, "stm32f746").report
        int4 = api.compile(path, "stm32f746", weights="int4").report
        runs = {t: api.verify(path, t, samples=2, weights="int4") for t in INT4_TARGETS}
        x = {onnx.load(str(path)).graph.input[0].name: np.load(models / m / "reference.npz")["float_inputs"]}
        a, b = (next(iter(api.run(path, x, target="host", golden=True, weights=w).outputs.values()))
                .astype(np.float64) for w in ("int8", "int4"))
        sqnr = 10 * np.log10(np.sum(a ** 2) / max(np.sum((a - b) ** 2), 1e-30))
        rows[m, "int4"] = dict(int8=int8, low=int4, runs=runs,
                               quality=f"SQNR {sqnr:.1f} dB vs the int8 build")
    path = models / "resnet8" / "float.onnx"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    calib, evaluation = {name: proxy_images(1, 64)}, proxy_images(2, 200)
    want = np.concatenate([sess.run(None, {name: x[None]})[0] for x in evaluation]).argmax(1)
    agree = {}
    for w in ("int8", "mixed"):
        print(f"resnet8 float --weights {w}", file=sys.stderr)
        got = api.run(path, {name: evaluation}, target="host", calib=calib, weights=w, golden=True)
        agree[w] = float(np.mean(next(iter(got.outputs.values())).reshape(len(evaluation), -1).argmax(1) == want))
    int8 = api.compile(path, "stm32f746", calib=calib).report
    mixed = api.compile(path, "stm32f746", calib=calib, weights="mixed").report
    runs = {t: api.verify(path, t, samples=2, calib=calib, weights="mixed") for t in INT4_TARGETS}
    rows["resnet8", "mixed"] = dict(int8=int8, low=mixed, runs=runs,
                                    quality=f"top-1 agreement with float: int8 {agree['int8']:.3f}, "
                                            f"mixed {agree['mixed']:.3f}")
    return rows


def render_int4(rows: dict) -> str:
    L = [INT4_BEGIN, "## int4 weights (`--weights int4`, `--weights mixed`)", "",
         "Flash of the library on stm32f746 (default `--optimize balanced`, measured from the compiled",
         "objects as in report.json) with int8 and with int4 weights; `int4` requantizes the",
         "int8_qdq.onnx weights to int4 (per channel, least-squares scale), `mixed` is resnet8's float",
         "model calibrated on 64 proxy images (tools/benchmarks.py `proxy_images`: smooth random",
         "images standing in for CIFAR-10) with the default budget of 1 dB. Top-1 agreement is with",
         "the float model (onnxruntime) on 200 other proxy images; the int4 rows compare with the int8",
         "build on the 8 reference inputs (int4 everywhere without calibration data is nearest rounding:",
         "resnet8 does not survive it, `mixed` with `--calib` is the way for such models). Kernels of",
         "int4 layers: Arm DSP td_arm_conv_s4 / td_arm_dw_s4 / td_arm_fc_s4 (Cortex-M4, M7), Helium",
         "td_mve_conv_s4 / td_mve_dw_s4 / td_mve_fc_s4 (M55), RISC-V vector td_rvv_conv_s4 /",
         "td_rvv_dw_s4 / td_rvv_fc_s4, the portable s4 kernels for other shapes (grouped layers, odd",
         "counts); C == golden bit for bit on each core listed.", "",
         "| model | weights | int4 layers | flash int8 | flash int4 | ratio | quality | "
         + " | ".join(f"{t} instr. (C == golden)" for t in INT4_TARGETS) + " |",
         "|---|---|---:|---:|---:|---:|---|" + "---:|" * len(INT4_TARGETS)]
    for (m, w), r in rows.items():
        f8, f4 = r["int8"]["flash_bytes"], r["low"]["flash_bytes"]
        cells = [f"{fmt(v.instructions_per_inference)} ({'yes' if v.match else 'NO'})" for v in r["runs"].values()]
        L.append(f"| {m} | {w} | {r['low']['weights']['int4_layers']} | {fmt(f8)} | {fmt(f4)} | {f4 / f8:.2f}x | "
                 f"{r['quality']} | " + " | ".join(cells) + " |")
    L += ["", "Issue 16: `--weights int4` on ad <= 0.55x of its int8 flash; `--weights mixed` on resnet8",
          "<= 0.8x with top-1 agreement >= 0.9.", "", INT4_END]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
