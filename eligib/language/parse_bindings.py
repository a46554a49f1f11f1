"""The parser's building blocks: spans of what it builds, and the rules of the `bindings:` section."""

from __future__ import annotations

import dataclasses
from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from eligib.language import ast
from eligib.language.diagnostics import DiagnosticError, error
from eligib.language.source import SourceFile, Span


def unquote(token: Token) -> str:
    body = str(token)[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return " ".join("".join(out).split())  # wording spread over lines reads as one paragraph


@v_args(meta=True)
class BindingRules(Transformer[Token, Any]):
    """Spans for built nodes, and the tree -> AST rules of FHIR bindings (parser._Builder adds the rest)."""

    def __init__(self, source: SourceFile) -> None:
        super().__init__()
        self.source = source
        self.path = source.path

    # spans ---------------------------------------------------------------
    def _span(self, meta: Any) -> Span | None:
        if getattr(meta, "empty", True):
            return None
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column, source=self.source)

    def _tok(self, token: Token) -> Span:
        line, column = token.line or 1, token.column or 1
        return Span(self.path, line, column, token.end_line or line, token.end_column or column + len(token),
                    source=self.source)

    # bindings ------------------------------------------------------------
    def bindings(self, meta: Meta, children: list[Any]) -> Any:
        return tuple(children)

    def binding(self, meta: Meta, children: list[Any]) -> Any:
        name, source, *options = children
        fields = dict(source)
        for option in options:
            repeated = set(option) & set(fields)
            if repeated:
                raise DiagnosticError([error("duplicate-option", f"the binding for `{name}` sets "
                                             f"`{sorted(repeated)[0]}` twice", self._tok(name), "this binding",
                                             help="give each option once")])
            fields.update(option)
        return ast.Binding(str(name), span=self._tok(name), **fields)

    def history_binding(self, meta: Meta, children: list[Any]) -> Any:
        name, kind, codes, *rest = children
        fields = tuple(c for c in rest if isinstance(c, ast.FieldBinding))
        binding = self.binding(meta, [name, {"source": kind, "codes": codes, "part": ast.BindingPart.VALUE},
                                      *[c for c in rest if isinstance(c, dict)]])
        return dataclasses.replace(binding, fields=fields)

    def field_binding(self, meta: Meta, children: list[Any]) -> Any:
        name, (part, codes) = children
        return ast.FieldBinding(str(name), part, codes, span=self._tok(name))

    def date_field(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.FieldPart.DATE, ())

    def start_field(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.FieldPart.START, ())

    def end_field(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.FieldPart.END, ())

    def value_field(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.FieldPart.VALUE, ())

    def code_field(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.FieldPart.CODE, tuple(children))

    def code_pair(self, meta: Meta, children: list[Any]) -> Any:
        return (unquote(children[0]), str(children[1]))

    def complete_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"complete": True}

    def medication(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingSource.MEDICATION

    def resource_source(self, meta: Meta, children: list[Any]) -> Any:
        kind, codes, *part = children
        default = ast.BindingPart.VALUE if kind == ast.BindingSource.OBSERVATION else ast.BindingPart.DATE
        return {"source": kind, "codes": codes, "part": part[0] if part else default}

    def age_source(self, meta: Meta, children: list[Any]) -> Any:
        return {"source": ast.BindingSource.AGE, "anchor": str(children[0])}

    def gender_source(self, meta: Meta, children: list[Any]) -> Any:
        return {"source": ast.BindingSource.GENDER}

    def fhirpath_source(self, meta: Meta, children: list[Any]) -> Any:
        return {"source": ast.BindingSource.FHIRPATH, "expression": unquote(children[0])}

    def observation(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingSource.OBSERVATION

    def procedure(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingSource.PROCEDURE

    def immunization(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingSource.IMMUNIZATION

    def condition(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingSource.CONDITION

    def code_list(self, meta: Meta, children: list[Any]) -> Any:
        return tuple(unquote(code) for code in children)

    def value_part(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingPart.VALUE

    def date_part(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingPart.DATE

    def exists_part(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingPart.EXISTS

    def reference_high_part(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingPart.REFERENCE_HIGH

    def reference_low_part(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BindingPart.REFERENCE_LOW

    def before_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"anchor": str(children[0])}

    def within_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"window": children[0]}

    def absent_false_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"absent": ast.Absent.FALSE}

    def absent_none_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"absent": ast.Absent.NONE}
