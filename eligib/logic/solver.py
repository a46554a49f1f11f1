"""Decide a patient: per-criterion status, verdict, and which missing facts matter.

Known facts decide most criteria exactly by three-valued evaluation (a definite Kleene answer
holds in every completion). Whatever that leaves unknown, Z3 decides over the declared fact
domains: a criterion is met only if it holds for every completion of the missing facts, and
the verdict considers the criteria jointly, so a fact shared by two criteria or limited by a
declared range is handled exactly. A missing fact "matters" when two completions that differ
only in that fact get different verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import Diagnostic, DiagnosticError, error
from eligib.logic.budget import Budget, solve
from eligib.logic.evaluate import Evaluator, Truth, Verdict
from eligib.logic.kleene import KleeneProgram
from eligib.logic.samples import Outcome, Samples
from eligib.values.types import History, Value, shown
from eligib.values.types.base import IrrationalValue

CompiledSource = Callable[[], Any]  # returns the (cached) Z3 compilation, built on first need


class Status(StrEnum):
    """A criterion's status; for an exclusion, `met` means the patient is excluded."""

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


class DecidedBy(StrEnum):
    FACTS = "facts"  # the known values decide it
    SOLVER = "solver"  # decided over every value of the missing facts


@dataclass(slots=True)
class CriterionResult:
    id: str
    kind: ast.CriterionKind
    applies: Truth  # False when its `only if` condition is false for this patient
    passes: Truth  # does it let the patient through (True/False), or is that open (None)
    decided_by: DecidedBy
    missing: tuple[str, ...] = ()  # missing facts it depends on

    @property
    def status(self) -> Status:
        return criterion_status(self.kind, self.applies, self.passes)


def criterion_status(kind: ast.CriterionKind, applies: Truth, passes: Truth) -> Status:
    """A criterion's status from whether it applies and whether it lets the patient through."""
    if applies is False:
        return Status.NOT_APPLICABLE
    if passes is None:
        return Status.UNKNOWN
    return Status.MET if passes == (kind == ast.CriterionKind.INCLUSION) else Status.NOT_MET


@dataclass
class Decision:
    verdict: Verdict
    outcomes: Mapping[str, tuple[Truth, Truth]] = field(repr=False)  # criterion -> (applies, passes) by the facts
    blocking: list[str]  # criteria that definitely keep the patient out
    conflicts: list[list[str]]  # criteria each possible alone but impossible together
    missing: dict[str, list[str]]  # missing fact that matters -> criteria it could decide
    checked: CheckedProtocol = field(repr=False)
    facts: Mapping[str, Value] = field(repr=False)
    analysis: Analysis | None = field(default=None, repr=False)
    refined: dict[str, CriterionResult] = field(default_factory=dict, repr=False)  # those the facts left open

    @cached_property
    def criteria(self) -> dict[str, CriterionResult]:
        """Every criterion's result, in protocol order (made when first asked for: a verdict needs none)."""
        kinds = self.checked.criteria
        return {cid: self.refined[cid] if cid in self.refined else
                CriterionResult(cid, kinds[cid].kind, applies, passes, DecidedBy.FACTS)
                for cid, (applies, passes) in self.outcomes.items()}

    @cached_property
    def evaluator(self) -> Evaluator:
        """The reference evaluator over this patient, built when an explanation first asks: it keeps
        every node's value, which the verdict itself does not need (the analysis's, when it made one)."""
        return self.analysis.evaluator if self.analysis is not None else Evaluator(self.checked, self.facts)


def decide(checked: CheckedProtocol, facts: Mapping[str, Value], compiled_source: CompiledSource | None = None,
           budget: Budget | None = None) -> Decision:
    """Decide one patient; `budget` bounds the solver's time in all (SolverTimeout when it runs out: no verdict).

    Raises DiagnosticError when the known facts contradict one of the protocol's assumptions:
    such a patient has no completion at all, so no verdict would mean anything."""
    budget = budget if budget is not None else Budget()
    program = KleeneProgram.of(checked)
    open_assumptions = open_assumptions_of(checked, facts, program)
    outcomes = program.outcomes(facts)
    unknown = [cid for cid, (_, passes) in outcomes.items() if passes is None]
    if not unknown and not open_assumptions:
        blocking = [cid for cid, (_, passes) in outcomes.items() if passes is False]
        verdict = Verdict.INELIGIBLE if blocking else Verdict.ELIGIBLE
        return Decision(verdict, outcomes, blocking, [], {}, checked, facts)
    analysis = Analysis(checked, compiled_source, facts, budget)  # Z3 compiled and asked only when needed
    confirm_possible(checked, facts, open_assumptions, analysis)
    kinds = checked.criteria
    results = {cid: CriterionResult(cid, kinds[cid].kind, *outcomes[cid], DecidedBy.FACTS) for cid in unknown}
    jointly_possible = analysis.satisfiable(unknown) if unknown else True  # one model: every open one can pass
    for cid in unknown:
        analysis.refine(results[cid], can_pass=True if jointly_possible else None)
    blocking = [cid for cid, (_, passes) in outcomes.items() if (results[cid].passes if cid in results else passes)
                is False]

    def decision(verdict: Verdict, blocking: list[str], conflicts: list[list[str]],
                 missing: dict[str, list[str]]) -> Decision:
        return Decision(verdict, outcomes, blocking, conflicts, missing, checked, facts, analysis, results)

    if blocking:
        return decision(Verdict.INELIGIBLE, blocking, [], {})
    still_unknown = [cid for cid in unknown if results[cid].passes is None]
    if not still_unknown:
        return decision(Verdict.ELIGIBLE, [], [], {})
    components = analysis.components(still_unknown)
    conflicts = [] if jointly_possible else [c for c in components if not analysis.satisfiable(c)]
    if conflicts:
        return decision(Verdict.INELIGIBLE, [], [analysis.minimal_conflict(component) for component in conflicts], {})
    missing: dict[str, list[str]] = {}
    for component in components:
        missing.update(analysis.decisive_facts(component))
    return decision(Verdict.UNDETERMINED, [], [], dict(sorted(missing.items())))


def open_assumptions_of(checked: CheckedProtocol, facts: Mapping[str, Value],
                      program: KleeneProgram) -> list[ast.Assumption]:
    """The assumptions the known facts leave open; DiagnosticError when they break one."""
    open_assumptions = []
    for assumption, condition in program.assumptions:
        holds = condition(facts, None)
        if holds is None:
            open_assumptions.append(assumption)
        elif holds is False:
            raise DiagnosticError([_violation(checked, assumption, facts)])
    return open_assumptions


def confirm_possible(checked: CheckedProtocol, facts: Mapping[str, Value], open_assumptions: list[ast.Assumption],
                      analysis: Analysis) -> None:
    """DiagnosticError when no value of the missing facts meets an open assumption."""
    # a sampled completion meets every assumption (samples.py): then each is possible; else ask Z3 whether
    # each is possible for some value of the missing facts
    if open_assumptions and analysis.can_solve and not analysis.samples.completions:
        for assumption in open_assumptions:
            if not analysis.sat(checked.facts_of(assumption.body), subject=f"assumption `{assumption.id}`"):
                raise DiagnosticError([_violation(checked, assumption, facts)])


def _violation(checked: CheckedProtocol, assumption: ast.Assumption, facts: Mapping[str, Value]) -> Diagnostic:
    known = [f"{name} = {shown(checked.facts[name].type, facts[name])}"
             for name in sorted(checked.facts_of(assumption.body)) if name in facts]
    return error("assumption-violated", f"the patient's facts contradict assumption `{assumption.id}`: "
                 f"{assumption.label}", assumption.span, "the protocol assumes this of every patient",
                 help="check these facts: " + ", ".join(known))


class Analysis:
    """What can still happen to one patient: sampled completions first (samples.py), then Z3 queries over
    the compiled protocol for what no sample proves; only the needed facts are assumed."""

    def __init__(self, checked: CheckedProtocol, compiled_source: CompiledSource | None, facts: Mapping[str, Value],
                 budget: Budget | None = None) -> None:
        self.checked = checked
        self.compiled_source = compiled_source
        self.facts = facts
        self.budget = budget if budget is not None else Budget()
        self.samples = Samples(checked, facts, self.budget)
        self.program = self.samples.program
        self.groups = [checked.facts_of(a.body) for a in checked.assumptions.values()]
        self._linked: dict[frozenset[str], frozenset[str]] = {}
        self._reachable: dict[str, frozenset[str]] = {}

    @property
    def can_solve(self) -> bool:
        return self.compiled_source is not None

    @cached_property
    def compiled(self) -> Any:
        """The Z3 compilation, made (and z3 imported) on the first query that needs it."""
        assert self.compiled_source is not None, "a missing fact needs the solver"
        return self.compiled_source()

    @cached_property
    def solver(self) -> Any:
        return self.compiled.patient_solver()

    def unknown_facts(self, names: Iterable[str]) -> list[str]:
        """The facts among `names` not known in full: absent, or a history with unknown parts."""
        return sorted(name for name in names if not settled(self.facts.get(name)))

    def assumptions(self, names: Collection[str]) -> list[Any]:
        """Literals fixing the known facts among `names` and every fact an assumption links to them."""
        literals: list[Any] = []
        for name in self.linked(names):
            if name in self.facts:
                literals.extend(self.compiled.fact_assumptions(name, self.facts[name]))
        return literals

    def linked(self, names: Collection[str]) -> frozenset[str]:
        """`names` closed over the protocol's assumptions: facts an assumption relates stand together."""
        key = frozenset(names)
        closed = self._linked.get(key)
        if closed is None:
            closed = self._linked[key] = linked_facts(self.groups, key)
        return closed

    def sat(self, names: Collection[str], *formulas: Any, subject: str = "the patient") -> bool:
        """Is there a possible patient, agreeing with the known facts among `names`, where `formulas` hold?"""
        return self.model(names, *formulas, subject=subject) is not None

    def model(self, names: Collection[str], *formulas: Any, subject: str = "the patient") -> Any:
        """A calendar-exact model of such a patient (its facts outside `names` are arbitrary), or None."""
        linked = self.linked(names)
        relevant = [term for group, term in self.compiled.assumptions if group & linked]
        query = [*self.assumptions(names), *relevant, *formulas]
        return solve(self.solver, query, self.budget, subject, (self.compiled,), linked)

    def refine(self, result: CriterionResult, can_pass: bool | None = None) -> None:
        """Decide a criterion that the known facts leave open: can it pass? can it fail?"""
        names = self.checked.criterion_facts[result.id]
        outcome = self.program.passes(result.id)
        subject = f"criterion `{result.id}`"
        if can_pass is None:
            can_pass = self.samples.shows(outcome, True, names) \
                or self.sat(names, self.compiled.passes[result.id], subject=subject)
        can_fail = self.samples.shows(outcome, False, names) \
            or self.sat(names, self._not(self.compiled.passes[result.id]), subject=subject)
        result.missing = tuple(self.unknown_facts(names))
        result.decided_by = DecidedBy.SOLVER
        if not (can_pass and can_fail):
            result.passes = can_pass

    def node_status(self, node: ast.Expr, names: Collection[str], subject: str = "a path") -> Truth:
        """Can this condition (a named path) be true, and can it be false, under the known facts?"""
        outcome = self.samples.condition(node)
        can_hold = self.samples.shows(outcome, True, names) \
            or self.sat(names, self.compiled.condition(node), subject=subject)
        can_fail = self.samples.shows(outcome, False, names) \
            or self.sat(names, self._not(self.compiled.condition(node)), subject=subject)
        return None if can_hold and can_fail else can_hold

    @cached_property
    def evaluator(self) -> Evaluator:
        return Evaluator(self.checked, self.facts)

    def reachable(self, cid: str) -> frozenset[str]:
        """The missing facts a criterion's value can depend on for this patient: those with an occurrence
        under no node the known facts already decide. A node whose three-valued value is definite has
        that value in every completion, so nothing below it can change anything above it."""
        found = self._reachable.get(cid)
        if found is None:
            criterion = self.checked.criteria[cid]
            roots = [criterion.body] if criterion.guard is None else [criterion.guard, criterion.body]
            found = self._reachable[cid] = frozenset(name for root in roots for name in self._open_facts(root))
        return found

    def _open_facts(self, node: ast.Expr) -> set[str]:
        if node.nid not in self.checked.field_refs and self.evaluator.eval(node) is not None:
            return set()  # decided by the known facts (a history's item field is read inside a query only)
        match node:
            case ast.NameRef() if node.name in self.checked.definitions:
                return self._open_facts(self.checked.definitions[node.name].body)
            case ast.NameRef() if node.nid not in self.checked.field_refs:
                return set() if settled(self.facts.get(node.name)) else {node.name}
            case ast.Query():  # the items' conditions are evaluated per item: every fact they read may matter
                inside = self.checked.facts_of(node.where) if node.where is not None else frozenset()
                return {name for name in inside | {node.collection} if not settled(self.facts.get(name))}
            case _:
                return {name for child in ast.children(node) for name in self._open_facts(child)}

    def _not(self, term: Any) -> Any:
        import z3

        return z3.Not(term)

    def components(self, criteria: list[str]) -> list[list[str]]:
        """Group open criteria that share a missing fact; groups are independent of each other."""
        parent = {cid: cid for cid in criteria}

        def root(cid: str) -> str:
            while parent[cid] != cid:
                parent[cid] = parent[parent[cid]]
                cid = parent[cid]
            return cid

        owner: dict[str, str] = {}
        for cid in criteria:
            for fact in self.unknown_facts(self.linked(self.checked.criterion_facts[cid])):
                if fact in owner:
                    parent[root(cid)] = root(owner[fact])
                else:
                    owner[fact] = cid
        groups: dict[str, list[str]] = {}
        for cid in criteria:
            groups.setdefault(root(cid), []).append(cid)
        return list(groups.values())

    def names_of(self, criteria: list[str]) -> frozenset[str]:
        return frozenset().union(*(self.checked.criterion_facts[c] for c in criteria))

    def satisfiable(self, criteria: list[str]) -> bool:
        """Can these criteria all pass together under the known facts?"""
        parts = [(self.program.passes(c), self.checked.criterion_facts[c]) for c in criteria]
        if True in self.samples.values_of(self.program.all_pass(criteria)) or self.samples.satisfy(parts):
            return True
        subject = f"whether {_criteria_words(criteria)} can pass together" if len(criteria) > 1 \
            else f"criterion `{criteria[0]}`"
        model = self.model(self.names_of(criteria), self.conjunction(criteria), subject=subject)
        if model is not None:  # a completion where they all pass: the best start for showing a fact decisive
            self.samples.adopt(self._missing_values(model))
        return model is not None

    def _missing_values(self, model: Any) -> dict[str, Value]:
        """The model's values of the patient's missing facts (none when one is irrational: a model of a
        nonlinear protocol is still a completion, but not one to sample from)."""
        from eligib.logic.models import canonical_values

        try:
            return canonical_values(self.compiled, model, only=frozenset(self.samples.candidates))
        except IrrationalValue:
            return {}

    def minimal_conflict(self, criteria: list[str]) -> list[str]:
        """A smallest-by-deletion set of criteria that cannot all pass together."""
        core = list(criteria)
        for cid in list(criteria):
            trial = [c for c in core if c != cid]
            if trial and not self.satisfiable(trial):
                core = trial
        return core

    def decisive_facts(self, criteria: list[str]) -> dict[str, list[str]]:
        """Missing facts of one component whose value can change whether the component passes, each with
        the criteria of the component it can change."""
        names = self.names_of(criteria)
        unknown = self.unknown_facts(names)
        whole = self._changing(criteria, unknown) if len(unknown) > 1 else set(unknown)
        readers = {fact: [c for c in criteria if fact in self.checked.criterion_facts[c]] for fact in unknown}
        # a fact that changes the component changes some criterion that reads it: when only one does, that one
        shared = [fact for fact in unknown if fact in whole and len(readers[fact]) > 1]
        per_criterion = {c: self._changing([c], [f for f in shared if c in readers[f]]) for c in criteria}
        return {fact: readers[fact] if len(readers[fact]) == 1 else
                [c for c in readers[fact] if fact in per_criterion[c]] for fact in unknown if fact in whole}

    def _changing(self, criteria: list[str], facts: list[str]) -> set[str]:
        """The facts among `facts` (the unknown facts the criteria read) that can change whether the criteria
        all pass. A criterion's only unknown fact does; a fact no criterion reaches does not; samples show
        most of the others either way; Z3 decides the rest together."""
        if not facts:
            return set()
        if len(criteria) == 1 and len(self.unknown_facts(self.checked.criterion_facts[criteria[0]])) == 1:
            return set(facts)  # an open criterion's only unknown fact decides it
        names = self.names_of(criteria)
        outcome = self.program.all_pass(criteria)
        found, undecided = set(), []
        for fact in facts:
            if not any(fact in self.reachable(c) for c in criteria) or \
                    self.samples.cannot_change(fact, outcome, names):
                continue
            if self.samples.can_change(fact, outcome, names):
                found.add(fact)
            else:
                undecided.append(fact)
        if undecided:
            single = criteria[0] if len(criteria) == 1 else None
            formula = self.compiled.passes[single] if single else self.conjunction(criteria)
            found |= self.can_change(names, formula, undecided, single, about=_criteria_words(criteria),
                                     outcome=outcome)
        return found

    def conjunction(self, criteria: list[str]) -> Any:
        from eligib.values.z3terms import conjunction

        return conjunction([self.compiled.passes[c] for c in criteria], self.compiled.ctx)

    def can_change(self, names: Collection[str], formula: Any, facts: list[str], cache_key: str | None = None,
                   about: str = "the verdict", outcome: Outcome | None = None) -> set[str]:
        """The facts among `facts` for which two possible completions differing only in that fact disagree on
        `formula` (`about` names it). One query asks for any of them; each model shows every fact whose
        disjunct it satisfies, and the next query asks for the rest, until none is left or none can. With
        `outcome` (the formula as a Kleene outcome), each model also becomes a sampled completion, on
        which the other facts are tried first: one patient on the edge of a criterion often shows several."""
        import z3

        changes = {fact: self._change(formula, fact, cache_key) for fact in facts}
        found: set[str] = set()
        while len(found) < len(changes):
            remaining = [fact for fact in facts if fact not in found]
            words = f"`{remaining[0]}`" if len(remaining) == 1 else f"any of `{remaining[0]}`, ..."
            model = self.model(names, z3.Or([changes[fact] for fact in remaining]),
                               subject=f"whether {words} can change {about}")
            if model is None:
                break
            shown = [fact for fact in remaining if z3.is_true(model.eval(changes[fact], model_completion=True))]
            found.update(shown)
            if outcome is not None and shown:  # both patients of the pair: the one that passes, the one that fails
                from eligib.logic.models import canonical_values

                first = frozenset(shown[:1])
                try:
                    passing = canonical_values(self.compiled, model, only=frozenset(self.samples.candidates))
                    flipped = canonical_values(self.compiled, model, use_copy=first, only=first)
                except IrrationalValue:  # not a completion to sample from; the queries decide alone
                    continue
                self.samples.adopt(passing)
                self.samples.adopt({**passing, **flipped})
                found |= {fact for fact in facts if fact not in found
                          and self.samples.can_change(fact, outcome, names)}
        return found

    def _change(self, formula: Any, fact: str, cache_key: str | None) -> Any:
        """`formula` holds, and fails once `fact` alone takes another value (its copy) in a possible patient."""
        import z3

        parts = [formula, z3.Not(self.compiled.with_copy(formula, fact, cache_key))]
        touching = self.compiled.assumptions_on(fact)
        if touching is not None:  # the other completion must be a possible patient too; assumptions that
            # do not read `fact` hold in it exactly when they hold in the first one
            parts.append(self.compiled.with_copy(touching, fact, cache_key="assumptions"))
        return z3.And(parts)


def linked_facts(groups: Iterable[Collection[str]], names: Collection[str]) -> frozenset[str]:
    """`names` closed over groups of facts that stand together (each assumption's facts)."""
    grown, grew = set(names), True
    while grew:
        grew = False
        for group in groups:
            if grown & set(group) and not set(group) <= grown:
                grown |= set(group)
                grew = True
    return frozenset(grown)


def settled(value: Value | None) -> bool:
    """Is a fact's value known in full (a history: complete, with every field of every item given)?"""
    return value is not None and (value.settled if isinstance(value, History) else True)


def _criteria_words(criteria: list[str]) -> str:
    """`criterion `a`` or `criteria `a`, `b`, ...`: what a query is about, for a time-out message."""
    if len(criteria) == 1:
        return f"criterion `{criteria[0]}`"
    listed = ", ".join(f"`{c}`" for c in criteria[:5])
    return f"criteria {listed}{', ...' if len(criteria) > 5 else ''}"


def decide_by_solver(compiled: Any, facts: Mapping[str, Value]) -> tuple[Verdict, dict[str, Truth]]:
    """Verdict and per-criterion outcome from Z3 alone, every known fact assumed.

    Slower than `decide` (no three-valued shortcut); it exists to cross-check `decide` and the
    reference evaluator, and as the plain statement of the semantics."""
    import z3

    analysis = Analysis(compiled.checked, lambda: compiled, facts, Budget(None))
    every = frozenset(compiled.facts) | frozenset(compiled.histories)
    passes: dict[str, Truth] = {}
    for cid, formula in compiled.passes.items():
        can_pass, can_fail = analysis.sat(every, formula), analysis.sat(every, z3.Not(formula))
        passes[cid] = None if can_pass and can_fail else can_pass
    all_pass = compiled.eligible()
    can_be_eligible, can_be_ineligible = analysis.sat(every, all_pass), analysis.sat(every, z3.Not(all_pass))
    verdict = Verdict.UNDETERMINED if can_be_eligible and can_be_ineligible else (
        Verdict.ELIGIBLE if can_be_eligible else Verdict.INELIGIBLE)
    return verdict, passes
