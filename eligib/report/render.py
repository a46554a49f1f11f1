"""The only place that formats results: readable text, and JSON with a stable schema (docs/json-schema.md)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from eligib.language.diagnostics import Diagnostic, Finding, render, render_all
from eligib.report.explanation import CriterionFinding, Explanation, MissingFact, PathFinding, pending_words

if TYPE_CHECKING:  # rendering takes them; it never builds one
    from eligib.analysis.diff import Difference
    from eligib.analysis.guidance import BlockingOutlook, Guidance, MissingFactGuidance, SmallestSet
    from eligib.analysis.summary import RunInfo
    from eligib.tools.cases import CaseResult

JSON_SCHEMA_ID = "eligib.check/2"
STATUS_TEXT = {
    ("inclusion", "met"): "met", ("inclusion", "not_met"): "not met",
    ("exclusion", "met"): "excluded", ("exclusion", "not_met"): "absent",
    ("inclusion", "unknown"): "unknown", ("exclusion", "unknown"): "unknown",
    ("inclusion", "not_applicable"): "n/a", ("exclusion", "not_applicable"): "n/a",
}


def to_json(explanation: Explanation, guidance: Guidance | None = None, info: RunInfo | None = None) -> str:
    return json.dumps(to_data(explanation, guidance, info), indent=2, ensure_ascii=False) + "\n"


def to_data(explanation: Explanation, guidance: Guidance | None = None, info: RunInfo | None = None
            ) -> dict[str, Any]:
    """`eligib.check/2` (docs/json-schema.md); without `guidance` its lists are empty and `guided` is false."""
    from eligib.analysis.guidance import Guidance
    from eligib.analysis.summary import summary_line

    guided = guidance if guidance is not None else Guidance("")
    missing = {m.fact: m for m in guided.missing}
    return {
        "schema": JSON_SCHEMA_ID,
        "summary": guided.summary or summary_line(explanation, guided),
        "eligib_version": info.eligib_version if info else None,
        "protocol_sha256": info.protocol_sha256 if info else None,
        "evaluated_at": info.evaluated_at if info else None,
        "protocol": explanation.protocol,
        "patient": explanation.patient,
        "verdict": explanation.verdict,
        "blocking": list(explanation.blocking),
        "conflicts": [list(c) for c in explanation.conflicts],
        "guided": guidance is not None,
        "missing_facts": [_missing_data(m.name, m.description, m.criteria, missing.get(m.name))
                          for m in ranked(explanation, guided)],
        "collect_first": guided.collect_first.facts if guided.collect_first else [],
        "collect_first_bound": _bound_data(guided.collect_first),
        "clears_on": [dataclasses.asdict(c) for c in guided.clears_on],
        "blocking_outlook": [dataclasses.asdict(b) for b in guided.blocking],
        "changes": [{"fact": c.fact, "current": c.current, "eligible_if": c.eligible_if, "example": c.example_value}
                    for c in guided.changes],
        "changes_bound": _bound_data(guided.changes_bound),
        "changes_leave_open": guided.changes_leave_open,
        "changes_reason": guided.no_change_reason,
        "guidance_incomplete": guided.incomplete,
        "eligible_paths": list(explanation.holding_paths),
        "criteria": [_criterion_data(c) for c in explanation.criteria],
        "warnings": [_warning_data(w) for w in explanation.warnings],
        "at": explanation.at,
        "pending": [{"id": p.id, "kind": p.kind, "label": p.label, "at": list(p.at), "fails": p.fails}
                    for p in explanation.pending],
    }


def ranked(explanation: Explanation, guidance: Guidance) -> list[MissingFact]:
    """The missing facts most valuable first (guidance's order), else as the explanation lists them."""
    order = {m.fact: index for index, m in enumerate(guidance.missing)}
    return sorted(explanation.missing_facts, key=lambda m: order.get(m.name, len(order)))


def _missing_data(name: str, description: str, criteria: list[str], found: MissingFactGuidance | None
                  ) -> dict[str, Any]:
    data: dict[str, Any] = {"fact": name, "description": description, "decides": list(criteria)}
    if found is not None:
        condition = found.condition
        data.update({"eligible_if": condition.eligible_if, "joint": condition.joint,
                     "shared_conditions": condition.shared, "interacts_with": condition.interacts_with,
                     "settles_alone": condition.settles_alone, "paths": found.paths, "gates": found.gates})
    return data


def _bound_data(found: SmallestSet | None) -> dict[str, Any] | None:
    return None if found is None else {"size": len(found.facts), "at_least": found.at_least, "exact": found.exact}


def _criterion_data(finding: CriterionFinding) -> dict[str, Any]:
    return {
        "id": finding.id, "kind": finding.kind, "status": finding.status, "label": finding.label,
        "blocks": finding.blocks, "decided_by": finding.decided_by, "record": finding.record,
        "reasons": finding.reasons, "missing": finding.missing,
        "paths": [_path_data(p) for p in finding.paths],
    }


def _path_data(path: PathFinding) -> dict[str, Any]:
    return {"name": path.name, "path": path.path, "status": path.status, "reasons": path.reasons,
            "paths": [_path_data(p) for p in path.paths]}


def _warning_data(diagnostic: Diagnostic) -> dict[str, Any]:
    return {"code": diagnostic.code, "message": diagnostic.message,
            "location": str(diagnostic.span) if diagnostic.span else None}


# ------------------------------------------------------------------------ text


def to_text(explanation: Explanation, verbose: bool = False, guidance: Guidance | None = None,
            info: RunInfo | None = None) -> str:
    """The summary line first, then what to do, then why; every criterion's line with `verbose`."""
    from eligib.analysis.guidance import Guidance
    from eligib.analysis.summary import summary_line

    guided = guidance if guidance is not None else Guidance("")
    lines = [guided.summary or summary_line(explanation, guided), ""]
    protocol = explanation.protocol
    title = protocol.get("title") or protocol["id"]
    digest = f", sha256 {info.protocol_sha256[:12]}" if info else ""
    lines.append(f"{title} ({protocol['id']}, version {protocol.get('version')}{digest})")
    lines.append(f"patient: {explanation.patient}")
    if info:
        lines.append(f"evaluated: {info.evaluated_at} by eligib {info.eligib_version}")
    if explanation.at is not None:
        lines.append(f"at: {explanation.at}")
    lines.append("")
    lines.append(f"verdict: {_verdict_words(explanation)}{_verdict_note(explanation)}")
    by_id = {c.id: c for c in explanation.criteria}
    outlook = {b.criterion: b for b in guided.blocking}
    if explanation.blocking:
        lines += ["", "Blocking criteria:"]
        for cid in explanation.blocking:
            lines += _blocking_lines(by_id[cid], outlook.get(cid))
    for core in explanation.conflicts:
        lines += ["", "These criteria can each be met, but not all together with the known facts:"]
        lines += [f"  - {cid}: {by_id[cid].label}" for cid in core]
    lines += guidance_lines(explanation, guided)
    if explanation.holding_paths:
        lines += ["", "Qualifies through:"]
        lines += [f"  - {path}" for path in explanation.holding_paths]
    lines += _either_or_lines(explanation, verbose)
    if explanation.pending:
        lines += ["", "To be assessed later:"]
        width = max(len(p.id) for p in explanation.pending)
        lines += [f"  - {p.id:<{width}}  at {' and '.join(p.at)}: {p.label}"
                  + (" (fails with the values already given)" if p.fails else "") for p in explanation.pending]
    if verbose:
        lines += _criteria_table(explanation)
    if explanation.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  - {w.message}" + (f" ({w.span})" if w.span else "") for w in explanation.warnings]
    return "\n".join(lines) + "\n"


def guidance_lines(explanation: Explanation, guidance: Guidance) -> list[str]:
    """What to do next: changes, clear dates, missing facts with their conditions, what to collect first."""
    lines: list[str] = []
    if guidance.changes:
        bound = guidance.changes_bound
        note = " (none can be left out" + ("; no fewer changes can do" if bound and bound.exact else "") + ")"
        together = "; each condition holds with the other changes as in their examples" \
            if len(guidance.changes) > 1 else ""
        lines += ["", f"What would make the patient eligible{note}{together}:"]
        lines += [f"  - {c.fact}: now {c.current}; eligible if {c.eligible_if or 'changed'}"
                  + (f" (for example {c.example})" if c.example else "") for c in guidance.changes]
        if guidance.changes_leave_open:
            lines.append(f"  These changes are not enough alone: {', '.join(guidance.changes_leave_open)} still "
                         "decide (not known in full).")
    elif guidance.no_change_reason:
        lines += ["", f"What would make the patient eligible: {guidance.no_change_reason}."]
    if guidance.clears_on:
        lines += ["", "Time windows that will pass:"]
        lines += [f"  - {c.criterion} clears with {c.fact} on or after {c.date}"
                  + ("; eligible from then if nothing else changes" if c.eligible_then else "")
                  for c in guidance.clears_on]
    if explanation.missing_facts:
        found = {m.fact: m for m in guidance.missing}
        lines += ["", "Missing facts that matter" + (", most useful first:" if found else ":")]
        for missing in ranked(explanation, guidance):
            about = f" ({missing.description})" if missing.description else ""
            lines.append(f"  - {missing.name}{about}")
            lines += [f"      {line}" for line in missing_detail(missing, found.get(missing.name))]
    if guidance.collect_first:
        chosen = guidance.collect_first
        count = len(chosen.facts)
        exact = "no smaller set can" if chosen.exact else f"at least {chosen.at_least} needed; none can be left out"
        lines += ["", f"Collect first: {', '.join(chosen.facts)} ({count} fact{'s' if count != 1 else ''} that can "
                      f"make the patient eligible; {exact})"]
    if guidance.incomplete:
        lines += ["", f"Note: {guidance.incomplete}."]
    return lines


def missing_detail(missing: MissingFact, found: MissingFactGuidance | None) -> list[str]:
    decides = f"could decide {', '.join(missing.criteria)}"
    if found is None:
        return [decides]
    condition = found.condition
    if condition.history:
        head = "a history: the criteria it decides say which items matter"
    elif condition.joint:
        others = f" with {', '.join(condition.interacts_with)}" if condition.interacts_with else ""
        through = "; ".join(f"`{text}`" for text in condition.shared)
        head = (f"no condition of its own: decides together{others}" if others else "no condition stated") + (
            f" through {through}" if through else "")
    elif condition.eligible_if:
        head = f"eligible if {condition.eligible_if}"
        if condition.interacts_with:
            head += f" (with suitable {', '.join(condition.interacts_with)}: they decide together)"
    else:
        head = "any value can still qualify" + (
            f"; it matters together with {', '.join(condition.interacts_with)}" if condition.interacts_with else "")
    return [head, decides + (f"; gates {', '.join(found.gates)}" if found.gates else "")]


def _either_or_lines(explanation: Explanation, verbose: bool) -> list[str]:
    """Each either/or criterion's paths: with `verbose` all of them, else those that block or are open."""
    shown = [c for c in explanation.criteria if c.paths and (verbose or c.blocks is not False)]
    if not shown:
        return []
    lines = ["", "Either/or criteria:"]
    for finding in shown:
        lines.append(f"  {finding.id} ({STATUS_TEXT[(finding.kind, finding.status)]})")
        decided = finding.status != "unknown"
        for path in finding.paths:
            if not (decided and path.status == "unknown"):
                lines += _path_lines(path, 2)
    return lines


def _criteria_table(explanation: Explanation) -> list[str]:
    lines = ["", "All criteria:"]
    width = max((len(c.id) for c in explanation.criteria), default=0)
    for kind in ("inclusion", "exclusion"):
        for finding in (c for c in explanation.criteria if c.kind == kind):
            status = STATUS_TEXT[(finding.kind, finding.status)]
            lines.append(f"  {kind:<9}  {status:<8}  {finding.id:<{width}}  {finding.label}")
            lines += [f"{'':>{25 + width}}{reason}" for reason in finding.reasons]
    return lines


def _verdict_words(explanation: Explanation) -> str:
    """`PENDING` reads `ELIGIBLE, PENDING 2 checks at lymphodepletion` (counted per later time point)."""
    return explanation.verdict.upper() if explanation.verdict != "pending" else pending_words(explanation)


def _verdict_note(explanation: Explanation) -> str:
    if explanation.verdict == "undetermined":
        count = len(explanation.missing_facts)
        return f" (depends on {count} missing fact{'s' if count != 1 else ''})"
    return ""


def _blocking_lines(finding: CriterionFinding, outlook: BlockingOutlook | None = None) -> list[str]:
    if finding.kind == "inclusion":
        head = f"  - {finding.id}: not met: {finding.label}"
    else:
        head = f"  - {finding.id}: excluded because: {finding.label}"
    lines = [head] + [f"      {reason}" for reason in finding.reasons]
    if outlook is not None:
        can = "can change" if outlook.can_pass else "cannot change by its modifiable facts alone"
        parts = [f"modifiable: {', '.join(outlook.modifiable)}" if outlook.modifiable else "",
                 f"fixed: {', '.join(outlook.fixed)}" if outlook.fixed else ""]
        lines.append(f"      {can} ({'; '.join(p for p in parts if p)})")
    return lines


def _path_lines(path: PathFinding, depth: int) -> list[str]:
    """A path, its reasons, and its sub-paths; an open sub-path under a decided path cannot matter."""
    indent = "  " * depth
    lines = [f"{indent}{path.name}: {path.status}"]
    lines += [f"{indent}    {reason}" for reason in path.reasons]
    for sub in path.paths:
        if path.status == "unknown" or sub.status != "unknown":
            lines += _path_lines(sub, depth + 1)
    return lines


def diagnostics_text(diagnostics: list[Diagnostic], omitted: int = 0) -> str:
    return render_all(diagnostics, omitted) + "\n"


# ---------------------------------------------------------------------- verify

VALIDATE_SCHEMA_ID = "eligib.validate/1"
VERIFY_SCHEMA_ID = "eligib.verify/1"


def validate_data(protocol_path: str, diagnostics: list[Diagnostic], strict: bool = False) -> dict[str, Any]:
    """`eligib validate --format json`: the protocol's errors and warnings, located (docs/json-schema.md)."""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = sum(1 for d in diagnostics if d.severity == "warning")
    return {
        "schema": VALIDATE_SCHEMA_ID, "protocol": protocol_path, "strict": strict,
        "ok": errors == 0 and not (strict and warnings), "errors": errors, "warnings": warnings,
        "diagnostics": [{"severity": d.severity, "code": d.code, "message": d.message,
                         "location": str(d.span) if d.span else None, "span": _span_data(d), "label": d.label,
                         "help": d.help} for d in diagnostics],
    }


def _span_data(diagnostic: Diagnostic) -> dict[str, Any] | None:
    span = diagnostic.span
    return None if span is None else {"file": span.file, "line": span.line, "column": span.column,
                                      "end_line": span.end_line, "end_column": span.end_column}
DIFF_SCHEMA_ID = "eligib.diff/1"


def verify_data(protocol_path: str, findings: list[Finding]) -> dict[str, Any]:
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    return {
        "schema": VERIFY_SCHEMA_ID, "protocol": protocol_path, "ok": errors == 0,
        "errors": errors, "warnings": warnings,
        "findings": [{"severity": f.severity, "code": f.code, "message": f.message,
                      "location": str(f.span) if f.span else None, "subject": f.subject,
                      "criteria": list(f.criteria),
                      "help": f.help,
                      "witness": f.witness, "witness_verdict": f.witness_verdict} for f in findings],
    }


def verify_text(protocol_path: str, findings: list[Finding]) -> str:
    lines = [f"verify {protocol_path}", ""]
    ok = [f for f in findings if f.severity == "ok"]
    counts: dict[str, int] = {}
    for finding in ok:
        counts[finding.code] = counts.get(finding.code, 0) + 1
    summary = [
        ("admits-patients", "the protocol admits eligible patients"),
        ("inclusion-can-fail", "inclusions that can be met and can fail: {n}"),
        ("exclusion-can-fire", "exclusions that can fire and stay silent among patients meeting the inclusions: {n}"),
        ("path-taken", "inclusion paths taken by an eligible patient: {n}"),
        ("exclusion-path-fires", "exclusion paths that can fire: {n}"),
        ("assertion-proved", "assertions proved: {n}"),
    ]
    for code, text in summary:
        if counts.get(code):
            lines.append(f"  ok  {text.format(n=counts[code])}")
    for finding in (f for f in findings if f.code == "assertion-proved"):
        lines.append(f"        proved `{finding.message.split('`')[1]}`: {finding.help}")
    problems = [f for f in findings if f.severity != "ok"]
    for finding in problems:
        lines.append("")
        label = ", ".join(f"`{c}`" for c in finding.criteria) if finding.criteria else ""
        lines.append(render(dataclasses.replace(finding, label=f"criteria: {label}" if label else "")))
        if finding.witness is not None:
            lines.append(f"  = witness ({finding.witness_verdict}): {json.dumps(finding.witness)}")
    errors = sum(1 for f in problems if f.severity == "error")
    warnings = len(problems) - errors
    lines += ["", f"result: {'ok' if errors == 0 else 'FAILED'} ({errors} error{'s' if errors != 1 else ''}, "
                  f"{warnings} warning{'s' if warnings != 1 else ''})"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ diff


def diff_data(old_path: str, new_path: str, difference: Difference) -> dict[str, Any]:
    return {
        "schema": DIFF_SCHEMA_ID, "old": old_path, "new": new_path, "equivalent": difference.equivalent,
        "added": difference.added, "removed": difference.removed, "changed": difference.changed,
        "witnesses": [{"patient": w.patient, "old_verdict": w.old_verdict, "new_verdict": w.new_verdict,
                       "criteria": w.criteria} for w in difference.witnesses],
    }


def diff_text(old_path: str, new_path: str, difference: Difference) -> str:
    lines = [f"diff {old_path} -> {new_path}", ""]
    for word, ids in (("added", difference.added), ("removed", difference.removed), ("changed", difference.changed)):
        if ids:
            lines.append(f"{word} criteria: {', '.join(ids)}")
    if difference.equivalent:
        lines.append("equivalent: the two versions admit exactly the same patients (proven)")
        return "\n".join(lines) + "\n"
    lines.append("NOT equivalent:")
    for witness in difference.witnesses:
        side = "the old version admits, the new rejects" if witness.new_verdict == "ineligible" \
            else "the new version admits, the old rejects"
        lines.append(f"  - a patient {side} (because of: {', '.join(witness.criteria) or 'none'}):")
        lines.append(f"    {json.dumps(witness.patient)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ test


def test_report(results: list[CaseResult]) -> str:
    lines = []
    for result in results:
        case = result.case
        word = "PASS" if result.passed else ("ERROR" if result.error else "FAIL")
        lines.append(f"{word:<5} {case.id}  {case.title}".rstrip())
        if result.error:
            lines.append(f"      cannot read the patient: {result.error}")
        lines += [f"      {failure}" for failure in result.failures]
    passed = sum(r.passed for r in results)
    lines.append("")
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines) + "\n"
