"""The attrition report of a screen, as cohort tools (OHDSI ATLAS) give it: how many patients remain after
each criterion in protocol order, how many each criterion alone keeps out, the verdict counts, and the
missing facts most often behind an undetermined verdict. Counted in SQL over the results table.

A patient is removed at the first criterion (in protocol order) that blocks it; undetermined patients
are never removed (they may still qualify). Rows with errors are counted apart and take no step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eligib.language.checked import CheckedProtocol

TOP_MISSING = 10


@dataclass
class Step:
    criterion: str
    kind: str
    blocked: int  # patients this criterion blocks (whatever else blocks them)
    removed: int  # patients removed here: blocked by this and by no earlier criterion
    remaining: int  # patients left after this step
    alone: int  # patients blocked by this criterion only


@dataclass
class Attrition:
    protocol: str
    patients: int
    verdicts: dict[str, int]  # eligible, ineligible, undetermined, error
    decided_in_sql: int
    steps: list[Step] = field(default_factory=list)
    missing_facts: list[tuple[str, int]] = field(default_factory=list)  # among the undetermined, most frequent first
    errors: list[tuple[str, list[str]]] = field(default_factory=list)  # the first rows with errors: (id, messages)
    orphans: dict[str, int] = field(default_factory=dict)  # history -> child rows naming no patient of the table

    def data(self) -> dict[str, Any]:
        return {"format": "eligib.screen/1", "protocol": self.protocol, "patients": self.patients,
                "verdicts": self.verdicts, "decided_in_sql": self.decided_in_sql,
                "attrition": [vars(step) for step in self.steps],
                "missing_facts": [{"fact": name, "patients": count} for name, count in self.missing_facts],
                "errors": [{"id": pid, "errors": messages} for pid, messages in self.errors],
                "orphan_items": self.orphans}


def attrition(connection: Any, checked: CheckedProtocol, decided_in_sql: int, orphans: dict[str, int],
              shown_errors: int = 10) -> Attrition:
    """The report over the `results` table of a finished screen (`orphans`: per history, the child rows
    naming no patient)."""
    verdicts = dict.fromkeys(("eligible", "ineligible", "undetermined", "error"), 0)
    verdicts.update(dict(connection.execute("SELECT verdict, count(*) FROM results GROUP BY verdict").fetchall()))
    patients = sum(verdicts.values())
    found = Attrition(checked.protocol.header.name, patients, verdicts, decided_in_sql)
    combinations = connection.execute("SELECT blocking, count(*) FROM results WHERE verdict <> 'error' "
                                      "GROUP BY blocking").fetchall()
    remaining = patients - verdicts["error"]
    order = list(checked.criteria)
    for index, cid in enumerate(order):
        earlier = set(order[:index])
        blocked = sum(n for blocking, n in combinations if cid in blocking)
        removed = sum(n for blocking, n in combinations if cid in blocking and not earlier & set(blocking))
        alone = sum(n for blocking, n in combinations if list(blocking) == [cid])
        remaining -= removed
        found.steps.append(Step(cid, str(checked.criteria[cid].kind), blocked, removed, remaining, alone))
    found.missing_facts = [(name, count) for name, count in connection.execute(
        "SELECT fact, count(*) AS n FROM (SELECT unnest(missing_facts) AS fact FROM results "
        f"WHERE verdict = 'undetermined') GROUP BY fact ORDER BY n DESC, fact LIMIT {TOP_MISSING}").fetchall()]
    found.orphans = dict(orphans)
    found.errors = [(pid, list(messages)) for pid, messages in connection.execute(
        f"SELECT id, errors FROM results WHERE verdict = 'error' ORDER BY row LIMIT {shown_errors}").fetchall()]
    return found


def attrition_text(report: Attrition) -> str:
    """The report as a person reads it."""
    counts = report.verdicts
    plural = "" if report.patients == 1 else "s"
    lines = [f"Screened {report.patients:,} patient{plural} against `{report.protocol}`: "
             f"{counts['eligible']:,} eligible, {counts['ineligible']:,} ineligible, "
             f"{counts['undetermined']:,} undetermined, "
             + (f"{counts['pending']:,} pending (eligible so far), " if counts.get("pending") else "")
             + f"{counts['error']:,} with errors",
             f"({report.decided_in_sql:,} decided in SQL, {report.patients - report.decided_in_sql:,} by the engine)",
             "", "Attrition, in protocol order (a patient leaves at the first criterion that blocks it):"]
    width = max((len(step.criterion) for step in report.steps), default=9)
    lines.append(f"  {'criterion':<{width}}  {'kind':<9}  {'removed':>9}  {'remaining':>9}  {'blocks':>9}  "
                 f"{'alone':>9}")
    start = report.patients - counts["error"]
    lines.append(f"  {'(start)':<{width}}  {'':<9}  {'':>9}  {start:>9,}")
    for step in report.steps:
        lines.append(f"  {step.criterion:<{width}}  {step.kind:<9}  {step.removed:>9,}  {step.remaining:>9,}  "
                     f"{step.blocked:>9,}  {step.alone:>9,}")
    if report.missing_facts:
        lines += ["", "Missing facts most often deciding an undetermined verdict:"]
        lines += [f"  {name}: {count:,} patient{'' if count == 1 else 's'}" for name, count in report.missing_facts]
    for name, count in report.orphans.items():
        lines += ["", f"{count:,} item{'' if count == 1 else 's'} of `{name}` name no patient of the table "
                      "(an empty or unknown id): not read"]
    if report.errors:
        lines += ["", f"Rows with errors (first {len(report.errors)}; every one is in the results):"]
        lines += [f"  {pid or '(no id)'}: {'; '.join(messages)}" for pid, messages in report.errors]
    return "\n".join(lines)
