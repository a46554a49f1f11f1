"""Symbolic analysis of a protocol: consistency findings, each with a witness patient or a minimal core.

Questions asked over the declared fact domains (every patient the protocol could meet):
- does the protocol admit anyone?
- can each inclusion hold and fail? can each exclusion fire, and stay silent, among patients who
  meet every inclusion?
- is each named path taken by some eligible patient (for an exclusion: fired by some patient who
  meets the inclusions)? a dead path comes with the smallest set of criteria that rule it out;
- is a criterion implied by the others (redundant)?
- does each assertion hold for every eligible patient?
Every witness is checked with `eligib check` semantics before it is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from eligib.analysis.parts import Parts
from eligib.analysis.rechecks import Rechecks
from eligib.analysis.witness import WitnessError, exact_model, patient_from_model, preferences
from eligib.engine import Engine
from eligib.language import ast
from eligib.language.diagnostics import Diagnostic, DiagnosticError, EligibError, Finding, Severity, error, suggest
from eligib.language.source import Span
from eligib.limits import VERIFY_QUERY_SECONDS, VERIFY_SECONDS
from eligib.logic.budget import Budget, solve
from eligib.logic.models import canonical_values
from eligib.values.types import Value
from eligib.values.z3terms import conjunction

Term = Any  # a Z3 expression


Scope = frozenset[str] | None  # the facts a question may set (None: all of them)


@dataclass(frozen=True)
class Witness:
    """A model found for a question; `facts`, when the question was asked of some parts only, are those
    it sets (the others are the eligible patient's)."""

    model: Any
    facts: Scope


def _found(severity: str, code: str, message: str, span: Span | None, criteria: Sequence[str] = (),
           witness: dict[str, Any] | None = None, witness_verdict: str | None = None, help: str = "",
           subject: str = "") -> Finding:
    return Finding(Severity(severity), code, message, span, help=help, subject=subject, criteria=tuple(criteria),
                   witness=witness, witness_verdict=witness_verdict)


class Prover:
    """Z3 questions about one compiled protocol, with per-criterion tracking for minimal cores.

    Until an eligible patient is known, every question goes to one solver holding the whole protocol.
    Once one is (`ground`), each question goes to a solver holding only the parts of the protocol it
    touches (parts.py), and a witness is that patient with the part's facts changed."""

    def __init__(self, engine: Engine, budget: Budget | None = None, split: bool = True) -> None:
        self.engine = engine
        self.split = split
        self.checked = engine.checked
        self.compiled = engine.compiled()
        self.budget = budget if budget is not None else Budget(VERIFY_SECONDS, VERIFY_QUERY_SECONDS)
        ctx = self.compiled.ctx
        self.solver = z3.Solver(ctx=ctx)
        self.solver.add(self.compiled.solver.assertions())
        if self.compiled.assumed is not None:
            self.solver.add(self.compiled.assumed)  # only possible patients are considered
        self.track = {cid: z3.Bool(f"track:{cid}", ctx) for cid in self.compiled.passes}
        for cid, literal in self.track.items():
            self.solver.add(z3.Implies(literal, self.compiled.passes[cid]))
        self.preferences = preferences(self.compiled)
        self.inclusions = [cid for cid, c in self.checked.criteria.items() if c.kind == ast.CriterionKind.INCLUSION]
        self.parts: Parts | None = None
        self.base: dict[str, Value] = {}
        self.rechecks: Rechecks | None = None

    def ground(self, eligible: Any) -> None:
        """Ask every later question of its own parts, with this eligible patient (a model) for the rest."""
        if not self.split:
            return
        self.base = canonical_values(self.compiled, eligible)
        self.parts = Parts(self.compiled, self.track)
        self.rechecks = Rechecks(self.checked, self.base)

    def _scoped(self, formulas: Sequence[Term], passing: Sequence[str]) -> tuple[Any, list[Term], Scope]:
        """The solver for a question, its formulas with the `passing` criteria's, and the facts it may set."""
        if self.parts is None:
            return self.solver, [*formulas, *[self.compiled.passes[c] for c in passing]], None
        scope = self.parts.scope(formulas)
        kept = self.parts.criteria_in(scope, passing)
        return self.parts.solver(scope), [*formulas, *[self.compiled.passes[c] for c in kept]], \
            self.parts.facts_in(scope)

    def model(self, *formulas: Term, passing: Sequence[str] = ()) -> Witness | None:
        """A calendar-exact model of the formulas with the `passing` criteria met, preferring recent
        dates; None when there is none."""
        solver, query, facts = self._scoped(formulas, passing)
        wishes = self.preferences if facts is None else preferences(self.compiled, facts)
        model = exact_model(solver, [self.compiled], query, wishes, self.budget, facts=facts)
        return None if model is None else Witness(model, facts)

    def witness(self, found: Witness, expected: str, path: str | None = None,
                blocked_by: str | None = None) -> dict[str, Any]:
        """The model as a facts file, checked to give the expected verdict (to take `path`, to be
        blocked by `blocked_by`): a witness that does not check as claimed is a bug, never output.
        A grounded witness is checked against the eligible patient it changes (rechecks.py)."""
        if found.facts is None or self.rechecks is None:
            facts = patient_from_model(self.compiled, found.model)
            result = self.engine.check(facts)
            verdict, blocking = str(result.verdict), result.blocking
            takes = path is None or result.path_status(path) == "holds"
        else:
            changed = canonical_values(self.compiled, found.model, only=found.facts)
            facts, values = self.rechecks.file({**self.base, **changed})
            verdict, blocking = self.rechecks.outcome(values)
            takes = path is None or self.rechecks.path_holds(path, values)
        if verdict != expected or not takes or (blocked_by is not None and blocked_by not in blocking):
            raise AssertionError(f"witness does not check as claimed: {verdict} (expected {expected}"
                                 f"{', path ' + path if path else ''}"
                                 f"{', blocked by ' + blocked_by if blocked_by else ''})")
        return facts

    def core(self, formula: Term, among: list[str] | None = None) -> list[str] | None:
        """The smallest-by-deletion set of criteria that, with `formula`, admit no patient; None if some do.
        Once grounded, only criteria in the formula's parts can be in it: the others are met, jointly
        with every assumption, by the eligible patient, and share no variable with the rest."""
        candidates = list(among if among is not None else self.track)
        solver, _, facts = self._scoped([formula], [])
        if self.parts is not None:
            candidates = self.parts.criteria_in(self.parts.scope([formula]), candidates)
        if solve(solver, [formula, *[self.track[c] for c in candidates]], self.budget, "the protocol",
                 (self.compiled,), facts, copies=False) is not None:
            return None
        core = [str(lit).removeprefix("track:") for lit in solver.unsat_core() if str(lit).startswith("track:")]
        for cid in list(core):
            trial = [c for c in core if c != cid]
            if solve(solver, [formula, *[self.track[c] for c in trial]], self.budget, "the protocol",
                     (self.compiled,), facts, copies=False) is None:
                core = trial
        return core

    def condition(self, node: ast.Expr) -> Term:
        return self.compiled.condition(node)

    def applies(self, criterion: ast.Criterion) -> Term:
        return z3.BoolVal(True, self.compiled.ctx) if criterion.guard is None else self.condition(criterion.guard)


def verify(engine: Engine, budget: Budget | None = None, split: bool = True) -> list[Finding]:
    """Every finding about a protocol; when nobody can be eligible, only what pinpoints why.
    `budget` bounds the solver's time in all (SolverTimeout when it runs out). `split=False` asks every
    question of the whole protocol (slower; the same findings, kept to cross-check the split)."""
    prover = Prover(engine, budget, split)
    findings = [_found(d.severity, d.code, d.message, d.span, help=d.help, subject="protocol")
                for d in engine.checked.warnings]
    admitted = _guarded(prover, admits)
    findings += admitted + _guarded(prover, inclusions) + _guarded(prover, exclusions)
    if admitted and admitted[0].code == "no-eligible-patient":
        findings.append(_found("error", "not-checked", "paths, redundancy and assertions were not checked: no "
                                "patient is eligible, so every claim about eligible patients would hold vacuously",
                                prover.checked.protocol.header.span, subject="protocol"))
        return findings
    return findings + _guarded(prover, paths) + _guarded(prover, redundancy) + _guarded(prover, assertions)


def _guarded(prover: Prover, check: Callable[[Prover], list[Finding]]) -> list[Finding]:
    """One group of checks; a witness no patient file can state exactly is a finding, never a crash."""
    try:
        return check(prover)
    except WitnessError as exc:
        return [_found("warning", "inexact-witness", f"the {check.__name__} checks found a witness patient that "
                        f"no facts file can state exactly: {exc}", prover.checked.protocol.header.span,
                        subject="protocol", help="a criterion forces a value with no finite decimal form (such as "
                        "1/3); restate it so that thresholds are decimals")]


def admits(prover: Prover) -> list[Finding]:
    model = prover.model(passing=list(prover.compiled.passes))
    span = prover.checked.protocol.header.span
    if model is None:
        core = prover.core(z3.BoolVal(True, prover.compiled.ctx)) or []
        return [_found("error", "no-eligible-patient", "no patient can meet this protocol", span, core,
                        help="these criteria contradict each other: " + ", ".join(f"`{c}`" for c in core),
                        subject="protocol")]
    witness = prover.witness(model, "eligible")
    prover.ground(model.model)
    return [_found("ok", "admits-patients", "the protocol admits eligible patients", span, [], witness, "eligible",
                   subject="protocol")]


def inclusions(prover: Prover) -> list[Finding]:
    findings = []
    for cid, criterion in prover.checked.criteria.items():
        if criterion.kind != "inclusion":
            continue
        applies, body = prover.applies(criterion), prover.condition(criterion.body)
        holding = prover.model(applies, body)
        others = [c for c in prover.compiled.passes if c != cid]
        # a witness failing this inclusion alone reads best; fall back to any patient it fails
        failing = prover.model(applies, z3.Not(body), passing=others) or prover.model(applies, z3.Not(body))
        if holding is None:
            findings.append(_found("error", "contradictory-inclusion", f"inclusion `{cid}` can never be met",
                                    criterion.span, [cid], help="its condition contradicts itself or the "
                                    "declared fact ranges; nobody is eligible", subject=cid))
        elif failing is None:
            findings.append(_found("warning", "tautological-inclusion", f"inclusion `{cid}` is met by every "
                                    "patient", criterion.span, [cid], help="it excludes nobody: check its "
                                    "thresholds and the declared fact ranges", subject=cid))
        else:
            findings.append(_found("ok", "inclusion-can-fail", f"inclusion `{cid}` can be met and can fail",
                                    criterion.span, [cid], prover.witness(failing, "ineligible", blocked_by=cid),
                                    "ineligible", subject=cid))
    return findings


def exclusions(prover: Prover) -> list[Finding]:
    included = prover.inclusions
    findings = []
    for cid, criterion in prover.checked.criteria.items():
        if criterion.kind != "exclusion":
            continue
        fires = z3.And(prover.applies(criterion), prover.condition(criterion.body))
        firing = prover.model(fires, passing=included)
        silent = prover.model(z3.Not(fires), passing=included)
        if firing is None:
            core = prover.core(fires, included) or []
            findings.append(_found("warning", "exclusion-never-fires", f"exclusion `{cid}` never applies to a "
                                    "patient who meets the inclusions", criterion.span, _with(cid, core),
                                    help="ruled out by " + (", ".join(f"`{c}`" for c in core) or "its own condition"),
                                    subject=cid))
        elif silent is None:
            findings.append(_found("error", "exclusion-always-fires", f"exclusion `{cid}` excludes every patient"
                                    " who meets the inclusions", criterion.span, [cid],
                                    help="nobody is eligible; check its condition", subject=cid))
        else:
            findings.append(_found("ok", "exclusion-can-fire", f"exclusion `{cid}` can fire and can stay silent",
                                    criterion.span, [cid], prover.witness(firing, "ineligible", blocked_by=cid),
                                    "ineligible", subject=cid))
    return findings


def paths(prover: Prover) -> list[Finding]:
    checked = prover.checked
    every, included = list(prover.compiled.passes), prover.inclusions
    findings = []
    for cid, criterion in checked.criteria.items():
        for path in checked.paths_of(cid):
            # taken: the criterion applies and every enclosing path holds
            taken = z3.And([prover.applies(criterion)] + [prover.condition(body) for body in path.chain])
            name, span = path.full, path.item.span
            if criterion.kind == ast.CriterionKind.INCLUSION:
                model = prover.model(taken, passing=every)
                if model is None:
                    core = prover.core(taken) or []
                    findings.append(_found("error", "dead-path", f"path `{name}` is taken by no eligible patient",
                                           span, _with(cid, core), help=_core_help(core), subject=name))
                else:
                    findings.append(_found("ok", "path-taken", f"path `{name}` is taken by an eligible patient",
                                           span, [cid], prover.witness(model, "eligible", name), "eligible",
                                           subject=name))
            else:
                # taken: the exclusion fires with this path holding (an `all of` part alone fires nothing)
                fires = z3.And(prover.applies(criterion), prover.condition(criterion.body), taken)
                model = prover.model(fires, passing=included)
                if model is None:
                    core = prover.core(fires, included) or []
                    findings.append(_found("warning", "dead-exclusion-path", f"path `{name}` never fires for a "
                                           "patient who meets the inclusions", span, _with(cid, core),
                                           help=_core_help(core), subject=name))
                else:
                    findings.append(_found("ok", "exclusion-path-fires", f"path `{name}` can fire", span, [cid],
                                           prover.witness(model, "ineligible", name), "ineligible", subject=name))
    return findings


def _with(own: str, core: list[str]) -> list[str]:
    """The criterion a finding is about, then the criteria that explain it."""
    return [own] + [c for c in core if c != own]


def _core_help(core: list[str]) -> str:
    if not core:
        return "the path contradicts itself or the declared fact ranges"
    return "ruled out by " + ", ".join(f"`{c}`" for c in core)


def redundancy(prover: Prover) -> list[Finding]:
    findings = []
    for cid, criterion in prover.checked.criteria.items():
        others = [c for c in prover.compiled.passes if c != cid]
        core = prover.core(z3.Not(prover.compiled.passes[cid]), others)
        if core is not None:
            findings.append(_found("warning", "redundant-criterion", f"{criterion.kind} `{cid}` is implied by "
                                    "other criteria", criterion.span, _with(cid, core),
                                    help="implied by " + (", ".join(f"`{c}`" for c in core) or
                                                          "the declared fact ranges"), subject=cid))
    return findings


def assertions(prover: Prover) -> list[Finding]:
    every = list(prover.compiled.passes)
    findings = []
    for aid, assertion in prover.checked.assertions.items():
        counterexample = prover.model(z3.Not(prover.condition(assertion.body)), passing=every)
        if counterexample is None:
            findings.append(_found("ok", "assertion-proved", f"assertion `{aid}` holds for every eligible patient",
                                    assertion.span, [], help=assertion.label, subject=aid))
        else:
            witness = prover.witness(counterexample, "eligible")
            findings.append(_found("error", "assertion-refuted", f"assertion `{aid}` fails for an eligible "
                                    f"patient: {assertion.label}", assertion.span, [], witness, "eligible",
                                    help="the witness patient is eligible but breaks the assertion", subject=aid))
    return findings


class NoSuchPatient(EligibError):
    """No patient meets the request; `core` names the criteria that rule it out."""

    exit_code = 1

    def __init__(self, message: str, core: list[str]) -> None:
        super().__init__(message)
        self.core = core

    @property
    def diagnostics(self) -> list[Diagnostic]:
        because = f"; ruled out by {', '.join(f'`{c}`' for c in self.core)}" if self.core else ""
        return [error("no-such-patient", f"no patient meets this request{because}")]


def example(engine: Engine, path: str | None = None, failing: tuple[str, ...] = (),
            budget: Budget | None = None) -> dict[str, Any]:
    """A facts file eligible through `path`, or ineligible exactly because of the `failing` criteria."""
    prover = Prover(engine, budget)
    checked, compiled = prover.checked, prover.compiled
    unknown = [cid for cid in failing if cid not in compiled.passes]
    if unknown:
        raise DiagnosticError([error("unknown-criterion", f"unknown criterion `{unknown[0]}`",
                                     help=suggest(unknown[0], compiled.passes) or "see `eligib validate`")])
    formulas = [compiled.passes[c] if c not in failing else z3.Not(compiled.passes[c]) for c in compiled.passes]
    expected = "ineligible" if failing else "eligible"
    if path is not None:
        named = checked.path_index.get(path)
        if named is None:
            raise DiagnosticError([error("unknown-path", f"unknown path `{path}`",
                                         help=suggest(path, checked.path_index) or "paths are written "
                                                                                   "criterion.path.subpath")])
        criterion = checked.criteria[named.criterion]
        formulas.append(z3.And([prover.applies(criterion)] + [prover.condition(body) for body in named.chain]))
    request = conjunction(formulas, compiled.ctx)
    model = prover.model(request)
    if model is None:
        core = prover.core(conjunction([z3.Not(compiled.passes[c]) for c in failing] +
                                       ([formulas[-1]] if path is not None else []), compiled.ctx),
                           [c for c in compiled.passes if c not in failing]) or []
        raise NoSuchPatient("no patient meets this request", core)
    facts = prover.witness(model, expected, path if path is not None and not failing else None)
    if failing:
        blocking = sorted(engine.check(facts).blocking)
        if blocking != sorted(failing):
            raise AssertionError(f"example blocks on {blocking}, not {sorted(failing)}")
    return facts
