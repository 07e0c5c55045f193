"""tinydeploy: ONNX models -> small, fast, dependency-free C libraries for microcontrollers."""

from .version import __version__

__all__ = ["__version__", "compile", "run", "verify", "validate", "bench", "report",
           "TinydeployError"]

from .errors import TinydeployError  # noqa: E402


def __getattr__(name):
    # The API pulls in onnx and numpy; import it only when used.
    if name in ("compile", "run", "verify", "validate", "bench", "report"):
        from . import api
        return getattr(api, name)
    if name == "golden":  # the bit-exact golden model: tinydeploy.golden.run(graph, x)
        import importlib
        return importlib.import_module(".golden", __name__)
    raise AttributeError(name)
