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

from eligib.checker import BoolType, DateType, EnumType
from eligib.evaluate import Evaluator
from eligib.units import format_decimal
from eligib.values import NONE


class WitnessError(Exception):
    """A model could not be written as an exact facts file (a bug of ours, reported plainly)."""


MAX_REFINEMENTS = 100


def exact_model(solver, compiled_protocols, formulas, preferences=()):
    """A model of `formulas` that a patient file can state exactly, or None if no model exists.

    Two repairs on what the solver returns. Month shifts (`anchor - 6 months`) are known to the
    solver only within sound bounds, so a model may pick a day the calendar does not give: the
    anchors are then pinned with their exact shifts, and if that fails a true calendar lemma is
    added and the solver asked again. Numbers forced just past a strict threshold (3 months plus a
    sliver) are moved to short decimals where the formulas allow it. Unsatisfiable answers need
    neither repair: the bounds are sound."""
    pinned = list(formulas)
    for _ in range(MAX_REFINEMENTS):
        model = _solve(solver, pinned, preferences)
        if model is None:
            if len(pinned) == len(formulas):
                return None
            pinned = list(formulas)  # the pinned anchors admit no exact model: lemmas now exclude them
            continue
        shifts = _shift_values(compiled_protocols, model)
        wrong = [(anchor, var, exact) for anchor, value, var, shifted, exact in shifts if shifted != exact]
        if not wrong:
            return _short_decimals(solver, compiled_protocols, model, pinned, preferences)
        solver.add(*[z3.Implies(anchor == value, var == exact) for anchor, value, var, _, exact in shifts
                     if (anchor, var, exact) in wrong])
        pinned = list(formulas) + [c for anchor, value, var, _, exact in shifts
                                   for c in (anchor == value, var == exact)]
    raise WitnessError("calendar refinement did not converge")


def _solve(solver, formulas, preferences):
    from eligib.solver import SolverTimeout

    result = solver.check(*formulas, *preferences) if preferences else z3.unknown
    if result != z3.sat:
        result = solver.check(*formulas)
    if result == z3.unknown:
        raise SolverTimeout(solver.reason_unknown())
    return solver.model() if result == z3.sat else None


def _shift_values(compiled_protocols, model):
    """(anchor var, anchor value, shift var, shift value, exact shift) for each present anchor."""
    from eligib.values import shift_date

    found = []
    for compiled in compiled_protocols:
        for shift in compiled.shifts.values():
            fact = compiled.facts[shift.fact]
            for value, present, var in ((fact.value, fact.present, shift.var),
                                        (fact.copy_value, fact.copy_present, shift.copy_var)):
                if present is not None and not z3.is_true(model.eval(present, model_completion=True)):
                    continue
                anchor = model.eval(value, model_completion=True).as_long()
                shifted = model.eval(var, model_completion=True).as_long()
                found.append((value, anchor, var, shifted, shift_date(anchor, Fraction(shift.months), "mo")))
    return found


def _short_decimals(solver, compiled_protocols, model, formulas, preferences=()):
    """Move real-valued facts with long or endless decimals to short ones, where the formulas allow.

    Pinning one value lets the solver move others, so this repeats until every value is short."""
    fixed: list = []
    reals = [fact.value for compiled in compiled_protocols for fact in compiled.facts.values()
             if z3.is_real(fact.value)]
    for _ in range(len(reals) + 1):
        long_values = [(var, model.eval(var, model_completion=True).as_fraction()) for var in reals]
        long_values = [(var, value) for var, value in long_values if not _is_short(value)]
        if not long_values:
            return model
        pinned_before = len(fixed)
        for var, value in long_values:
            candidate = _shortest_allowed(solver, [*formulas, *fixed], var, value)
            if candidate is not None:
                fixed.append(candidate)
        if len(fixed) == pinned_before:
            return model  # nothing more can be shortened
        if preferences and solver.check(*formulas, *fixed, *preferences) == z3.sat:
            model = solver.model()
        elif solver.check(*formulas, *fixed) == z3.sat:
            model = solver.model()
        else:
            return model
    return model


def _shortest_allowed(solver, formulas, var, value: Fraction):
    """`var == d` for the shortest decimal d near `value` (rounded either way) the formulas allow."""
    for places in range(0, 7):
        scale = 10**places
        for rounded in dict.fromkeys((math.floor(value * scale), math.ceil(value * scale))):
            candidate = var == rational_term(Fraction(rounded, scale))
            if solver.check(*formulas, candidate) == z3.sat:
                return candidate
    return None


def _is_short(value: Fraction, places: int = 4) -> bool:
    return (value * 10**places).denominator == 1


def rational_term(value: Fraction):
    return z3.RealVal(f"{value.numerator}/{value.denominator}")


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
    from eligib.units import from_canonical

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
