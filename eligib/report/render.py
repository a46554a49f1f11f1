"""The only place that formats results: readable text, and JSON with a stable schema (docs/json-schema.md)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from eligib.language.diagnostics import Diagnostic, Finding, render, render_all
from eligib.report.explanation import CriterionFinding, Explanation, PathFinding

if TYPE_CHECKING:  # rendering takes them; it never builds one
    from eligib.analysis.diff import Difference
    from eligib.tools.cases import CaseResult

JSON_SCHEMA_ID = "eligib.check/1"
STATUS_TEXT = {
    ("inclusion", "met"): "met", ("inclusion", "not_met"): "not met",
    ("exclusion", "met"): "excluded", ("exclusion", "not_met"): "absent",
    ("inclusion", "unknown"): "unknown", ("exclusion", "unknown"): "unknown",
    ("inclusion", "not_applicable"): "n/a", ("exclusion", "not_applicable"): "n/a",
}


def to_json(explanation: Explanation) -> str:
    return json.dumps(to_data(explanation), indent=2, ensure_ascii=False) + "\n"


def to_data(explanation: Explanation) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA_ID,
        "protocol": explanation.protocol,
        "patient": explanation.patient,
        "verdict": explanation.verdict,
        "blocking": list(explanation.blocking),
        "conflicts": [list(c) for c in explanation.conflicts],
        "missing_facts": [m.name for m in explanation.missing_facts],
        "missing_fact_details": [{"fact": m.name, "description": m.description, "criteria": m.criteria}
                                 for m in explanation.missing_facts],
        "eligible_paths": list(explanation.holding_paths),
        "criteria": [_criterion_data(c) for c in explanation.criteria],
        "warnings": [_warning_data(w) for w in explanation.warnings],
        "at": explanation.at,
        "pending": [{"id": p.id, "kind": p.kind, "label": p.label, "at": list(p.at), "fails": p.fails}
                    for p in explanation.pending],
    }


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


def to_text(explanation: Explanation, verbose: bool = False) -> str:
    lines: list[str] = []
    protocol = explanation.protocol
    title = protocol.get("title") or protocol["id"]
    lines.append(f"{title} ({protocol['id']}, version {protocol.get('version')})")
    lines.append(f"patient: {explanation.patient}")
    if explanation.at is not None:
        lines.append(f"at: {explanation.at}")
    lines.append("")
    lines.append(f"verdict: {_verdict_words(explanation)}{_verdict_note(explanation)}")
    by_id = {c.id: c for c in explanation.criteria}
    if explanation.blocking:
        lines += ["", "Blocking criteria:"]
        for cid in explanation.blocking:
            lines += _blocking_lines(by_id[cid])
    for core in explanation.conflicts:
        lines += ["", "These criteria can each be met, but not all together with the known facts:"]
        lines += [f"  - {cid}: {by_id[cid].label}" for cid in core]
    if explanation.missing_facts:
        lines += ["", "Missing facts that matter:"]
        for missing in explanation.missing_facts:
            about = f" ({missing.description})" if missing.description else ""
            lines.append(f"  - {missing.name}{about}: could decide {', '.join(missing.criteria)}")
    if explanation.holding_paths:
        lines += ["", "Qualifies through:"]
        lines += [f"  - {path}" for path in explanation.holding_paths]
    either_or = [c for c in explanation.criteria if c.paths]
    if either_or:
        lines += ["", "Either/or criteria:"]
        for finding in either_or:
            lines.append(f"  {finding.id} ({STATUS_TEXT[(finding.kind, finding.status)]})")
            decided = finding.status != "unknown"
            for path in finding.paths:
                if not (decided and path.status == "unknown"):
                    lines += _path_lines(path, 2)
    if explanation.pending:
        lines += ["", "To be assessed later:"]
        width = max(len(p.id) for p in explanation.pending)
        lines += [f"  - {p.id:<{width}}  at {' and '.join(p.at)}: {p.label}"
                  + (" (fails with the values already given)" if p.fails else "") for p in explanation.pending]
    lines += ["", "All criteria:"]
    width = max((len(c.id) for c in explanation.criteria), default=0)
    for kind in ("inclusion", "exclusion"):
        for finding in (c for c in explanation.criteria if c.kind == kind):
            status = STATUS_TEXT[(finding.kind, finding.status)]
            lines.append(f"  {kind:<9}  {status:<8}  {finding.id:<{width}}  {finding.label}")
            if verbose or finding.status == "unknown":
                lines += [f"{'':>{25 + width}}{reason}" for reason in finding.reasons]
    if explanation.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  - {w.message}" + (f" ({w.span})" if w.span else "") for w in explanation.warnings]
    return "\n".join(lines) + "\n"


def _verdict_words(explanation: Explanation) -> str:
    """`PENDING` reads `ELIGIBLE, PENDING 2 checks at lymphodepletion` (counted per later time point)."""
    if explanation.verdict != "pending":
        return explanation.verdict.upper()
    counts: dict[str, int] = {}
    for check in explanation.pending:
        counts[check.at[0]] = counts.get(check.at[0], 0) + 1
    parts = [f"{count} check{'s' if count != 1 else ''} at {point}" for point, count in counts.items()]
    failing = sum(check.fails for check in explanation.pending)
    warning = f" ({failing} already fail{'s' if failing == 1 else ''} with the values given)" if failing else ""
    return "ELIGIBLE, PENDING " + ", ".join(parts) + warning


def _verdict_note(explanation: Explanation) -> str:
    if explanation.verdict == "undetermined":
        count = len(explanation.missing_facts)
        return f" (depends on {count} missing fact{'s' if count != 1 else ''})"
    return ""


def _blocking_lines(finding: CriterionFinding) -> list[str]:
    if finding.kind == "inclusion":
        head = f"  - {finding.id}: not met: {finding.label}"
    else:
        head = f"  - {finding.id}: excluded because: {finding.label}"
    return [head] + [f"      {reason}" for reason in finding.reasons]


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

VERIFY_SCHEMA_ID = "eligib.verify/1"
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
