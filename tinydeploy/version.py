"""The package version, in a module of its own: modules that print it (codegen,
the HTML report, the CLI) import it from here, not from the package, whose
__init__ re-exports the API and so sits above them."""

__version__ = "0.1.0"
