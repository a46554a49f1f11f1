"""The parser's rules for value sets, tables and imports (shared by protocols and value-set files)."""

from __future__ import annotations

from typing import Any

from lark import v_args
from lark.tree import Meta

from eligib.language import ast
from eligib.language.diagnostics import DiagnosticError, error
from eligib.language.parse_bindings import BindingRules, unquote
from eligib.limits import MAX_OPERANDS


@v_args(meta=True)
class LibraryRules(BindingRules):
    """Value sets (`valueset NAME "label": (...)`), tables by value or band, `import`, value-set files."""

    def _few_enough(self, operands: list[Any], meta: Any, what: str) -> None:
        if len(operands) > MAX_OPERANDS:
            raise DiagnosticError([error("too-many", f"more than {MAX_OPERANDS} {what}", self._span(meta),
                                         "here", help="split it into definitions; see docs/limits.md")])

    def library(self, meta: Meta, children: list[Any]) -> Any:
        return ast.Library(tuple(c for c in children if isinstance(c, ast.ValueSet)),
                           tuple(c for c in children if isinstance(c, ast.Table)), span=self._span(meta))

    def import_(self, meta: Meta, children: list[Any]) -> Any:
        return ast.Import(unquote(children[0]), span=self._tok(children[0]))

    def value_set_source(self, meta: Meta, children: list[Any]) -> Any:
        return {"system": unquote(children[0]), "version": unquote(children[1]) if len(children) > 1 else ""}

    def value_set(self, meta: Meta, children: list[Any]) -> Any:
        name, label, *members = children
        source = members.pop(0) if members and isinstance(members[0], dict) else {}
        self._few_enough(members, meta, "codes in one value set")
        return ast.ValueSet(str(name), unquote(label), tuple(str(m) for m in members), span=self._tok(name),
                            **source)

    def table(self, meta: Meta, children: list[Any]) -> Any:
        name, label, *rows = children
        self._few_enough(rows, meta, "rows in one table")
        return ast.Table(str(name), unquote(label), tuple(rows), span=self._tok(name))

    def band_below(self, meta: Meta, children: list[Any]) -> Any:
        high, value = children
        return ast.TableRow("", value, None, high, span=self._span(meta))

    def band_between(self, meta: Meta, children: list[Any]) -> Any:
        low, high, value = children
        return ast.TableRow("", value, low, high, span=self._span(meta))

    def band_from(self, meta: Meta, children: list[Any]) -> Any:
        low, value = children
        return ast.TableRow("", value, low, None, span=self._span(meta))

    def table_row(self, meta: Meta, children: list[Any]) -> Any:
        key, value = children
        return ast.TableRow(str(key), value, span=self._tok(key))
