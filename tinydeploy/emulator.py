"""Run firmware built by `tinydeploy.firmware` under QEMU (or natively for the
host target) and parse what the harness prints.

Under QEMU's `-icount shift=0` each guest instruction advances emulated time
by exactly 1 ns, so the harness's timer readings are deterministic
instruction counts (see targets/common/harness.c for the line protocol).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.targets import Target, load_target

# Debian packages that provide each emulator binary.
QEMU_PACKAGES = {"qemu-system-arm": "qemu-system-arm",
                 "qemu-system-riscv32": "qemu-system-misc"}
DEFAULT_TIMEOUT = 120.0


@dataclass
class EmulatorResult:
    """What one firmware run reported (per-sample lists are indexed by sample)."""

    target: str
    mode: str
    outputs: list[np.ndarray]               # output tensor per sample (flat; several
    #                                         outputs: concatenated in the model's order)
    instructions: list[int] | None          # per sample; None without a counter
    layer_instructions: list[list[int]]     # [sample][layer]
    dumps: list[dict[int, bytes]]           # [sample] -> {layer: output bytes}
    stack_bytes: int | None                 # stack high-water mark
    overhead: tuple[int, int] | None        # subtracted: (per run, per layer hook)
    log: str = field(repr=False)

    @property
    def output_array(self) -> np.ndarray:
        """All outputs stacked: [samples, output_size]."""
        return np.stack(self.outputs)

    def dump(self, sample: int, layer: int, dtype: str | np.dtype) -> np.ndarray:
        """A layer's dumped output as a flat array of `dtype`."""
        try:
            data = self.dumps[sample][layer]
        except (IndexError, KeyError):
            raise TinydeployError(f"no dump of layer {layer} for sample {sample} "
                                  "(was the firmware built with mode='dump'?)") from None
        return np.frombuffer(data, dtype=np.dtype(dtype)).copy()


def qemu_command(target: Target | str, elf: str | Path, extra: list[str] = ()) -> list[str]:
    """The command line that runs `elf` on the target's emulator (extra: more QEMU
    options, e.g. a -plugin)."""
    target = load_target(target)
    if target.is_host:
        return [str(Path(elf).resolve())]
    emu = target.emulator
    cmd = [emu.qemu, "-M", emu.machine]
    if emu.cpu:
        cmd += ["-cpu", emu.cpu]
    # semihosting output goes to a stdio chardev (otherwise QEMU sends it to
    # stderr, mixed with its own messages)
    return cmd + [*emu.args, "-display", "none", "-monitor", "none", "-serial", "none",
                  "-chardev", "stdio,id=tdh",
                  "-semihosting-config", "enable=on,target=native,chardev=tdh",
                  "-icount", "shift=0", *extra, "-kernel", str(Path(elf).resolve())]


def run_firmware(target: Target | str, elf: str | Path,
                 timeout: float = DEFAULT_TIMEOUT, extra: list[str] = ()) -> EmulatorResult:
    """Run the firmware to completion and parse its report.

    Raises TinydeployError when the emulator is missing, on timeout, on a
    fault, when the model returned non-zero, or when the output is incomplete.
    The raw log is also written next to the ELF (NAME.log). extra: more QEMU
    options (the cycle model's -plugin).
    """
    target = load_target(target)
    elf = Path(elf)
    if not elf.is_file():
        raise TinydeployError(f"firmware {elf} does not exist")
    cmd = qemu_command(target, elf, extra if not target.is_host else ())
    if not target.is_host:
        _require_emulator(cmd[0])
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TinydeployError(
            f"{target.name}: the firmware did not finish within {timeout:g} s (an endless "
            "loop, a locked-up core after a stack overflow, or a timeout too short "
            "for this model)") from None
    log = proc.stdout.decode("utf-8", errors="replace")
    elf.with_suffix(".log").write_text(log)
    return parse_log(log, target.name, proc.returncode,
                     proc.stderr.decode("utf-8", errors="replace"))


def _require_emulator(binary: str) -> None:
    if shutil.which(binary) is None:
        package = QEMU_PACKAGES.get(binary, binary)
        raise TinydeployError(
            f"the emulator '{binary}' is not on PATH: install the Debian package {package} "
            "(./quickstart.sh installs all the tools)")


def parse_log(log: str, target: str = "?", exit_code: int = 0,
              stderr: str = "") -> EmulatorResult:
    """Parse the harness's output; raise TinydeployError on faults/errors."""
    parser = _LogParser(target)
    for line in log.splitlines():
        parser.line(line.strip())
    return parser.finish(log, exit_code, stderr)


class _LogParser:
    def __init__(self, target: str):
        self.target = target
        self.header: dict[str, str] = {}
        self.outputs: dict[int, np.ndarray] = {}
        self.cycles: dict[int, int] = {}
        self.layers: dict[int, dict[int, int]] = {}
        self.dumps: dict[int, dict[int, bytes]] = {}
        self.stack: int | None = None
        self.stack_size: int | None = None
        self.overhead: tuple[int, int] | None = None
        self.fault: str | None = None
        self.error: str | None = None
        self.done = False

    def line(self, line: str) -> None:
        tag, _, rest = line.partition(" ")
        fields = rest.split()
        try:
            handler = getattr(self, f"_on_{tag.lower()}", None)
            if handler and tag.isupper():
                handler(fields, line)
        except (ValueError, IndexError):
            raise TinydeployError(
                f"{self.target}: malformed harness output line: {line[:200]}") from None

    def _on_begin(self, fields: list[str], line: str) -> None:
        self.header = dict(f.split("=", 1) for f in fields)

    def _on_cal(self, fields: list[str], line: str) -> None:
        self.overhead = (int(fields[0]), int(fields[1]))

    def _on_out(self, fields: list[str], line: str) -> None:
        dtype = np.dtype(self.header.get("out", "uint8"))
        data = bytes.fromhex(fields[1]) if len(fields) > 1 else b""
        self.outputs[int(fields[0])] = np.frombuffer(data, dtype=dtype).copy()

    def _on_cyc(self, fields: list[str], line: str) -> None:
        self.cycles[int(fields[0])] = int(fields[1])

    def _on_layer(self, fields: list[str], line: str) -> None:
        self.layers.setdefault(int(fields[0]), {})[int(fields[1])] = int(fields[2])

    def _on_dump(self, fields: list[str], line: str) -> None:
        data = bytes.fromhex(fields[2]) if len(fields) > 2 else b""
        self.dumps.setdefault(int(fields[0]), {})[int(fields[1])] = data

    def _on_err(self, fields: list[str], line: str) -> None:
        self.error = f"the model's run function returned {fields[1]} for sample {fields[0]}"

    def _on_stack(self, fields: list[str], line: str) -> None:
        self.stack = int(fields[0])
        self.stack_size = int(fields[1]) if len(fields) > 1 else None

    def _on_fault(self, fields: list[str], line: str) -> None:
        self.fault = line

    def _on_done(self, fields: list[str], line: str) -> None:
        self.done = True

    def finish(self, log: str, exit_code: int, stderr: str) -> EmulatorResult:
        tail = "\n".join(log.strip().splitlines()[-5:])
        if self.fault:
            what = "overflowed its stack" if "stack overflow" in self.fault else "crashed"
            raise TinydeployError(f"{self.target}: the firmware {what}: {self.fault}")
        if self.error:
            raise TinydeployError(f"{self.target}: {self.error}")
        if not self.done or exit_code != 0:
            detail = stderr.strip() or tail or "(no output)"
            raise TinydeployError(
                f"{self.target}: the firmware stopped early (exit status {exit_code}): {detail}")
        if self.stack_size and self.stack is not None and self.stack >= self.stack_size:
            raise TinydeployError(
                f"{self.target}: the firmware overflowed its stack (all {self.stack_size} "
                "bytes used; memory below it may have been overwritten)")
        count = int(self.header.get("samples", len(self.outputs)))
        missing = [s for s in range(count) if s not in self.outputs]
        if missing:
            raise TinydeployError(f"{self.target}: no output for samples {missing}")
        return EmulatorResult(
            target=self.target, mode=self.header.get("mode", "?"),
            outputs=[self.outputs[s] for s in range(count)],
            instructions=[self.cycles[s] for s in range(count)] if self.cycles else None,
            layer_instructions=[_dense(self.layers.get(s, {})) for s in range(count)],
            dumps=[self.dumps.get(s, {}) for s in range(count)],
            stack_bytes=self.stack, overhead=self.overhead, log=log)


def _dense(layers: dict[int, int]) -> list[int]:
    return [layers.get(i, 0) for i in range(max(layers, default=-1) + 1)]


# ---- ELF sizes -------------------------------------------------------------

_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR, _SHF_TLS = 0x1, 0x2, 0x4, 0x400
_SHT_NOBITS = 8


def elf_sizes(elf: str | Path) -> dict[str, int]:
    """Allocated bytes by kind: text, rodata, data, bss, stack, plus the
    totals flash (text + rodata + data) and ram (data + bss, stack excluded).

    Sections are classified by their ELF flags (what `size -A` lists), so this
    works for any ELF, firmware or object file, without binutils.
    """
    sizes = dict(text=0, rodata=0, data=0, bss=0, stack=0)
    for name, kind, flags, size in _sections(Path(elf)):
        if not flags & _SHF_ALLOC or name == ".tbss_space":
            continue
        if name == ".stack":
            sizes["stack"] += size
        elif flags & _SHF_EXECINSTR:
            sizes["text"] += size
        elif not flags & _SHF_WRITE:
            sizes["rodata"] += size
        elif kind == _SHT_NOBITS:
            sizes["bss"] += size
        else:
            sizes["data"] += size
    sizes["flash"] = sizes["text"] + sizes["rodata"] + sizes["data"]
    sizes["ram"] = sizes["data"] + sizes["bss"]
    return sizes


_STT_FUNC, _SHT_SYMTAB = 2, 2


def elf_function_sizes(elf: str | Path) -> dict[str, int]:
    """{function name: bytes of its code} from an ELF file's symbol table (an object
    file's static functions included; without binutils)."""
    blob, is64, order, headers, _ = _elf_headers(Path(elf))
    sym, sym_size = (order + "IBBHQQ", 24) if is64 else (order + "IIIBBH", 16)
    sizes: dict[str, int] = {}
    for _name, kind, _flags, _addr, off, size, link, *_ in headers:
        if kind != _SHT_SYMTAB:
            continue
        str_off = headers[link][4]
        for k in range(size // sym_size):
            fields = struct.unpack_from(sym, blob, off + k * sym_size)
            name_off, info, nbytes = (fields[0], fields[1], fields[5]) if is64 else \
                (fields[0], fields[3], fields[2])
            if info & 0xF == _STT_FUNC and nbytes:
                name = _cstr(blob, str_off + name_off)
                sizes[name] = sizes.get(name, 0) + nbytes
    return sizes


def _elf_headers(path: Path) -> tuple:
    """(file bytes, 64-bit?, struct byte order, section header tuples, index of the
    section names' section) of an ELF file."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise TinydeployError(f"cannot read {path}: {exc.strerror}") from None
    if blob[:4] != b"\x7fELF":
        raise TinydeployError(f"{path} is not an ELF file")
    is64, order = blob[4] == 2, "<" if blob[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(order + "Q", blob, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", blob, 0x3A)
        entry = order + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(order + "I", blob, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", blob, 0x2E)
        entry = order + "IIIIIIIIII"
    headers = [struct.unpack_from(entry, blob, shoff + i * shentsize) for i in range(shnum)]
    return blob, is64, order, headers, shstrndx


def _sections(path: Path) -> list[tuple[str, int, int, int]]:
    """(name, type, flags, size) of every section of an ELF file."""
    blob, _, _, headers, shstrndx = _elf_headers(path)
    str_offset = headers[shstrndx][4] if headers else 0
    result = []
    for name_off, kind, flags, _addr, _off, size, *_ in headers:
        result.append((_cstr(blob, str_offset + name_off), kind, flags, size))
    return result


def _cstr(blob: bytes, start: int) -> str:
    """The NUL-terminated name at `start` of an ELF string table."""
    return blob[start:blob.index(b"\0", start)].decode("ascii", errors="replace")


# ---- Renode ----------------------------------------------------------------

# Memory of each QEMU machine, the map the firmware is linked for: (name, base, size).
_RENODE_MEMORY = {
    "mps2": [("flash", 0x0, 0x400000), ("sram", 0x20000000, 0x400000)],
    "mps3-an547": [("itcm", 0x0, 0x80000), ("sram", 0x01000000, 0x200000),
                   ("dtcm", 0x20000000, 0x80000), ("sram2", 0x21000000, 0x400000)],
    "virt": [("ram", 0x80000000, 0x1000000)],
}
_RENODE_CORTEX = {"cortex-m0plus": "cortex-m0+", "cortex-m4": "cortex-m4f"}


def renode_script(target: Target | str, elf: str | Path) -> str:
    """Write NAME.resc next to the ELF: a Renode machine with the memory map,
    counter and semihosting console the firmware expects; returns its text.

    The platform mirrors the QEMU machine (not the vendor board), because that
    is what the firmware is linked for; the CPU runs at 1000 MIPS so that, as
    under QEMU -icount shift=0, one instruction takes 1 ns.
    """
    target = load_target(target)
    if target.is_host:
        raise TinydeployError("the host target runs natively; there is no Renode platform for it")
    elf = Path(elf).resolve()
    machine = target.emulator.machine
    memory = _RENODE_MEMORY.get("mps2" if machine.startswith("mps2") else machine)
    if memory is None:
        raise TinydeployError(f"no Renode platform for QEMU machine {machine}")
    repl = _renode_arm(target) if target.arch == "arm" else _renode_riscv(target)
    for name, base, size in memory:
        repl += [f"{name}: Memory.MappedMemory @ sysbus {base:#x}", f"    size: {size:#x}", ""]
    console = [f"sysbus.cpu.semihosting CreateFileBackend @{elf.with_suffix('.renode.log')} true"]
    if target.arch == "riscv":
        console = ["# Output and exit use RISC-V semihosting (ebreak), which Renode may not",
                   "# implement; minstret still counts instructions."]
    lines = [
        f":name: tinydeploy firmware on {target.name}",
        f":description: {target.description}",
        "", "using sysbus", f'mach create "tinydeploy-{target.name}"',
        "machine LoadPlatformDescriptionFromString", '"""', *repl, '"""',
        "cpu PerformanceInMips 1000", *console, f"sysbus LoadELF @{elf}", "",
    ]
    script = "\n".join(lines)
    elf.with_suffix(".resc").write_text(script)
    return script


def _renode_arm(target: Target) -> list[str]:
    hz = target.counter_hz if target.counter == "systick" else 25_000_000
    lines = ["cpu: CPU.CortexM @ sysbus",
             f'    cpuType: "{_RENODE_CORTEX.get(target.core, target.core)}"',
             "    nvic: nvic", "",
             "nvic: IRQControllers.NVIC @ sysbus 0xE000E000",
             f"    systickFrequency: {hz}", "    -> cpu@0", ""]
    if target.counter == "cmsdk_timer":
        lines += ["timer0: Timers.Arm_CMSDK_Timer @ sysbus 0x40000000",
                  f"    frequency: {target.counter_hz}", ""]
    return lines + ["semihosting: UART.SemihostingUart @ cpu", ""]


def _renode_riscv(target: Target) -> list[str]:
    isa = "rv32imcv_zicsr" if target.has("rvv") else "rv32imc_zicsr"
    return ["cpu: CPU.RiscV32 @ sysbus", f'    cpuType: "{isa}"',
            "    privilegedArchitecture: PrivilegedArchitecture.Priv1_10",
            "    timeProvider: empty", ""]


def run_renode(target: Target | str, elf: str | Path,
               timeout: float = DEFAULT_TIMEOUT) -> EmulatorResult:
    """Run the firmware under Renode (Arm targets) and parse its report."""
    target = load_target(target)
    elf = Path(elf).resolve()
    renode = shutil.which("renode")
    if renode is None:
        raise TinydeployError(
            "renode is not installed (no Debian package exists: get a release from "
            "https://renode.io); use run_firmware for QEMU instead")
    renode_script(target, elf)
    log_path = elf.with_suffix(".renode.log")
    log_path.unlink(missing_ok=True)
    cmd = [renode, "--disable-xwt", "--console", "--plain",
           "-e", f"include @{elf.with_suffix('.resc')}; start"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        log = _wait_for_report(log_path, proc, timeout)
    finally:
        proc.kill()
        proc.wait()
    if log is None:
        raise TinydeployError(f"{target.name}: no complete report from Renode within "
                              f"{timeout:g} s (see {log_path})")
    return parse_log(log, target.name)


def _wait_for_report(log_path: Path, proc: subprocess.Popen, timeout: float) -> str | None:
    """Poll the console file until the harness prints DONE or FAULT (semihosting
    exit does not stop Renode)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if "\nDONE\n" in text or "FAULT" in text or "\nERR " in text:
            return text
        time.sleep(0.2)
    return None
