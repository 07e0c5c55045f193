"""Build hook: ship the C runtime, code templates, target files and host tools' C
sources (the QEMU plugin) inside the wheel.

They live at the repository root (runtime_c/, codegen_templates/, targets/, tools_c/) so
that C tools and CMake see a plain tree; build_py copies them into
tinydeploy/_data/, where tinydeploy.resources finds them in an installed copy.
An editable install keeps reading them from the checkout.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("runtime_c", "codegen_templates", "targets", "tools_c")


class BuildWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        here = Path(__file__).resolve().parent
        data = Path(self.build_lib) / "tinydeploy" / "_data"
        for name in SHIPPED:
            dest = data / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(here / name, dest,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.o", "*.elf"))


setup(cmdclass={"build_py": BuildWithData})
