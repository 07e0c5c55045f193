"""Run a compiled library on its target's emulator: compare its outputs with the
reference model (verify), count its instructions and measure its size (bench).

A service below the API: it takes a CompileResult whose library is in
result.out_dir and prepared samples; compiling and loading user data is the
caller's (api.verify, api.bench).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import cycle_model, data, emulator, firmware, golden, shards
from .errors import TinydeployError
from .progress import get as get_progress

DEFAULT_SAMPLES = 3


def _model_info(result) -> firmware.ModelInfo:
    io = result.io
    n_layers = len(result.report["layers"])  # emitted layers (a fused conv+add is one)
    inputs, outputs = data.io_list(io, "input"), data.io_list(io, "output")
    return firmware.ModelInfo(result.name, io["input"]["ctype"], io["output"]["ctype"],
                              sum(i["size"] for i in inputs), sum(o["size"] for o in outputs), n_layers,
                              input_sizes=tuple(i["size"] for i in inputs),
                              output_sizes=tuple(o["size"] for o in outputs))


def build_and_run(result, xq: np.ndarray, work: Path, mode: str = "profile", progress=None,
                  counting: Optional[cycle_model.Counting] = None, toolchain: str = "gcc",
                  executor: Optional[shards.Executor] = None) -> tuple:
    """Cross-compile the library in result.out_dir (with gcc or clang) and the harness; run on
    the emulator. counting: also histogram the executed instructions for the cycle model.
    executor: split the samples into shards run in parallel (no cycle model then; the ELF
    returned is None)."""
    tgt = result.target
    if tgt.emulator is None:
        raise TinydeployError(f"target '{tgt.name}' has no emulator to run the library on; choose an "
                              "emulated MCU target with -t (e.g. -t stm32f746; `tinydeploy targets` lists them)")
    bar = get_progress(progress)
    if executor is not None and executor.sharded and len(xq) > 1:
        with bar.stage(f"building and running {len(xq)} samples in shards on {executor.describe()}"):
            return None, shards.run(tgt, result.out_dir, _model_info(result), xq, work / f"fw-{mode}", mode,
                                    toolchain, executor)
    sources = sorted(result.out_dir.glob("*.c"))
    with bar.stage(f"building firmware for {tgt.name}" + (f" with {toolchain}" if toolchain != "gcc" else "")):
        elf = firmware.build_firmware(tgt, sources, [result.out_dir], {}, _model_info(result), xq,
                                      work / f"fw-{mode}", mode=mode, werror=True,
                                      toolchain=toolchain)
    extra = counting.plugin_args(elf) if counting is not None else []
    with bar.stage(f"running {len(xq)} sample(s) on {tgt.emulator.machine}"):
        try:
            return elf, emulator.run_firmware(tgt, elf, extra=extra)
        except TinydeployError as exc:
            if not extra or "could not load plugin" not in str(exc).lower():
                raise
            # a QEMU without plugin support (or another plugin API): no estimate, same counts
            counting.note = "cycle estimate unavailable: QEMU could not load the instruction-count plugin"
            return elf, emulator.run_firmware(tgt, elf)


def run_on_target(result, xq: np.ndarray, work: Path,
                  counting: Optional[cycle_model.Counting] = None,
                  toolchain: str = "gcc",
                  executor: Optional[shards.Executor] = None) -> tuple[np.ndarray, Optional[list]]:
    _, res = build_and_run(result, xq, work, mode="run", counting=counting, toolchain=toolchain,
                           executor=executor)
    return res.output_array, res.instructions


def run_estimated(result, xq: np.ndarray, work: Path, toolchain: str = "gcc",
                  executor: Optional[shards.Executor] = None) -> tuple:
    """run_on_target plus the cycle model: (outputs, instructions, est. ms per sample or None,
    cost model name or None). Sharded runs (executor) have no estimate."""
    if executor is not None and executor.sharded:
        y, instructions = run_on_target(result, xq, work, None, toolchain, executor)
        return y, instructions, None, None
    counting = cycle_model.Counting(result.target, result.name)
    y, instructions = run_on_target(result, xq, work, counting, toolchain)
    estimates = [counting.estimate(s) for s in range(len(xq))]
    if not estimates or any(e is None for e in estimates):
        return y, instructions, None, None
    return y, instructions, [e.ms(e.cycles) for e in estimates], estimates[0].table.name


def library_sizes(elf: Path, result) -> dict:
    """Flash and static RAM of the model library alone (its object files, weights included)."""
    stems = {p.stem for p in result.out_dir.glob("*.c")}
    total = dict(text=0, rodata=0, data=0, bss=0)
    for obj in (elf.parent / "obj").glob("*.o"):
        if obj.stem.split(".")[0] in stems or obj.stem in stems:
            sizes = emulator.elf_sizes(obj)
            for k in total:
                total[k] += sizes[k]
    return dict(flash_bytes=total["text"] + total["rodata"] + total["data"],
                ram_bytes=total["data"] + total["bss"], **total)


@dataclass
class VerifyResult:
    target: str
    match: bool
    samples: int
    max_abs_diff: float
    instructions_per_inference: Optional[int]
    first_mismatch: Optional[str] = None
    instructions: list = field(default_factory=list)
    outputs: list = field(default_factory=list)  # per model output: {name, match, max_abs_diff}

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("instructions")
        return d


def compare(result, xq: np.ndarray, work: Path, progress=None, toolchain: str = "gcc",
            executor: Optional[shards.Executor] = None) -> VerifyResult:
    """Run samples xq (as the library takes them) on the emulator and compare every output
    with the reference model: bit for bit for int8, within 1e-4 for float32. executor: run
    the samples in shards (same results)."""
    _, res = build_and_run(result, xq, work, mode="profile", progress=progress, toolchain=toolchain,
                           executor=executor)
    got = res.output_array
    want = golden.reference_outputs(result.graph, get_progress(progress)(xq, "golden model"))
    want = want.reshape(got.shape)
    dtype = result.io["output"]["dtype"]
    wants = data.split_outputs(want, result.io)
    per_output = []  # every output of the model compared on its own
    for name, g_out in data.split_outputs(got, result.io).items():
        ok, d = matches_reference(g_out, wants[name], dtype)
        per_output.append(dict(name=name, match=bool(ok), max_abs_diff=d))
    diff = max((o["max_abs_diff"] for o in per_output), default=0.0)
    match = all(o["match"] for o in per_output)
    first = None if match else first_mismatching_layer(result, xq, work, toolchain)
    ipi = int(np.mean(res.instructions)) if res.instructions else None
    return VerifyResult(result.target.name, bool(match), len(xq), diff, ipi, first,
                        list(res.instructions or []), per_output)


def matches_reference(got: np.ndarray, want: np.ndarray, dtype: str) -> tuple[bool, float]:
    """Whether library outputs equal the reference model's: bit for bit for int8, within
    1e-4 (relative, float32 rounding) for float32. (match, max |diff|)"""
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
    if dtype == "int8":
        return diff == 0.0, diff
    return bool(np.all(np.abs(got - want) <= 1e-4 * (1 + np.abs(want)))), diff


def first_mismatching_layer(result, xq: np.ndarray, work: Path,
                            toolchain: str = "gcc") -> Optional[str]:
    """Rebuild with per-layer dumps and name the first layer whose output differs."""
    if result.io["output"]["dtype"] != "int8":
        return None
    _, res = build_and_run(result, xq[:1], work, mode="dump", toolchain=toolchain)
    values = golden.run_sample(result.graph, xq[0], keep_all=True)
    for i, layer in enumerate(result.report["layers"]):
        got = res.dump(0, i, "int8")
        if not np.array_equal(got, values[layer["output"]].reshape(-1)):
            return f"{layer['name']} ({layer['op']}, layer {i})"
    return None


@dataclass
class BenchResult:
    model: str
    target: str
    instructions_per_inference: int
    macs: int
    macs_per_instruction: float
    flash_bytes: int
    ram_bytes: int
    arena_bytes: int
    peak_ram_bytes: int
    layers: list  # [{name, op, kernel, macs, instructions, est_cycles, est_ms}]
    # the cycle model (docs/cycle-model.md): None when it could not run (cycle_model_note says why)
    est_cycles: Optional[int] = None
    est_ms: Optional[float] = None
    clock_hz: Optional[int] = None
    cycle_model: Optional[dict] = None
    cycle_model_note: Optional[str] = None

    def to_json(self) -> dict:
        return asdict(self)


def measure(result, work: Path, progress=None, toolchain: str = "gcc") -> BenchResult:
    """Instructions per inference (total and per layer), flash and RAM on the emulated target."""
    xq = data.default_inputs(result.io, 1)
    counting = cycle_model.Counting(result.target, result.name)
    elf, res = build_and_run(result, xq, work, mode="profile", progress=progress, counting=counting,
                             toolchain=toolchain)
    sizes = library_sizes(elf, result)
    total = int(res.instructions[0]) if res.instructions else 0
    per_layer = res.layer_instructions[0] if res.layer_instructions else []
    est = counting.estimate(0)
    if est is not None and len(est.layers) != len(result.report["layers"]):
        counting.note = (f"cycle estimate unavailable: the plugin saw {len(est.layers)} layers, "
                         f"the model has {len(result.report['layers'])}")
        est = None
    layers = [dict(name=l["name"], op=l["op"], kernel=l["kernel"], macs=l["macs"],
                   instructions=int(per_layer[i]) if i < len(per_layer) else None)
              for i, l in enumerate(result.report["layers"])]
    for layer, e in zip(layers, est.layers if est else []):
        layer.update(est_cycles=e["cycles"], est_ms=est.ms(e["cycles"]))
    macs = result.report["macs"]
    model_info = None
    if est is not None:
        model_info = {k: v for k, v in est.to_json().items() if k not in ("layers", "est_ms", "est_cycles")}
    return BenchResult(result.report["model"], result.target.name, total, macs,
                       round(macs / total, 3) if total else 0.0, sizes["flash_bytes"],
                       sizes["ram_bytes"], result.report["arena_bytes"],
                       result.report["peak_ram_bytes"], layers,
                       est.cycles if est else None, est.ms(est.cycles) if est else None,
                       result.target.clock_hz, model_info, counting.note)
