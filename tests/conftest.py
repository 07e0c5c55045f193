"""Shared test fixtures: model paths and a CLI runner."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("TINYDEPLOY_MODELS", REPO.parent / "shared" / "models" / "mlperf_tiny"))
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
