"""`import "FILE"`: value sets and tables from value-set files beside the protocol.

An imported file lies in the protocol's folder or below it (a protocol shared with others cannot
make eligib read files elsewhere), is a regular file of bounded size, and holds only value sets
and tables. Imports are read on every load, never taken from the parse cache, so an edited
value-set file always counts.
"""

from __future__ import annotations

import dataclasses
import os

from eligib.language import ast
from eligib.language.diagnostics import DiagnosticError, error
from eligib.language.reading import read_source
from eligib.language.source import SourceFile
from eligib.limits import MAX_IMPORTS, MAX_PROTOCOL_BYTES


def with_imports(protocol: ast.Protocol, source: SourceFile) -> ast.Protocol:
    """The protocol with the value sets and tables of the files it imports added to its own."""
    if not protocol.imports:
        return protocol
    if len(protocol.imports) > MAX_IMPORTS:
        raise DiagnosticError([error("too-many", f"more than {MAX_IMPORTS} imports", protocol.imports[MAX_IMPORTS].span,
                                     "here", help="merge value-set files; see docs/limits.md")])
    folder = os.path.dirname(source.path) if os.path.isfile(source.path) else os.curdir
    value_sets, tables = list(protocol.value_sets), list(protocol.tables)
    for declared in protocol.imports:
        library = _library(declared, folder)
        value_sets += library.value_sets
        tables += library.tables
    return dataclasses.replace(protocol, value_sets=tuple(value_sets), tables=tuple(tables))


def _library(declared: ast.Import, folder: str) -> ast.Library:
    from eligib.language.parser import parse_library  # imports Lark, as parsing the protocol did

    display = os.path.normpath(os.path.join(folder, declared.path))
    root, target = os.path.realpath(folder), os.path.realpath(display)
    if os.path.commonpath([root, target]) != root:
        raise DiagnosticError([error("bad-import", f"`{declared.path}` is outside the protocol's folder",
                                     declared.span, "imported here",
                                     help="keep value-set files in the protocol's folder or below it")])
    if not os.path.isfile(target):
        raise DiagnosticError([error("bad-import", f"cannot read value-set file `{declared.path}`", declared.span,
                                     "imported here", help=f"no such file: {display}")])
    text = read_source(display, "value-set file", MAX_PROTOCOL_BYTES, regular_only=True)
    return parse_library(text.text, display, text)
