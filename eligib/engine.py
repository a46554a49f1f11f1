"""The Engine: a protocol loaded once, and the pipeline that checks patients against it
(read the patient -> decide -> explain).

An Engine may be shared between threads: each thread that needs the solver gets its own Z3
compilation of the protocol (Z3 contexts are not safe to share), built on that thread's first
need and reused for its later checks.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from eligib.inputs.facts import Given, Patient, given_facts, load_patient, patient_from_mapping, with_given
from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.language.checker import load, load_text
from eligib.language.diagnostics import DiagnosticError, error, suggest
from eligib.language.timepoints import FINAL, judged_at, pending_at
from eligib.limits import CHECK_SECONDS
from eligib.logic.budget import Budget
from eligib.logic.evaluate import Evaluator, Verdict
from eligib.logic.slots import slot_counts, witness_bounds
from eligib.logic.solver import Decision, decide
from eligib.report.explain import explain
from eligib.report.explanation import Explanation, PendingCheck
from eligib.values.types import Value

COMPILATIONS_KEPT = 8  # per thread: compilations for different numbers of listed history items


@dataclass
class Engine:
    """A checked protocol plus its Z3 compilation (one per thread), built on first need and reused."""

    checked: CheckedProtocol
    _per_thread: threading.local = field(default_factory=threading.local, repr=False, compare=False)
    _bounds: dict[str, int] | None = field(default=None, repr=False, compare=False)
    _at: dict[str, Engine] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_file(cls, path: str, cache: bool = False) -> Engine:
        """Load, parse and check a protocol file; `cache` uses the parsed-protocol cache (docs/cli.md)."""
        return cls(load(path, cache))

    @classmethod
    def from_text(cls, text: str, path: str = "<protocol>") -> Engine:
        """Parse and check protocol text (`path` names it in messages)."""
        return cls(load_text(text, path))

    def compiled(self, facts: Mapping[str, Value] | None = None) -> Any:
        """This thread's Z3 compilation of the protocol (imports z3: only when a fact is missing), with
        as many history items as `facts` (a patient's known values) can need; by default, as many as
        a patient with no history known can need (eligib/logic/slots.py)."""
        if self._bounds is None:
            self._bounds = witness_bounds(self.checked)  # once per engine: it walks the whole protocol
        slots = slot_counts(self.checked, facts, self._bounds)
        key = tuple(sorted(slots.items()))
        cache: dict[tuple[tuple[str, int], ...], Any] | None = getattr(self._per_thread, "compiled", None)
        if cache is None:
            cache = self._per_thread.compiled = {}
        compiled = cache.get(key)
        if compiled is None:
            from eligib.logic.compiler import compile_protocol

            if len(cache) >= COMPILATIONS_KEPT:  # one per shape of history seen: keep the latest few
                del cache[next(iter(cache))]
            compiled = cache[key] = compile_protocol(self.checked, slots=slots)
        return compiled

    def patient(self, source: str | dict[str, Any], given: Given | None = None) -> Patient:
        """A validated patient from a file path (`-` for stdin; a facts file or a FHIR bundle) or a mapping
        of fact values, with the `given` facts added (`given_facts`: `--fact`, `--facts`)."""
        if isinstance(source, dict):
            return patient_from_mapping(self.checked, with_given(source, given, "the mapping") if given else source)
        return load_patient(self.checked, source, given)

    def given(self, options: list[str], path: str | None = None) -> Given:
        """Facts given beside a patient file: `NAME=VALUE` options and a facts file (docs/cli.md)."""
        return given_facts(self.checked, options, path)

    def decide(self, patient: Patient, timeout: float | None = CHECK_SECONDS) -> Decision:
        """The verdict; `timeout` seconds bound the solver in all (SolverTimeout: no verdict)."""
        return decide(self.checked, patient.values, lambda: self.compiled(patient.values), Budget(timeout))

    def check(self, source: str | dict[str, Any] | Patient, timeout: float | None = CHECK_SECONDS,
              at: str | None = None, given: Given | None = None) -> Explanation:
        """Verdict and full explanation for one patient, within `timeout` seconds of solver time: at time
        point `at` (the criteria assessed by then, and the checks still to come), or over every criterion.
        `given`: facts added to the patient file's (`Engine.given`)."""
        patient = source if isinstance(source, Patient) else self.patient(source, given)
        if at is not None:
            return self._check_at(patient, at, timeout)
        decision = self.decide(patient, timeout)
        return explain(self.checked, decision, patient.path, patient.warnings)

    def timepoint(self, asked: str | None) -> str | None:
        """The time point `eligib check --at` judges at: the first when none is asked, every criterion
        (None) for `final` or a protocol without time points."""
        if asked == FINAL or (asked is None and not self.checked.timepoints):
            return None
        return self.checked.timepoints[0] if asked is None else asked

    def at(self, point: str) -> Engine:
        """The protocol as judged at a time point: the criteria first assessed at it or before."""
        order = self.checked.timepoints
        if point not in order:
            hint = (suggest(point, order) or f"time points: {', '.join(order)}") if order else \
                "this protocol declares no `timepoints:`; leave out `--at`"
            raise DiagnosticError([error("unknown-timepoint", f"`{point}` is not a time point of protocol "
                                         f"`{self.checked.id}`", None, help=hint)])
        if point not in self._at:
            judged = set(judged_at(self.checked.assessed, order, point))
            criteria = {cid: c for cid, c in self.checked.criteria.items() if cid in judged}
            self._at[point] = Engine(dataclasses.replace(self.checked, criteria=MappingProxyType(criteria)))
        return self._at[point]

    def _check_at(self, patient: Patient, point: str, timeout: float | None) -> Explanation:
        judged = self.at(point)
        explanation = explain(judged.checked, judged.decide(patient, timeout), patient.path, patient.warnings)
        pending = self.pending(patient, point)
        verdict = Verdict.PENDING if explanation.verdict == Verdict.ELIGIBLE and pending else explanation.verdict
        return dataclasses.replace(explanation, verdict=verdict, at=point, pending=pending)

    def pending(self, patient: Patient, point: str) -> list[PendingCheck]:
        """The criteria still to assess after `point` that may apply to the patient (a criterion whose
        `only if` condition is known to be false for the patient is not pending), each marked when the
        values the patient file already gives make it fail (judged later, on those values, it blocks)."""
        evaluator = Evaluator(self.checked, patient.values)
        found = []
        for cid, points in pending_at(self.checked.assessed, self.checked.timepoints, point).items():
            criterion = self.checked.criteria[cid]
            applies = True if criterion.guard is None else evaluator.condition(criterion.guard)
            if applies is not False:
                body = evaluator.condition(criterion.body)
                fails = applies is True and body is (criterion.kind == ast.CriterionKind.EXCLUSION)
                found.append(PendingCheck(cid, criterion.kind, criterion.label, points, fails))
        order = self.checked.timepoints
        return sorted(found, key=lambda check: order.index(check.at[0]))  # by the next point, then protocol order
