"""Sharded emulator runs: the samples of `verify`/`validate` split into shards, each run
by its own firmware on its own emulator (threads of a local pool, or Ray tasks), and
the results merged in sample order. Emulated execution is deterministic, so a sharded
run gives exactly the outputs and per-sample instruction counts of a single run.

A Ray task gets the library's files as bytes (through the object store), so workers
need tinydeploy and the target's toolchain and emulator, but no shared file system.
"""
from __future__ import annotations

import concurrent.futures
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from . import emulator, firmware
from .errors import TinydeployError


@dataclass(frozen=True)
class Executor:
    """Where sharded runs go: `jobs` local workers, or the Ray cluster at `ray_address`
    ("auto", "local" for a new one here, host:port, ray://...). Default: one run."""

    jobs: int = 1
    ray_address: Optional[str] = None

    def __post_init__(self):
        if self.jobs < 1:
            raise TinydeployError(f"jobs must be at least 1, not {self.jobs}")
        if self.ray_address is not None and self.jobs != 1:
            raise TinydeployError("jobs is for the local pool; with a Ray address the cluster's CPUs "
                                  "run the shards: give one or the other")

    @property
    def sharded(self) -> bool:
        return self.jobs > 1 or self.ray_address is not None

    def describe(self) -> str:
        return f"Ray ({self.ray_address})" if self.ray_address is not None else f"{self.jobs} local workers"


def split(n_samples: int, shards: int) -> list[slice]:
    """Contiguous, non-empty, nearly equal sample ranges, in order."""
    shards = max(1, min(shards, n_samples))
    bounds = np.linspace(0, n_samples, shards + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def merge(parts: list) -> emulator.EmulatorResult:
    """One EmulatorResult of per-shard results given in sample order."""
    first = parts[0]
    counted = all(p.instructions is not None for p in parts)
    stacks = [p.stack_bytes for p in parts if p.stack_bytes is not None]
    return emulator.EmulatorResult(
        target=first.target, mode=first.mode,
        outputs=[o for p in parts for o in p.outputs],
        instructions=[i for p in parts for i in p.instructions] if counted else None,
        layer_instructions=[row for p in parts for row in p.layer_instructions],
        dumps=[d for p in parts for d in p.dumps],
        stack_bytes=max(stacks) if stacks else None,
        overhead=first.overhead,
        log="\n".join(p.log for p in parts))


def _build_and_run(target, lib_dir: Path, info, xq: np.ndarray, work: Path, mode: str,
                   toolchain: str) -> emulator.EmulatorResult:
    elf = firmware.build_firmware(target, sorted(lib_dir.glob("*.c")), [lib_dir], {}, info, xq, work,
                                  mode=mode, werror=True, toolchain=toolchain)
    return emulator.run_firmware(target, elf)


def _ray_shard(target, files: dict, info, xq: np.ndarray, mode: str, toolchain: str):
    """A Ray task: the library written from `files` into a temporary directory, then built
    and run on this node's emulator."""
    with tempfile.TemporaryDirectory(prefix="tinydeploy-shard-") as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        for name, payload in files.items():
            (lib / name).write_bytes(payload)
        return _build_and_run(target, lib, info, xq, Path(tmp) / "fw", mode, toolchain)


def run(target, lib_dir: Path, info, xq: np.ndarray, work: Path, mode: str, toolchain: str,
        executor: Executor) -> emulator.EmulatorResult:
    """Build and run the library in lib_dir on the samples xq, sharded as `executor` says."""
    if executor.ray_address is not None:
        return _run_ray(target, lib_dir, info, xq, mode, toolchain, executor.ray_address)
    pieces = split(len(xq), executor.jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(pieces)) as pool:
        # threads suffice: the work happens in compiler and QEMU subprocesses
        futures = [pool.submit(_build_and_run, target, lib_dir, info, xq[s], work / f"shard{i}", mode, toolchain)
                   for i, s in enumerate(pieces)]
        return merge([f.result() for f in futures])


def ray_module():
    try:
        import ray
    except ImportError:
        raise TinydeployError("--ray needs Ray, which is not installed: pip install 'tinydeploy[ray]' "
                              "(or pip install 'ray>=2.9'); without --ray the work runs on local "
                              "processes") from None
    return ray


def connect_ray(address: Optional[str]):
    """The ray module, connected to the cluster at `address` ("auto", host:port, ray://...,
    "local" for a new cluster here; None: RAY_ADDRESS or a new local cluster)."""
    ray = ray_module()
    if not ray.is_initialized():
        try:
            ray.init(address=address or None,
                     ignore_reinit_error=True, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise TinydeployError(f"cannot connect to the Ray cluster at '{address}': {exc}") from None
    return ray


def _run_ray(target, lib_dir: Path, info, xq: np.ndarray, mode: str, toolchain: str, address: str):
    ray = connect_ray(address)
    files = ray.put({p.name: p.read_bytes() for p in lib_dir.iterdir() if p.is_file()})
    task = ray.remote(num_cpus=1, max_retries=2)(_ray_shard)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    refs = [task.remote(target, files, info, xq[s], mode, toolchain) for s in split(len(xq), cpus)]
    try:
        return merge(ray.get(refs))
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, TinydeployError):
            raise cause from None
        raise TinydeployError(f"a Ray shard failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
