"""Decide a patient: per-criterion status, verdict, and which missing facts matter.

Known facts decide most criteria exactly by three-valued evaluation (a definite Kleene answer
holds in every completion). Whatever that leaves unknown, Z3 decides over the declared fact
domains: a criterion is met only if it holds for every completion of the missing facts, and
the verdict considers the criteria jointly, so a fact shared by two criteria or limited by a
declared range is handled exactly. A missing fact "matters" when two completions that differ
only in that fact get different verdicts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from eligib.language import ast
from eligib.language.checker import CheckedProtocol
from eligib.logic.evaluate import Evaluator, criterion_outcome
from eligib.limits import CHECK_SECONDS, QUERY_SECONDS



class SolverTimeout(Exception):
    """The solver could not answer in the time it had; no verdict may be given.

    `seconds` is the limit that ran out: the whole budget, or (`per_query`) one question's share."""

    def __init__(self, reason: str, subject: str = "", seconds: float | None = None, per_query: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.subject, self.seconds, self.per_query = reason, subject, seconds, per_query

    def __str__(self) -> str:
        about = f" deciding {self.subject}" if self.subject else ""
        if self.seconds is None:
            return f"the solver gave up{about} ({self.reason})"
        if self.per_query:
            return f"the solver gave up{about} after {self.seconds:g} s, the limit for one question ({self.reason})"
        return f"the solver gave up{about}: the time budget of {self.seconds:g} s ran out ({self.reason})"


class Budget:
    """The time one piece of solver work may take in all (a check, a verify), and at most per question."""

    def __init__(self, seconds: float | None = CHECK_SECONDS, per_query: float = QUERY_SECONDS) -> None:
        self.seconds, self.per_query = seconds, per_query
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def query_ms(self, subject: str) -> tuple[int, bool]:
        """(milliseconds the next question may take, whether that is the per-question limit);
        SolverTimeout when the budget is spent."""
        cap = int(self.per_query * 1000)
        if self.deadline is None:
            return cap, True
        left = int((self.deadline - time.monotonic()) * 1000)
        if left <= 0:
            raise SolverTimeout("time budget spent", subject, self.seconds)
        return (cap, True) if cap < left else (left, False)


def solve(solver: Any, formulas: list, budget: Budget, subject: str, protocols: tuple = (),
          names: Any = None) -> Any:
    """A calendar-exact model of `formulas`, or None when there is none. Raises SolverTimeout.

    A `sat` answer is only believed once the model's month shifts match the calendar (see
    CompiledProtocol.calendar_lemmas): until then the true lemmas it breaks are added and the
    solver asked again. An `unsat` answer needs no repair: the bounds the solver starts with are sound."""
    import z3

    while True:
        limit, per_query = budget.query_ms(subject)
        solver.set("timeout", limit)
        result = solver.check(*formulas)
        if result == z3.unknown:
            seconds = budget.per_query if per_query else budget.seconds
            raise SolverTimeout(solver.reason_unknown(), subject, seconds, per_query)
        if result == z3.unsat:
            return None
        model = solver.model()
        lemmas = [lemma for compiled in protocols for lemma in compiled.calendar_lemmas(model, names)]
        if not lemmas:
            return model
        solver.add(*lemmas)


@dataclass
class CriterionResult:
    id: str
    kind: str
    applies: bool | None  # False when its `only if` condition is false for this patient
    passes: bool | None  # does it let the patient through (True/False), or is that open (None)
    decided_by: str  # "facts" (known values decide it) or "solver" (decided over the missing facts)
    missing: tuple[str, ...] = ()  # missing facts it depends on

    @property
    def status(self) -> str:
        """met / not_met / unknown / not_applicable; for an exclusion `met` means the patient is excluded."""
        if self.applies is False:
            return "not_applicable"
        if self.passes is None:
            return "unknown"
        return "met" if self.passes == (self.kind == "inclusion") else "not_met"


@dataclass
class Decision:
    verdict: str  # "eligible" | "ineligible" | "undetermined"
    criteria: dict[str, CriterionResult]
    blocking: list[str]  # criteria that definitely keep the patient out
    conflicts: list[list[str]]  # criteria each possible alone but impossible together
    missing: dict[str, list[str]]  # missing fact that matters -> criteria it could decide
    evaluator: Evaluator = field(repr=False)
    analysis: Any = field(default=None, repr=False)


def decide(checked: CheckedProtocol, facts: dict[str, Any], compiled_source=None,
           budget: Budget | None = None) -> Decision:
    """Decide one patient. `compiled_source()` returns the (cached) Z3 compilation, built on first need;
    `budget` bounds the solver's time in all (SolverTimeout when it runs out: no verdict).

    Raises DiagnosticError when the known facts contradict one of the protocol's assumptions:
    such a patient has no completion at all, so no verdict would mean anything."""
    budget = budget if budget is not None else Budget()
    evaluator = Evaluator(checked, facts)
    _check_assumptions(checked, facts, evaluator, compiled_source, budget)
    results: dict[str, CriterionResult] = {}
    for cid, criterion in checked.criteria.items():
        applies, _, passes = criterion_outcome(evaluator, criterion)
        results[cid] = CriterionResult(cid, criterion.kind, applies, passes, "facts")
    unknown = [cid for cid, r in results.items() if r.passes is None]
    blocking = [cid for cid, r in results.items() if r.passes is False]
    if not unknown:
        verdict = "ineligible" if blocking else "eligible"
        return Decision(verdict, results, blocking, [], {}, evaluator)
    analysis = Analysis(compiled_source(), facts, budget)
    jointly_possible = analysis.satisfiable(unknown)  # one model shows every open criterion can pass
    for cid in unknown:
        analysis.refine(results[cid], can_pass=True if jointly_possible else None)
    blocking = [cid for cid, r in results.items() if r.passes is False]
    if blocking:
        return Decision("ineligible", results, blocking, [], {}, evaluator, analysis)
    still_unknown = [cid for cid in unknown if results[cid].passes is None]
    if not still_unknown:
        return Decision("eligible", results, [], [], {}, evaluator, analysis)
    components = analysis.components(still_unknown)
    conflicts = [] if jointly_possible else [c for c in components if not analysis.satisfiable(c)]
    if conflicts:
        cores = [analysis.minimal_conflict(component) for component in conflicts]
        return Decision("ineligible", results, [], cores, {}, evaluator, analysis)
    missing: dict[str, list[str]] = {}
    for component in components:
        for fact, criteria in analysis.decisive_facts(component).items():
            missing[fact] = criteria
    ordered = dict(sorted(missing.items()))
    return Decision("undetermined", results, [], [], ordered, evaluator, analysis)


def _check_assumptions(checked: CheckedProtocol, facts: dict[str, Any], evaluator: Evaluator,
                       compiled_source, budget: Budget) -> None:
    from eligib.language.diagnostics import DiagnosticError

    open_assumptions = []
    for aid, assumption in checked.assumptions.items():
        holds = evaluator.truth(evaluator.eval(assumption.body))
        if holds is None:
            open_assumptions.append(assumption)
        elif holds is False:
            raise DiagnosticError([_violation(checked, assumption, facts)], {checked.source.path: checked.source})
    if open_assumptions and compiled_source is not None:
        analysis = Analysis(compiled_source(), facts, budget)
        for assumption in open_assumptions:  # possible for some value of the missing facts?
            if not analysis.sat(checked.facts_of(assumption.body), subject=f"assumption `{assumption.id}`"):
                raise DiagnosticError([_violation(checked, assumption, facts)], {checked.source.path: checked.source})


def _violation(checked: CheckedProtocol, assumption, facts: dict[str, Any]):
    from eligib.language.diagnostics import error
    from eligib.report.explain import show_value

    known = [f"{name} = {show_value(checked, name, facts[name])}"
             for name in sorted(checked.facts_of(assumption.body)) if name in facts]
    return error("assumption-violated", f"the patient's facts contradict assumption `{assumption.id}`: "
                 f"{assumption.label}", assumption.span, "the protocol assumes this of every patient",
                 help="check these facts: " + ", ".join(known))


class Analysis:
    """Z3 queries for one patient over the compiled protocol; only the needed facts are assumed."""

    def __init__(self, compiled, facts: dict[str, Any], budget: Budget | None = None) -> None:
        self.compiled = compiled
        self.facts = facts
        self.solver = compiled.solver
        self.budget = budget if budget is not None else Budget()
        self._linked: dict[frozenset[str], frozenset[str]] = {}

    def unknown_facts(self, names) -> list[str]:
        return sorted(name for name in names if name not in self.facts)

    def assumptions(self, names) -> list:
        """Literals fixing the known facts among `names` and every fact an assumption links to them."""
        literals: list = []
        for name in self.linked(names):
            if name in self.facts:
                literals.extend(self.compiled.fact_assumptions(name, self.facts[name]))
        return literals

    def linked(self, names) -> frozenset[str]:
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

    def sat(self, names, *formulas, subject: str = "the patient") -> bool:
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
        result.decided_by = "solver"
        if not (can_pass and can_fail):
            result.passes = can_pass

    def node_status(self, node: ast.Expr, names, subject: str = "a path") -> bool | None:
        """Can this condition (a named path) be true, and can it be false, under the known facts?"""
        import z3

        condition = self.compiled.condition(node)
        can_hold = self.sat(names, condition, subject=subject)
        can_fail = self.sat(names, z3.Not(condition), subject=subject)
        if can_hold and can_fail:
            return None
        return can_hold

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
            decides = [c for c in criteria if fact in self.compiled.criterion_facts[c]
                       and self._decides(c, fact)]
            decisive[fact] = decides
        return decisive

    def _conjunction(self, criteria: list[str]):
        from eligib.logic.compiler import conjunction

        return conjunction([self.compiled.passes[c] for c in criteria], self.compiled.ctx)

    def _decides(self, cid: str, fact: str) -> bool:
        names = self.compiled.criterion_facts[cid]
        if len(self.unknown_facts(names)) == 1:
            return True
        return self.can_change(names, self.compiled.passes[cid], fact, cache_key=cid, about=f"criterion `{cid}`")

    def can_change(self, names, formula, fact: str, cache_key: str | None = None, about: str = "the verdict") -> bool:
        """Two completions differing only in `fact` that disagree on `formula` (`about` names it)."""
        import z3

        extra = []
        if self.compiled.assumed is not None:  # the other completion must be a possible patient too
            extra.append(self.compiled.with_copy(self.compiled.assumed, fact, cache_key="assumptions"))
        return self.sat(names, formula, z3.Not(self.compiled.with_copy(formula, fact, cache_key)), *extra,
                        subject=f"whether `{fact}` can change {about}")


def _criteria_words(criteria: list[str]) -> str:
    """`criterion `a`` or `criteria `a`, `b`, ...`: what a query is about, for a time-out message."""
    if len(criteria) == 1:
        return f"criterion `{criteria[0]}`"
    listed = ", ".join(f"`{c}`" for c in criteria[:5])
    return f"criteria {listed}{', ...' if len(criteria) > 5 else ''}"


def decide_by_solver(compiled, facts: dict[str, Any]) -> tuple[str, dict[str, bool | None]]:
    """Verdict and per-criterion outcome from Z3 alone, every known fact assumed.

    Slower than `decide` (no three-valued shortcut); it exists to cross-check `decide` and the
    reference evaluator, and as the plain statement of the semantics."""
    import z3

    analysis = Analysis(compiled, facts, Budget(None))
    every = frozenset(compiled.facts)
    passes: dict[str, bool | None] = {}
    for cid, formula in compiled.passes.items():
        can_pass, can_fail = analysis.sat(every, formula), analysis.sat(every, z3.Not(formula))
        passes[cid] = None if can_pass and can_fail else can_pass
    all_pass = compiled.eligible()
    can_be_eligible, can_be_ineligible = analysis.sat(every, all_pass), analysis.sat(every, z3.Not(all_pass))
    verdict = "undetermined" if can_be_eligible and can_be_ineligible else (
        "eligible" if can_be_eligible else "ineligible")
    return verdict, passes
