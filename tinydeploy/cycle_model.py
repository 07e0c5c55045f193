"""Estimated cycles and milliseconds from executed instructions, by class and per core.

The emulator counts instructions exactly (QEMU -icount shift=0), but a core's
cycles depend on which instructions ran: a load costs two cycles on a
Cortex-M4, a 128-bit Helium instruction two on a dual-beat Cortex-M55, a
taken branch refills the pipeline. This module

1. builds a small QEMU TCG plugin (tools_c/td_insn_histogram.c) with the
   host C compiler at first use and caches it;
2. tells it where to split the histogram: the model's run function, the
   per-layer hook and its return sites, so it knows which instructions belong
   to which layer (the harness's own code is left out);
3. disassembles the firmware (objdump), classifies every executed
   instruction and weights its execution count with the core's cost table.

The tables and their sources are in docs/cycle-model.md. A cycle estimate
is a model, not a measurement: no caches, flash wait states or bus
contention (code and data are assumed to be in zero-wait-state memory), see
the documentation for the expected error. If the plugin cannot be built or
run, callers get None and a one-line reason, never an exception.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import Optional

from .errors import TinydeployError

PLUGIN_SOURCE_NAME = "td_insn_histogram.c"
COST_MODEL_VERSION = "1"
HOOK = "td_layer_done"


# ---------------------------------------------------------------------------
# The plugin
# ---------------------------------------------------------------------------
def _plugin_source() -> Path:
    from . import resources
    return resources.data_dir(resources.TOOLS_C) / PLUGIN_SOURCE_NAME


def cache_dir() -> Path:
    """Where built plugins are kept: $TINYDEPLOY_CACHE, else $XDG_CACHE_HOME/tinydeploy."""
    base = os.environ.get("TINYDEPLOY_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tinydeploy"


def build_plugin() -> Path:
    """The plugin's shared object, compiled with the host's cc at first use.

    Raises TinydeployError (with the reason) when no host compiler works.
    """
    source = _plugin_source()
    text = source.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:12]
    candidates = [cache_dir() / "qemu-plugins", Path(tempfile.gettempdir()) / f"tinydeploy-{os.getuid()}"]
    for directory in candidates:
        so = directory / f"td_insn_histogram-{digest}.so"
        if so.is_file():
            return so
    cc = os.environ.get("CC_FOR_BUILD") or shutil.which("gcc") or shutil.which("cc") \
        or shutil.which("clang")
    if cc is None:
        raise TinydeployError("no host C compiler (gcc, cc or clang) to build the QEMU plugin")
    errors = []
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            errors.append(f"{directory}: {exc.strerror}")
            continue
        so = directory / f"td_insn_histogram-{digest}.so"
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
        os.close(fd)
        proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", tmp, str(source)],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            os.replace(tmp, so)  # atomic: parallel builds cannot see half a file
            return so
        os.unlink(tmp)
        errors.append(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else cc)
        break
    raise TinydeployError("cannot build the QEMU plugin: " + "; ".join(errors))


# ---------------------------------------------------------------------------
# Disassembly
# ---------------------------------------------------------------------------
@dataclass
class Insn:
    addr: int
    size: int
    mnemonic: str
    operands: str
    function: str
    text: str = ""


_OBJDUMP = {"arm": ("arm-none-eabi-objdump", "llvm-objdump"),
            "riscv": ("riscv64-unknown-elf-objdump", "riscv32-unknown-elf-objdump", "llvm-objdump")}
_LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(\S+)\s*(.*)$")
_FUNC = re.compile(r"^[0-9a-f]+ <(.+)>:$")


def objdump_for(target) -> str:
    cc = Path(target.cc).name
    names = []
    if cc.endswith("gcc"):
        names.append(cc[:-3] + "objdump")
    names += list(_OBJDUMP.get(target.arch, ()))
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise TinydeployError(f"no objdump for {target.arch} ({', '.join(names)}) to disassemble the firmware")


def objdump_options(target) -> list[str]:
    """Helium (MVE) needs the architecture named, or objdump prints coprocessor instructions."""
    if target.arch == "arm" and (target.has("mve") or target.core in ("cortex-m55", "cortex-m85")):
        return ["-m", "armv8.1-m.main"]
    return []


def disassemble(elf: Path, objdump: str, options: list[str] = ()) -> dict[int, Insn]:
    """{address: Insn} of every instruction in the ELF's code sections."""
    proc = subprocess.run([objdump, "-d", "-z", *options, str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinydeployError(f"objdump failed on {elf}: {proc.stderr.strip()[:200]}")
    insns: dict[int, Insn] = {}
    function = "?"
    for line in proc.stdout.splitlines():
        m = _FUNC.match(line)
        if m:
            if not m.group(1).startswith(".L"):  # assembler-local labels are not functions
                function = m.group(1)
            continue
        m = _LINE.match(line)
        if not m:
            continue
        raw, mnemonic = m.group(2), m.group(3)
        if mnemonic.startswith("."):  # literal pool data
            continue
        addr = int(m.group(1), 16)
        operands = m.group(4).split(";")[0].strip()
        insns[addr] = Insn(addr, len(raw.replace(" ", "")) // 2, mnemonic, operands, function,
                           m.group(4))
    return insns


# ---------------------------------------------------------------------------
# Where to split: run entry, calibration, hook and its return sites
# ---------------------------------------------------------------------------
# Marker kinds, in the order of the plugin's mark list (return sites last).
RUN, EMPTY, RETURNED, HOOK_ENTRY, RESUME = range(5)


def markers(insns: dict[int, Insn], model_name: str) -> list[int]:
    """Addresses [run entry, empty-run entry, after the harness's call of run, hook entry,
    return site after each hook call...]; raises TinydeployError when one is missing."""
    first: dict[str, int] = {}
    for addr in sorted(insns):
        first.setdefault(insns[addr].function, addr)
    run_fn = f"{model_name}_run"
    for fn in (run_fn, "tdh_empty_run", "tdh_time_run"):
        if fn not in first:
            raise TinydeployError(f"the firmware has no function {fn}")
    timer = sorted(a for a, i in insns.items() if i.function == "tdh_time_run")
    calls = [a for a in timer if _is_indirect_call(insns[a])]
    if len(calls) != 1:
        raise TinydeployError("cannot find the harness's call of the model in tdh_time_run")
    after = calls[0] + insns[calls[0]].size
    # without layer hooks (run mode) the hook marker repeats the run entry: never a new segment
    marks = [first[run_fn], first["tdh_empty_run"], after, first.get(HOOK, first[run_fn])]
    if HOOK in first:
        marks += sorted(a + i.size for a, i in insns.items()
                        if f"<{HOOK}>" in i.text and _is_call(i) and not i.function.startswith("tdh_"))
    return marks


def _is_call(i: Insn) -> bool:
    return i.mnemonic.split(".")[0] in ("bl", "blx", "jal", "jalr", "call")


def _is_indirect_call(i: Insn) -> bool:
    m = i.mnemonic.split(".")[0]
    if m == "blx":
        return not i.operands.startswith(("0x", "#")) and "<" not in i.operands
    if m == "jalr":
        return True
    return False


@dataclass
class Histogram:
    """Executions per address: per sample, per layer (in run order) and the tail
    after the last layer; `empty` is the calibration's empty run (one call)."""

    layers: list[list[Counter]] = field(default_factory=list)  # [sample][layer]
    tails: list[Counter] = field(default_factory=list)         # [sample]
    empty: Optional[Counter] = None

    def total(self, sample: int = 0) -> Counter:
        out = Counter(self.tails[sample])
        for c in self.layers[sample]:
            out.update(c)
        return out


def parse_histogram(text: str) -> Histogram:
    """Split the plugin's segments into samples and layers (see `markers` for the order)."""
    hist = Histogram()
    segments: list[tuple[int, Counter]] = []
    current: Optional[Counter] = None
    ended = False
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "S":
            current = Counter()
            segments.append((int(parts[1]), current))
        elif parts[0] == "END":
            ended = True
            break
        elif current is not None:
            current[int(parts[0], 16)] += int(parts[1])
    if not ended:
        raise TinydeployError("the QEMU plugin's output is incomplete")
    bucket: Optional[Counter] = None
    in_run = False
    for mark, counts in segments:
        kind = min(mark, RESUME) if mark >= 0 else -1
        if kind == RUN:
            hist.layers.append([Counter()])
            hist.tails.append(Counter())
            bucket, in_run = hist.layers[-1][0], True
        elif kind == EMPTY:
            bucket, in_run = Counter(), False
            if hist.empty is None:
                hist.empty = bucket
        elif kind == RESUME and in_run:
            hist.layers[-1].append(Counter())
            bucket = hist.layers[-1][-1]
        else:  # before any run, in the hook, after a run
            bucket = None
            if kind == RETURNED:
                in_run = False
        if bucket is not None:
            bucket.update(counts)
    for layers, tail in zip(hist.layers, hist.tails):
        # the segment after the last hook is the run's epilogue: the tail, in no layer
        if len(layers) > 1:
            tail.update(layers.pop())
    return hist


# ---------------------------------------------------------------------------
# Classification and cost tables
# ---------------------------------------------------------------------------
CLASSES = ("alu", "mul", "mac", "simd", "div", "load", "load_multi", "store", "store_multi",
           "branch", "call", "fpu", "vector", "vector_load", "vector_store", "other")

_COND = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al")
_ARM_MUL = {"mul", "muls", "umull", "smull", "smmul", "smmulr", "smulbb", "smulbt", "smultb",
            "smultt", "smulwb", "smulwt", "smuad", "smuadx", "smusd", "smusdx"}
_ARM_MAC = {"mla", "mls", "smlal", "umlal", "smmla", "smmlar", "smmls", "smlabb", "smlabt",
            "smlatb", "smlatt", "smlawb", "smlawt", "smlad", "smladx", "smlsd", "smlsdx",
            "smlald", "smlaldx", "smlsld", "smlsldx", "umaal", "smlalbb", "smlalbt", "smlaltb",
            "smlaltt"}
_ARM_SIMD = {"sxtb16", "sxtab16", "uxtb16", "uxtab16", "sadd16", "ssub16", "sadd8", "ssub8",
             "uadd8", "usub8", "uadd16", "usub16", "qadd", "qsub", "qadd16", "qsub16", "qadd8",
             "qsub8", "qdadd", "qdsub", "ssat", "usat", "ssat16", "usat16", "sel", "pkhbt", "pkhtb",
             "shadd16", "shsub16", "sasx", "ssax", "qasx", "qsax", "usad8", "usada8"}
_ARM_LOAD = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh", "ldrt",
             "ldrbt", "ldrht", "ldrsbt", "ldrsht", "lda", "ldab", "ldah"}
_ARM_STORE = {"str", "strb", "strh", "strex", "strexb", "strexh", "strt", "strbt", "strht",
              "stl", "stlb", "stlh"}
_ARM_LDM = {"ldm", "ldmia", "ldmfd", "ldmdb", "ldmea", "pop", "ldrd"}
_ARM_STM = {"stm", "stmia", "stmea", "stmdb", "stmfd", "push", "strd"}
_ARM_BRANCH = {"b", "bx", "cbz", "cbnz", "tbb", "tbh", "le", "letp", "wls", "wlstp", "dls",
               "dlstp", "lctp"}
_ARM_CALL = {"bl", "blx"}
_ARM_DIV = {"sdiv", "udiv"}
_ARM_KNOWN = (_ARM_MUL | _ARM_MAC | _ARM_SIMD | _ARM_LOAD | _ARM_STORE | _ARM_LDM | _ARM_STM
              | _ARM_BRANCH | _ARM_CALL | _ARM_DIV)
_MVE_PREFIX = ("vldr", "vstr", "vld2", "vld4", "vst2", "vst4")
_Q_REG = re.compile(r"\bq\d+\b")


_ALU_COND = {"add", "sub", "mov", "cmp", "cmn", "and", "orr", "eor", "bic", "mvn", "rsb", "tst"}


def _arm_base(mnemonic: str) -> tuple[str, bool]:
    """(base mnemonic, has a condition code) with .w/.n/.type and condition codes removed."""
    base = mnemonic.split(".")[0]
    if base in _ARM_KNOWN:
        return base, False
    for cond in _COND:
        stem = base[:-len(cond)]
        if base.endswith(cond) and stem and (stem in _ARM_KNOWN or stem in _ALU_COND):
            return stem, True
    return base, False


def _reg_count(operands: str) -> int:
    """Registers in an LDM/STM/PUSH/POP list ({r4-r7, lr} is 5); 2 for LDRD/STRD."""
    m = re.search(r"\{([^}]*)\}", operands)
    if not m:
        return 2
    n = 0
    for part in m.group(1).split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-")
            try:
                n += int(hi.strip().lstrip("rsdq")) - int(lo.strip().lstrip("rsdq")) + 1
            except ValueError:
                n += 1
        elif part:
            n += 1
    return max(n, 1)


_LOOP_END = ("le", "letp")


def classify_arm(i: Insn) -> tuple[str, str, bool]:
    """(class, base mnemonic, conditional branch?) of a Thumb/Thumb-2 instruction."""
    base, cond = _arm_base(i.mnemonic)
    if base == "b":
        return "branch", "b", cond
    if base in ("cbz", "cbnz") or base in _LOOP_END:
        return "branch", base, True
    if base in _ARM_BRANCH:
        return "branch", base, False
    if base in _ARM_CALL:
        return "call", base, False
    if base.startswith("v"):
        if base in ("vpush", "vpop", "vldm", "vstm", "vldmia", "vstmia", "vstmdb"):
            return ("load_multi" if base in ("vpop", "vldm", "vldmia") else "store_multi"), base, False
        mve = bool(_Q_REG.search(i.operands)) or base in ("vctp", "vpst", "vpt", "vpsel")
        if not mve:
            return ("load" if base == "vldr" else "store" if base == "vstr" else "fpu"), base, False
        if base.startswith(("vldr", "vld2", "vld4")):
            return "vector_load", base, False
        if base.startswith(("vstr", "vst2", "vst4")):
            return "vector_store", base, False
        return "vector", base, False
    if base in _ARM_LDM:
        if base == "pop" and "pc" in i.operands:
            return "load_multi", "pop_pc", False
        return "load_multi", base, False
    if base in _ARM_STM:
        return "store_multi", base, False
    if base in _ARM_LOAD:
        if re.match(r"pc\b", i.operands):
            return "branch", "ldr_pc", False
        return "load", base, False
    if base in _ARM_STORE:
        return "store", base, False
    if base in _ARM_MAC:
        return "mac", base, False
    if base in _ARM_MUL:
        return "mul", base, False
    if base in _ARM_SIMD:
        return "simd", base, False
    if base in _ARM_DIV:
        return "div", base, False
    if base in ("mov", "add") and re.match(r"pc\b", i.operands):
        return "branch", base, False
    if base in ("bkpt", "svc", "wfi", "wfe", "mrs", "msr", "isb", "dsb", "dmb", "cpsid", "cpsie"):
        return "other", base, False
    return "alu", base, False


_RV_BRANCH = {"beq", "bne", "blt", "bge", "bltu", "bgeu", "beqz", "bnez", "blez", "bgez",
              "bltz", "bgtz", "bgt", "ble", "bgtu", "bleu"}


# unit-stride, strided, indexed, segment and whole-register vector loads/stores
_RVV_MEM = re.compile(r"^v[ls](?:s|ux|ox)?(?:seg\d+)?e(?:i)?\d+(?:ff)?$|^vl\d+re\d+$|^vs\d+r$|^v[ls]m$")


def classify_riscv(i: Insn) -> tuple[str, str, bool]:
    m = i.mnemonic
    base = m.split(".")[0]
    if m.startswith("v"):
        if base in ("vsetvli", "vsetivli", "vsetvl"):
            return "other", base, False
        if _RVV_MEM.match(base):
            return ("vector_load" if base.startswith("vl") else "vector_store"), base, False
        return "vector", base, False
    if m.startswith("f") and not m.startswith("fence"):
        return "fpu", base, False
    if m in _RV_BRANCH:
        return "branch", m, True
    if m in ("j", "jr", "ret", "jal", "jalr", "tail", "call"):
        if m in ("jal", "jalr", "call"):
            return "call", m, False
        return "branch", m, False
    if m in ("lw", "lh", "lb", "lhu", "lbu"):
        return "load", m, False
    if m in ("sw", "sh", "sb"):
        return "store", m, False
    if m in ("mul", "mulh", "mulhu", "mulhsu"):
        return "mul", m, False
    if m in ("div", "divu", "rem", "remu"):
        return "div", m, False
    if m in ("ecall", "ebreak", "csrr", "csrw", "csrs", "csrc", "csrrw", "csrrs", "wfi", "fence", "fence.i"):
        return "other", m, False
    return "alu", m, False


@dataclass(frozen=True)
class CostTable:
    """One core's cycle costs (docs/cycle-model.md gives the source of each number)."""

    name: str
    description: str
    source: str
    arch: str
    costs: dict                     # class -> cycles per execution
    branch_taken: float             # extra cycles of a taken conditional branch
    branch_always: float = 0.0      # extra cycles of an unconditional branch/return (refill)
    pipelined_ldst: bool = False    # M4: adjacent single loads/stores overlap (1 cycle after the first)
    multi_base: float = 1.0         # LDM/STM/PUSH/POP/LDRD/STRD: base + per_reg * N
    multi_per_reg: float = 1.0
    pop_pc_extra: float = 0.0
    dual_issue: bool = False        # M7: two instructions per cycle, one load/store, one MAC
    mispredict: float = 0.0         # M7: per mispredicted branch (min(taken, not taken))
    mve_cycles: float = 0.0         # cycles per 128-bit MVE instruction
    mve_overlap: float = 0.0        # saved when a memory and an arithmetic MVE op alternate
    vector_dlen: int = 0            # RVV datapath bits per cycle
    vector_vlen: int = 0
    div: float = 1.0
    notes: tuple = ()


_M4_SOURCE = "Arm Cortex-M4 Technical Reference Manual (DDI 0439B), table 3-1 'Cortex-M4 instruction set summary'; FPU: table 7-1"

TABLES = {
    "cortex-m0plus": CostTable(
        "cortex-m0plus", "Cortex-M0+ (2-stage pipeline, single-cycle multiplier)",
        "Arm Cortex-M0+ Technical Reference Manual (DDI 0484C), section 3.3 'Instruction set summary' "
        "(cycle counts); RP2040 datasheet 2.4: the cores are built with the single-cycle multiplier",
        "arm", dict(alu=1, mul=1, mac=2, simd=1, div=1, load=2, store=2, branch=1, call=3, fpu=1,
                    other=3, vector=1, vector_load=2, vector_store=2),
        branch_taken=1, branch_always=1, multi_base=1, multi_per_reg=1, pop_pc_extra=2,
        notes=("B<cond> 1 not taken / 2 taken; B 2; BL 3; BX/BLX 2; LDM/STM/PUSH/POP 1+N, POP {..pc} 3+N",)),
    "cortex-m4": CostTable(
        "cortex-m4", "Cortex-M4 (3-stage pipeline, single-cycle 32x32 MAC)", _M4_SOURCE,
        "arm", dict(alu=1, mul=1, mac=1, simd=1, div=7, load=2, store=2, branch=1, call=3, fpu=1,
                    other=2, vector=1, vector_load=2, vector_store=2),
        branch_taken=2, branch_always=2, pipelined_ldst=True, multi_base=1, multi_per_reg=1,
        pop_pc_extra=2,
        notes=("pipeline refill P = 2 assumed (the TRM gives 1 to 3)", "SDIV/UDIV 2-12: 7 assumed",
               "IT is counted as 1 cycle (may fold onto a 16-bit instruction: 0)")),
    "cortex-m7": CostTable(
        "cortex-m7", "Cortex-M7 (6-stage dual-issue; modelled as two issue slots per cycle, "
        "one load/store and one multiply-accumulate per cycle)",
        "Arm Cortex-M7 Technical Reference Manual (DDI 0489) section 1.2 (dual-issue pipeline, "
        "branch prediction); it has no per-instruction timing table, so the issue rules here are "
        "assumptions",
        "arm", dict(alu=1, mul=1, mac=1, simd=1, div=7, load=1, store=1, branch=1, call=1, fpu=1,
                    other=2, vector=1, vector_load=1, vector_store=1),
        branch_taken=0, branch_always=0, multi_base=0, multi_per_reg=0.5, pop_pc_extra=1,
        dual_issue=True, mispredict=6,
        notes=("per basic block: cycles = max(instructions / 2, load/store slots, MAC slots) + extras",
               "LDM/STM/LDRD/STRD: N/2 load/store slots (64-bit bus)",
               "branches predicted except min(taken, not taken) per branch, 6 cycles each (assumed)")),
    "cortex-m55": CostTable(
        "cortex-m55", "Cortex-M55 (4-stage scalar pipeline, dual-beat Helium: 64 bits per cycle)",
        "Arm Cortex-M55 Technical Reference Manual (101051) and Software Optimization Guide: "
        "dual-beat MVE (a 128-bit instruction takes 2 cycles), overlap of memory and arithmetic "
        "beats; scalar costs assumed like the M4's with single-cycle loads",
        "arm", dict(alu=1, mul=1, mac=1, simd=1, div=7, load=1, store=1, branch=1, call=2, fpu=1,
                    other=2, vector=2, vector_load=2, vector_store=2),
        branch_taken=1, branch_always=1, multi_base=1, multi_per_reg=1, pop_pc_extra=1,
        mve_cycles=2, mve_overlap=1,
        notes=("LE/LETP: taken costs 0 (loop branch cache), not taken 1",
               "an MVE load/store following an MVE arithmetic instruction (or the reverse) overlaps: 1 cycle")),
    "rv32imc": CostTable(
        "rv32imc", "in-order single-issue RV32IMC (ESP32-C3 class)",
        "assumption: Espressif's ESP32-C3 TRM gives no instruction timings; values of a typical "
        "in-order RV32 microcontroller core (1-cycle ALU and multiply, 2-cycle loads, taken "
        "branches and jumps 2 cycles)",
        "riscv", dict(alu=1, mul=1, mac=1, simd=1, div=34, load=2, store=1, branch=1, call=2, fpu=1,
                      other=1, vector=1, vector_load=1, vector_store=1),
        branch_taken=1, branch_always=1),
    "rv32-zve32x": CostTable(
        "rv32-zve32x", "in-order single-issue RV32IMC + Zve32x vector unit, VLEN 128, DLEN 64 "
        "(64 datapath bits per cycle)",
        "assumption: the scalar costs of the rv32imc table; a vector instruction occupies the unit "
        "for EMUL * VLEN / DLEN cycles (LMUL from the preceding vsetvli; widening ops use the wide "
        "destination's EMUL), no overlap with scalar code",
        "riscv", dict(alu=1, mul=1, mac=1, simd=1, div=34, load=2, store=1, branch=1, call=2, fpu=1,
                      other=1, vector=1, vector_load=1, vector_store=1),
        branch_taken=1, branch_always=1, vector_dlen=64, vector_vlen=128),
}

_CORE_TABLE = {"cortex-m0plus": "cortex-m0plus", "cortex-m0": "cortex-m0plus",
               "cortex-m3": "cortex-m4", "cortex-m4": "cortex-m4", "cortex-m33": "cortex-m4",
               "cortex-m7": "cortex-m7", "cortex-m55": "cortex-m55", "cortex-m85": "cortex-m55",
               "rv32imc": "rv32imc", "rv32imac": "rv32imc", "rv32im": "rv32imc"}


def table_for(target) -> Optional[CostTable]:
    """The cost table of a target's core (None for the host)."""
    if target.arch == "riscv":
        if target.has("rvv"):
            t = TABLES["rv32-zve32x"]
            vlen = target.vlen or t.vector_vlen
            return t if vlen == t.vector_vlen else _replace(t, vector_vlen=vlen)
        return TABLES["rv32imc"]
    return TABLES.get(_CORE_TABLE.get(target.core, ""))


def _replace(t: CostTable, **kw) -> CostTable:
    return dataclasses.replace(t, **kw)


# ---------------------------------------------------------------------------
# Costing
# ---------------------------------------------------------------------------
@dataclass
class Costed:
    """Static facts of one instruction: class, cycles per execution, branch costs.
    For dual-issue cores `cost` is load/store slots (ldst), MAC slots (mac) or
    serial cycles beyond one issue slot (extra)."""

    cls: str
    cost: float
    cond_branch: bool = False
    taken_extra: float = 0.0
    nottaken_extra: float = 0.0
    ldst: float = 0.0
    mac: float = 0.0
    extra: float = 0.0


def _static_costs(insns: dict[int, Insn], addrs, table: CostTable) -> dict[int, Costed]:
    """Cycles per execution of every executed instruction. The context (previous
    instruction, the last vsetvli) comes from the code in address order."""
    arm = table.arch == "arm"
    classify = classify_arm if arm else classify_riscv
    by_fn: dict[str, list[int]] = defaultdict(list)
    for a in insns:
        by_fn[insns[a].function].append(a)
    wanted = {a for a in addrs if a in insns}
    out: dict[int, Costed] = {}
    for fn in {insns[a].function for a in wanted}:
        prev_cls = None
        lmul, sew = 1.0, 8
        for a in sorted(by_fn[fn]):
            i = insns[a]
            cls, base, cond = classify(i)
            c = Costed(cls, float(table.costs.get(cls, 1)), cond)
            if cls in ("load_multi", "store_multi"):
                n = _reg_count(i.operands)
                c.cost = table.multi_base + table.multi_per_reg * n
                if base == "pop_pc":
                    c.cost += table.pop_pc_extra
            elif cls in ("load", "store") and table.pipelined_ldst and prev_cls in ("load", "store"):
                c.cost = 1.0
            elif cls == "branch":
                if base in _LOOP_END:
                    c.cost, c.taken_extra, c.nottaken_extra = 0.0, 0.0, 1.0
                elif cond:
                    c.taken_extra = table.branch_taken
                elif base not in ("dls", "dlstp", "wls", "wlstp", "lctp"):
                    c.cost += table.branch_always
            if not arm and base in ("vsetvli", "vsetivli"):
                m = re.search(r"e(8|16|32|64),\s*(m|mf)(\d)", i.operands)
                if m:
                    sew = int(m.group(1))
                    lmul = float(m.group(3)) if m.group(2) == "m" else 1.0 / float(m.group(3))
            if cls.startswith("vector"):
                if table.vector_dlen:
                    c.cost = _rvv_cost(i, lmul, sew, table)
                elif table.mve_cycles:
                    c.cost = table.mve_cycles
                    mem = cls != "vector"
                    if prev_cls and prev_cls.startswith("vector") and (prev_cls != "vector") != mem:
                        c.cost -= table.mve_overlap
            if table.dual_issue:
                if cls in ("load", "store", "vector_load", "vector_store", "load_multi", "store_multi"):
                    c.ldst = max(1.0, c.cost)
                elif cls in ("mac", "mul"):
                    c.mac = 1.0
                c.extra = c.cost - 1.0 if cls in ("div", "other") else \
                    table.pop_pc_extra if base == "pop_pc" else 0.0
            if a in wanted:
                out[a] = c
            prev_cls = cls
    return out


def _rvv_cost(i: Insn, lmul: float, sew: int, table: CostTable) -> float:
    base = i.mnemonic.split(".")[0]
    emul = lmul
    m = re.match(r"v[ls](?:s|ux|ox)?e(?:i)?(8|16|32|64)", base)
    if m:
        emul = lmul * int(m.group(1)) / sew
    elif base.startswith(("vw", "vfw")) or base.startswith(("vn", "vfn")):
        emul = 2 * lmul
    beats = max(1.0, ceil(emul * table.vector_vlen / table.vector_dlen))
    if "red" in base:
        beats += 2
    return float(beats)


@dataclass
class Estimate:
    """Estimated cycles of one run: total, per layer and the tail after the last layer."""

    table: CostTable
    clock_hz: int
    instructions: int
    cycles: int
    layers: list            # [{instructions, cycles}]
    tail: dict
    classes: dict

    def ms(self, cycles: float) -> float:
        return round(cycles / self.clock_hz * 1e3, 4)

    def to_json(self) -> dict:
        return {"cost_model": self.table.name, "version": COST_MODEL_VERSION,
                "description": self.table.description, "clock_hz": self.clock_hz,
                "instructions": self.instructions, "est_cycles": self.cycles,
                "est_ms": self.ms(self.cycles), "cpi": round(self.cycles / self.instructions, 3)
                if self.instructions else None, "classes": self.classes,
                "layers": [dict(l, est_ms=self.ms(l["cycles"])) for l in self.layers],
                "tail": self.tail}


def cycles_of(counts: Counter, costed: dict[int, Costed], insns: dict[int, Insn],
              table: CostTable) -> tuple[int, Counter]:
    """Estimated cycles of a histogram {address: executions}, and its instructions by class.

    A conditional branch's taken count is its executions minus those of the next
    instruction (exact when the fall-through is reached only from the branch, as
    for loop-closing branches). Dual-issue cores (M7) are costed per basic block,
    taken as the instructions of one function with the same execution count:
    cycles = max(instructions / 2, load/store slots, MAC slots) + serial extras."""
    cycles = 0.0
    classes: Counter = Counter()
    blocks: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for a, n in counts.items():
        c = costed.get(a)
        if c is None:  # not in the disassembly: one cycle
            classes["other"] += n
            cycles += n
            continue
        classes[c.cls] += n
        if c.cond_branch:
            taken = max(0, min(n, n - counts.get(a + insns[a].size, 0)))
            if table.dual_issue:
                cycles += min(taken, n - taken) * table.mispredict
            else:
                cycles += taken * c.taken_extra + (n - taken) * c.nottaken_extra
        if table.dual_issue:
            b = blocks[(insns[a].function, n)]
            b[0] += 1
            b[1] += c.ldst
            b[2] += c.mac
            b[3] += c.extra
        else:
            cycles += n * c.cost
    for (_fn, n), (k, ldst, mac, extra) in blocks.items():
        cycles += n * (max(k / 2.0, ldst, mac) + extra)
    return int(round(cycles)), classes


def estimate(hist: Histogram, insns: dict[int, Insn], table: CostTable, clock_hz: int,
             sample: int = 0) -> Estimate:
    total = hist.total(sample)
    costed = _static_costs(insns, total.keys(), table)
    layers = []
    cycles_sum, classes_sum = 0, Counter()
    for counts in hist.layers[sample]:
        cyc, cls = cycles_of(counts, costed, insns, table)
        layers.append(dict(instructions=sum(counts.values()), cycles=cyc))
        cycles_sum += cyc
        classes_sum.update(cls)
    tcyc, tcls = cycles_of(hist.tails[sample], costed, insns, table)
    classes_sum.update(tcls)
    n = sum(total.values())
    return Estimate(table, clock_hz, n, cycles_sum + tcyc, layers,
                    dict(instructions=sum(hist.tails[sample].values()), cycles=tcyc),
                    {k: classes_sum[k] for k in CLASSES if classes_sum.get(k)})


# ---------------------------------------------------------------------------
# Running: prepare the plugin arguments, read the result
# ---------------------------------------------------------------------------
class Counting:
    """One firmware run with the plugin: `plugin_args(elf)` before, `estimate()` after.

    Any failure leaves `note` set (one line) and makes estimate() return None.
    """

    def __init__(self, target, model_name: str):
        self.target = target
        self.model_name = model_name
        self.table = table_for(target)
        self.note: Optional[str] = None
        self.insns: Optional[dict] = None
        self.out: Optional[Path] = None
        self._hist: Optional[Histogram] = None
        if self.table is None:
            self.note = f"no cycle model for core {target.core}"

    def plugin_args(self, elf: Path) -> list[str]:
        if self.table is None or self.target.emulator is None:
            return []
        try:
            so = build_plugin()
            self.insns = disassemble(elf, objdump_for(self.target), objdump_options(self.target))
            marks = markers(self.insns, self.model_name)
        except (TinydeployError, OSError) as exc:
            self.note = f"cycle estimate unavailable: {exc}"
            return []
        self.out = Path(elf).with_suffix(".hist")
        self.out.unlink(missing_ok=True)
        spec = f"{so},out={self.out},marks=" + ":".join(f"{m:x}" for m in marks)
        return ["-plugin", spec]

    def histogram(self) -> Optional[Histogram]:
        if self._hist is not None:
            return self._hist
        if self.out is None or self.note:
            return None
        try:
            hist = parse_histogram(self.out.read_text())
        except (OSError, TinydeployError) as exc:
            self.note = f"cycle estimate unavailable: {getattr(exc, 'strerror', None) or exc}"
            return None
        if not hist.layers:
            self.note = "cycle estimate unavailable: the plugin saw no run of the model"
            return None
        self._hist = hist
        return hist

    def estimate(self, sample: int = 0) -> Optional[Estimate]:
        hist = self.histogram()
        if hist is None or sample >= len(hist.layers):
            return None
        return estimate(hist, self.insns, self.table, self.target.clock_hz, sample)
