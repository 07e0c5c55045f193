"""MCU target descriptions: one JSON file per board or core under targets/.

A target says what the model must fit (SRAM, flash), which ISA features the
code generator may use, how to compile and link firmware for it, and which
QEMU machine emulates it. `load_target` accepts a built-in name or the path
of a user's own JSON file with the same fields (`--target-file`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinydeploy import backends
from tinydeploy.errors import TinydeployError
from tinydeploy.resources import TARGETS, data_dir


def _targets_dir() -> Path:
    """The built-in targets shipped with tinydeploy (see tinydeploy.resources), or
    the directory TINYDEPLOY_TARGETS_DIR names."""
    if os.environ.get("TINYDEPLOY_TARGETS_DIR"):
        return Path(os.environ["TINYDEPLOY_TARGETS_DIR"]).resolve()
    return data_dir(TARGETS)


TARGETS_DIR = _targets_dir()

ARCHES = ("arm", "riscv", "host")
# The kernel backend of a target file that does not name one.
DEFAULT_BACKEND = {"arm": "arm", "riscv": "riscv", "host": "portable"}
FEATURES = ("dsp", "mve", "fpu", "rvv")
COUNTERS = ("cmsdk_timer", "systick", "minstret", "none")
# Counter ticks per second of emulated time when a file does not say.
DEFAULT_COUNTER_HZ = {"cmsdk_timer": 25_000_000, "systick": 25_000_000,
                      "minstret": 1_000_000_000, "none": 1_000_000_000}


@dataclass(frozen=True)
class Emulator:
    """How QEMU runs a target: binary, machine, cpu and extra arguments."""

    qemu: str
    machine: str
    cpu: str | None = None
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """A board or core that models are compiled for (paths are absolute)."""

    name: str
    description: str
    core: str
    arch: str
    features: tuple[str, ...]
    sram_bytes: int
    flash_bytes: int
    clock_hz: int
    cc: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    emulator: Emulator | None
    linker_script: Path | None
    startup: tuple[Path, ...]
    counter: str
    counter_hz: int
    vlen: int | None = None
    backend: str = "portable"  # tinydeploy/backends/<backend>.py offers its kernel variants
    source: Path | None = field(default=None, compare=False)

    def has(self, feature: str) -> bool:
        return feature in self.features

    @property
    def is_host(self) -> bool:
        return self.arch == "host"

    @property
    def instructions_per_tick(self) -> float:
        """Emulated instructions per counter tick under -icount shift=0."""
        return 1e9 / self.counter_hz


def list_targets() -> list[str]:
    """Names of the built-in targets, sorted."""
    return sorted(p.stem for p in TARGETS_DIR.glob("*.json"))


def load_target(name_or_path: str | Path | Target) -> Target:
    """A built-in target by name, or a user's target JSON file by path."""
    if isinstance(name_or_path, Target):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".json") or path.is_file():
        if not path.is_file():
            raise TinydeployError(f"target file {text} does not exist")
        return _load_file(path.resolve())
    builtin = TARGETS_DIR / f"{text}.json"
    if "/" in text or not builtin.is_file():
        known = ", ".join(list_targets())
        raise TinydeployError(
            f"unknown target '{text}'; known targets: {known} "
            "(or pass the path of a target JSON file)")
    return _load_file(builtin)


def _load_file(path: Path) -> Target:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise TinydeployError(f"cannot read target file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TinydeployError(
            f"target file {path} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise TinydeployError(f"target file {path}: expected a JSON object")
    return _Parser(path, data).target()


class _Parser:
    """Checks one target file's fields, naming the file and field on error."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = ""):
        self.path = path
        self.data = data
        self.prefix = prefix

    def fail(self, key: str, problem: str) -> TinydeployError:
        return TinydeployError(
            f"target file {self.path}: field '{self.prefix}{key}' {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], required: bool = True,
            default: Any = None) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        bad_bool = isinstance(value, bool) and kind is int
        if not isinstance(value, kind) or bad_bool:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(key, f"must be {_json_kind(names)}, got {json.dumps(value)}")
        return value

    def positive_int(self, key: str, required: bool = True) -> int | None:
        value = self.get(key, int, required)
        if value is not None and value <= 0:
            raise self.fail(key, f"must be a positive integer, got {value}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(key, str, default is None, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got '{value}'")
        return value

    def strings(self, key: str, required: bool = True) -> tuple[str, ...]:
        value = self.get(key, list, required, [])
        if not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def file(self, key: str, rel: Any) -> Path:
        """A path relative to the JSON file's folder, else to targets/."""
        if not isinstance(rel, str) or not rel:
            raise self.fail(key, "must hold file paths (strings)")
        for base in (self.path.parent, TARGETS_DIR):
            candidate = (base / rel).resolve()
            if candidate.is_file():
                return candidate
        raise self.fail(key, f"names {rel}, which exists neither next to the file "
                             f"nor in {TARGETS_DIR}")

    def emulator(self, arch: str) -> Emulator | None:
        value = self.get("emulator", dict, required=arch != "host")
        if value is None:
            return None
        sub = _Parser(self.path, value, prefix="emulator.")
        return Emulator(qemu=sub.get("qemu", str), machine=sub.get("machine", str),
                        cpu=sub.get("cpu", str, required=False),
                        args=sub.strings("args", required=False))

    def features(self) -> tuple[str, ...]:
        features = self.strings("features")
        for feature in features:
            if feature not in FEATURES:
                raise self.fail("features", f"has unknown feature '{feature}'; "
                                            f"known: {', '.join(FEATURES)}")
        return features

    def target(self) -> Target:
        arch = self.choice("arch", ARCHES)
        features = self.features()
        vlen = self.positive_int("vlen", required="rvv" in features)
        if vlen is not None and "rvv" not in features:
            raise self.fail("vlen", "is only meaningful with the 'rvv' feature")
        counter = self.choice("counter", COUNTERS, "none" if arch == "host" else None)
        backend = self.choice("backend", tuple(backends.available()), DEFAULT_BACKEND[arch])
        script = self.get("linker_script", str, required=arch != "host")
        startup = self.get("startup", list)
        return Target(
            name=self.get("name", str), description=self.get("description", str),
            core=self.get("core", str), arch=arch, features=features, vlen=vlen, backend=backend,
            sram_bytes=self.positive_int("sram_bytes"),
            flash_bytes=self.positive_int("flash_bytes"),
            clock_hz=self.positive_int("clock_hz"), cc=self.get("cc", str),
            cflags=self.strings("cflags"), ldflags=self.strings("ldflags", required=False),
            emulator=self.emulator(arch),
            linker_script=self.file("linker_script", script) if script else None,
            startup=tuple(self.file("startup", s) for s in startup),
            counter=counter,
            counter_hz=self.positive_int("counter_hz", required=False)
            or DEFAULT_COUNTER_HZ[counter],
            source=self.path)


def _json_kind(python_names: str) -> str:
    names = {"str": "a string", "int": "an integer", "list": "a list",
             "dict": "an object", "float": "a number", "bool": "true or false"}
    return " or ".join(names.get(n, n) for n in python_names.split(" or "))
