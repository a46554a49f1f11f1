"""The language's Lark grammar file (grammar/eligib.lark), read for the parser and the parse cache's key."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The Lark grammar: packaged as `eligib.grammar`, or beside the package in a source checkout."""
    try:
        return resources.files("eligib.grammar").joinpath("eligib.lark").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        return (Path(__file__).resolve().parents[2] / "grammar" / "eligib.lark").read_text(encoding="utf-8")
