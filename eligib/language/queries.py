"""Typing of what reads histories, value sets and tables: queries (`any(therapies where ...)`), value set
membership (`agent in anti_cd38`) and table lookups (`half_life(agent)`). Part of expression typing."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import pairwise
from typing import TYPE_CHECKING, assert_never

from eligib.language import ast
from eligib.language.diagnostics import Diagnostic, error, suggest
from eligib.limits import MAX_ITEM_COMBINATIONS
from eligib.values.types import BOOL, DateTimeType, DateType, EnumType, ListType, NumType, ValueType
from eligib.values.units import PLAIN, to_canonical

if TYPE_CHECKING:
    from eligib.language.expressions import ExpressionTyper

Type = ValueType


class HistoryTyper:
    """Types the history parts of expressions for an ExpressionTyper (whose state and scope it shares)."""

    def __init__(self, typer: ExpressionTyper) -> None:
        self.typer = typer

    def query_type(self, query: ast.Query) -> Type | None:
        """A question about a history's items; its `where` reads one item's fields (docs/language.md)."""
        info = self.typer.state.facts.get(query.collection)
        if info is None or not isinstance(info.type, ListType):
            histories = [name for name, f in self.typer.state.facts.items() if isinstance(f.type, ListType)]
            what = "is not a history" if info is not None else "is not declared"
            self.typer.report(error("unknown-history", f"`{query.collection}` {what}", query.span,
                              f"`{query.kind}` asks about a history",
                              help=suggest(query.collection, histories) or (
                                  f"histories: {', '.join(histories)}" if histories
                                  else "declare one under `facts:` as `NAME: list:` with indented fields")))
            return None
        history = info.type
        self.typer.state.used_facts.add(query.collection)
        field = self.query_field(query, history)
        combinations = math.prod(h.max_items for h in (*self.typer.scope, history))
        if combinations > MAX_ITEM_COMBINATIONS:
            self.typer.report(error("too-many", f"this nested query reads {combinations:,} combinations of items",
                                    query.span, "nested too deeply for the histories' bounds",
                                    help=f"at most {MAX_ITEM_COMBINATIONS:,} (the product of the `at most N items` of "
                                         "the histories it is nested in); lower the bounds, or ask each history "
                                         "on its own (docs/limits.md)"))
            return None
        if query.where is not None:
            outer = self.typer.scope
            self.typer.scope = (*outer, history)  # a nested query's `where` also reads the outer items
            self.typer.expect_bool(query.where, "the `where` of a query")
            self.typer.scope = outer
        if query.kind == ast.QueryKind.EVERY and query.where is None:
            self.typer.report(error("bad-arguments", f"`every({query.collection})` says nothing", query.span,
                              "no condition", help=f"write `every({query.collection} where CONDITION)`"))
        return self.query_result(query, history, field)

    def query_field(self, query: ast.Query, history: ListType) -> Type | None:
        names = [f.name for f in history.fields]
        if query.kind.takes_field and query.field is None:
            self.typer.report(error("bad-arguments", f"`{query.kind}` reads a field", query.span, "no field named",
                              help=f"write `{query.kind}(FIELD of {query.collection} ...)`, FIELD one of "
                                   f"{', '.join(names)}"))
            return None
        if not query.kind.takes_field and query.field is not None:
            self.typer.report(error("bad-arguments", f"`{query.kind}` counts or tests items; it reads no field",
                              query.span, f"`{query.field} of` not expected",
                              help=f"write `{query.kind}({query.collection} where {query.field} ...)`"))
            return None
        if query.field is None:
            return None
        if query.field not in names:
            self.typer.report(error("unknown-field", f"history `{query.collection}` has no field `{query.field}`",
                              query.span, "not a field", help=suggest(query.field, names)
                              or f"fields: {', '.join(names)}"))
            return None
        return history.field(query.field).type

    def query_result(self, query: ast.Query, history: ListType, field: Type | None) -> Type | None:
        match query.kind:
            case ast.QueryKind.ANY | ast.QueryKind.NO | ast.QueryKind.EVERY:
                return BOOL
            case ast.QueryKind.COUNT:
                return NumType(PLAIN, None, integer=True)
            case ast.QueryKind.LATEST | ast.QueryKind.EARLIEST:
                if history.order is None:
                    self.typer.report(error("unordered-history", f"`{query.kind}` needs an order, but history "
                                      f"`{query.collection}` declares none", query.span, "which item is latest?",
                                      help="declare the history `ordered by FIELD`, a date such as its start"))
                    return None
                return field
            case ast.QueryKind.MIN | ast.QueryKind.MAX | ast.QueryKind.SUM:
                if field is None:
                    return None
                allowed = (NumType,) if query.kind == ast.QueryKind.SUM else (NumType, DateType, DateTimeType)
                if not isinstance(field, allowed):
                    takes = "numbers" if len(allowed) == 1 else "numbers or dates"
                    self.typer.report(error("type-mismatch", f"`{query.kind}` takes {takes}, but `{query.field}` is "
                                      f"{field}", query.span, "not a number"))
                    return None
                return field
            case _:
                assert_never(query.kind)

    def value_set_members(self, expr: ast.InValueSet) -> None:
        value_set = self.typer.state.value_sets.get(expr.value_set)
        if value_set is None:
            self.typer.report(error("unknown-value-set", f"unknown value set `{expr.value_set}`", expr.span,
                              "not declared", help=suggest(expr.value_set, self.typer.state.value_sets)
                              or "declare it: `valueset NAME \"label\": (code, code)`, or list the values: "
                                 "`in (a, b)`"))
            self.typer.infer(expr.subject)
            return
        self.typer.state.used_value_sets.add(expr.value_set)
        self.typer.enum_values(expr.subject, value_set.members, value_set.span)

    def lookup_type(self, call: ast.Call, table: ast.Table) -> Type | None:
        """`half_life(agent)`: the row of an enumeration value, or `creatinine_limit(age)`: the band a number
        falls in. A table covers every key it can be given, so a lookup never falls off it."""
        self.typer.state.used_tables.add(table.name)
        if len(call.args) != 1:
            self.typer.report(error("bad-arguments", f"table `{table.name}` is looked up by one value", call.span,
                                    f"{len(call.args)} values", help=f"write `{table.name}(VALUE)`"))
            return None
        key = self.typer.infer(call.args[0])
        rows = [self.typer.literal_type(row.value) for row in table.rows]
        if key is None or None in rows:
            return None
        bands = [row.band for row in table.rows]
        if any(bands) and not all(bands):
            self.typer.report(error("incomplete-table", f"table `{table.name}` mixes values and bands", table.span,
                                    "rows of two kinds", help="key a table by enumeration values or by bands"))
            return None
        covered = self.bands_cover(call, table, key) if all(bands) else self.values_cover(call, table, key)
        if not covered:
            return None
        known = [row for row in rows if row is not None]
        for row, found in zip(table.rows[1:], known[1:], strict=True):
            if not known[0].same_kind(found):
                self.typer.report(mismatch(known[0], found, row.value, "=="))
                return None
        first = known[0]
        assert isinstance(first, NumType)
        return NumType(first.kind, first.unit, all(isinstance(t, NumType) and t.integer for t in known))

    def values_cover(self, call: ast.Call, table: ast.Table, key: Type) -> bool:
        if not isinstance(key, EnumType):
            self.typer.report(error("type-mismatch", f"table `{table.name}` is keyed by enumeration values, but "
                                    f"this is {key}", call.args[0].span, "not an enumeration"))
            return False
        keys = [row.key for row in table.rows]
        missing = [value for value in key.values if value not in keys]
        extra = [k for k in keys if k not in key.values]
        if missing or extra:
            problem = (f"has no row for {', '.join(f'`{m}`' for m in missing)}" if missing
                       else f"has rows that are not values of `{key.fact}`: {', '.join(extra)}")
            self.typer.report(error("incomplete-table", f"table `{table.name}` {problem}", call.span,
                                    f"looked up by `{key.fact}`",
                                    help=f"give one row per value of `{key.fact}`: {', '.join(key.values)}"))
            return False
        return True

    def bands_cover(self, call: ast.Call, table: ast.Table, key: Type) -> bool:
        """Bands run `below X`, `from X below Y`, ..., `from Z`: no gap, no overlap, every number covered."""
        if not isinstance(key, NumType):
            self.typer.report(error("type-mismatch", f"table `{table.name}` has bands of numbers, but this is {key}",
                                    call.args[0].span, "not a number"))
            return False
        rows = table.rows
        for row in rows:
            for bound in (row.low, row.high):
                found = self.typer.infer(bound) if bound is not None else key
                if found is not None and not key.same_kind(found):
                    assert bound is not None
                    self.typer.report(mismatch(key, found, bound, "<"))
                    return False
        edges = [(row.low, row.high) for row in rows]
        chained = edges[0][0] is None and edges[-1][1] is None and all(
            high is not None and low is not None and _canonical(high) == _canonical(low)
            for (_, high), (low, _) in pairwise(edges))
        increasing = all(low is None or high is None or _canonical(low) < _canonical(high) for low, high in edges)
        if not (chained and increasing):
            self.typer.report(error("incomplete-table", f"the bands of table `{table.name}` leave a gap or overlap",
                                    table.span, "bands must follow each other",
                                    help="write `below X`, then `from X below Y`, ..., and last `from Z`"))
            return False
        return True


def _canonical(literal: ast.QuantityLiteral) -> Fraction:
    return to_canonical(literal.value, literal.unit)


def mismatch(left: Type, right: Type, node: ast.Expr, operator: str) -> Diagnostic:
    verb = "compare" if operator not in "+-" else ("add" if operator == "+" else "subtract")
    if isinstance(left, NumType) and isinstance(right, NumType):
        if right.unit is None and left.unit is not None:
            example = f"{node.text} {left.unit}" if isinstance(node, ast.QuantityLiteral) else f"... {left.unit}"
            return error("unit-mismatch", f"cannot {verb} {left} and a plain number", node.span,
                         "this number has no unit", help=f"write the unit, e.g. `{example}`")
        if left.unit is None and right.unit is not None:
            return error("unit-mismatch", f"cannot {verb} a plain number and {right}", node.span,
                         "this has a unit", help="drop the unit, or give the other side one")
        hint = f"use a unit compatible with `{left.unit}`" if left.unit else "write the number without a unit"
        return error("unit-mismatch", f"cannot {verb} {left} and {right}", node.span, "incompatible unit", help=hint)
    return error("type-mismatch", f"cannot {verb} {left} and {right} using `{operator}`", node.span, "different type")
