"""The top of a check's report: the one-line summary (the verdict, why, what to do next) and which eligib
judged which protocol text when (docs/guidance.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import DiagnosticError, error
from eligib.logic.evaluate import Verdict
from eligib.report.explanation import Explanation, pending_words

if TYPE_CHECKING:
    from eligib.analysis.guidance import Guidance


def summary_line(explanation: Explanation, guidance: Guidance) -> str:
    """`INELIGIBLE: 1 blocking criterion (lvef); next: lvef >= 45 % would make the patient eligible`."""
    verdict = explanation.verdict
    if verdict == Verdict.ELIGIBLE:
        paths = explanation.holding_paths
        return "ELIGIBLE: no criterion blocks" + (f"; qualifies through {_listing(paths, 2)}" if paths else "")
    if verdict == Verdict.PENDING:
        return pending_words(explanation) + f"; next: assess {_listing([p.id for p in explanation.pending])}"
    if verdict == Verdict.UNDETERMINED:
        count = len(explanation.missing_facts)
        head = f"UNDETERMINED: {count} missing fact{'s' if count != 1 else ''} matter{'s' if count == 1 else ''}"
        chosen = guidance.collect_first.facts if guidance.collect_first else [m.fact for m in guidance.missing]
        return head + (f"; next: collect {_listing(chosen)}" if chosen else "")
    blocking = explanation.blocking
    if blocking:
        word = "criterion" if len(blocking) == 1 else "criteria"
        head = f"INELIGIBLE: {len(blocking)} blocking {word} ({', '.join(blocking)})"
    else:
        conflicts = "; ".join(", ".join(conflict) for conflict in explanation.conflicts)
        head = f"INELIGIBLE: criteria that cannot all be met ({conflicts})"
    clearing = [c for c in guidance.clears_on if c.eligible_then]
    if clearing:
        return head + f"; next: eligible from {clearing[0].fact} {clearing[0].date} if nothing else changes"
    if guidance.changes:
        wanted = [change.eligible_if if change.eligible_if and " == " not in change.eligible_if
                  else f"{change.fact} {change.example}" for change in guidance.changes]
        if guidance.changes_leave_open:
            return head + f"; next: {_listing(wanted, 2)}, then {_listing(guidance.changes_leave_open)} decide"
        return head + f"; next: {_listing(wanted, 2)} would make the patient eligible"
    return head + ("; no change of modifiable facts can make the patient eligible" if guidance.no_change_reason else "")


def _listing(items: list[str], shown_at_most: int = 3) -> str:
    more = len(items) - shown_at_most
    return ", ".join(items[:shown_at_most]) + (f" (+{more} more)" if more > 0 else "")


@dataclass(frozen=True)
class RunInfo:
    """Which eligib judged which protocol text, and when: what a filed report must say."""

    eligib_version: str
    protocol_sha256: str  # of the protocol's text, UTF-8
    evaluated_at: str  # ISO 8601, UTC; SOURCE_DATE_EPOCH (seconds) fixes it for reproducible output


def run_info(checked: CheckedProtocol) -> RunInfo:
    import datetime as dt
    import hashlib
    import os

    from eligib.version import __version__

    fixed = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    try:
        now = dt.datetime.fromtimestamp(int(fixed), dt.UTC) if fixed else dt.datetime.now(dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise DiagnosticError([error(
            "bad-option", f"SOURCE_DATE_EPOCH is `{fixed[:40]}`, not a time eligib can state", None,
            help="give whole seconds since 1970-01-01T00:00:00Z up to year 9999 (e.g. 1796169600), "
                 "or unset it to use the current time")]) from None
    digest = hashlib.sha256(checked.source.text.encode("utf-8")).hexdigest()
    return RunInfo(__version__, digest, now.replace(microsecond=0).isoformat().replace("+00:00", "Z"))
