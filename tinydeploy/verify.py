"""Run generated libraries on emulated MCUs: verify against the golden model, and bench."""
from __future__ import annotations

import sys
import tempfile
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import emulator, firmware, golden
from .errors import TinydeployError
from .progress import get as get_progress

DEFAULT_SAMPLES = 3


def _model_info(result) -> firmware.ModelInfo:
    io = result.io
    n_layers = len(result.report["layers"])  # emitted layers (a fused conv+add is one)
    return firmware.ModelInfo(result.name, io["input"]["ctype"], io["output"]["ctype"],
                              io["input"]["size"], io["output"]["size"], n_layers)


def build_and_run(result, xq: np.ndarray, work: Path, mode: str = "profile", progress=None) -> tuple:
    """Cross-compile the library in result.out_dir with the harness; run on the emulator."""
    tgt = result.target
    if tgt.emulator is None:
        raise TinydeployError(f"target '{tgt.name}' has no emulator; use -t host or an MCU target")
    bar = get_progress(progress)
    sources = sorted(result.out_dir.glob("*.c"))
    with bar.stage(f"building firmware for {tgt.name}"):
        elf = firmware.build_firmware(tgt, sources, [result.out_dir], {}, _model_info(result), xq,
                                      work / f"fw-{mode}", mode=mode, werror=True)
    with bar.stage(f"running {len(xq)} sample(s) on {tgt.emulator.machine}"):
        return elf, emulator.run_firmware(tgt, elf)


def run_on_target(result, xq: np.ndarray, work: Path) -> tuple[np.ndarray, Optional[list]]:
    _, res = build_and_run(result, xq, work, mode="run")
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


def default_inputs(result, n: int) -> np.ndarray:
    """Deterministic random samples over the input's whole range."""
    shape = result.io["input"]["shape"]
    sample = tuple(shape[1:]) if shape and shape[0] == 1 else tuple(shape)
    rng = np.random.default_rng(2026)
    if result.io["input"]["dtype"] == "int8":
        return rng.integers(-128, 128, size=(n,) + sample, dtype=np.int8)
    return rng.uniform(-1, 1, size=(n,) + sample).astype(np.float32)


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


def _reference(result, xq: np.ndarray, progress=None) -> np.ndarray:
    samples = get_progress(progress)(xq, "golden model")
    out = result.graph.outputs[0]
    if result.io["output"]["dtype"] == "int8":
        return np.stack([golden.run_sample(result.graph, s)[out].reshape(-1) for s in samples])
    from . import float_ref
    return np.stack([float_ref.run(result.graph, s[None])[out].reshape(-1) for s in samples])


def verify(model, target: str, inputs=None, samples: int = DEFAULT_SAMPLES, progress=None,
           **compile_options) -> VerifyResult:
    """Compile for `target`, run on its emulator, compare with the golden model (bit for bit).

    progress: None (silent), True, or a tinydeploy.progress.Progress for bars on stderr."""
    from . import api
    with tempfile.TemporaryDirectory(prefix="tinydeploy-verify-") as tmp:
        work = Path(tmp)
        result = api.compile(model, target=target, out_dir=work / "lib", progress=progress,
                             **compile_options)
        if inputs is None:
            xq = default_inputs(result, samples)
        else:
            xq = api._prepare(api.load_inputs(inputs, result), result, raw=False)
        _, res = build_and_run(result, xq, work, mode="profile", progress=progress)
        got = res.output_array
        want = _reference(result, xq, progress).reshape(got.shape)
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
        exact = result.io["output"]["dtype"] == "int8"
        match = diff == 0.0 if exact else bool(np.all(np.abs(got - want) <= 1e-4 * (1 + np.abs(want))))
        first = None if match else first_mismatching_layer(result, xq, work)
        ipi = int(np.mean(res.instructions)) if res.instructions else None
        return VerifyResult(result.target.name, bool(match), len(xq), diff, ipi, first,
                            list(res.instructions or []))


def first_mismatching_layer(result, xq: np.ndarray, work: Path) -> Optional[str]:
    """Rebuild with per-layer dumps and name the first layer whose output differs."""
    if result.io["output"]["dtype"] != "int8":
        return None
    _, res = build_and_run(result, xq[:1], work, mode="dump")
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


def bench(model, target: str, progress=None, **compile_options) -> BenchResult:
    """Instructions per inference (total and per layer), flash and RAM on the emulated target."""
    from . import api
    with tempfile.TemporaryDirectory(prefix="tinydeploy-bench-") as tmp:
        work = Path(tmp)
        result = api.compile(model, target=target, out_dir=work / "lib", progress=progress,
                             **compile_options)
        xq = default_inputs(result, 1)
        elf, res = build_and_run(result, xq, work, mode="profile", progress=progress)
        sizes = library_sizes(elf, result)
        total = int(res.instructions[0]) if res.instructions else 0
        per_layer = res.layer_instructions[0] if res.layer_instructions else []
        layers = [dict(name=l["name"], op=l["op"], kernel=l["kernel"], macs=l["macs"],
                       instructions=int(per_layer[i]) if i < len(per_layer) else None)
                  for i, l in enumerate(result.report["layers"])]
        macs = result.report["macs"]
        return BenchResult(Path(model).name, result.target.name, total, macs,
                           round(macs / total, 3) if total else 0.0, sizes["flash_bytes"],
                           sizes["ram_bytes"], result.report["arena_bytes"],
                           result.report["peak_ram_bytes"], layers)


class _CallableModule(types.ModuleType):
    """`tinydeploy.verify(...)` calls verify(): the package attribute `tinydeploy.verify` is
    this module (same name), so the module itself is callable; `.bench` etc. work as usual."""

    def __call__(self, *args, **kwargs):
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
