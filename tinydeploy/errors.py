"""The one exception type users see: a clear message, exit code 2."""


class TinydeployError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2
