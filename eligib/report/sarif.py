"""Diagnostics as SARIF 2.1.0, the format CI systems and code review tools read to show findings inline
(`eligib validate --format sarif`, `eligib verify --format sarif`; docs/cli.md).

One run, one rule per diagnostic code (its documentation in docs/errors.md), one result per
diagnostic with its region in the protocol file. Proved properties of `verify` are results of kind
`pass`; `--strict` reports warnings at level `error`.
"""

from __future__ import annotations

from typing import Any

from eligib.language.diagnostics import Diagnostic, Severity
from eligib.language.source import Span

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
ERRORS_DOC = "docs/errors.md"


def sarif_log(diagnostics: list[Diagnostic], version: str, strict: bool = False) -> dict[str, Any]:
    """A SARIF log of one eligib run over the diagnostics (in the order given)."""
    codes = list(dict.fromkeys(d.code for d in diagnostics))
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "eligib", "version": version, "semanticVersion": version,
                "rules": [_rule(code) for code in codes],
            }},
            "results": [_result(d, codes.index(d.code), strict) for d in diagnostics],
            "columnKind": "unicodeCodePoints",
        }],
    }


def _rule(code: str) -> dict[str, Any]:
    return {"id": code, "name": code, "shortDescription": {"text": code.replace("-", " ")},
            "help": {"text": f"{ERRORS_DOC}#{code}: a bad example and its fix"}}


def _result(diagnostic: Diagnostic, rule_index: int, strict: bool) -> dict[str, Any]:
    text = diagnostic.message + (f" (help: {diagnostic.help})" if diagnostic.help else "")
    result: dict[str, Any] = {"ruleId": diagnostic.code, "ruleIndex": rule_index, "message": {"text": text}}
    if diagnostic.severity == Severity.OK:
        result.update({"kind": "pass", "level": "none"})
    else:
        warning = diagnostic.severity == Severity.WARNING and not strict
        result.update({"kind": "fail", "level": "warning" if warning else "error"})
    if diagnostic.span is not None:
        result["locations"] = [_location(diagnostic.span, diagnostic.label)]
    return result


def _location(span: Span, label: str) -> dict[str, Any]:
    end_line = max(span.end_line, span.line)
    end_column = max(span.end_column, span.column + 1) if end_line == span.line else span.end_column
    region = {"startLine": span.line, "startColumn": span.column, "endLine": end_line, "endColumn": end_column}
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": span.file.replace("\\", "/")},
                                                     "region": region}}
    if label:
        location["message"] = {"text": label}
    return location
