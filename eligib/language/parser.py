"""Parse protocol text into the AST. Lark does the syntax; a hand-written transformer builds nodes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar

from lark import Lark, Token, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError
from lark.indenter import DedentError, Indenter
from lark.tree import Meta

from eligib.language import ast
from eligib.language.diagnostics import DiagnosticError, error, suggest
from eligib.language.grammar import grammar_text
from eligib.language.parse_bindings import unquote
from eligib.language.parse_libraries import LibraryRules
from eligib.language.source import SourceFile, Span
from eligib.language.syntax_errors import BadDedent, NestingTooDeep, syntax_diagnostic
from eligib.limits import MAX_EXPRESSION_DEPTH, MAX_NESTING, MAX_NUMBER_DIGITS, MAX_PROTOCOL_BYTES


class _ProtocolIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types: ClassVar[list[str]] = ["LPAR"]
    CLOSE_PAREN_types: ClassVar[list[str]] = ["RPAR"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.paren_level > MAX_NESTING or len(self.indent_level) > MAX_NESTING:
            raise NestingTooDeep(token)
        try:
            yield from super().handle_NL(token)
        except DedentError as exc:
            raise BadDedent(token) from exc


@lru_cache(maxsize=1)
def _lark() -> Lark:
    # No `cache=`: Lark's cache is a pickle in a shared temporary folder, and unpickling a file another
    # user planted there runs their code. Parsed protocols are cached by loader.py instead, as sealed JSON.
    return Lark(grammar_text(), parser="lalr", postlex=_ProtocolIndenter(), propagate_positions=True,
                maybe_placeholders=False, start=["start", "library"])


@lru_cache(maxsize=1)
def _terminals() -> dict[str, str]:
    """Token names with a fixed text, as the grammar spells them (`LPAR` -> `(`), for syntax errors."""
    return {t.name: str(t.pattern.value) for t in _lark().terminals if t.pattern.type == "str"}


def parse(text: str, path: str = "<protocol>", source: SourceFile | None = None) -> ast.Protocol:
    """Parse one protocol; raise DiagnosticError with a located message on any syntax error.
    Spans point into `source` (made from `text` when not given)."""
    protocol: ast.Protocol = _parse(text, path, source, "start")
    return protocol


def parse_library(text: str, path: str, source: SourceFile | None = None) -> ast.Library:
    """Parse a value-set file (value sets and tables only), as `parse` does a protocol."""
    library: ast.Library = _parse(text, path, source, "library")
    return library


def _parse(text: str, path: str, source: SourceFile | None, start: str) -> Any:
    source = source if source is not None else SourceFile(path, text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PROTOCOL_BYTES:
        raise DiagnosticError([error("too-large", f"protocol file is larger than {MAX_PROTOCOL_BYTES} bytes",
                                     help="split the protocol or check that this is the right file")])
    normalised = text if text.endswith("\n") else text + "\n"
    try:
        tree = _lark().parse(normalised, start=start)
    except (UnexpectedInput, BadDedent, NestingTooDeep) as exc:
        raise DiagnosticError([syntax_diagnostic(exc, source, _terminals())]) from None
    depth, deepest = _depth(tree)
    if depth > MAX_EXPRESSION_DEPTH:
        raise DiagnosticError([error("too-deep", "expression is nested too deeply", _tree_span(deepest, source),
                                     "nested too deeply here",
                                     help=f"expressions nest at most {MAX_EXPRESSION_DEPTH} operators deep; "
                                          "use definitions")])
    try:
        return _Builder(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, DiagnosticError):
            raise exc.orig_exc from None
        raise


def _depth(tree: Tree[Token]) -> tuple[int, Tree[Token]]:
    """The depth of the tree and its deepest node (iteratively: no recursion on hostile input)."""
    deepest, node_at, stack = 0, tree, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest, node_at = depth, node
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest, node_at


def _tree_span(tree: Tree[Token], source: SourceFile) -> Span | None:
    meta = tree.meta
    return None if meta.empty else Span(source.path, meta.line, meta.column, meta.end_line, meta.end_column,
                                        source=source)


_CONDITION_QUERIES = ("any", "no", "every", "count")  # `any(therapies)`: a query with no `where`
_OPTION_NAMES = {"max_items": "`at most N items`", "order": "`ordered by`", "low": "range (`from ... to ...`)",
                 "optional": "`or none`", "guard": "`only if` condition", "description": "description",
                 "assessed": "`assessed at`", "change": "`fixed` or `modifiable`"}


def _as_bound(literal: ast.Bound | ast.DateLiteral) -> ast.Bound:
    if isinstance(literal, ast.DateLiteral):
        return ast.Bound(literal.value, None, literal.value.isoformat(), span=literal.span)
    return literal


@v_args(meta=True)
class _Builder(LibraryRules):
    """Lark tree -> AST. Each method receives the rule's meta (for spans) and its children."""

    # limits ----------------------------------------------------------------
    def _number(self, token: Token) -> Fraction:
        """A numeric literal, exactly; one longer than the limit is an error (docs/limits.md)."""
        digits = str(token).replace(".", "")
        if len(digits) > MAX_NUMBER_DIGITS:
            raise DiagnosticError([error("bad-number", f"this number has more than {MAX_NUMBER_DIGITS} digits",
                                         self._tok(token), "too long", help="see docs/limits.md")])
        return Fraction(str(token))

    # top level -----------------------------------------------------------
    def start(self, meta: Meta, children: list[Any]) -> Any:
        header, *sections = children
        facts: list[ast.FactDecl] = []
        definitions: list[ast.Definition] = []
        criteria: list[ast.Criterion] = []
        assertions: list[ast.Assertion] = []
        bindings: list[ast.Binding] = []
        assumptions: list[ast.Assumption] = []
        value_sets: list[ast.ValueSet] = []
        tables: list[ast.Table] = []
        imports: list[ast.Import] = []
        timepoints: list[ast.TimePoints] = []
        for section in sections:
            if isinstance(section, ast.TimePoints):
                timepoints.append(section)
            elif isinstance(section, ast.Import):
                imports.append(section)
            elif isinstance(section, ast.ValueSet):
                value_sets.append(section)
            elif isinstance(section, ast.Table):
                tables.append(section)
            elif isinstance(section, ast.Assumption):
                assumptions.append(section)
            elif isinstance(section, tuple):
                bindings.extend(section)
            elif isinstance(section, list):
                facts.extend(section)
            elif isinstance(section, ast.Definition):
                definitions.append(section)
            elif isinstance(section, ast.Assertion):
                assertions.append(section)
            else:
                criteria.append(section)
        if len(timepoints) > 1:
            raise DiagnosticError([error("duplicate-timepoints", "`timepoints:` is declared twice",
                                         timepoints[1].span, "declared again here",
                                         help=f"list every time point once, at {timepoints[0].span}")])
        return ast.Protocol(header, tuple(facts), tuple(definitions), tuple(criteria), tuple(assertions),
                            tuple(bindings), tuple(assumptions), tuple(value_sets), tuple(tables), tuple(imports),
                            timepoints[0] if timepoints else None, span=self._span(meta))

    def timepoints(self, meta: Meta, children: list[Any]) -> Any:
        return ast.TimePoints(tuple(str(name) for name in children), span=self._tok(children[0]))

    def header(self, meta: Meta, children: list[Any]) -> Any:
        name, *items = children
        return ast.Header(str(name), tuple(items), span=self._tok(name))

    def meta_item(self, meta: Meta, children: list[Any]) -> Any:
        key, value = children
        return ast.MetaItem(str(key), unquote(value), span=self._tok(key))

    def facts(self, meta: Meta, children: list[Any]) -> Any:
        return list(children)

    def fact(self, meta: Meta, children: list[Any]) -> Any:
        name, fact_type, *options = children
        fields: dict[str, Any] = {}
        conversions = tuple(option["conversion"] for option in options if "conversion" in option)
        options = [option for option in options if "conversion" not in option]
        if conversions:
            fields["conversions"] = conversions
        for option in options:
            repeated = set(option) & set(fields)
            if repeated - {"high"}:  # a range sets low and high together; name it by `low`
                raise DiagnosticError([error("duplicate-option", f"fact `{name}` has more than one "
                                             f"{_OPTION_NAMES[sorted(repeated - {'high'})[0]]}", self._tok(name),
                                             "declared here", help="give each option once")])
            fields.update(option)
        return ast.FactDecl(str(name), fact_type, span=self._tok(name), **fields)

    def list_fact(self, meta: Meta, children: list[Any]) -> Any:
        name, *rest = children
        options = [c for c in rest if isinstance(c, dict)]
        fields = tuple(c for c in rest if isinstance(c, ast.FactDecl))
        self._few_enough(list(fields), meta, "fields in one history")
        found: dict[str, Any] = {}
        for option in options:
            if set(option) & set(found):
                raise DiagnosticError([error("duplicate-option", f"history `{name}` has more than one "
                                             f"{_OPTION_NAMES.get(next(iter(option)), next(iter(option)))}",
                                             self._tok(name), "declared here", help="give each option once")])
            found.update(option)
        return ast.FactDecl(str(name), ast.FactType(ast.FactKind.LIST, span=self._tok(name)), fields=fields,
                            span=self._tok(name), **found)

    def max_items_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"max_items": int(self._number(children[0]))}

    def order_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"order": str(children[0])}

    def boolean_type(self, meta: Meta, children: list[Any]) -> Any:
        return ast.FactType(ast.FactKind.BOOLEAN, span=self._span(meta))

    def integer_type(self, meta: Meta, children: list[Any]) -> Any:
        return ast.FactType(ast.FactKind.INTEGER, str(children[0]) if children else None, span=self._span(meta))

    def decimal_type(self, meta: Meta, children: list[Any]) -> Any:
        return ast.FactType(ast.FactKind.DECIMAL, str(children[0]) if children else None, span=self._span(meta))

    def date_type(self, meta: Meta, children: list[Any]) -> Any:
        return ast.FactType(ast.FactKind.DATE, span=self._span(meta))

    def datetime_type(self, meta: Meta, children: list[Any]) -> Any:
        return ast.FactType(ast.FactKind.DATETIME, span=self._span(meta))

    def enum_type(self, meta: Meta, children: list[Any]) -> Any:
        return ast.FactType(ast.FactKind.ENUM, None, tuple(str(c) for c in children), span=self._span(meta))

    def ordered_enum_type(self, meta: Meta, children: list[Any]) -> Any:
        """`one of (i < ii < iii < iv)`: an enumeration whose values are ranked, lowest first."""
        wrong = [token for token in children[1::2] if str(token) != "<"]
        if wrong:
            raise DiagnosticError([error("syntax", f"`{wrong[0]}` between enumeration values", self._tok(wrong[0]),
                                         "expected `<`", help="list an ordered enumeration lowest first: "
                                                              "`one of (i < ii < iii < iv)`")])
        return ast.FactType(ast.FactKind.ENUM, None, tuple(str(c) for c in children[0::2]), ordered=True,
                            span=self._span(meta))

    def range_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"low": _as_bound(children[0]), "high": _as_bound(children[1])}

    def conversion_option(self, meta: Meta, children: list[Any]) -> Any:
        offset = children[2] if len(children) > 2 else None
        return {"conversion": ast.Conversion(children[0], children[1], offset, span=self._span(meta))}

    def optional_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"optional": True}

    def guard_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"guard": children[0]}

    def assessed_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"assessed": tuple(str(name) for name in children)}

    def fixed_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"change": ast.Change.FIXED}

    def modifiable_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"change": ast.Change.MODIFIABLE}

    def description_option(self, meta: Meta, children: list[Any]) -> Any:
        return {"description": unquote(children[0])}

    def signed_quantity(self, meta: Meta, children: list[Any]) -> Any:
        negative = isinstance(children[0], Token) and children[0].type == "MINUS"
        number, *unit = children[1:] if negative else children
        value = self._number(number) * (-1 if negative else 1)
        unit_text = str(unit[0]) if unit else None
        text = ("-" if negative else "") + str(number) + (f" {unit_text}" if unit_text else "")
        return ast.Bound(value, unit_text, text, span=self._span(meta))

    def unit(self, meta: Meta, children: list[Any]) -> Any:
        return children[0]

    def definition(self, meta: Meta, children: list[Any]) -> Any:
        name, body = children
        return ast.Definition(str(name), body, span=self._tok(name))

    def inclusion(self, meta: Meta, children: list[Any]) -> Any:
        return ast.CriterionKind.INCLUSION

    def exclusion(self, meta: Meta, children: list[Any]) -> Any:
        return ast.CriterionKind.EXCLUSION

    def criterion(self, meta: Meta, children: list[Any]) -> Any:
        kind, name, label, *fields, body = children
        record, guard, assessed = "", None, ()
        for field_kind, value in fields:
            if field_kind == "record":
                record = value
            elif field_kind == "assessed":
                assessed = value
            else:
                guard = value
        return ast.Criterion(kind, str(name), unquote(label), record, guard, body, assessed, span=self._tok(name))

    def assumption(self, meta: Meta, children: list[Any]) -> Any:
        name, label, body = children
        return ast.Assumption(str(name), unquote(label), body, span=self._tok(name))

    def assertion(self, meta: Meta, children: list[Any]) -> Any:
        name, label, body = children
        return ast.Assertion(str(name), unquote(label), body, span=self._tok(name))

    def record_field(self, meta: Meta, children: list[Any]) -> Any:
        return ("record", unquote(children[0]))

    def guard_field(self, meta: Meta, children: list[Any]) -> Any:
        return ("guard", children[0])

    def assessed_field(self, meta: Meta, children: list[Any]) -> Any:
        return ("assessed", tuple(str(name) for name in children))

    # blocks --------------------------------------------------------------
    def block(self, meta: Meta, children: list[Any]) -> Any:
        (kind, count), *items = children
        self._few_enough(items, meta, "items in one block")
        return ast.Block(kind, tuple(items), count, span=self._span(meta))

    def any_of(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.BlockKind.ANY, 0)

    def all_of(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.BlockKind.ALL, 0)

    def at_least(self, meta: Meta, children: list[Any]) -> Any:
        return (ast.BlockKind.AT_LEAST, int(self._number(children[0])))

    def count_of(self, meta: Meta, children: list[Any]) -> Any:
        """`at least 2 of (a, b, c)` on one line: an `at least N of` block of unnamed items."""
        count, *conditions = children
        self._few_enough(conditions, meta, "conditions in one `at least N of (...)`")
        items = tuple(ast.BlockItem(None, condition, span=condition.span) for condition in conditions)
        return ast.Block(ast.BlockKind.AT_LEAST, items, int(self._number(count)), span=self._span(meta))

    def named_item(self, meta: Meta, children: list[Any]) -> Any:
        name, body = children
        return ast.BlockItem(str(name), body, span=self._tok(name))

    def anonymous_item(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BlockItem(None, children[0], span=self._span(meta))

    # expressions -----------------------------------------------------------
    def conditional(self, meta: Meta, children: list[Any]) -> Any:
        then, condition, otherwise = children
        return ast.Conditional(condition, then, otherwise, span=self._span(meta))

    def implies(self, meta: Meta, children: list[Any]) -> Any:
        return ast.Implies(children[0], children[1], span=self._span(meta))

    def or_(self, meta: Meta, children: list[Any]) -> Any:
        self._few_enough(children, meta, "operands of one `or`")
        if len(children) == 1:
            return children[0]
        return ast.Or(tuple(children), span=self._span(meta))

    def and_(self, meta: Meta, children: list[Any]) -> Any:
        self._few_enough(children, meta, "operands of one `and`")
        if len(children) == 1:
            return children[0]
        return ast.And(tuple(children), span=self._span(meta))

    def not_(self, meta: Meta, children: list[Any]) -> Any:
        return ast.Not(children[0], span=self._span(meta))

    def compare(self, meta: Meta, children: list[Any]) -> Any:
        self._few_enough(children[0::2], meta, "links in one comparison chain")
        return ast.Compare(tuple(children[0::2]), tuple(ast.Comparator(str(op)) for op in children[1::2]),
                           span=self._span(meta))

    def arithmetic(self, meta: Meta, children: list[Any]) -> Any:
        self._few_enough(children[0::2], meta, "terms in one sum or product")
        if len(children) == 1:
            return children[0]
        return ast.Arithmetic(tuple(children[0::2]), tuple(ast.Operator(str(op)) for op in children[1::2]),
                              span=self._span(meta))

    def negate(self, meta: Meta, children: list[Any]) -> Any:
        return ast.Negate(children[1], span=self._span(meta))

    def is_at_least(self, meta: Meta, children: list[Any]) -> Any:
        return ast.IsRanked(children[0], str(children[1]), span=self._span(meta))

    def is_at_most(self, meta: Meta, children: list[Any]) -> Any:
        return ast.IsRanked(children[0], str(children[1]), at_most=True, span=self._span(meta))

    def is_value(self, meta: Meta, children: list[Any]) -> Any:
        return ast.IsValue(children[0], str(children[1]), span=self._span(meta))

    def is_not_value(self, meta: Meta, children: list[Any]) -> Any:
        return ast.IsValue(children[0], str(children[1]), True, span=self._span(meta))

    def is_none(self, meta: Meta, children: list[Any]) -> Any:
        return ast.IsNone(children[0], span=self._span(meta))

    def is_not_none(self, meta: Meta, children: list[Any]) -> Any:
        return ast.IsNone(children[0], True, span=self._span(meta))

    def in_set(self, meta: Meta, children: list[Any]) -> Any:
        self._few_enough(children[1:], meta, "values in one `in (...)`")
        return ast.InSet(children[0], tuple(str(c) for c in children[1:]), span=self._span(meta))

    def not_in_set(self, meta: Meta, children: list[Any]) -> Any:
        self._few_enough(children[1:], meta, "values in one `in (...)`")
        return ast.InSet(children[0], tuple(str(c) for c in children[1:]), True, span=self._span(meta))

    def in_value_set(self, meta: Meta, children: list[Any]) -> Any:
        return ast.InValueSet(children[0], str(children[1]), span=self._span(meta))

    def not_in_value_set(self, meta: Meta, children: list[Any]) -> Any:
        return ast.InValueSet(children[0], str(children[1]), True, span=self._span(meta))

    def within(self, meta: Meta, children: list[Any]) -> Any:
        subject, amount, direction, anchor = children
        return ast.Within(subject, amount, direction, anchor, span=self._span(meta))

    def before(self, meta: Meta, children: list[Any]) -> Any:
        return ast.Direction.BEFORE

    def after(self, meta: Meta, children: list[Any]) -> Any:
        return ast.Direction.AFTER

    def quantity(self, meta: Meta, children: list[Any]) -> Any:
        number, *unit = children
        unit_text = str(unit[0]) if unit else None
        text = str(number) + (f" {unit_text}" if unit_text else "")
        return ast.QuantityLiteral(self._number(number), unit_text, text, span=self._span(meta))

    def date_literal(self, meta: Meta, children: list[Any]) -> Any:
        token = children[0]
        try:
            value = dt.date.fromisoformat(str(token))
        except ValueError:
            raise DiagnosticError([error("bad-date", f"`{token}` is not a calendar date", self._tok(token),
                                         "no such day", help="write dates as YYYY-MM-DD")]) from None
        return ast.DateLiteral(value, span=self._tok(token))

    def true_literal(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BoolLiteral(True, span=self._tok(children[0]))

    def false_literal(self, meta: Meta, children: list[Any]) -> Any:
        return ast.BoolLiteral(False, span=self._tok(children[0]))

    def call(self, meta: Meta, children: list[Any]) -> Any:
        name, *args = children
        if len(args) == 1 and isinstance(args[0], ast.NameRef) and str(name) in _CONDITION_QUERIES:
            return ast.Query(ast.QueryKind(str(name)), args[0].name, None, None, span=self._span(meta))
        return ast.Call(str(name), tuple(args), span=self._span(meta))

    def query(self, meta: Meta, children: list[Any]) -> Any:
        function, collection, where = children
        return ast.Query(self._query_kind(function), str(collection), None, where, span=self._span(meta))

    def field_query(self, meta: Meta, children: list[Any]) -> Any:
        function, field, collection, *where = children
        return ast.Query(self._query_kind(function), str(collection), str(field), where[0] if where else None,
                         span=self._span(meta))

    def _query_kind(self, function: Token) -> ast.QueryKind:
        try:
            return ast.QueryKind(str(function))
        except ValueError:
            kinds = ", ".join(f"`{k.value}`" for k in ast.QueryKind)
            raise DiagnosticError([error("unknown-function", f"`{function}` is not a question about a history",
                                         self._tok(function), "not a history query",
                                         help=suggest(str(function), [k.value for k in ast.QueryKind])
                                         or f"ask one of {kinds}")]) from None

    def name(self, meta: Meta, children: list[Any]) -> Any:
        return ast.NameRef(str(children[0]), span=self._tok(children[0]))
