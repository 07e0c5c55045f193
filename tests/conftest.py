"""Shared test fixtures: model paths and a CLI runner."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
def _models_dir() -> Path:
    """TINYDEPLOY_MODELS, else shared/models/mlperf_tiny beside the repo, else beside
    the local checkout this one was cloned from (`git clone . /tmp/x` in CI)."""
    if os.environ.get("TINYDEPLOY_MODELS"):
        return Path(os.environ["TINYDEPLOY_MODELS"])
    tail = Path("shared") / "models" / "mlperf_tiny"
    here = REPO.parent / tail
    origin = subprocess.run(["git", "config", "--get", "remote.origin.url"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    if not here.is_dir() and origin and Path(origin).is_dir():
        return Path(origin).resolve().parent / tail
    return here


MODELS = _models_dir()
EXAMPLES = REPO / "examples"
MLPERF = ["kws", "resnet8", "vww", "ad"]


def model_path(name: str, kind: str) -> Path:
    path = MODELS / name / kind
    if not path.exists():
        pytest.fail(f"missing shared model {path}: the MLPerf Tiny models must be beside the repo")
    return path


def reference(name: str) -> dict:
    with np.load(model_path(name, "reference.npz")) as d:
        return {k: d[k] for k in d.files}


def cli(*args, cwd=None):
    """Run the tinydeploy CLI in a subprocess; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "tinydeploy", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def random_requant_channels(rng, min_real: float = 1e-9, max_real: float = 8.0,
                            dead_multiplier: float = 0.3):
    """Random per-channel requantization inputs for tests of backends.arm.requant_plan:
    1 to 8 channels with real multipliers from min_real to max_real (a dead multiplier in
    channel 0 with probability dead_multiplier), weight sums (some channels without
    weights), biases, input offset, output zero point (often an end of the range) and a
    ReLU-like lower clamp half the time."""
    from tinydeploy import qmath
    n = int(rng.integers(1, 9))
    reals = np.exp(rng.uniform(np.log(min_real), np.log(max_real), size=n))
    mult, shift = (np.array(v, np.int64) for v in zip(*(qmath.quantize_multiplier(float(r)) for r in reals)))
    if rng.random() < dead_multiplier:
        mult[0] = 0
    wabs = rng.integers(0, 20000, size=n)
    wabs[rng.random(n) < 0.15] = 0
    wsum = (wabs * rng.uniform(-1, 1, size=n)).astype(np.int64)
    bias = rng.integers(-50000, 50000, size=n)
    off = int(rng.integers(-127, 129))
    zp = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    lo = zp if rng.random() < 0.5 else -128
    return dict(n=n, bias=bias, wsum=wsum, wabs=wabs, off=off, mult=mult, shift=shift, zp=zp, lo=lo, hi=127)
