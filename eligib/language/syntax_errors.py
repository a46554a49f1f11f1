"""Syntax errors that say what was found and what could come there, in the words of the language
(`a name`, `end of line`), not the parser's token names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from eligib.language.diagnostics import Diagnostic, error
from eligib.language.source import SourceFile
from eligib.limits import MAX_NESTING

TOKEN_NAMES = {
    "_NL": "end of line", "_INDENT": "an indented block", "_DEDENT": "the end of the block",
    "$END": "end of file", "NAME": "a name", "STRING": 'a quoted string ("...")', "NUMBER": "a number",
    "INT": "a whole number", "UNIT": "a unit", "DATE": "a date (YYYY-MM-DD)", "COMPARATOR": "a comparison",
    "LPAR": "`(`", "RPAR": "`)`", "COLON": "`:`", "COMMA": "`,`", "MINUS": "`-`", "PLUS": "`+`",
    "STAR": "`*`", "SLASH": "`/`", "TRUE": "`true`", "FALSE": "`false`",
}


class NestingTooDeep(Exception):
    def __init__(self, token: Token) -> None:
        self.token = token


class BadDedent(Exception):
    def __init__(self, token: Token) -> None:
        self.token = token


def syntax_diagnostic(exc: Exception, source: SourceFile, terminals: Mapping[str, str]) -> Diagnostic:
    """The diagnostic for a parse failure; `terminals` maps token names to their literal text (`LPAR`: `(`)."""
    if isinstance(exc, BadDedent):
        token = exc.token
        line = token.end_line or token.line or 1
        indent = len(str(token).rsplit("\n", 1)[-1])
        return error("indentation", "this line's indentation matches no enclosing block",
                     source.span_at(line, 1, max(indent, 1)), "unexpected indentation",
                     help="indent to the same column as the lines of an enclosing block")
    if isinstance(exc, NestingTooDeep):
        return error("too-deep", "nesting is too deep", source.span_at(exc.token.line or 1, exc.token.column or 1),
                     help=f"nesting is limited to {MAX_NESTING} levels; use definitions")
    if isinstance(exc, UnexpectedCharacters):
        char = source.line_text(exc.line)[exc.column - 1: exc.column] or "?"
        return error("syntax", f"unexpected character `{char}`", source.span_at(exc.line, exc.column),
                     "not valid here", help=_expected_help(exc.allowed, terminals))
    if isinstance(exc, UnexpectedEOF):
        return error("syntax", "unexpected end of file", source.end_span(),
                     help=_expected_help(exc.expected, terminals))
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    slip = _common_slip(token, source)
    if slip is not None:
        return slip
    if token.type == "$END":
        return error("syntax", "unexpected end of file", source.end_span(),
                     help=_expected_help(exc.expected, terminals))
    if token.type in ("_NL", "_DEDENT"):
        line, column = _line_end(source, token)
        return error("syntax", "unexpected end of line", source.span_at(line, column),
                     "the line stops here", help=_expected_help(exc.expected, terminals))
    if token.type == "_INDENT":
        line = token.end_line or token.line or 1
        width = len(str(token).replace("\t", " " * 8)) or 1
        return error("indentation", "unexpected indentation", source.span_at(line, 1, width),
                     "this line is indented more than the one before",
                     help="only a line ending in `:` or `of` opens an indented block")
    text = str(token)
    return error("syntax", f"unexpected `{text}`", source.span_at(token.line, token.column, len(text)),
                 "not expected here", help=_expected_help(exc.expected, terminals))


CONDITIONAL = re.compile(r"^(?P<indent>\s*)if\s+(?P<condition>.+?)\s+then\s+(?P<then>.+?)"
                         r"\s+else\s+(?P<otherwise>.+?)\s*$")


def _common_slip(token: Token, source: SourceFile) -> Diagnostic | None:
    """The slips authors make most, each with the right form in its help line (docs/errors.md, syntax)."""
    line = token.line or 1
    text = source.line_text(line)
    column = token.column or 1
    before = text[:column - 1]
    if str(token) == "=":
        if text[column:column + 1] == ">":
            return error("syntax", "`=>` is not a comparison", source.span_at(line, column, 2), "write `>=`",
                         help="the comparisons are `<`, `<=`, `>`, `>=`, `==`, `!=`")
        return error("syntax", "`=` is not a comparison", source.span_at(line, column), "not a comparison",
                     help="write `is` to test an enumeration value (`sex is female`), `==` to compare numbers "
                          "or dates (`ecog == 1`)")
    if token.type == "COMPARATOR" and before.rstrip().endswith(" is"):
        start = len(before.rstrip()) - 1
        fixed = (before.rstrip()[:-3] + " " + text[column - 1:]).strip()
        return error("syntax", f"`is {token}` mixes a value test with a comparison",
                     source.span_at(line, start, column - start + len(str(token))), "write one or the other",
                     help=f"compare without `is`: `{fixed}`")
    written = CONDITIONAL.match(text)
    if written is not None:
        at = len(written["indent"]) + 1
        return error("syntax", "a conditional is written `A if C else B`", source.span_at(line, at, 2),
                     "`if` cannot start an expression",
                     help=f"write `{written['then']} if {written['condition']} else {written['otherwise']}`")
    if token.type == "_NL" and " only if " in f" {text.strip()} " and not text.strip().startswith("only if"):
        at = text.index("only if") + 1
        return error("syntax", "`only if` after a criterion's body", source.span_at(line, at, 7),
                     "it limits the whole criterion",
                     help="put `only if CONDITION` on its own line after `record:`, before the body")
    return None


def _line_end(source: SourceFile, token: Token) -> tuple[int, int]:
    line = token.line or 1
    return line, len(source.line_text(line).rstrip()) + 1


def _expected_help(expected: Any, terminals: Mapping[str, str]) -> str:
    names = sorted({_token_name(name, terminals) for name in (expected or ()) if not name.startswith("__")})
    if not names:
        return ""
    if len(names) > 8:
        names = [*names[:8], "..."]
    return "expected " + ", ".join(names)


def _token_name(name: str, terminals: Mapping[str, str]) -> str:
    if name in TOKEN_NAMES:
        return TOKEN_NAMES[name]
    if name in terminals:
        return f"`{terminals[name]}`"
    return name.lower()
