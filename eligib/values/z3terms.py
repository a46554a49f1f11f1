"""Small exact helpers for building Z3 terms, shared by the value types and the compiler.

Z3 is imported by this module, so only code that has a missing fact to decide (or a proof to
make) loads it: `eligib check` on a complete patient never does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import z3

RELATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def rational(value: Fraction | int, ctx: z3.Context) -> Any:
    """An exact rational constant (from its numerator and denominator, never through a float)."""
    value = Fraction(value)
    return z3.RealVal(f"{value.numerator}/{value.denominator}", ctx)


def conjunction(terms: list[Any], ctx: z3.Context) -> Any:
    """`z3.And` of a list that may be empty, in the given context (never Z3's shared main context)."""
    return z3.And(*terms, ctx)


def relate(operator: str, left: Any, right: Any) -> Any:
    """`left op right`, kept in integer arithmetic when an Int term meets a constant.

    Z3 decides mixed integer/real constraints such as 28 < x < 29 (x an integer) poorly, often
    not at all; `x > 28.5` is `x > 28` for an integer x, and the solver answers at once."""
    for term, constant, op in ((left, right, operator), (right, left, FLIPPED[operator])):
        if z3.is_int(term) and z3.is_real(constant):
            value = z3.simplify(constant)
            if z3.is_rational_value(value):
                return _integer_bound(op, term, value.as_fraction())
    return RELATIONS[operator](left, right)


def _integer_bound(operator: str, term: Any, bound: Fraction) -> Any:
    floor, ceiling = math.floor(bound), math.ceil(bound)
    if operator == "<":
        return term < ceiling if bound.denominator != 1 else term < floor
    if operator == "<=":
        return term <= floor
    if operator == ">":
        return term > floor if bound.denominator != 1 else term > ceiling
    if operator == ">=":
        return term >= ceiling
    whole = bound.denominator == 1
    if operator == "==":
        return term == floor if whole else z3.BoolVal(False, term.ctx)
    return term != floor if whole else z3.BoolVal(True, term.ctx)
