"""tinydeploy: ONNX models -> small, fast, dependency-free C libraries for microcontrollers."""

from .version import __version__

__all__ = ["__version__", "compile", "run", "verify", "bench", "report", "TinydeployError"]

from .errors import TinydeployError  # noqa: E402


def __getattr__(name):
    # The API pulls in onnx and numpy; import it only when used.
    if name in ("compile", "run"):
        from . import api
        return getattr(api, name)
    if name == "golden":  # the bit-exact golden model: tinydeploy.golden.run(graph, x)
        import importlib
        return importlib.import_module(".golden", __name__)
    if name in ("verify", "bench"):
        # tinydeploy.verify is also the name of the module; importing it makes the
        # package attribute that module, which is callable as verify.verify (see there).
        import importlib
        module = importlib.import_module(".verify", __name__)
        return module if name == "verify" else module.bench
    if name == "report":
        import importlib
        return importlib.import_module(".report_html", __name__).report
    raise AttributeError(name)
