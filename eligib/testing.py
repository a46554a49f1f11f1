"""Hypothesis strategies that generate patients for any protocol, for testing your own rules.

Every strategy yields a patient *file*: a mapping of fact names to values as a facts file writes
them ("150 U/L", "2026-11-20", "none"), which `Engine.check` accepts as it is. Values respect
declared ranges, enumerations, `or none` and units, and numbers lean towards the protocol's own
thresholds, where verdicts change. Complete patients give every fact; partial patients leave a
random subset unknown. Patients that break one of the protocol's `assume` statements are filtered
out (suppress HealthCheck.filter_too_much when assumptions order many dates).

    from hypothesis import given
    from eligib import Engine
    from eligib.testing import partial_patients

    engine = Engine.from_file("protocols/cd7_car_t.elig")

    @given(partial_patients(engine.checked))
    def test_never_eligible_when_pregnant(facts):
        if facts.get("sex") == "female" and facts.get("pregnant") is True:
            assert engine.check(facts).verdict != "eligible"

This module needs hypothesis (`pip install 'eligib[testing]'`); nothing else in eligib does.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

try:
    from hypothesis import assume, strategies as st
except ImportError as missing:  # pragma: no cover - depends on the installation
    raise ImportError("eligib.testing needs hypothesis: pip install 'eligib[testing]'") from missing

from eligib.engine import Engine
from eligib.inputs.facts import facts_file, patient_from_mapping
from eligib.language import ast
from eligib.language.checked import CheckedProtocol, FactInfo
from eligib.logic.evaluate import Evaluator, literal_value
from eligib.values.types import NONE, History, ListType, NumType, Value
from eligib.values.units import PLAIN, Kind, parse_unit

Facts = dict[str, Any]  # a patient file's mapping, as `Engine.check` takes it
HISTORY_ITEMS = 4  # generated histories list at most this many items


def values(checked: CheckedProtocol, facts: Mapping[str, Any]) -> dict[str, Value]:
    """A patient file's exact canonical values (what the evaluator and the solver work with)."""
    return patient_from_mapping(checked, dict(facts)).values


def protocol_constants(checked: CheckedProtocol) -> dict[tuple[Kind, bool], list[Fraction]]:
    """Canonical values of the protocol's numeric literals, by kind: likely thresholds."""
    found: dict[tuple[Kind, bool], set[Fraction]] = {}
    roots = [c.body for c in checked.criteria.values()] + [d.body for d in checked.definitions.values()]
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.QuantityLiteral):
                kind = parse_unit(node.unit).kind if node.unit else PLAIN
                found.setdefault((kind, node.unit is None), set()).add(literal_value(node))
    return {key: sorted(numbers) for key, numbers in found.items()}


def fact_values(info: FactInfo, constants: Mapping[tuple[Kind, bool], list[Fraction]] | None = None) -> Any:
    """Canonical values for one fact, from its type's own strategy (a history: complete lists of a few items)."""
    if isinstance(info.type, ListType):
        fields = [fact_values(field, constants) for field in info.type.fields if isinstance(field, FactInfo)]
        items = st.lists(st.tuples(*fields), max_size=min(info.type.max_items, HISTORY_ITEMS))
        return items.map(lambda found: History(tuple(found)))
    thresholds = (constants or {}).get(info.type.constant_key, []) if isinstance(info.type, NumType) else []
    strategy = info.type.strategy(info, thresholds)
    return st.one_of(st.just(NONE), strategy) if info.optional else strategy


def satisfies_assumptions(checked: CheckedProtocol, canonical: Mapping[str, Value]) -> bool:
    """Does a complete patient (canonical values) satisfy every `assume` of the protocol?"""
    evaluator = Evaluator(checked, canonical)
    return all(evaluator.condition(a.body) is not False for a in checked.assumptions.values())


@st.composite
def _complete_values(draw: Any, checked: CheckedProtocol) -> dict[str, Value]:
    constants = protocol_constants(checked)
    patient = {name: draw(fact_values(info, constants)) for name, info in checked.facts.items()}
    assume(satisfies_assumptions(checked, patient))
    return patient


def complete_patients(checked: CheckedProtocol) -> Any:
    """Patient files that give every fact of the protocol."""
    return _complete_values(checked).map(lambda canonical: facts_file(checked, canonical))


@st.composite
def partial_patients(draw: Any, checked: CheckedProtocol, max_missing: int | None = None) -> Facts:
    """Patient files that leave up to `max_missing` facts (any number, by default) unknown."""
    canonical = draw(_complete_values(checked))
    names = sorted(canonical)
    limit = len(names) if max_missing is None else min(max_missing, len(names))
    missing = draw(st.lists(st.sampled_from(names), max_size=limit, unique=True)) if names else []
    kept = {name: value for name, value in canonical.items() if name not in missing}
    for name, value in kept.items():
        if isinstance(value, History):
            kept[name] = draw(_partial_history(value))
    return facts_file(checked, kept)


@st.composite
def _partial_history(draw: Any, history: History) -> History:
    """A history with some fields unknown, and perhaps marked as possibly incomplete."""
    items = []
    for item in history.items:
        hidden = draw(st.lists(st.sampled_from(range(len(item))), unique=True)) if item else []
        items.append(tuple(None if index in hidden else value for index, value in enumerate(item)))
    return History(tuple(items), draw(st.booleans()))


@st.composite
def _completed_history(draw: Any, info: FactInfo, history: History,
                       constants: Mapping[tuple[Kind, bool], list[Fraction]]) -> History:
    """A complete history agreeing with a partial one: unknown fields drawn, items perhaps added."""
    assert isinstance(info.type, ListType)
    fields = [field for field in info.type.fields if isinstance(field, FactInfo)]
    items = [tuple(draw(fact_values(field, constants)) if value is None else value
                   for field, value in zip(fields, item, strict=True)) for item in history.items]
    room = min(info.type.max_items, HISTORY_ITEMS + len(items)) - len(items)
    if not history.complete and room > 0:
        items += draw(st.lists(st.tuples(*[fact_values(field, constants) for field in fields]), max_size=room))
    return History(tuple(items))


@st.composite
def completions(draw: Any, checked: CheckedProtocol, partial: Mapping[str, Any]) -> Facts:
    """Patient files that give every fact, agreeing with `partial` (a patient file) on each fact it gives."""
    constants = protocol_constants(checked)
    known = values(checked, partial)
    filled = dict(known)
    for name, info in checked.facts.items():
        if name not in filled:
            filled[name] = draw(fact_values(info, constants))
        elif isinstance(history := filled[name], History):
            filled[name] = draw(_completed_history(info, history, constants))
    assume(satisfies_assumptions(checked, filled))
    return facts_file(checked, filled)


# ------------------------------------------------------------- solver-backed completions


def _settled(known: Mapping[str, Value]) -> dict[str, Value]:
    """The known values that a model cannot extend (a partial history is completed by the model)."""
    return {name: value for name, value in known.items() if not isinstance(value, History) or value.settled}


def _known_literals(compiled: Any, canonical: Mapping[str, Value]) -> list[Any]:
    return [literal for name, value in canonical.items() for literal in compiled.fact_assumptions(name, value)]


def outcome_completions(engine: Engine, facts: Mapping[str, Any]) -> dict[str, Facts | None]:
    """For a partial patient file: a completion that is eligible and one that is not, found by the
    solver (None where no such completion exists); keys "eligible" and "ineligible"."""
    import z3

    from eligib.analysis.witness import exact_model
    from eligib.logic.models import canonical_values

    known = values(engine.checked, facts)
    compiled = engine.compiled(known)
    eligible = compiled.eligible()
    possible = [compiled.assumed] if compiled.assumed is not None else []
    found: dict[str, Facts | None] = {}
    for verdict, formula in (("eligible", eligible), ("ineligible", z3.Not(eligible))):
        model = exact_model(compiled.solver, [compiled], [*_known_literals(compiled, known), *possible, formula])
        found[verdict] = None if model is None else \
            facts_file(engine.checked, {**canonical_values(compiled, model), **_settled(known)})
    return found


def relevance_completions(engine: Engine, facts: Mapping[str, Any], fact: str) -> tuple[Facts, Facts] | None:
    """Two completions of a partial patient file that differ only in `fact` and get different verdicts."""
    import z3

    from eligib.analysis.witness import exact_model
    from eligib.logic.models import canonical_values

    known = values(engine.checked, facts)
    compiled = engine.compiled(known)
    eligible = compiled.eligible()
    formulas = [*_known_literals(compiled, known), eligible, z3.Not(compiled.with_copy(eligible, fact))]
    if compiled.assumed is not None:
        formulas += [compiled.assumed, compiled.with_copy(compiled.assumed, fact)]
    model = exact_model(compiled.solver, [compiled], formulas, copies=True)
    if model is None:
        return None
    first = {**canonical_values(compiled, model), **_settled(known)}
    second = {**first, fact: canonical_values(compiled, model, use_copy=frozenset({fact}))[fact]}
    return facts_file(engine.checked, first), facts_file(engine.checked, second)
