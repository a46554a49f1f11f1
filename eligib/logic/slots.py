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


def slot_counts(checked: CheckedProtocol, facts: Mapping[str, Value] | None = None) -> dict[str, int]:
    """Items to represent per history: the listed ones, plus the unknown ones the verdict can depend on."""
    counts = {}
    for name, info in checked.facts.items():
        if not isinstance(info.type, ListType):
            continue
        value = (facts or {}).get(name)
        listed = len(value.items) if isinstance(value, History) else 0
        extra = 0 if isinstance(value, History) and value.complete else witness_bound(checked, name)
        counts[name] = max(1, min(info.type.max_items, listed + extra))  # one slot at least: terms need one
    return counts


def witness_bound(checked: CheckedProtocol, history: str) -> int:
    """How many unknown items of `history` can matter to the protocol's queries (at most its bound)."""
    info = checked.facts[history].type
    assert isinstance(info, ListType)
    bound, needed = info.max_items, 0
    for root in expression_roots(checked):
        for node, parent in _with_parents(root):
            if isinstance(node, ast.Query) and node.collection == history:
                needed += bound if _inside_query(node, root) else _need(node, parent, bound)
    return min(bound, needed)


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


def _with_parents(root: ast.Expr) -> list[tuple[ast.Expr, ast.Expr | None]]:
    found: list[tuple[ast.Expr, ast.Expr | None]] = []
    stack: list[tuple[ast.Expr, ast.Expr | None]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        found.append((node, parent))
        stack.extend((child, node) for child in ast.children(node))
    return found


def _inside_query(node: ast.Query, root: ast.Expr) -> bool:
    """Is this query inside another query's `where` (its value then depends on the outer item)?"""
    return any(isinstance(outer, ast.Query) and outer is not node and outer.where is not None
               and any(inner is node for inner in ast.walk(outer.where)) for outer in ast.walk(root))
