"""Two questions guidance asks many times, each cheaper than a full `decide`: can some completion of the
missing facts be eligible, and is every completion eligible? Both agree with `decide` (docs/guidance.md).

`decide` also finds the decisive facts, which is most of its cost for an undetermined patient; guidance
tries one value of one fact at a time and needs only the verdict's direction.
"""

from __future__ import annotations

from collections.abc import Mapping

from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import DiagnosticError
from eligib.logic.budget import Budget
from eligib.logic.kleene import KleeneProgram
from eligib.logic.solver import Analysis, CompiledSource, confirm_possible, open_assumptions_of
from eligib.values.types import Value
from eligib.values.types.base import IrrationalValue


def _analysis(checked: CheckedProtocol, facts: Mapping[str, Value], compiled_source: CompiledSource,
              budget: Budget) -> tuple[Analysis, list[str]] | None:
    """The analysis of a possible patient and its open criteria; None when a criterion already fails or
    the facts contradict an assumption (no eligible completion: the verdict would be `ineligible`, or
    there is no patient at all)."""
    program = KleeneProgram.of(checked)
    try:
        open_assumptions = open_assumptions_of(checked, facts, program)
    except DiagnosticError:
        return None
    outcomes = program.outcomes(facts)
    if any(passes is False for _, passes in outcomes.values()):
        return None
    analysis = Analysis(checked, compiled_source, facts, budget)
    try:
        confirm_possible(checked, facts, open_assumptions, analysis)
    except DiagnosticError:
        return None
    return analysis, [cid for cid, (_, passes) in outcomes.items() if passes is None]


def eligible_possible(checked: CheckedProtocol, facts: Mapping[str, Value], compiled_source: CompiledSource,
                      budget: Budget) -> bool:
    """Is some completion of the missing facts eligible (`decide` would not say `ineligible`)?"""
    found = _analysis(checked, facts, compiled_source, budget)
    if found is None:
        return False
    analysis, unknown = found
    return analysis.satisfiable(unknown) if unknown else True


def eligible_certain(checked: CheckedProtocol, facts: Mapping[str, Value], compiled_source: CompiledSource,
                     budget: Budget) -> bool:
    """Is every completion of the missing facts eligible (`decide` would say `eligible`)?"""
    found = _analysis(checked, facts, compiled_source, budget)
    if found is None:
        return False
    analysis, unknown = found
    if not unknown:
        return True
    import z3

    names = analysis.names_of(unknown)
    return not analysis.sat(names, z3.Not(analysis.conjunction(unknown)),
                            subject="whether the patient is eligible in every completion")


def eligible_completion(checked: CheckedProtocol, facts: Mapping[str, Value], compiled_source: CompiledSource,
                        budget: Budget) -> dict[str, Value] | None:
    """Values of the missing facts that make the patient eligible (a model's), or None when none do."""
    from eligib.logic.models import canonical_values

    found = _analysis(checked, facts, compiled_source, budget)
    if found is None:
        return None
    analysis = found[0]
    every = frozenset(checked.facts)
    model = analysis.model(every, analysis.compiled.eligible(), subject="an eligible completion")
    if model is None:
        return None
    missing = frozenset(name for name in checked.facts if name not in facts or name in _unsettled(facts))
    try:
        return canonical_values(analysis.compiled, model, only=missing)
    except IrrationalValue:  # a nonlinear protocol's model: no patient file could state it
        return None


def _unsettled(facts: Mapping[str, Value]) -> set[str]:
    from eligib.logic.solver import settled

    return {name for name, value in facts.items() if not settled(value)}


def criterion_possible(checked: CheckedProtocol, facts: Mapping[str, Value], criterion: str,
                       compiled_source: CompiledSource, budget: Budget) -> bool:
    """Can one criterion let the patient through for some values of the missing facts (the others aside)?"""
    passes = KleeneProgram.of(checked).outcomes(facts)[criterion][1]
    if passes is not None:
        return passes
    analysis = Analysis(checked, compiled_source, facts, budget)
    return analysis.sat(checked.criterion_facts[criterion], analysis.compiled.passes[criterion],
                        subject=f"criterion `{criterion}`")
