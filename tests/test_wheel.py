"""Packaging: the wheel carries the C runtime, templates and targets, and a
non-editable install compiles and runs a model from outside the checkout."""
import shutil
import site
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import EXAMPLES, REPO

SHIPPED = ("tinydeploy/_data/runtime_c/include/td_kernels.h",
           "tinydeploy/_data/runtime_c/src/s8/conv_s8.c",
           "tinydeploy/_data/codegen_templates/model.c.j2",
           "tinydeploy/_data/codegen_templates/host_main.c.j2",
           "tinydeploy/_data/targets/stm32f746.json",
           "tinydeploy/_data/targets/common/harness.c",
           "tinydeploy/_data/targets/arm/startup_cortexm.c",
           "tinydeploy/_data/tools_c/td_insn_histogram.c")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed (its dependencies come from this environment)."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    # built from a copy of the sources: the tests running beside this one write bytecode
    # into the checkout, and a file that vanishes while setuptools copies it fails the build
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "out"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(dist), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(dist.glob("tinydeploy-*.whl"))
    assert len(wheels) == 1
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip()
    # Dependencies (onnx, numpy, ...) from this environment; its .pth files (an editable
    # tinydeploy) are not processed for a directory added this way.
    (tmp / "venv_site").write_text(venv_site)
    with open(f"{venv_site}/deps.pth", "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheels[0])], check=True, capture_output=True, text=True)
    return dict(wheel=wheels[0], venv=venv, python=python, work=tmp)


def test_wheel_ships_runtime_templates_and_targets(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    missing = [n for n in SHIPPED if n not in names]
    assert not missing, f"the wheel lacks {missing}"


def _tool(installed, *args):
    exe = installed["venv"] / "bin" / "tinydeploy"
    return subprocess.run([str(exe), *map(str, args)], cwd=installed["work"], capture_output=True, text=True)


def test_installed_package_is_the_wheel(installed):
    where = subprocess.run([str(installed["python"]), "-c", "import tinydeploy; print(tinydeploy.__file__)"],
                           cwd=installed["work"], check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(installed["venv"])), where
    assert str(REPO) not in where


@pytest.mark.parametrize("target", ["host", "nucleo-l4r5zi"])
def test_installed_tool_compiles_and_runs_digits(installed, target):
    ex = EXAMPLES / "digits"
    work = installed["work"]
    out = _tool(installed, "compile", ex / "digits_cnn.onnx", "-t", target, "--calib", ex / "calib.npz",
                "-o", work / f"lib-{target}")
    assert out.returncode == 0, out.stderr
    assert (work / f"lib-{target}" / "net.c").is_file()
    with np.load(ex / "test.npz") as d:
        np.savez(work / "few.npz", **{k: d[k][:4] for k in d.files})
    res = {}
    for how in ("c", "golden"):
        extra = ["--golden"] if how == "golden" else []
        run = _tool(installed, "run", ex / "digits_cnn.onnx", "-t", target, "--calib", ex / "calib.npz",
                    "--inputs", work / "few.npz", "-o", work / f"{how}.npz", *extra)
        assert run.returncode == 0, run.stderr
        with np.load(work / f"{how}.npz") as d:
            res[how] = {k: d[k] for k in d.files}
    assert res["c"].keys() == res["golden"].keys()
    for k in res["c"]:
        np.testing.assert_array_equal(res["c"][k], res["golden"][k])
