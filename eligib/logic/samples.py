"""Concrete completions of a patient's missing facts, tried before the solver.

The claims a check makes about missing facts are of two kinds. "This criterion can still pass (or
fail)", "this path can still hold", "this missing fact can change the result" are existential: one
possible patient agreeing with the known facts proves each. "It cannot" is universal and needs the
solver. So before asking Z3, the engine looks for proofs of the existential claims among a few
completions of the patient: every missing fact set to one of its type's candidate values (bounds,
the protocol's thresholds and values beside them, points near the patient's own dates), each
completion kept only when every assumption of the protocol definitely holds in it, and evaluated by
the compiled Kleene program. A value that program gives definitely holds in every completion of
whatever is still unknown (a partly known history stays unknown), so a completion is a proof.
Whatever no completion proves goes to Z3 as before: the answers are exactly the solver's, the
completions only save queries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from fractions import Fraction
from functools import cached_property
from itertools import product
from math import ceil, floor, prod
from typing import Any

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.logic.budget import Budget
from eligib.logic.closures import Closure
from eligib.logic.evaluate import Truth, literal_value
from eligib.logic.kleene import KleeneProgram
from eligib.values.types import NONE, BoolType, DateType, EnumType, History, ListType, NumType, TimePointType, Value
from eligib.values.units import PLAIN, parse_unit

SAMPLED_COMPLETIONS = 8  # completions tried per patient (the first two: every fact at its first / last candidate)
EXHAUSTIVE_LIMIT = 64  # at most this many combinations of other facts' values tried to show a fact irrelevant
FLIPS_TRIED = 3  # completions on which each value of a missing fact is tried, to show it can change a result
SEARCHES = 24  # completions varying an outcome's own facts, tried to show a claim about it
REPAIRS = 4  # draws of the facts a broken assumption reads before a completion is given up
SAMPLING_SECONDS = 0.05  # time one patient's searches may take in all; the solver decides the rest
ADOPTED_SECONDS = 0.005  # more sampling time for each completion adopted from a solver's model
CANDIDATES_KEPT = 32  # values per fact at most (bounds kept, the others evenly thinned)
Outcome = Callable[[Mapping[str, Value]], Truth]


class Samples:
    """A patient's sampled completions and the claims they prove."""

    def __init__(self, checked: CheckedProtocol, facts: Mapping[str, Value], budget: Budget | None = None) -> None:
        self.budget = budget if budget is not None else Budget(None)
        self.deadline = time.monotonic() + SAMPLING_SECONDS
        self.checked = checked
        self.program = KleeneProgram.of(checked)
        self.facts = facts

    @cached_property
    def candidates(self) -> dict[str, list[Value]]:
        return _candidates(self.checked, self.facts)

    @cached_property
    def completions(self) -> list[dict[str, Value]]:
        """Possible patients agreeing with the known facts (built on first use, deterministic)."""
        return self._build() if self.candidates else []

    def _build(self) -> list[dict[str, Value]]:
        names = sorted(self.candidates)
        rng = random.Random(len(names))  # fixed: the same patient is always tried the same way
        picks: list[dict[str, Value]] = [{n: self.candidates[n][0] for n in names},
                                         {n: self.candidates[n][-1] for n in names}]
        picks += [{n: rng.choice(self.candidates[n]) for n in names} for _ in range(SAMPLED_COMPLETIONS - 2)]
        found = []
        for pick in picks:
            if not self._go_on():
                break
            completion = {**self.facts, **pick}
            for _ in range(REPAIRS):  # an assumption broken: draw again the missing facts it reads
                broken = [a for a, condition in self.program.assumptions if condition(completion, None) is not True]
                if not broken:
                    found.append(completion)
                    break
                for name in sorted({n for a in broken for n in self.checked.facts_of(a.body) if n in self.candidates}):
                    completion[name] = rng.choice(self.candidates[name])
        return found

    def adopt(self, values: Mapping[str, Value]) -> None:
        """Try first a completion found otherwise (a model of the solver: `values` of missing facts; a missing
        history it does not give is an empty list), when every assumption holds in it."""
        pick = {name: values[name] if name in values else options[0] for name, options in self.candidates.items()}
        completion = {**self.facts, **pick}
        if self.possible(completion):
            self.completions.insert(0, completion)
            # a patient from the solver is worth trying: it buys a little more sampling time
            self.deadline = max(self.deadline, time.monotonic() + ADOPTED_SECONDS)

    def _go_on(self) -> bool:
        """May the search go on? Not past SAMPLING_SECONDS, nor past the check's whole time budget: the
        solver answers what is left (or, the budget spent, gives up naming what it was deciding)."""
        return time.monotonic() < self.deadline and not self.budget.spent()

    def possible(self, completion: Mapping[str, Value]) -> bool:
        """Does every assumption of the protocol definitely hold for this (possibly partial) patient?"""
        return all(condition(completion, None) is True for _, condition in self.program.assumptions)

    def values_of(self, outcome: Outcome) -> set[Truth]:
        """The definite values `outcome` takes on the sampled completions."""
        return {value for completion in self.completions if (value := outcome(completion)) is not None}

    def shows(self, outcome: Outcome, wanted: bool, reads: Collection[str]) -> bool:
        """Proven: some possible patient gives `outcome` the value `wanted`. The sampled completions first,
        then completions varying only the missing facts the outcome `reads`. False: none was found."""
        if wanted in self.values_of(outcome):
            return True
        return any(outcome(trial) is wanted and self.possible(trial) for trial in self._variations(reads))

    def satisfy(self, parts: Sequence[tuple[Outcome, Collection[str]]]) -> bool:
        """Proven: some possible patient makes every outcome true (each with the facts it reads). A greedy
        search: on a few completions, draw again the facts of each outcome not yet true, for a few rounds.
        A patient found is kept first among the completions (the best start for `can_change`)."""
        rng = random.Random(len(parts))
        for base in self.completions[:FLIPS_TRIED]:
            trial = dict(base)
            for _ in range(REPAIRS):
                if not self._go_on():
                    break
                failing = [(outcome, reads) for outcome, reads in parts if outcome(trial) is not True]
                if not failing:
                    if self.possible(trial):
                        self.completions.insert(0, trial)
                        return True
                    break
                for outcome, reads in failing:
                    names = [n for n in sorted(reads) if n in self.candidates]
                    for _ in range(REPAIRS):
                        trial.update({n: rng.choice(self.candidates[n]) for n in names})
                        if outcome(trial) is True:
                            break
        return False

    def can_change(self, fact: str, outcome: Outcome, reads: Collection[str]) -> bool:
        """Proven: two possible patients that differ only in `fact` get different definite outcomes (the
        outcome reads the facts `reads`). False means only that no sample showed it (the solver decides).
        The first completions (those adopted from the solver's models among them) are tried first, then
        completions varying the other facts, while the sampling time lasts."""
        others = [name for name in reads if name != fact]
        return any(self._go_on() and self._flips(trial, fact, outcome) for trial in self.completions[:FLIPS_TRIED]) \
            or any(self._flips(trial, fact, outcome) for trial in self._variations(others))

    def _flips(self, trial: dict[str, Value], fact: str, outcome: Outcome) -> bool:
        """Does another value of `fact` alone change the definite outcome of this completion?"""
        first = outcome(trial)
        if first is None:
            return False
        for value in self.candidates.get(fact, ()):
            if value == trial[fact]:
                continue
            flipped = {**trial, fact: value}
            second = outcome(flipped)
            if second is not None and second != first and self.possible(trial) and self.possible(flipped):
                return True
        return False

    def _variations(self, reads: Collection[str]) -> Iterator[dict[str, Value]]:
        """Completions with the missing facts among `reads` drawn again (one fact: each of its values)."""
        names = sorted(name for name in reads if name in self.candidates)
        if not names or not self.completions:
            return
        if len(names) == 1:
            for base in self.completions[:FLIPS_TRIED]:
                if not self._go_on():
                    break
                for value in self.candidates[names[0]]:
                    yield {**base, names[0]: value}
            return
        rng = random.Random(len(names))
        for index in range(SEARCHES):
            if not self._go_on():
                break
            yield {**self.completions[index % len(self.completions)],
                   **{name: rng.choice(self.candidates[name]) for name in names}}

    def cannot_change(self, fact: str, outcome: Outcome, reads: Collection[str]) -> bool:
        """Proven: `fact` never changes `outcome`, which reads the facts `reads`. Shown by trying every value of
        the other missing facts it reads, when each has a small finite domain: with `fact` left unknown, the
        outcome is definite every time. False means only that this did not show it."""
        others = sorted(name for name in reads if name != fact and name in self.candidates)
        domains = [self.domain(name) for name in others]
        if any(domain is None for domain in domains) or prod(len(d) for d in domains if d) > EXHAUSTIVE_LIMIT:
            return False
        base = dict(self.facts)
        if not self._go_on():
            return False
        for values in product(*[d for d in domains if d is not None]):
            if outcome({**base, **dict(zip(others, values, strict=True))}) is None:
                return False
        return True

    def domain(self, name: str) -> list[Value] | None:
        """Every value a missing fact can take, when that is a short list (booleans, enumerations, small
        integer ranges; none for an `or none` fact), else None."""
        info = self.checked.facts[name]
        values = self.candidates[name]
        kind = info.type
        small_integers = isinstance(kind, NumType) and kind.integer and info.low is not None and info.high is not None \
            and (Fraction(info.high) - Fraction(info.low)) / kind.factor < EXHAUSTIVE_LIMIT
        if not (isinstance(kind, BoolType | EnumType) or small_integers):
            return None
        if small_integers:  # the whole numbers of the unit within the range (a bound need not be one)
            assert isinstance(kind, NumType) and info.low is not None and info.high is not None
            first, last = ceil(Fraction(info.low) / kind.factor), floor(Fraction(info.high) / kind.factor)
            values = [step * kind.factor for step in range(first, last + 1)]
            values += [NONE] if info.optional else []
        return values

    def condition(self, node: ast.Expr) -> Outcome:
        """A condition of the protocol (a named path) as an outcome over a patient's values."""
        closure: Closure = self.program.condition_of(node)
        return lambda facts: closure(facts, None)


def _candidates(checked: CheckedProtocol, facts: Mapping[str, Value]) -> dict[str, list[Value]]:
    """Candidate values of every missing fact; a history missing as a whole may be an empty list. A history
    known in part has none: it stays unknown in every completion. Only dates and date-times depend on the
    patient (their anchors); the others are kept with the protocol."""
    fixed = _fixed_candidates(checked)
    anchors: dict[type, list[int]] | None = None
    found: dict[str, list[Value]] = {}
    for name, info in checked.facts.items():
        if name in facts:
            continue
        values = fixed.get(name)
        if values is None:
            assert isinstance(info.type, TimePointType)
            anchors = _anchors(checked, facts) if anchors is None else anchors
            values = list(info.type.candidates(info, [], anchors.get(type(info.type), [])))
            values += [NONE] if info.optional else []
        if values:
            found[name] = _thinned(values)
    return found


def _thinned(values: list[Value]) -> list[Value]:
    """At most CANDIDATES_KEPT values: the first and last kept, the others evenly spread (a protocol with
    hundreds of thresholds of one kind must not make every search long)."""
    if len(values) <= CANDIDATES_KEPT:
        return values
    step = (len(values) - 1) / (CANDIDATES_KEPT - 1)
    return [values[round(index * step)] for index in range(CANDIDATES_KEPT)]


def _fixed_candidates(checked: CheckedProtocol) -> dict[str, list[Value]]:
    """The candidates of every fact that is not a date or date-time (kept per protocol)."""
    cached = checked.derived.get("sample-candidates")
    if cached is None:
        constants = _constants(checked)
        found: dict[str, list[Value]] = {}
        for name, info in checked.facts.items():
            kind = info.type
            if isinstance(kind, ListType):
                found[name] = [History((), True)]
            elif not isinstance(kind, TimePointType):
                key = kind.constant_key if isinstance(kind, NumType) else None
                values = list(kind.candidates(info, constants.get(key, []) if key else [], []))
                found[name] = _thinned(values + ([NONE] if info.optional else []))
        cached = checked.derived["sample-candidates"] = found
    assert isinstance(cached, dict)
    return cached


def _constants(checked: CheckedProtocol) -> dict[Any, list[Fraction]]:
    """The protocol's numeric literals by the kind of value they are thresholds for (kept per protocol)."""
    cached = checked.derived.get("sample-constants")
    if cached is None:
        grouped: dict[Any, set[Fraction]] = {}
        roots = [c.body for c in checked.criteria.values()] + [d.body for d in checked.definitions.values()]
        for root in roots:
            for node in ast.walk(root):
                if isinstance(node, ast.QuantityLiteral):
                    key = (parse_unit(node.unit).kind if node.unit else PLAIN, node.unit is None)
                    grouped.setdefault(key, set()).add(literal_value(node))
        cached = checked.derived["sample-constants"] = {key: sorted(values) for key, values in grouped.items()}
    assert isinstance(cached, dict)
    return cached


def _anchors(checked: CheckedProtocol, facts: Mapping[str, Value]) -> dict[type, list[int]]:
    """The patient's known dates and date-times (and the protocol's written dates), by type."""
    found: dict[type, set[int]] = {}
    for name, value in facts.items():
        kind = checked.facts[name].type
        if isinstance(kind, TimePointType) and isinstance(value, int) and not isinstance(value, bool):
            found.setdefault(type(kind), set()).add(value)
    for root in [c.body for c in checked.criteria.values()]:
        for node in ast.walk(root):
            if isinstance(node, ast.DateLiteral):
                found.setdefault(DateType, set()).add(node.value.toordinal())
    return {kind: sorted(points) for kind, points in found.items()}
