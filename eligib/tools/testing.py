"""Hypothesis strategies that generate patients from any protocol's fact declarations.

Values respect declared ranges, enumerations, `or none` and units; numbers lean towards the
protocol's own thresholds, where verdicts change. Complete patients know every fact; partial
patients leave a random subset unknown. Patients that break one of the protocol's `assume`
statements are filtered out (rejection sampling works for any protocol but discards many draws
when assumptions order dates: suppress HealthCheck.filter_too_much in such suites).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from eligib.language import ast
from eligib.language.checker import BoolType, CheckedProtocol, DateType, EnumType, FactInfo, NumType
from eligib.logic.evaluate import literal_value
from eligib.values.units import PLAIN, parse_unit
from eligib.values.calendar import NONE

DEFAULT_DATE_SPAN = (dt.date(2015, 1, 1).toordinal(), dt.date(2030, 12, 31).toordinal())


def protocol_constants(checked: CheckedProtocol) -> dict[tuple, list[Fraction]]:
    """Canonical values of the protocol's numeric literals, by dimension: likely thresholds."""
    found: dict[tuple, set[Fraction]] = {}
    stack: list[ast.Expr] = [c.body for c in checked.criteria.values()]
    stack += [d.body for d in checked.definitions.values()]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.QuantityLiteral):
            kind = parse_unit(node.unit).kind if node.unit else PLAIN
            found.setdefault((kind, node.unit is None), set()).add(literal_value(node))
        stack.extend(ast.children(node))
    return {key: sorted(values) for key, values in found.items()}


def fact_values(info: FactInfo, constants: dict[tuple, list[Fraction]] | None = None) -> st.SearchStrategy:
    """Values for one fact, canonical (what `decide` and the evaluator take)."""
    strategy = _plain_values(info, constants or {})
    if info.optional:
        strategy = st.one_of(st.just(NONE), strategy)
    return strategy


def _plain_values(info: FactInfo, constants) -> st.SearchStrategy:
    kind = info.type
    if isinstance(kind, BoolType):
        return st.booleans()
    if isinstance(kind, EnumType):
        return st.sampled_from(kind.values)
    if isinstance(kind, DateType):
        low = info.low if info.low is not None else DEFAULT_DATE_SPAN[0]
        high = info.high if info.high is not None else DEFAULT_DATE_SPAN[1]
        return st.integers(int(low), int(high))
    assert isinstance(kind, NumType)
    return _numbers(info, kind, constants)


def _numbers(info: FactInfo, kind: NumType, constants) -> st.SearchStrategy:
    factor = parse_unit(kind.unit).factor if kind.unit else Fraction(1)
    low = info.low / factor if info.low is not None else Fraction(-1000)
    high = info.high / factor if info.high is not None else Fraction(1000)
    step = Fraction(1) if kind.integer else Fraction(1, 10)
    count = int((high - low) / step)
    spread = st.integers(0, count).map(lambda i: (low + i * step) * factor)
    nearby = [c for c in constants.get((kind.kind, kind.unit is None), []) if low * factor <= c <= high * factor
              and (not kind.integer or (c / factor).denominator == 1)]
    return st.one_of(spread, st.sampled_from(nearby)) if nearby else spread


def satisfies_assumptions(checked: CheckedProtocol, patient: dict[str, Any]) -> bool:
    """Does a complete patient satisfy every `assume` of the protocol (a possible patient)?"""
    from eligib.logic.evaluate import Evaluator

    evaluator = Evaluator(checked, patient)
    return all(evaluator.truth(evaluator.eval(a.body)) is not False for a in checked.assumptions.values())


@st.composite
def complete_patients(draw, checked: CheckedProtocol) -> dict[str, Any]:
    constants = protocol_constants(checked)
    patient = {name: draw(fact_values(info, constants)) for name, info in checked.facts.items()}
    assume(satisfies_assumptions(checked, patient))
    return patient


@st.composite
def partial_patients(draw, checked: CheckedProtocol, max_missing: int | None = None) -> dict[str, Any]:
    patient = draw(complete_patients(checked))
    names = sorted(patient)
    limit = len(names) if max_missing is None else min(max_missing, len(names))
    missing = draw(st.lists(st.sampled_from(names), max_size=limit, unique=True)) if names else []
    return {name: value for name, value in patient.items() if name not in missing}


@st.composite
def completions(draw, checked: CheckedProtocol, partial: dict[str, Any]) -> dict[str, Any]:
    """A complete patient that agrees with `partial` on every known fact."""
    constants = protocol_constants(checked)
    filled = dict(partial)
    for name, info in checked.facts.items():
        if name not in filled:
            filled[name] = draw(fact_values(info, constants))
    assume(satisfies_assumptions(checked, filled))
    return filled


# ------------------------------------------------------------- solver-backed witnesses


def _known(compiled, facts: dict[str, Any]) -> list:
    return [literal for name, value in facts.items() for literal in compiled.fact_assumptions(name, value)]


def outcome_completions(engine, facts: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """For a partial patient: a completion that is eligible and one that is not, from the solver
    (None where no such completion exists). Each is a complete canonical patient."""
    import z3

    from eligib.analysis.witness import canonical_values, exact_model

    compiled = engine.compiled()
    eligible = compiled.eligible()
    found: dict[str, dict[str, Any] | None] = {}
    possible = [compiled.assumed] if compiled.assumed is not None else []
    for verdict, formula in (("eligible", eligible), ("ineligible", z3.Not(eligible))):
        model = exact_model(compiled.solver, [compiled], _known(compiled, facts) + possible + [formula])
        found[verdict] = None if model is None else {**canonical_values(compiled, model), **facts}
    return found


def relevance_completions(engine, facts: dict[str, Any], fact: str) -> tuple[dict, dict] | None:
    """Two completions of a partial patient that differ only in `fact` and get different verdicts."""
    import z3

    from eligib.analysis.witness import canonical_values, exact_model

    compiled = engine.compiled()
    eligible = compiled.eligible()
    changed = compiled.with_copy(eligible, fact)
    formulas = _known(compiled, facts) + [eligible, z3.Not(changed)]
    if compiled.assumed is not None:
        formulas += [compiled.assumed, compiled.with_copy(compiled.assumed, fact)]
    model = exact_model(compiled.solver, [compiled], formulas)
    if model is None:
        return None
    first = {**canonical_values(compiled, model), **facts}
    second = dict(first)
    second[fact] = canonical_values(compiled, model, use_copy=frozenset({fact}))[fact]
    return first, second
