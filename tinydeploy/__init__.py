"""tinydeploy: ONNX models -> small, fast, dependency-free C libraries for microcontrollers."""

__version__ = "0.1.0"

__all__ = ["__version__", "compile", "run", "TinydeployError"]

from .errors import TinydeployError  # noqa: E402


def __getattr__(name):
    # The API pulls in onnx and numpy; import it only when used.
    if name in ("compile", "run", "verify", "bench", "golden"):
        from . import api
        return getattr(api, name)
    raise AttributeError(name)
