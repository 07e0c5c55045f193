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

from . import data, emulator, firmware, golden
from .errors import TinydeployError
from .progress import get as get_progress

DEFAULT_SAMPLES = 3


def _model_info(result) -> firmware.ModelInfo:
    io = result.io
    n_layers = len(result.report["layers"])  # emitted layers (a fused conv+add is one)
    return firmware.ModelInfo(result.name, io["input"]["ctype"], io["output"]["ctype"],
                              io["input"]["size"], io["output"]["size"], n_layers)


def build_and_run(result, xq: np.ndarray, work: Path, mode: str = "profile", progress=None,
                  toolchain: str = "gcc") -> tuple:
    """Cross-compile the library in result.out_dir (with gcc or clang) and the harness; run on
    the emulator."""
    tgt = result.target
    if tgt.emulator is None:
        raise TinydeployError(f"target '{tgt.name}' has no emulator to run the library on; choose an "
                              "emulated MCU target with -t (e.g. -t stm32f746; `tinydeploy targets` lists them)")
    bar = get_progress(progress)
    sources = sorted(result.out_dir.glob("*.c"))
    with bar.stage(f"building firmware for {tgt.name}" + (f" with {toolchain}" if toolchain != "gcc" else "")):
        elf = firmware.build_firmware(tgt, sources, [result.out_dir], {}, _model_info(result), xq,
                                      work / f"fw-{mode}", mode=mode, werror=True,
                                      toolchain=toolchain)
    with bar.stage(f"running {len(xq)} sample(s) on {tgt.emulator.machine}"):
        return elf, emulator.run_firmware(tgt, elf)


def run_on_target(result, xq: np.ndarray, work: Path,
                  toolchain: str = "gcc") -> tuple[np.ndarray, Optional[list]]:
    _, res = build_and_run(result, xq, work, mode="run", toolchain=toolchain)
    return res.output_array, res.instructions


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

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("instructions")
        return d


def compare(result, xq: np.ndarray, work: Path, progress=None, toolchain: str = "gcc") -> VerifyResult:
    """Run samples xq (as the library takes them) on the emulator and compare every output
    with the reference model: bit for bit for int8, within 1e-4 for float32."""
    _, res = build_and_run(result, xq, work, mode="profile", progress=progress, toolchain=toolchain)
    got = res.output_array
    want = golden.reference_outputs(result.graph, get_progress(progress)(xq, "golden model"))
    want = want.reshape(got.shape)
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
    exact = result.io["output"]["dtype"] == "int8"
    match = diff == 0.0 if exact else bool(np.all(np.abs(got - want) <= 1e-4 * (1 + np.abs(want))))
    first = None if match else first_mismatching_layer(result, xq, work, toolchain)
    ipi = int(np.mean(res.instructions)) if res.instructions else None
    return VerifyResult(result.target.name, bool(match), len(xq), diff, ipi, first,
                        list(res.instructions or []))


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
    layers: list  # [{name, op, kernel, macs, instructions}]

    def to_json(self) -> dict:
        return asdict(self)


def measure(result, work: Path, progress=None, toolchain: str = "gcc") -> BenchResult:
    """Instructions per inference (total and per layer), flash and RAM on the emulated target."""
    xq = data.default_inputs(result.io, 1)
    elf, res = build_and_run(result, xq, work, mode="profile", progress=progress,
                             toolchain=toolchain)
    sizes = library_sizes(elf, result)
    total = int(res.instructions[0]) if res.instructions else 0
    per_layer = res.layer_instructions[0] if res.layer_instructions else []
    layers = [dict(name=l["name"], op=l["op"], kernel=l["kernel"], macs=l["macs"],
                   instructions=int(per_layer[i]) if i < len(per_layer) else None)
              for i, l in enumerate(result.report["layers"])]
    macs = result.report["macs"]
    return BenchResult(result.report["model"], result.target.name, total, macs,
                       round(macs / total, 3) if total else 0.0, sizes["flash_bytes"],
                       sizes["ram_bytes"], result.report["arena_bytes"],
                       result.report["peak_ram_bytes"], layers)
