"""Protocol test cases: named patients with expected outcomes, kept next to a protocol and run.

A case file (YAML or TOML) holds `cases`, each with an `id`, a `title`, the patient (`facts`,
or `set`/`unset` relative to the file's `base`, or a `file` of facts), and expectations:
`verdict`, `blocking` (exact set of blocking criteria), `missing` (exact set of missing facts
that matter) and `paths` (named paths that must hold). Unstated expectations are not checked.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from eligib.api import Engine
from eligib.diagnostics import DiagnosticError, error
from eligib.source import SourceFile

CASE_KEYS = {"id", "title", "facts", "set", "unset", "file", "verdict", "blocking", "missing", "paths"}
VERDICTS = ("eligible", "ineligible", "undetermined")


@dataclass
class Case:
    id: str
    title: str
    facts: dict[str, Any] | None
    file: str | None
    expected: dict[str, Any]
    line: int | None = None


@dataclass
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)  # readable differences; empty when the case passes
    error: str | None = None  # the patient could not be read

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


def load_cases(path: str) -> list[Case]:
    """Read a YAML or TOML case file; raise DiagnosticError naming the file, line and case."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise DiagnosticError([error("io", f"cannot read case file `{path}`: {exc.strerror or exc}")]) from None
    text = raw.decode("utf-8", errors="replace")
    source = SourceFile(path, text)
    data, lines = _parse(path, text, source)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise DiagnosticError([error("bad-case-file", "a case file needs a list `cases`", source.span_at(1, 1),
                                     help="see docs/cli.md, `eligib test`")], {path: source})
    unknown = set(data) - {"protocol", "base", "cases"}
    if unknown:
        raise DiagnosticError([error("bad-case-file", f"unknown top-level key `{sorted(unknown)[0]}`",
                                     source.span_at(1, 1), help="a case file has `protocol`, `base` and `cases`")],
                              {path: source})
    base = data.get("base") or {}
    cases, problems = [], []
    for index, entry in enumerate(data["cases"]):
        line = lines[index] if index < len(lines) else None
        span = source.span_at(line, 1) if line else None
        try:
            cases.append(_case(entry, base, os.path.dirname(path), line))
        except ValueError as exc:
            problems.append(error("bad-case", str(exc), span, help="see docs/cli.md, `eligib test`"))
    if problems:
        raise DiagnosticError(problems, {path: source})
    return cases


def _parse(path: str, text: str, source: SourceFile) -> tuple[Any, list[int]]:
    if path.endswith(".toml"):
        try:
            return tomllib.loads(text), []
        except tomllib.TOMLDecodeError as exc:
            raise DiagnosticError([error("bad-case-file", f"malformed TOML: {exc}")], {path: source}) from None
    import yaml

    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        span = source.span_at(mark.line + 1, mark.column + 1) if mark else None
        raise DiagnosticError([error("bad-case-file", f"malformed YAML: {getattr(exc, 'problem', exc)}", span)],
                              {path: source}) from None
    lines: list[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "cases" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    return data, lines


def _case(entry: Any, base: dict[str, Any], directory: str, line: int | None) -> Case:
    if not isinstance(entry, dict) or "id" not in entry:
        raise ValueError("each case needs an `id`")
    case_id = str(entry["id"])
    unknown = set(entry) - CASE_KEYS
    if unknown:
        raise ValueError(f"case `{case_id}`: unknown key `{sorted(unknown)[0]}`")
    if entry.get("verdict") is not None and entry["verdict"] not in VERDICTS:
        raise ValueError(f"case `{case_id}`: verdict must be one of {', '.join(VERDICTS)}")
    file = entry.get("file")
    if file is not None and {"facts", "set", "unset"} & set(entry):
        raise ValueError(f"case `{case_id}`: `file` cannot be combined with `facts`, `set` or `unset`")
    facts = None
    if file is None:
        facts = dict(base) if "facts" not in entry else dict(entry["facts"] or {})
        facts.update(entry.get("set") or {})
        for name in entry.get("unset") or []:
            facts.pop(name, None)
    else:
        file = os.path.join(directory, file)
    expected = {key: entry[key] for key in ("verdict", "blocking", "missing", "paths") if key in entry}
    return Case(case_id, str(entry.get("title", "")), facts, file, expected, line)


def run_case(engine: Engine, case: Case) -> CaseResult:
    try:
        patient = engine.patient(case.file) if case.file else engine.patient(case.facts or {})
    except DiagnosticError as exc:
        first = exc.diagnostics[0]
        return CaseResult(case, error=f"{first.message}" + (f" ({first.help})" if first.help else ""))
    result = engine.check(patient)
    outcome = CaseResult(case)
    expected = case.expected
    if "verdict" in expected and result.verdict != expected["verdict"]:
        outcome.failures.append(f"verdict: expected {expected['verdict']}, got {result.verdict}")
    for key, actual in (("blocking", result.blocking), ("missing", [m.name for m in result.missing_facts])):
        if key in expected:
            outcome.failures += _set_difference(key, list(expected[key] or []), list(actual))
    for path in expected.get("paths") or []:
        status = result.path_status(path)
        if status != "holds":
            outcome.failures.append(f"path {path}: expected to hold, but it {'does not exist' if status is None else status}")
    return outcome


def _set_difference(key: str, expected: list[str], actual: list[str]) -> list[str]:
    if sorted(expected) == sorted(actual):
        return []
    lines = [f"{key}: expected [{', '.join(sorted(expected))}], got [{', '.join(sorted(actual))}]"]
    lines += [f"    - {item} (expected, missing)" for item in sorted(set(expected) - set(actual))]
    lines += [f"    + {item} (not expected)" for item in sorted(set(actual) - set(expected))]
    return lines


def run_files(engine: Engine, paths: list[str]) -> list[CaseResult]:
    results = []
    for path in paths:
        results += [run_case(engine, case) for case in load_cases(path)]
    return results
