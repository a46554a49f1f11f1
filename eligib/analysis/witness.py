"""Witness patients: a Z3 model turned into a facts file that `eligib check` accepts.

Values are written in each fact's declared unit, exactly (decimal strings, never floats);
facts outside their subgroup are left out, like a coordinator would leave them out.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from typing import Any

import z3

from eligib.language.checker import BoolType, DateType, EnumType
from eligib.logic.evaluate import Evaluator
from eligib.values.units import format_decimal
from eligib.values.calendar import NONE


class WitnessError(Exception):
    """A model cannot be written as an exact facts file (a value with no finite decimal form)."""


def exact_model(solver, compiled_protocols, formulas, preferences=(), budget=None):
    """A model of `formulas` that a patient file can state exactly, or None if no model exists.

    Month shifts are exact in every model `solve` returns (it refines the solver's calendar bounds
    until the model agrees with the calendar). Preferences (recent dates) are tried first and
    dropped when they cannot be met. Numbers forced just past a strict threshold (3 months plus a
    sliver) are then moved to short decimals where the formulas allow it."""
    from eligib.logic.solver import Budget, solve

    budget = budget if budget is not None else Budget(None)
    protocols = tuple(compiled_protocols)
    model = solve(solver, [*formulas, *preferences], budget, "a witness patient", protocols) if preferences else None
    if model is None:
        model = solve(solver, list(formulas), budget, "a witness patient", protocols)
    if model is None:
        return None
    return _short_decimals(solver, protocols, model, list(formulas), list(preferences), budget)


def _short_decimals(solver, protocols, model, formulas, preferences, budget):
    """Move real-valued facts with long or endless decimals to short ones, where the formulas allow.

    Pinning one value lets the solver move others, so this repeats until every value is short."""
    from eligib.logic.solver import solve

    fixed: list = []
    reals = [fact.value for compiled in protocols for fact in compiled.facts.values() if z3.is_real(fact.value)]
    for _ in range(len(reals) + 1):
        long_values = [(var, model.eval(var, model_completion=True).as_fraction()) for var in reals]
        long_values = [(var, value) for var, value in long_values if not _is_short(value)]
        if not long_values:
            return model
        pinned_before = len(fixed)
        for var, value in long_values:
            candidate = _shortest_allowed(solver, protocols, [*formulas, *fixed], var, value, budget)
            if candidate is not None:
                fixed.append(candidate)
        if len(fixed) == pinned_before:
            return model  # nothing more can be shortened
        better = solve(solver, [*formulas, *fixed, *preferences], budget, "a witness patient", protocols) \
            if preferences else None
        if better is None:
            better = solve(solver, [*formulas, *fixed], budget, "a witness patient", protocols)
        if better is None:
            return model
        model = better
    return model


def _shortest_allowed(solver, protocols, formulas, var, value: Fraction, budget):
    """`var == d` for the shortest decimal d near `value` (rounded either way) the formulas allow."""
    from eligib.logic.solver import solve

    for places in range(0, 7):
        scale = 10**places
        for rounded in dict.fromkeys((math.floor(value * scale), math.ceil(value * scale))):
            candidate = var == rational_term(Fraction(rounded, scale), var.ctx)
            if solve(solver, [*formulas, candidate], budget, "a witness patient", protocols) is not None:
                return candidate
    return None


def _is_short(value: Fraction, places: int = 4) -> bool:
    return (value * 10**places).denominator == 1


def rational_term(value: Fraction, ctx: z3.Context):
    return z3.RealVal(f"{value.numerator}/{value.denominator}", ctx)


def canonical_values(compiled, model, use_copy: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every fact's value in the model, canonical (as `decide` takes them); `use_copy` facts read their copy."""
    values: dict[str, Any] = {}
    for name, fact in compiled.facts.items():
        copied = name in use_copy
        present = fact.copy_present if copied else fact.present
        var = fact.copy_value if copied else fact.value
        if present is not None and not z3.is_true(model.eval(present, model_completion=True)):
            values[name] = NONE
            continue
        raw = model.eval(var, model_completion=True)
        kind = fact.info.type
        if isinstance(kind, BoolType):
            values[name] = z3.is_true(raw)
        elif isinstance(kind, EnumType):
            values[name] = kind.values[raw.as_long()]
        elif isinstance(kind, DateType):
            values[name] = raw.as_long()
        else:
            number = Fraction(raw.as_long()) if z3.is_int_value(raw) else raw.as_fraction()
            values[name] = number * fact.factor
    return values


def applicable(checked, values: dict[str, Any]) -> dict[str, Any]:
    """Drop facts whose subgroup condition is false: they would not be asked for."""
    evaluator = Evaluator(checked, values)
    kept = {}
    for name, value in values.items():
        guard = checked.facts[name].guard
        if guard is None or evaluator.truth(evaluator.eval(guard)) is not False:
            kept[name] = value
    return kept


def to_facts_file(checked, values: dict[str, Any]) -> dict[str, Any]:
    """Canonical values -> the JSON a patient file holds (declared units, exact decimals)."""
    facts: dict[str, Any] = {}
    for name, value in values.items():
        info = checked.facts[name]
        if value is NONE:
            facts[name] = "none"
        elif isinstance(value, bool) or isinstance(value, str):
            facts[name] = value
        elif isinstance(info.type, DateType):
            facts[name] = dt.date.fromordinal(value).isoformat()
        else:
            facts[name] = _number(info, Fraction(value))
    return facts


def _number(info, canonical: Fraction) -> Any:
    from eligib.values.units import from_canonical

    declared = from_canonical(canonical, info.unit)
    text = format_decimal(declared, max_places=12)
    if text.startswith("~"):
        raise WitnessError(f"`{info.name}` would need the value {declared}, which is not a finite decimal")
    if info.unit is None:
        return int(declared) if declared.denominator == 1 else text
    return f"{text} {info.unit}"


def patient_from_model(compiled, model, use_copy: frozenset[str] = frozenset()) -> dict[str, Any]:
    checked = compiled.checked
    return to_facts_file(checked, applicable(checked, canonical_values(compiled, model, use_copy)))
