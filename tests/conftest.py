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
