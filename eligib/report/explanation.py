"""What `eligib check` says about a patient, as plain data: the verdict and the findings behind it.

`Engine.check` returns an Explanation; render.py turns it into text or JSON (docs/json-schema.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from eligib.language import ast
from eligib.language.diagnostics import Diagnostic
from eligib.logic.evaluate import Truth, Verdict
from eligib.logic.solver import DecidedBy, Status


class PathStatus(StrEnum):
    HOLDS = "holds"
    FAILS = "fails"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, truth: Truth) -> PathStatus:
        return cls.HOLDS if truth is True else cls.FAILS if truth is False else cls.UNKNOWN


@dataclass
class PathFinding:
    """A named alternative (path) of a block and what holds or fails inside it."""

    name: str
    path: str  # dotted from the criterion, e.g. "t_all_lbl.relapsed"
    status: PathStatus
    reasons: list[str] = field(default_factory=list)
    paths: list[PathFinding] = field(default_factory=list)


Details = Callable[[], tuple[list[str], list["PathFinding"]]]


@dataclass
class CriterionFinding:
    """One criterion for one patient: its status, whether it blocks, and why, in sentences.

    The sentences (`reasons`) and named paths (`paths`) are built when first read: a program that
    asks only for the verdict and what blocks does not pay for the prose of every criterion."""

    id: str
    kind: ast.CriterionKind
    label: str
    record: str  # the registry record's own wording
    status: Status  # for an exclusion, `met` means the patient is excluded
    blocks: bool | None  # True: keeps the patient out; None: might (unknown)
    decided_by: DecidedBy
    missing: list[str]  # for an open criterion: the missing facts it depends on
    details: Details = field(repr=False, compare=False)  # builds (reasons, paths)

    @cached_property
    def _built(self) -> tuple[list[str], list[PathFinding]]:
        built = self.details()
        self.details = _built_already  # let go of what built them (the decision, its solver state)
        return built

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CriterionFinding):
            return NotImplemented
        return self._compared() == other._compared()

    def _compared(self) -> tuple[object, ...]:
        return (self.id, self.kind, self.label, self.record, self.status, self.blocks, self.decided_by, self.missing,
                self.reasons, self.paths)

    @property
    def reasons(self) -> list[str]:
        """The patient's values against the thresholds, as written in the protocol."""
        return self._built[0]

    @property
    def paths(self) -> list[PathFinding]:
        """The criterion's named paths (alternatives) and what holds or fails in each."""
        return self._built[1]


@dataclass
class MissingFact:
    """A fact the patient file does not give that can change the verdict, and the criteria it could decide."""

    name: str
    description: str
    criteria: list[str]


@dataclass
class PendingCheck:
    """A criterion still to be assessed at later time points (it may also have been judged now)."""

    id: str
    kind: ast.CriterionKind
    label: str
    at: tuple[str, ...]  # the later time points, in order
    fails: bool = False  # the values already given make it fail: judged then on them, it would block


@dataclass
class Explanation:
    """The result of checking one patient: the verdict, every criterion's finding, what blocks, which
    missing facts matter, and the paths an eligible patient qualifies through."""

    protocol: dict[str, str | None]  # id, title, version, registry, file
    patient: str
    verdict: Verdict
    criteria: list[CriterionFinding]
    blocking: list[str]  # criteria that definitely keep the patient out
    conflicts: list[list[str]]  # criteria each possible alone but impossible together
    missing_facts: list[MissingFact]
    warnings: list[Diagnostic]  # about the patient file (a fact outside its subgroup, a stale observation)
    at: str | None = None  # the time point judged at (`--at`), for a protocol with time points
    pending: list[PendingCheck] = field(default_factory=list)  # checks still to come after `at`

    @cached_property
    def holding_paths(self) -> list[str]:
        """For an eligible patient (also one eligible so far, pending later checks): the deepest named
        paths that hold, the route by which the patient qualifies."""
        if self.verdict not in (Verdict.ELIGIBLE, Verdict.PENDING):
            return []
        return [f"{c.id}.{p}" for c in self.criteria for p in _holding_paths(c.paths)]

    def path_status(self, dotted: str) -> PathStatus | None:
        """Status of a path named `criterion.path.subpath`, or None when there is no such path."""
        criterion_id, _, rest = dotted.partition(".")
        finding = next((c for c in self.criteria if c.id == criterion_id), None)
        paths = finding.paths if finding else []
        found = None
        for part in rest.split("."):
            found = next((p for p in paths if p.name == part), None)
            if found is None:
                return None
            paths = found.paths
        return found.status if found else None


def _built_already() -> tuple[list[str], list[PathFinding]]:
    raise AssertionError("a finding's details are built once")


def _holding_paths(paths: list[PathFinding]) -> list[str]:
    """The deepest named paths that hold (the route by which the patient qualifies)."""
    found: list[str] = []
    for path in paths:
        if path.status != PathStatus.HOLDS:
            continue
        deeper = _holding_paths(path.paths)
        found.extend(deeper or [path.path])
    return found


def pending_words(explanation: Explanation) -> str:
    """`ELIGIBLE, PENDING 2 checks at lymphodepletion` (counted per next time point), and how many of
    those checks already fail with the values given."""
    counts: dict[str, int] = {}
    for check in explanation.pending:
        counts[check.at[0]] = counts.get(check.at[0], 0) + 1
    parts = [f"{count} check{'s' if count != 1 else ''} at {point}" for point, count in counts.items()]
    failing = sum(check.fails for check in explanation.pending)
    warning = f" ({failing} already fail{'s' if failing == 1 else ''} with the values given)" if failing else ""
    return "ELIGIBLE, PENDING " + ", ".join(parts) + warning
