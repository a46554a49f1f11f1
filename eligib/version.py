"""The version of eligib (kept apart so that anything may read it without importing the package's API)."""

__version__ = "0.1.0"
