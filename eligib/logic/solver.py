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
from typing import Any

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import Diagnostic, DiagnosticError, error
from eligib.logic.budget import Budget, solve
from eligib.logic.evaluate import Evaluator, Truth, Verdict, criterion_outcome
from eligib.values.types import History, Value, shown

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


@dataclass
class CriterionResult:
    id: str
    kind: ast.CriterionKind
    applies: Truth  # False when its `only if` condition is false for this patient
    passes: Truth  # does it let the patient through (True/False), or is that open (None)
    decided_by: DecidedBy
    missing: tuple[str, ...] = ()  # missing facts it depends on

    @property
    def status(self) -> Status:
        if self.applies is False:
            return Status.NOT_APPLICABLE
        if self.passes is None:
            return Status.UNKNOWN
        return Status.MET if self.passes == (self.kind == ast.CriterionKind.INCLUSION) else Status.NOT_MET


@dataclass
class Decision:
    verdict: Verdict
    criteria: dict[str, CriterionResult]
    blocking: list[str]  # criteria that definitely keep the patient out
    conflicts: list[list[str]]  # criteria each possible alone but impossible together
    missing: dict[str, list[str]]  # missing fact that matters -> criteria it could decide
    evaluator: Evaluator = field(repr=False)
    analysis: Analysis | None = field(default=None, repr=False)


def decide(checked: CheckedProtocol, facts: Mapping[str, Value], compiled_source: CompiledSource | None = None,
           budget: Budget | None = None) -> Decision:
    """Decide one patient; `budget` bounds the solver's time in all (SolverTimeout when it runs out: no verdict).

    Raises DiagnosticError when the known facts contradict one of the protocol's assumptions:
    such a patient has no completion at all, so no verdict would mean anything."""
    budget = budget if budget is not None else Budget()
    evaluator = Evaluator(checked, facts)
    _check_assumptions(checked, facts, evaluator, compiled_source, budget)
    results: dict[str, CriterionResult] = {}
    for cid, criterion in checked.criteria.items():
        applies, _, passes = criterion_outcome(evaluator, criterion)
        results[cid] = CriterionResult(cid, criterion.kind, applies, passes, DecidedBy.FACTS)
    unknown = [cid for cid, r in results.items() if r.passes is None]
    blocking = [cid for cid, r in results.items() if r.passes is False]
    if not unknown:
        return Decision(Verdict.INELIGIBLE if blocking else Verdict.ELIGIBLE, results, blocking, [], {}, evaluator)
    assert compiled_source is not None, "a missing fact needs the solver"
    analysis = Analysis(compiled_source(), facts, budget)
    jointly_possible = analysis.satisfiable(unknown)  # one model shows every open criterion can pass
    for cid in unknown:
        analysis.refine(results[cid], can_pass=True if jointly_possible else None)
    blocking = [cid for cid, r in results.items() if r.passes is False]
    if blocking:
        return Decision(Verdict.INELIGIBLE, results, blocking, [], {}, evaluator, analysis)
    still_unknown = [cid for cid in unknown if results[cid].passes is None]
    if not still_unknown:
        return Decision(Verdict.ELIGIBLE, results, [], [], {}, evaluator, analysis)
    components = analysis.components(still_unknown)
    conflicts = [] if jointly_possible else [c for c in components if not analysis.satisfiable(c)]
    if conflicts:
        cores = [analysis.minimal_conflict(component) for component in conflicts]
        return Decision(Verdict.INELIGIBLE, results, [], cores, {}, evaluator, analysis)
    missing: dict[str, list[str]] = {}
    for component in components:
        missing.update(analysis.decisive_facts(component))
    return Decision(Verdict.UNDETERMINED, results, [], [], dict(sorted(missing.items())), evaluator, analysis)


def _check_assumptions(checked: CheckedProtocol, facts: Mapping[str, Value], evaluator: Evaluator,
                       compiled_source: CompiledSource | None, budget: Budget) -> None:
    open_assumptions = []
    for assumption in checked.assumptions.values():
        holds = evaluator.condition(assumption.body)
        if holds is None:
            open_assumptions.append(assumption)
        elif holds is False:
            raise DiagnosticError([_violation(checked, assumption, facts)])
    if open_assumptions and compiled_source is not None:
        analysis = Analysis(compiled_source(), facts, budget)
        for assumption in open_assumptions:  # possible for some value of the missing facts?
            if not analysis.sat(checked.facts_of(assumption.body), subject=f"assumption `{assumption.id}`"):
                raise DiagnosticError([_violation(checked, assumption, facts)])


def _violation(checked: CheckedProtocol, assumption: ast.Assumption, facts: Mapping[str, Value]) -> Diagnostic:
    known = [f"{name} = {shown(checked.facts[name].type, facts[name])}"
             for name in sorted(checked.facts_of(assumption.body)) if name in facts]
    return error("assumption-violated", f"the patient's facts contradict assumption `{assumption.id}`: "
                 f"{assumption.label}", assumption.span, "the protocol assumes this of every patient",
                 help="check these facts: " + ", ".join(known))


class Analysis:
    """Z3 queries for one patient over the compiled protocol; only the needed facts are assumed."""

    def __init__(self, compiled: Any, facts: Mapping[str, Value], budget: Budget | None = None) -> None:
        self.compiled = compiled
        self.facts = facts
        self.solver = compiled.solver
        self.budget = budget if budget is not None else Budget()
        self._linked: dict[frozenset[str], frozenset[str]] = {}

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
            grown, grew = set(key), True
            while grew:
                grew = False
                for group, _ in self.compiled.assumptions:
                    if grown & group and not group <= grown:
                        grown |= group
                        grew = True
            closed = self._linked[key] = frozenset(grown)
        return closed

    def sat(self, names: Collection[str], *formulas: Any, subject: str = "the patient") -> bool:
        """Is there a possible patient, agreeing with the known facts among `names`, where `formulas` hold?"""
        linked = self.linked(names)
        relevant = [term for group, term in self.compiled.assumptions if group & linked]
        query = [*self.assumptions(names), *relevant, *formulas]
        return solve(self.solver, query, self.budget, subject, (self.compiled,), linked) is not None

    def refine(self, result: CriterionResult, can_pass: bool | None = None) -> None:
        """Decide a criterion that the known facts leave open: can it pass? can it fail?"""
        import z3

        names = self.compiled.criterion_facts[result.id]
        passes = self.compiled.passes[result.id]
        subject = f"criterion `{result.id}`"
        if can_pass is None:
            can_pass = self.sat(names, passes, subject=subject)
        can_fail = self.sat(names, z3.Not(passes), subject=subject)
        result.missing = tuple(self.unknown_facts(names))
        result.decided_by = DecidedBy.SOLVER
        if not (can_pass and can_fail):
            result.passes = can_pass

    def node_status(self, node: ast.Expr, names: Collection[str], subject: str = "a path") -> Truth:
        """Can this condition (a named path) be true, and can it be false, under the known facts?"""
        import z3

        condition = self.compiled.condition(node)
        can_hold = self.sat(names, condition, subject=subject)
        can_fail = self.sat(names, z3.Not(condition), subject=subject)
        return None if can_hold and can_fail else can_hold

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
            for fact in self.unknown_facts(self.linked(self.compiled.criterion_facts[cid])):
                if fact in owner:
                    parent[root(cid)] = root(owner[fact])
                else:
                    owner[fact] = cid
        groups: dict[str, list[str]] = {}
        for cid in criteria:
            groups.setdefault(root(cid), []).append(cid)
        return list(groups.values())

    def names_of(self, criteria: list[str]) -> frozenset[str]:
        return frozenset().union(*(self.compiled.criterion_facts[c] for c in criteria))

    def satisfiable(self, criteria: list[str]) -> bool:
        """Can these criteria all pass together under the known facts?"""
        subject = f"whether {_criteria_words(criteria)} can pass together" if len(criteria) > 1 \
            else f"criterion `{criteria[0]}`"
        return self.sat(self.names_of(criteria), self._conjunction(criteria), subject=subject)

    def minimal_conflict(self, criteria: list[str]) -> list[str]:
        """A smallest-by-deletion set of criteria that cannot all pass together."""
        core = list(criteria)
        for cid in list(criteria):
            trial = [c for c in core if c != cid]
            if trial and not self.satisfiable(trial):
                core = trial
        return core

    def decisive_facts(self, criteria: list[str]) -> dict[str, list[str]]:
        """Missing facts of one component whose value can change whether the component passes."""
        names = self.names_of(criteria)
        unknown = self.unknown_facts(names)
        whole = self._conjunction(criteria) if len(unknown) > 1 else None
        decisive: dict[str, list[str]] = {}
        for fact in unknown:
            if whole is not None and not self.can_change(names, whole, fact, about=_criteria_words(criteria)):
                continue
            decisive[fact] = [c for c in criteria
                              if fact in self.compiled.criterion_facts[c] and self._decides(c, fact)]
        return decisive

    def _conjunction(self, criteria: list[str]) -> Any:
        from eligib.values.z3terms import conjunction

        return conjunction([self.compiled.passes[c] for c in criteria], self.compiled.ctx)

    def _decides(self, cid: str, fact: str) -> bool:
        names = self.compiled.criterion_facts[cid]
        if len(self.unknown_facts(names)) == 1:
            return True
        return self.can_change(names, self.compiled.passes[cid], fact, cache_key=cid, about=f"criterion `{cid}`")

    def can_change(self, names: Collection[str], formula: Any, fact: str, cache_key: str | None = None,
                   about: str = "the verdict") -> bool:
        """Two completions differing only in `fact` that disagree on `formula` (`about` names it)."""
        import z3

        extra = []
        touching = self.compiled.assumptions_on(fact)
        if touching is not None:  # the other completion must be a possible patient too; assumptions that
            # do not read `fact` hold in it exactly when they hold in the first one
            extra.append(self.compiled.with_copy(touching, fact, cache_key="assumptions"))
        return self.sat(names, formula, z3.Not(self.compiled.with_copy(formula, fact, cache_key)), *extra,
                        subject=f"whether `{fact}` can change {about}")


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

    analysis = Analysis(compiled, facts, Budget(None))
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
