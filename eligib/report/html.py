"""`eligib check --format html`: one self-contained page (no script, no external file) that prints on A4.

It holds what the text output holds with `-v`: the summary line, the header (protocol, version, content
hash, patient, evaluation time), what to do next, the blocking criteria, the missing facts with their
conditions, the either/or paths and every criterion's finding. Every piece of text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from eligib.report.explanation import CriterionFinding, Explanation, PathFinding
from eligib.report.render import STATUS_TEXT, missing_detail, ranked

if TYPE_CHECKING:
    from eligib.analysis.guidance import Guidance
    from eligib.analysis.summary import RunInfo

STYLE = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font: 10.5pt/1.4 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #111; margin: 0 auto;
       max-width: 186mm; padding: 6mm 0; overflow-wrap: anywhere; }
h1 { font-size: 15pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 1px solid #999; break-after: avoid; }
.summary { font-weight: bold; font-size: 11.5pt; padding: 3mm 4mm; border: 2px solid; border-radius: 2mm; }
.eligible { border-color: #1b7f3b; background: #e8f5ec; }
.ineligible { border-color: #b3261e; background: #fbeaea; }
.undetermined, .pending { border-color: #9a6b00; background: #fff6e0; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; }
thead { display: table-header-group; }
th, td { text-align: left; vertical-align: top; padding: 1mm 1.5mm; border-bottom: 1px solid #ddd; }
th { background: #f1f1f1; }
tr, li, .summary { break-inside: avoid; }
dl.meta { display: grid; grid-template-columns: 32mm 1fr; margin: 3mm 0; gap: 0.5mm 3mm; }
dl.meta dt { font-weight: bold; } dl.meta dd { margin: 0; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 9.5pt; }
.reasons { margin: 0; padding-left: 4mm; font-size: 9.5pt; color: #333; }
ul.paths { margin: 0.5mm 0; padding-left: 5mm; }
.status-blocks { color: #b3261e; font-weight: bold; } .status-open { color: #9a6b00; font-weight: bold; }
"""


def to_html(explanation: Explanation, guidance: Guidance | None = None, info: RunInfo | None = None) -> str:
    from eligib.analysis.guidance import Guidance
    from eligib.analysis.summary import summary_line

    guided = guidance if guidance is not None else Guidance("")
    summary = guided.summary or summary_line(explanation, guided)
    protocol = explanation.protocol
    title = protocol.get("title") or protocol["id"] or ""
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{escape(str(protocol['id']))}: {escape(explanation.verdict.upper())}</title>",
        f"<style>{STYLE}</style>", "</head>", "<body>",
        f'<p class="summary {escape(explanation.verdict)}">{escape(summary)}</p>',
        f"<h1>{escape(title)}</h1>", _meta(explanation, info),
    ]
    if explanation.blocking:
        parts += ["<h2>Blocking criteria</h2>", _criteria_table([c for c in explanation.criteria if c.blocks])]
    parts += _next_steps(explanation, guided)
    if explanation.holding_paths:
        parts += ["<h2>Qualifies through</h2>", _list(explanation.holding_paths)]
    either_or = [c for c in explanation.criteria if c.paths]
    if either_or:
        parts += ["<h2>Either/or criteria</h2>"] + [_either_or(c) for c in either_or]
    if explanation.pending:
        parts += ["<h2>To be assessed later</h2>",
                  _list([f"{p.id} at {' and '.join(p.at)}: {p.label}" for p in explanation.pending])]
    parts += ["<h2>All criteria</h2>", _criteria_table(explanation.criteria)]
    if explanation.warnings:
        parts += ["<h2>Warnings</h2>",
                  _list([w.message + (f" ({w.span})" if w.span else "") for w in explanation.warnings])]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _next_steps(explanation: Explanation, guidance: Guidance) -> list[str]:
    """Changes, clear dates, ranked missing facts with their conditions, and what to collect first."""
    parts: list[str] = []
    if guidance.changes:
        rows = [(c.fact, c.current, c.eligible_if or "changed", c.example) for c in guidance.changes]
        together = "<p>Each condition holds with the other changes as in their examples.</p>" \
            if len(guidance.changes) > 1 else ""
        if guidance.changes_leave_open:
            together += (f"<p>These changes are not enough alone: {escape(', '.join(guidance.changes_leave_open))}"
                         " still decide (not known in full).</p>")
        parts += ["<h2>What would make the patient eligible</h2>",
                  _table(("Fact", "Now", "Eligible if", "For example"), rows, ("38mm", "28mm", "", "30mm")), together]
    elif guidance.no_change_reason:
        parts += ["<h2>What would make the patient eligible</h2>", f"<p>{escape(guidance.no_change_reason)}.</p>"]
    if guidance.clears_on:
        parts += ["<h2>Time windows that will pass</h2>", _list([
            f"{c.criterion} clears with {c.fact} on or after {c.date}"
            + ("; eligible from then if nothing else changes" if c.eligible_then else "") for c in guidance.clears_on])]
    if explanation.missing_facts:
        found = {m.fact: m for m in guidance.missing}
        rows = []
        for rank, missing in enumerate(ranked(explanation, guidance), start=1):
            detail = missing_detail(missing, found.get(missing.name))
            rows.append((str(rank), missing.name, missing.description, "; ".join(detail)))
        parts += ["<h2>Missing facts that matter, most useful first</h2>",
                  _table(("#", "Fact", "Description", "Condition and what it decides"), rows,
                         ("8mm", "40mm", "", "62mm"))]
    if guidance.collect_first:
        chosen = guidance.collect_first
        exact = "no smaller set can" if chosen.exact else f"at least {chosen.at_least} needed; none can be left out"
        parts.append(f"<p><b>Collect first:</b> {escape(', '.join(chosen.facts))} ({escape(exact)})</p>")
    if guidance.incomplete:
        parts.append(f"<p><b>Note:</b> {escape(guidance.incomplete)}.</p>")
    return parts


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], widths: tuple[str, ...]) -> str:
    columns = "".join(f'<col style="width:{w}">' if w else "<col>" for w in widths)
    heading = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><colgroup>{columns}</colgroup><thead><tr>{heading}</tr></thead><tbody>{body}</tbody></table>"


def _meta(explanation: Explanation, info: RunInfo | None) -> str:
    protocol = explanation.protocol
    rows = [("Protocol", f"{protocol['id']} version {protocol.get('version')}"),
            ("Registry", protocol.get("registry") or ""), ("Protocol file", protocol.get("file") or ""),
            ("Patient", explanation.patient), ("Verdict", explanation.verdict.upper())]
    if explanation.at is not None:
        rows.append(("Time point", explanation.at))
    if info is not None:
        rows += [("Protocol SHA-256", info.protocol_sha256), ("Evaluated at", info.evaluated_at),
                 ("eligib", info.eligib_version)]
    items = "".join(f"<dt>{escape(key)}</dt><dd>{escape(value)}</dd>" for key, value in rows if value)
    return f'<dl class="meta">{items}</dl>'


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _criteria_table(findings: list[CriterionFinding]) -> str:
    rows = []
    for finding in findings:
        status = STATUS_TEXT[(finding.kind, finding.status)]
        css = "status-blocks" if finding.blocks else "status-open" if finding.blocks is None else ""
        reasons = "".join(f"<li>{escape(reason)}</li>" for reason in finding.reasons)
        rows.append(f"<tr><td>{escape(finding.kind)}</td><td class=\"{css}\">{escape(status)}</td>"
                    f"<td><code>{escape(finding.id)}</code></td><td>{escape(finding.label)}"
                    f"<ul class=\"reasons\">{reasons}</ul></td></tr>")
    head = ('<colgroup><col style="width:22mm"><col style="width:20mm"><col style="width:44mm"><col></colgroup>'
            "<thead><tr><th>Kind</th><th>Status</th><th>Criterion</th><th>Label and reasons</th></tr></thead>")
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def _either_or(finding: CriterionFinding) -> str:
    status = STATUS_TEXT[(finding.kind, finding.status)]
    return (f"<p><code>{escape(finding.id)}</code> ({escape(status)})</p>"
            f"<ul class=\"paths\">{''.join(_path(p) for p in finding.paths)}</ul>")


def _path(path: PathFinding) -> str:
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in path.reasons)
    inner = f"<ul class=\"paths\">{''.join(_path(p) for p in path.paths)}</ul>" if path.paths else ""
    return (f"<li><code>{escape(path.name)}</code>: {escape(path.status)}"
            f"<ul class=\"reasons\">{reasons}</ul>{inner}</li>")
