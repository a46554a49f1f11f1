"""Semantic difference of two protocol versions: proven equivalent, or witness patients both ways.

Facts are matched by name and criteria by id, so reordering or reformatting changes nothing.
Both versions are compiled into one Z3 context, where a fact is one variable for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import z3

from eligib.analysis.witness import exact_model, patient_from_model, preferences
from eligib.engine import Engine
from eligib.language.checked import FactInfo
from eligib.language.diagnostics import DiagnosticError, error
from eligib.limits import VERIFY_QUERY_SECONDS, VERIFY_SECONDS
from eligib.logic.budget import Budget
from eligib.logic.compiler import CompiledProtocol, compile_protocol
from eligib.logic.slots import slot_counts
from eligib.values.types import ListType


@dataclass
class Witness:
    patient: dict[str, Any]
    old_verdict: str
    new_verdict: str
    criteria: list[str]  # criteria that decide the difference (failing on the rejecting side)


@dataclass
class Difference:
    equivalent: bool
    witnesses: list[Witness] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def diff(old: Engine, new: Engine, budget: Budget | None = None) -> Difference:
    _check_compatible(old, new)
    budget = budget if budget is not None else Budget(VERIFY_SECONDS, VERIFY_QUERY_SECONDS)
    ctx = z3.Context()  # both versions in one context: a fact is one variable for both
    slots = _shared_slots(old, new)
    old_compiled = compile_protocol(old.checked, ctx, slots)
    new_compiled = compile_protocol(new.checked, ctx, slots)
    solver = z3.Solver(ctx=ctx)
    solver.add(old_compiled.solver.assertions())
    solver.add(new_compiled.solver.assertions())
    for compiled in (old_compiled, new_compiled):
        if compiled.assumed is not None:
            solver.add(compiled.assumed)
    old_eligible, new_eligible = old_compiled.eligible(), new_compiled.eligible()
    added, removed, changed = _changes(old, new)
    result = Difference(equivalent=True, added=added, removed=removed, changed=changed)
    for admits, rejects, old_verdict, new_verdict in ((old_eligible, new_eligible, "eligible", "ineligible"),
                                                      (new_eligible, old_eligible, "ineligible", "eligible")):
        wishes = preferences(old_compiled) + preferences(new_compiled)
        model = exact_model(solver, [old_compiled, new_compiled], [admits, z3.Not(rejects)], wishes, budget)
        if model is not None:
            result.equivalent = False
            result.witnesses.append(_witness(old, new, (old_compiled, new_compiled), model, old_verdict,
                                             new_verdict))
    return result


def _witness(old: Engine, new: Engine, compiled: tuple[CompiledProtocol, CompiledProtocol], model: Any,
             old_verdict: str, new_verdict: str) -> Witness:
    rejecting, other = (compiled[1], compiled[0]) if new_verdict == "ineligible" else compiled
    facts = patient_from_model(rejecting, model)
    # a fact only the other version declares is left out; add it from the model for that version
    facts = {**patient_from_model(other, model), **facts}
    old_result = old.check({k: v for k, v in facts.items() if k in old.checked.facts})
    new_result = new.check({k: v for k, v in facts.items() if k in new.checked.facts})
    if (old_result.verdict, new_result.verdict) != (old_verdict, new_verdict):
        raise AssertionError(f"diff witness checks as {old_result.verdict}/{new_result.verdict}, "
                             f"not {old_verdict}/{new_verdict}")
    blocking = new_result.blocking if new_verdict == "ineligible" else old_result.blocking
    return Witness(facts, old_verdict, new_verdict, sorted(blocking))


def _changes(old: Engine, new: Engine) -> tuple[list[str], list[str], list[str]]:
    """(added, removed, changed) criteria ids, each sorted."""
    old_criteria, new_criteria = old.checked.criteria, new.checked.criteria
    changed = [cid for cid in old_criteria if cid in new_criteria and
               (old_criteria[cid].kind, old_criteria[cid].guard, old_criteria[cid].body) !=
               (new_criteria[cid].kind, new_criteria[cid].guard, new_criteria[cid].body)]
    return (sorted(set(new_criteria) - set(old_criteria)), sorted(set(old_criteria) - set(new_criteria)),
            sorted(changed))


def _shared_slots(old: Engine, new: Engine) -> dict[str, int]:
    """History items to represent for both versions at once: a patient that tells them apart needs the
    items that settle the queries of each (eligib/logic/slots.py), and both must see the same items."""
    old_slots, new_slots = slot_counts(old.checked), slot_counts(new.checked)
    slots = {**old_slots, **new_slots}
    for name in old_slots.keys() & new_slots.keys():
        bound = old.checked.facts[name].type
        assert isinstance(bound, ListType)
        slots[name] = min(bound.max_items, old_slots[name] + new_slots[name])
    return slots


def _shape(info: FactInfo) -> tuple[object, ...]:
    """What must agree for a fact to mean the same in both versions (units may differ if convertible);
    for a history, its bound, its order and every field's shape."""
    unit_kind = getattr(info.type, "kind", None)
    own = (info.decl.type.kind, info.decl.type.values, info.optional, unit_kind, info.unit is None)
    if isinstance(info.type, ListType):
        fields = tuple((f.name, _shape(f)) for f in info.type.fields if isinstance(f, FactInfo))
        return (*own, info.type.max_items, info.type.order, fields)
    return own


def _check_compatible(old: Engine, new: Engine) -> None:
    problems = []
    for name, info in old.checked.facts.items():
        other = new.checked.facts.get(name)
        if other is None:
            continue
        if _shape(info) != _shape(other):
            problems.append(error("incompatible-fact", f"fact `{name}` is declared differently in the two versions",
                                  other.decl.span, "declared differently here",
                                  help="diff compares versions that share a fact vocabulary; rename the fact "
                                       "if its meaning changed"))
    if problems:
        raise DiagnosticError(problems)
