"""The in-process object cache (tinydeploy/objcache.py): a source is compiled again only
when the compiler would see another translation unit or other options."""
import shutil
import subprocess

import pytest

from tinydeploy import objcache

CC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="needs the host gcc")


def _tree(root, value):
    root.mkdir()
    (root / "k.h").write_text(f"#define K {value}\n")
    (root / "k.c").write_text('#include "k.h"\nint k(void) { return K; }\n')
    return root


def test_same_unit_in_another_folder_is_copied_and_a_changed_header_recompiles(tmp_path):
    runs = []

    def run(cmd):
        runs.append(cmd)
        subprocess.run(cmd, check=True)

    a = _tree(tmp_path / "a", 41)
    b = _tree(tmp_path / "b", 41)  # same text, other -I folder: the same unit
    c = _tree(tmp_path / "c", 42)  # the header differs: another unit
    for root in (a, b, c):
        objcache.compile_object(CC, ["-O2", "-I", str(root)], root / "k.c", root / "k.o", run)
    assert len(runs) == 2 and str(b / "k.c") not in sum(runs, [])
    assert (a / "k.o").read_bytes() == (b / "k.o").read_bytes() != (c / "k.o").read_bytes()
    objcache.compile_object(CC, ["-O0", "-I", str(a)], a / "k.c", a / "k0.o", run)  # other options
    assert len(runs) == 3


def test_a_failing_compile_is_not_cached(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "bad.c").write_text("int f(void) { return }\n")

    def run(cmd):
        if subprocess.run(cmd).returncode:
            raise RuntimeError("compile failed")

    for _ in range(2):
        with pytest.raises(RuntimeError, match="compile failed"):
            objcache.compile_object(CC, ["-O2"], root / "bad.c", root / "bad.o", run)
