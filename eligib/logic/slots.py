"""How many items of each history the solver represents (docs/language.md, Histories).

A history's queries are each settled by a few of its items: one for `any`, `no`, `every`, `min`,
`max`, `latest` and `earliest`, k+1 for a `count` compared with the constant k. So when some
history of unknown items gives a verdict, a history with at most the sum of those numbers of
unknown items gives it too (leaving out the other items changes no query's value). The solver
therefore needs the listed items plus that many more, never more than the declared bound; a
`sum`, a `count` compared with anything but a constant, or a query nested in another's `where`
needs the whole bound. Imports no Z3: a complete patient never needs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from eligib.language import ast
from eligib.language.checked import CheckedProtocol, expression_roots
from eligib.values.types import History, ListType, Value


def slot_counts(checked: CheckedProtocol, facts: Mapping[str, Value] | None = None,
                bounds: Mapping[str, int] | None = None) -> dict[str, int]:
    """Items to represent per history: the listed ones, plus the unknown ones the verdict can depend on
    (`bounds`: the protocol's `witness_bounds`, when already computed)."""
    bounds = bounds if bounds is not None else witness_bounds(checked)
    counts = {}
    for name, extra_needed in bounds.items():
        info = checked.facts[name].type
        assert isinstance(info, ListType)
        value = (facts or {}).get(name)
        listed = len(value.items) if isinstance(value, History) else 0
        extra = 0 if isinstance(value, History) and value.complete else extra_needed
        counts[name] = max(1, min(info.max_items, listed + extra))  # one slot at least: terms need one
    return counts


def witness_bounds(checked: CheckedProtocol) -> dict[str, int]:
    """For each history, how many unknown items the protocol's queries can depend on (at most its bound)."""
    bound = {name: info.type.max_items for name, info in checked.facts.items() if isinstance(info.type, ListType)}
    needed = dict.fromkeys(bound, 0)
    for root in expression_roots(checked):
        stack: list[tuple[ast.Expr, ast.Expr | None, bool]] = [(root, None, False)]
        while stack:
            node, parent, nested = stack.pop()
            if isinstance(node, ast.Query):
                limit = bound[node.collection]
                needed[node.collection] += limit if nested else _need(node, parent, limit)
            inside = nested or isinstance(node, ast.Query)  # below a query: in its `where`
            stack.extend((child, node, inside) for child in ast.children(node))
    return {name: min(bound[name], count) for name, count in needed.items()}


def _need(query: ast.Query, parent: ast.Expr | None, bound: int) -> int:
    """Items that settle one query's value (`bound` when no small number does)."""
    match query.kind:
        case ast.QueryKind.SUM:
            return bound
        case ast.QueryKind.COUNT:
            constants = [_constant(other) for other in _compared_with(query, parent)]
            if not constants or None in constants:
                return bound
            return math.floor(max(c for c in constants if c is not None)) + 1
        case _:
            return 1


def _compared_with(query: ast.Query, parent: ast.Expr | None) -> list[ast.Expr]:
    if isinstance(parent, ast.Compare):
        return [operand for operand in parent.operands if operand is not query]
    return []


def _constant(node: ast.Expr) -> Fraction | None:
    return node.value if isinstance(node, ast.QuantityLiteral) and node.unit is None else None
