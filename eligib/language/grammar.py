"""The language's Lark grammar file (grammar/eligib.lark), read for the parser and the parse cache's key."""

from __future__ import annotations

import os
from functools import lru_cache

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the eligib package folder


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The Lark grammar: packaged as `eligib.grammar` (read as a plain file when installed as files, which
    spares every `eligib check` importing importlib.resources), or beside the package in a source
    checkout (an editable install)."""
    for path in (os.path.join(_PACKAGE, "grammar", "eligib.lark"),
                 os.path.join(os.path.dirname(_PACKAGE), "grammar", "eligib.lark")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read()
    from importlib import resources  # a zipped or otherwise unusual installation

    return resources.files("eligib.grammar").joinpath("eligib.lark").read_text(encoding="utf-8")
