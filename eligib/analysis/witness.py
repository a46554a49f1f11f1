"""Witness patients: a Z3 model turned into a facts file that `eligib check` accepts.

Values are written in each fact's declared unit, exactly (decimal strings, never floats);
facts outside their subgroup are left out, like a coordinator would leave them out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import z3

from eligib.inputs.facts import facts_file
from eligib.language.checked import CheckedProtocol
from eligib.logic.budget import Budget, solve
from eligib.logic.evaluate import Evaluator
from eligib.logic.models import ModelValues, canonical_values
from eligib.values.calendar import DAY_SECONDS
from eligib.values.types import DateTimeType, DateType, Value
from eligib.values.z3terms import rational

# Witnesses read better with recent dates; the preference is dropped when it cannot be met.
PREFERRED_DATES = (dt.date(2020, 1, 1).toordinal(), dt.date(2030, 12, 31).toordinal())


class WitnessError(Exception):
    """A model cannot be written as an exact facts file (a value with no finite decimal form)."""


Term = Any  # a Z3 expression


@dataclass(frozen=True)
class _Asker:
    """One witness search's questions: the solver, the protocols whose calendar it repairs, the budget,
    the facts in the solver (None: all) and whether their second copies are read."""

    solver: Any
    protocols: tuple[Any, ...]
    budget: Budget
    facts: Collection[str] | None
    copies: bool

    def __call__(self, formulas: list[Term]) -> Any:
        return solve(self.solver, formulas, self.budget, "a witness patient", self.protocols, self.facts, self.copies)


def exact_model(solver: Any, compiled_protocols: Sequence[Any], formulas: Sequence[Term],
                preferences: Sequence[Term] = (), budget: Budget | None = None, copies: bool = False,
                facts: Collection[str] | None = None) -> Any:
    """A model of `formulas` that a patient file can state exactly, or None if no model exists.

    Month shifts are exact in every model `solve` returns (it refines the solver's calendar bounds
    until the model agrees with the calendar). Preferences (recent dates) are tried first and
    dropped when they cannot be met. Numbers forced just past a strict threshold (3 months plus a
    sliver) are then moved to short decimals where the formulas allow it. History items the
    formulas do not need are left out (of the copies too, with `copies`, for a witness that reads
    them). With `facts`, the solver holds only those facts' variables (parts.py): only they are tidied."""
    protocols = tuple(compiled_protocols)
    ask = _Asker(solver, protocols, budget if budget is not None else Budget(None), facts, copies)
    groups = _item_flags(protocols, copies, facts)
    no_items = [z3.Not(flag) for group in groups for flag in group]
    wishes = list(preferences)
    model = ask([*formulas, *wishes, *no_items]) if no_items else None
    if model is not None:
        return _short_decimals(ask, model, [*formulas, *no_items], wishes)
    model = ask([*formulas, *wishes]) if wishes else None
    if model is None:
        model = ask(list(formulas))
    if model is None:
        return None
    model, fewer = _fewest_items(ask, model, list(formulas), wishes, groups)
    return _short_decimals(ask, model, [*formulas, *fewer], wishes)


def _item_flags(protocols: tuple[Any, ...], copies: bool, facts: Collection[str] | None) -> list[list[Term]]:
    """Per history (and per copy, with `copies`): whether each item slot exists, first slot first."""
    return [[slot.copy_present if copied else slot.present for slot in history.slots]
            for compiled in protocols for name, history in compiled.histories.items()
            if facts is None or name in facts for copied in ((False, True) if copies else (False,))]


def _fewest_items(ask: _Asker, model: Any, formulas: list[Term], preferences: list[Term],
                  groups: list[list[Term]]) -> tuple[Any, list[Term]]:
    """Leave out the history items the formulas do not need, so that a witness lists one
    transplant, not three copies of it: per history, the fewest leading slots that still give a
    model (the others pinned absent). Returns the model and the pins."""
    pinned: list[Term] = []
    moved = False
    for flags in groups:
        for kept in range(len(flags) + 1):
            absent = [z3.Not(flag) for flag in flags[kept:]]
            if all(z3.is_false(model.eval(flag, model_completion=True)) for flag in flags[kept:]):
                pinned += absent  # the model already leaves them out
                break
            better = ask([*formulas, *pinned, *absent])
            if better is not None:
                pinned += absent
                model, moved = better, True
                break
    if moved and preferences:  # the preferences (recent dates), once more, with the items left out
        model = ask([*formulas, *pinned, *preferences]) or model
    return model, pinned


def _short_decimals(ask: _Asker, model: Any, formulas: list[Term], preferences: list[Term]) -> Any:
    """Move real-valued facts with long or endless decimals to short ones, where the formulas allow.

    Pinning one value lets the solver move others, so this repeats until every value is short."""
    fixed: list[Term] = []
    reals = [var for compiled in ask.protocols for fact in _every_fact(compiled, ask.facts)
             for var in (fact.value, fact.copy_value) if z3.is_real(var)]  # a copy may be read as a witness too
    for _ in range(len(reals) + 1):
        read = ModelValues(model, ask.protocols[0].var_names)  # the whole model at once: one Z3 call
        long_values = [(var, Fraction(read.value(var))) for var in reals]
        long_values = [(var, value) for var, value in long_values if not _is_short(value)]
        if not long_values:
            return model
        pinned_before = len(fixed)
        for var, value in long_values:
            candidate = _shortest_allowed(ask, [*formulas, *fixed], var, value)
            if candidate is not None:
                fixed.append(candidate)
        if len(fixed) == pinned_before:
            return model  # nothing more can be shortened
        better = ask([*formulas, *fixed, *preferences]) if preferences else None
        if better is None:
            better = ask([*formulas, *fixed])
        if better is None:
            return model
        model = better
    return model


def _shortest_allowed(ask: _Asker, formulas: list[Term], var: Term, value: Fraction) -> Term | None:
    """`var == d` for the shortest decimal d near `value` (rounded either way) the formulas allow."""
    for places in range(7):
        scale = 10**places
        for rounded in dict.fromkeys((math.floor(value * scale), math.ceil(value * scale))):
            candidate = var == rational(Fraction(rounded, scale), var.ctx)
            if ask([*formulas, candidate]) is not None:
                return candidate
    return None


def preferences(compiled: Any, only: Collection[str] | None = None) -> list[Any]:
    """Soft wishes for readable witnesses (recent dates), tried first and dropped if unsatisfiable
    (for the facts `only`, when given)."""
    facts = _every_fact(compiled, only)
    dates = [fact.value for fact in facts if isinstance(fact.info.type, DateType)]
    instants = [fact.value for fact in facts if isinstance(fact.info.type, DateTimeType)]
    first, last = PREFERRED_DATES[0] * DAY_SECONDS, (PREFERRED_DATES[1] + 1) * DAY_SECONDS - 1
    return [d >= PREFERRED_DATES[0] for d in dates] + [d <= PREFERRED_DATES[1] for d in dates] \
        + [t >= first for t in instants] + [t <= last for t in instants] + [t % 3600 == 0 for t in instants]


def _every_fact(compiled: Any, only: Collection[str] | None = None) -> list[Any]:
    """The variables of every fact and of every field of every possible history item (of `only`)."""
    fields = [field for name, history in compiled.histories.items() if only is None or name in only
              for slot in history.slots for field in slot.fields.values()]
    return [*[fact for name, fact in compiled.facts.items() if only is None or name in only], *fields]


def _is_short(value: Fraction, places: int = 4) -> bool:
    return bool((value * 10**places).denominator == 1)


def applicable(checked: CheckedProtocol, values: dict[str, Value]) -> dict[str, Value]:
    """Drop facts whose subgroup condition is false: they would not be asked for."""
    evaluator = Evaluator(checked, values)
    kept = {}
    for name, value in values.items():
        guard = checked.facts[name].guard
        if guard is None or evaluator.condition(guard) is not False:
            kept[name] = value
    return kept


def patient_from_model(compiled: Any, model: Any, use_copy: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The model as a facts file (declared units, exact decimals), facts outside their subgroup left out."""
    return patient_from_values(compiled.checked, canonical_values(compiled, model, use_copy))


def patient_from_values(checked: CheckedProtocol, values: dict[str, Value]) -> dict[str, Any]:
    """Canonical values as a facts file (declared units, exact decimals), facts outside their subgroup left out."""
    try:
        return facts_file(checked, applicable(checked, values))
    except ValueError as exc:
        raise WitnessError(str(exc)) from None
