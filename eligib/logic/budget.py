"""Time-bounded, calendar-exact solving: every solver question in eligib goes through `solve`.

A Budget bounds the solver's time for a whole piece of work (a check, a verify) and for any one
question; past either, SolverTimeout says what was being decided, and no answer is given.
"""

from __future__ import annotations

import time
from typing import Any

from eligib.language.diagnostics import Diagnostic, EligibError, error
from eligib.limits import CHECK_SECONDS, QUERY_SECONDS

EXIT_SOLVER_GAVE_UP = 5


class SolverTimeout(EligibError):
    """The solver could not answer in the time it had; no verdict may be given.

    `seconds` is the limit that ran out: the whole budget, or (`per_query`) one question's share."""

    exit_code = EXIT_SOLVER_GAVE_UP

    def __init__(self, reason: str, subject: str = "", seconds: float | None = None, per_query: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.subject, self.seconds, self.per_query = reason, subject, seconds, per_query

    def describe(self) -> str:
        about = f" deciding {self.subject}" if self.subject else ""
        if self.seconds is None:
            return f"the solver gave up{about} ({self.reason})"
        if self.per_query:
            return f"the solver gave up{about} after {self.seconds:g} s, the limit for one question ({self.reason})"
        return f"the solver gave up{about}: the time budget of {self.seconds:g} s ran out ({self.reason})"

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [error("solver-timeout", f"{self.describe()}; no answer is given",
                      help="give it more time with --timeout, or split the criterion (see docs/limits.md)")]

    def __str__(self) -> str:
        return self.describe()


class Budget:
    """The time one piece of solver work may take in all (a check, a verify), and at most per question."""

    def __init__(self, seconds: float | None = CHECK_SECONDS, per_query: float = QUERY_SECONDS) -> None:
        self.seconds, self.per_query = seconds, per_query
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def spent(self) -> bool:
        """Has the whole budget run out? Work done before asking the solver (sampled completions) stops
        then, and the solver's next question raises SolverTimeout, naming what it was to decide."""
        return self.deadline is not None and time.monotonic() >= self.deadline

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


def solve(solver: Any, formulas: list[Any], budget: Budget, subject: str, protocols: tuple[Any, ...] = (),
          names: Any = None, copies: bool = True) -> Any:
    """A calendar-exact model of `formulas`, or None when there is none. Raises SolverTimeout.

    A `sat` answer is only believed once the model's month shifts match the calendar (see
    CompiledProtocol.calendar_lemmas): until then the true lemmas it breaks are added and the
    solver asked again. An `unsat` answer needs no repair: the bounds the solver starts with are sound.
    `names` limits the repair to those facts' shifts; `copies=False` leaves out the facts' second copies,
    for a question that never reads them (otherwise a copy free of any constraint wanders month by month)."""
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
        lemmas = [lemma for compiled in protocols for lemma in compiled.calendar_lemmas(model, names, copies)]
        if not lemmas:
            return model
        solver.add(*lemmas)
