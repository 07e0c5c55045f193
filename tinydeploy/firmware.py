"""Build test firmware: a generated model library + input samples + harness.

`build_firmware` compiles the model's C sources together with the harness in
targets/common/harness.c and the target's start-up code, and links an ELF
that runs every sample and prints the results (see harness.c for the line
protocol, `tinydeploy.emulator` for running and parsing it).

The harness stays generic through two generated files in `out_dir`:
`td_glue.h` maps TD_RUN, TD_INPUT_T, TD_OUTPUT_T, TD_INPUT_SIZE,
TD_OUTPUT_SIZE and TD_NUM_LAYERS to the model's names, and `td_inputs.c`
holds the samples as a const array (in flash).  A model with several inputs
or outputs (ModelInfo.input_sizes/output_sizes): a sample holds every input
and the harness's output buffer every output, flattened and concatenated in
NAME_run's order, and TD_RUN is a wrapper (td_run_packed) that passes
NAME_run one pointer into them per input and output.
"""

from __future__ import annotations

import math
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from tinydeploy import objcache
from tinydeploy import toolchain as toolchain_mod
from tinydeploy.errors import TinydeployError
from tinydeploy.targets import TARGETS_DIR, Target, load_target

COMMON_DIR = TARGETS_DIR / "common"
HARNESS_SOURCE = COMMON_DIR / "harness.c"
MODES = {"run": 0, "profile": 1, "dump": 2}

TOOL_PACKAGES = toolchain_mod.TOOL_PACKAGES  # Debian packages that provide each compiler driver

# C type of a model's input/output -> numpy dtype (also accepts dtype names).
C_TYPES = {"int8_t": "int8", "uint8_t": "uint8", "int16_t": "int16",
           "int32_t": "int32", "float": "float32"}
_DTYPE_TO_C = {v: k for k, v in C_TYPES.items()}
_WARNINGS = ("-Wall", "-Wextra")
_HOOK_DEFINE = "-DTD_LAYER_DONE(i,p,n)=td_layer_done(i,p,n)"


@dataclass(frozen=True)
class ModelInfo:
    """What the harness needs to know about a generated model library."""

    name: str
    input_ctype: str
    output_ctype: str
    input_size: int
    output_size: int
    num_layers: int = 0
    header: str | None = None  # default: NAME.h
    # A model with several inputs or outputs: the size of each, in NAME_run's order
    # (input_size/output_size are then their sums: a sample holds every input, the
    # harness's output every output, flattened and concatenated in that order).
    input_sizes: tuple = ()
    output_sizes: tuple = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise TinydeployError(f"model name '{self.name}' is not a C identifier")
        for key in ("input_ctype", "output_ctype"):
            object.__setattr__(self, key, _c_type(getattr(self, key), key))
        for key in ("input_size", "output_size"):
            if int(getattr(self, key)) <= 0:
                raise TinydeployError(f"model {key} must be positive")
        for key, total in (("input_sizes", self.input_size), ("output_sizes", self.output_size)):
            sizes = tuple(int(v) for v in getattr(self, key))
            object.__setattr__(self, key, sizes)
            if sizes and (sum(sizes) != int(total) or min(sizes) <= 0):
                raise TinydeployError(f"model {key} {list(sizes)} must be positive and add up to "
                                      f"{key[:-1]} ({total})")

    @property
    def multi_io(self) -> bool:
        """NAME_run takes one pointer per input and output (not exactly one of each)."""
        return len(self.input_sizes) > 1 or len(self.output_sizes) > 1

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(C_TYPES[self.input_ctype])

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(C_TYPES[self.output_ctype])

    @classmethod
    def coerce(cls, model: Any) -> "ModelInfo":
        """From a ModelInfo, a dict or any object with the same attributes."""
        if isinstance(model, cls):
            return model
        keys = ("name", "input_ctype", "output_ctype", "input_size", "output_size",
                "num_layers", "header", "input_sizes", "output_sizes")
        if isinstance(model, Mapping):
            values = {k: model[k] for k in keys if k in model}
        else:
            values = {k: getattr(model, k) for k in keys if hasattr(model, k)}
        missing = [k for k in keys[:5] if k not in values]
        if missing:
            raise TinydeployError(f"model description lacks {', '.join(missing)}")
        return cls(**values)


def _c_type(value: Any, what: str) -> str:
    text = str(value)
    if text in C_TYPES:
        return text
    try:
        return _DTYPE_TO_C[np.dtype(value).name]
    except (TypeError, KeyError):
        raise TinydeployError(
            f"model {what} '{value}' is not supported; use one of "
            f"{', '.join(C_TYPES)}") from None


def build_firmware(target: Target | str, sources: Iterable[str | Path],
                   include_dirs: Iterable[str | Path], defines: Any,
                   model: Any, inputs: np.ndarray, out_dir: str | Path, *,
                   mode: str = "profile", extra_cflags: Sequence[str] = (),
                   werror: bool = False, jobs: int = 2, toolchain: str = "gcc") -> Path:
    """Compile and link firmware that runs `model` on `inputs`; returns the ELF.

    sources/include_dirs: the generated library (NAME.c, NAME_weights.c,
    kernels) and where NAME.h and the kernel headers are. defines: a mapping
    NAME -> value (None for a bare define) or a list of "NAME[=VALUE]".
    model: ModelInfo or dict/object with its fields. inputs: array
    [samples, ...] of the input dtype. mode: "run" (no per-layer hooks),
    "profile" (per-layer instruction counts) or "dump" (also every layer's
    output bytes). werror: treat warnings in the model sources as errors.
    toolchain: "gcc" (the target's cc) or "clang" compiles the model sources;
    the harness and start-up code are always built and linked by the
    target's gcc toolchain (see tinydeploy.toolchain).
    """
    target = load_target(target)
    info = ModelInfo.coerce(model)
    if mode not in MODES:
        raise TinydeployError(f"unknown firmware mode '{mode}'; use one of {', '.join(MODES)}")
    cc = toolchain_mod.find_compiler(target, "gcc")
    model_cc = toolchain_mod.find_compiler(target, toolchain)
    out = Path(out_dir).resolve()
    (out / "obj").mkdir(parents=True, exist_ok=True)
    samples = _samples(info, inputs)
    (out / "td_glue.h").write_text(glue_header(info, MODES[mode], len(samples)))
    (out / "td_inputs.c").write_text(inputs_source(info, samples))

    includes = [f"-I{Path(d).resolve()}" for d in include_dirs]
    base = [*target.cflags, *_define_flags(defines), *_counter_flags(target)]
    model_flags = [*toolchain_mod.cflags(target, toolchain), *_define_flags(defines),
                   *_counter_flags(target), *_WARNINGS, *(["-Werror"] if werror else []), *extra_cflags,
                   *includes, f"-I{COMMON_DIR}"]
    hook_flags = [] if mode == "run" else ["-include", str(COMMON_DIR / "tdh_hook.h"),
                                           _HOOK_DEFINE]
    harness_flags = [*base, "-std=c99", *_WARNINGS, "-Werror", f"-I{out}", *includes,
                     f"-I{COMMON_DIR}"]

    jobs_list = [(model_cc, p, model_flags + (hook_flags if p.suffix == ".c" else []))
                 for p in (Path(s).resolve() for s in sources)]
    own = [HARNESS_SOURCE, *target.startup, out / "td_inputs.c"]
    jobs_list += [(cc, p, harness_flags) for p in own]
    objects = _compile_all(jobs_list, out / "obj", jobs)
    elf = out / "firmware.elf"
    _link(cc, target, objects, elf)
    return elf


def _samples(info: ModelInfo, inputs: np.ndarray) -> np.ndarray:
    array = np.asarray(inputs)
    if array.ndim == 0 or array.shape[0] == 0:
        raise TinydeployError("build_firmware needs at least one input sample")
    flat = array.reshape(array.shape[0], -1)
    if flat.shape[1] != info.input_size:
        raise TinydeployError(
            f"input samples have {flat.shape[1]} elements each, model {info.name} "
            f"expects {info.input_size}")
    dtype = info.input_dtype
    if dtype.kind in "iu":
        if flat.dtype.kind == "f" and not np.array_equal(flat, np.round(flat)):
            raise TinydeployError(
                f"model {info.name} takes {dtype.name} inputs, got fractional values")
        limits = np.iinfo(dtype)
        if flat.size and (flat.min() < limits.min or flat.max() > limits.max):
            raise TinydeployError(f"input values exceed the range of {dtype.name}")
    return flat.astype(dtype)


def glue_header(info: ModelInfo, mode: int, num_samples: int) -> str:
    """td_glue.h: the model's names for the generic harness."""
    upper = info.name.upper()
    header = info.header or f"{info.name}.h"
    lines = [
        "/* Generated by tinydeploy.firmware: binds the harness to the model. */",
        "#ifndef TD_GLUE_H", "#define TD_GLUE_H", "",
        "#include <stdint.h>", f'#include "{header}"', "",
        *_packed_run(info),
        f"#define TD_RUN {'td_run_packed' if info.multi_io else info.name + '_run'}",
        f"#define TD_INPUT_T {info.input_ctype}",
        f"#define TD_OUTPUT_T {info.output_ctype}",
        f"#define TD_INPUT_SIZE {info.input_size}",
        f"#define TD_OUTPUT_SIZE {info.output_size}",
        f"#define TD_NUM_LAYERS {info.num_layers}",
        f'#define TD_INPUT_TYPE_NAME "{info.input_dtype.name}"',
        f'#define TD_OUTPUT_TYPE_NAME "{info.output_dtype.name}"',
        f"#define TD_NUM_SAMPLES {num_samples}",
        f"#define TD_MODE {mode}", "",
    ]
    for what, size in (() if info.multi_io else (("INPUT", info.input_size), ("OUTPUT", info.output_size))):
        macro = f"{upper}_{what}_SIZE"
        lines += [f"#if defined({macro}) && ({macro}) != {size}",
                  f'#error "{macro} differs from the model description ({size})"',
                  "#endif"]
    lines += ["", "#endif", ""]
    return "\n".join(lines)


def _packed_run(info: ModelInfo) -> list[str]:
    """Several inputs or outputs: td_run_packed(in, out) calls NAME_run with one pointer
    per input into `in` and one per output into `out` (each flattened, concatenated)."""
    if not info.multi_io:
        return []
    args, at = [], 0
    for size in info.input_sizes or (info.input_size,):
        args.append(f"in + {at}")
        at += size
    at = 0
    for size in info.output_sizes or (info.output_size,):
        args.append(f"out + {at}")
        at += size
    return [f"static inline int td_run_packed(const {info.input_ctype} *in, {info.output_ctype} *out)",
            "{", f"    return {info.name}_run({', '.join(args)});", "}", ""]


def inputs_source(info: ModelInfo, samples: np.ndarray) -> str:
    """td_inputs.c: the samples as a const array in flash."""
    fmt = _float_literal if info.input_dtype.kind == "f" else (lambda v: str(int(v)))
    per_line = 12
    blocks = []
    for sample in samples:
        values = [fmt(v) for v in sample.tolist()]
        rows = [", ".join(values[i:i + per_line]) for i in range(0, len(values), per_line)]
        blocks.append("    {\n        " + ",\n        ".join(rows) + "\n    }")
    return (
        "/* Generated by tinydeploy.firmware: input samples. */\n"
        "#include <math.h>\n#include \"td_glue.h\"\n\n"
        f"const TD_INPUT_T td_inputs[{len(samples)}][TD_INPUT_SIZE] "
        "__attribute__((aligned(16))) = {\n" + ",\n".join(blocks) + "\n};\n"
        f"const unsigned td_num_samples = {len(samples)}u;\n")


def _float_literal(value: float) -> str:
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return f"{value.hex()}f"  # exact: float32 -> double -> hex


def _define_flags(defines: Any) -> list[str]:
    if not defines:
        return []
    if isinstance(defines, Mapping):
        return [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in defines.items()]
    if isinstance(defines, str):
        defines = [defines]
    return [d if d.startswith("-D") else f"-D{d}" for d in defines]


def _counter_flags(target: Target) -> list[str]:
    if target.counter == "none":
        return []
    return [f"-DTDH_COUNTER_{target.counter.upper()}=1",
            f"-DTDH_COUNTER_HZ={target.counter_hz}u"]


def _compile_all(jobs_list: list[tuple[str, Path, list[str]]], obj_dir: Path,
                 jobs: int) -> list[Path]:
    """Compile each source (with its compiler) to its own object (unique names for equal stems)."""
    seen: dict[str, int] = {}
    work = []
    for cc, source, flags in jobs_list:
        if not source.is_file():
            raise TinydeployError(f"source file {source} does not exist")
        count = seen.get(source.stem, 0)
        seen[source.stem] = count + 1
        obj = obj_dir / (f"{source.stem}.o" if not count else f"{source.stem}_{count}.o")
        work.append((cc, flags, source, obj))

    def compile_one(w) -> None:
        cc, flags, source, obj = w
        objcache.compile_object(cc, flags, source, obj, lambda cmd: _run_tool(cmd, f"compiling {source.name}"))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(compile_one, work))
    return [w[3] for w in work]


def _link(cc: str, target: Target, objects: list[Path], elf: Path) -> None:
    objs = [str(o) for o in objects]
    if target.is_host:
        cmd = [cc, *target.ldflags, *objs, "-lm", "-o", str(elf)]
    else:
        script = target.linker_script
        cmd = [cc, *target.ldflags, "-nostartfiles", "-T", str(script),
               f"-L{script.parent}", f"-Wl,-Map={elf.with_suffix('.map')}", *objs,
               "-Wl,--start-group", "-lm", "-lc", "-lgcc", "-Wl,--end-group",
               "-o", str(elf)]
    _run_tool(cmd, f"linking firmware for {target.name}")


def _run_tool(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        lines = output.splitlines()
        if len(lines) > 40:
            output = "\n".join(lines[:40] + [f"... ({len(lines) - 40} more lines)"])
        raise TinydeployError(f"{what} failed:\n{output}\ncommand: {' '.join(cmd)}")
