"""tinydeploy: ONNX models -> small, fast, dependency-free C libraries for microcontrollers."""

from .version import __version__

__all__ = ["__version__", "compile", "run", "verify", "validate", "bench", "report",
           "sweep", "TinydeployError"]

from .errors import TinydeployError  # noqa: E402


def __getattr__(name):
    # The API pulls in onnx and numpy; import it only when used.
    if name in ("compile", "run", "verify", "validate", "bench", "report"):
        from . import api
        return getattr(api, name)
    if name == "sweep":  # many configurations on a process pool or Ray (docs/sweep.md)
        import importlib
        function = importlib.import_module(".sweep", __name__).sweep
        globals()["sweep"] = function  # in place of the submodule the import just set here
        return function
    if name == "golden":  # the bit-exact golden model: tinydeploy.golden.run(graph, x)
        import importlib
        return importlib.import_module(".golden", __name__)
    raise AttributeError(name)
