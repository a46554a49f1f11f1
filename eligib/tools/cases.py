"""Protocol test cases: named patients with expected outcomes, kept next to a protocol and run.

A case file (YAML or TOML) holds `cases`, each with an `id`, a `title`, the patient (`facts`,
or `set`/`unset` relative to the file's `base`, or a `file` of facts), and expectations:
`verdict`, `blocking` (exact set of blocking criteria), `missing` (exact set of missing facts
that matter), `paths` (named paths that must hold) and `pending` (exact set of criteria still to
assess); `at` names the time point to judge at, as `eligib check --at` does (by default, the first).
Unstated expectations are not checked.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from eligib.engine import Engine
from eligib.inputs.documents import nesting, yaml_document
from eligib.inputs.facts import Patient, patient_from_source
from eligib.language.diagnostics import DiagnosticError, error
from eligib.language.reading import read_source
from eligib.language.source import SourceFile
from eligib.language.timepoints import FINAL
from eligib.limits import CHECK_SECONDS, MAX_CASE_FILE_BYTES, MAX_CASES, MAX_INPUT_NESTING, MAX_PATIENT_BYTES
from eligib.values.numbers import decimal_or_bad

CASE_KEYS = {"id", "title", "facts", "set", "unset", "file", "at", "verdict", "blocking", "missing", "paths",
             "pending"}
VERDICTS = ("eligible", "ineligible", "undetermined", "pending")


@dataclass
class Case:
    id: str
    title: str
    facts: dict[str, Any] | None
    file: str | None
    expected: dict[str, Any]
    line: int | None = None
    at: str | None = None  # the time point to judge at, as `eligib check --at` (None: its default)


@dataclass
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)  # readable differences; empty when the case passes
    error: str | None = None  # the patient could not be read

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


def load_cases(path: str, root: str | None = None, timepoints: tuple[str, ...] | None = None) -> list[Case]:
    """Read a YAML or TOML case file; raise DiagnosticError naming the file, line and case. Patient files
    it names must lie under `root` (by default, the case file's own folder); `at` must name one of
    `timepoints` (when given: the protocol's), or `final`."""
    source = read_source(path, "case file", MAX_CASE_FILE_BYTES)
    data, lines = _parse(source)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise DiagnosticError([error("bad-case-file", "a case file needs a list `cases`", source.span_at(1, 1),
                                     help="see docs/cli.md, `eligib test`")])
    unknown = set(data) - {"protocol", "base", "cases"}
    if unknown:
        raise DiagnosticError([error("bad-case-file", f"unknown top-level key `{sorted(map(str, unknown))[0]}`",
                                     source.span_at(1, 1), help="a case file has `protocol`, `base` and `cases`")])
    if len(data["cases"]) > MAX_CASES:
        raise DiagnosticError([error("too-many", f"more than {MAX_CASES} cases in one file", source.span_at(1, 1),
                                     help="split the file; see docs/limits.md")])
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise DiagnosticError([error("bad-case-file", "`base` must be a mapping of fact names to values",
                                     source.span_at(1, 1), help="see docs/cli.md, `eligib test`")])
    cases, problems = [], []
    for index, entry in enumerate(data["cases"]):
        line, column = lines[index] if index < len(lines) else (None, 1)
        span = source.span_at(line, column, len(source.line_text(line)) - column + 1) if line else None
        try:
            cases.append(_case(entry, base, os.path.dirname(path) or ".", root, line))
            _check_at(cases[-1], timepoints)
        except ValueError as exc:
            problems.append(error("bad-case", str(exc), span, help="see docs/cli.md, `eligib test`"))
    if problems:
        raise DiagnosticError(problems)
    return cases


def _parse(source: SourceFile) -> tuple[Any, list[tuple[int, int]]]:
    """The case file's data, and the line and column where each case starts (YAML only)."""
    hint = "see docs/cli.md, `eligib test`"
    if source.path.endswith(".toml"):
        try:
            data = tomllib.loads(source.text, parse_float=decimal_or_bad)
        except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
            problem = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise DiagnosticError([error("bad-case-file", f"malformed TOML: {problem}", help=hint)]) from None
        if nesting(data) > MAX_INPUT_NESTING:
            raise DiagnosticError([error("bad-case-file", f"tables and lists nest more than {MAX_INPUT_NESTING} deep",
                                         help="see docs/limits.md")])
        return data, []
    import yaml

    document = yaml_document(source, "case-file", hint)
    node = yaml.compose(source.text, Loader=yaml.SafeLoader) if isinstance(document.data, dict) else None
    lines: list[tuple[int, int]] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "cases" and isinstance(value, yaml.SequenceNode):
                lines = [(item.start_mark.line + 1, item.start_mark.column + 1) for item in value.value]
    return document.data, lines


def _case(entry: Any, base: dict[str, Any], directory: str, root: str | None, line: int | None) -> Case:
    if not isinstance(entry, dict) or "id" not in entry:
        raise ValueError("each case needs an `id`")
    case_id = _text(entry["id"], "id", "case")
    where = f"case `{case_id}`"
    unknown = set(entry) - CASE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key `{sorted(map(str, unknown))[0]}`")
    if entry.get("verdict") is not None and entry["verdict"] not in VERDICTS:
        raise ValueError(f"{where}: verdict must be one of {', '.join(VERDICTS)}")
    for key in ("facts", "set"):
        if entry.get(key) is not None and not isinstance(entry[key], dict):
            raise ValueError(f"{where}: `{key}` must be a mapping of fact names to values")
    if entry.get("at") is not None and not isinstance(entry["at"], str):
        raise ValueError(f"{where}: `at` must be a time point's name, or `final`")
    for key in ("unset", "blocking", "missing", "paths", "pending"):
        if entry.get(key) is not None and not (isinstance(entry[key], list)
                                               and all(isinstance(item, str) for item in entry[key])):
            raise ValueError(f"{where}: `{key}` must be a list of names, such as `[{key}_a, {key}_b]`")
    file = entry.get("file")
    if file is not None and {"facts", "set", "unset"} & set(entry):
        raise ValueError(f"{where}: `file` cannot be combined with `facts`, `set` or `unset`")
    facts = None
    if file is None:
        facts = dict(base) if "facts" not in entry else dict(entry["facts"] or {})
        facts.update(entry.get("set") or {})
        for name in entry.get("unset") or []:
            facts.pop(name, None)
    else:
        file = referenced_file(_text(file, "file", where, numbers=False), directory, root, where)
    expected = {key: entry[key] for key in ("verdict", "blocking", "missing", "paths", "pending") if key in entry}
    return Case(case_id, _text(entry.get("title", ""), "title", where, numbers=False), facts, file, expected, line,
                entry.get("at"))


def _check_at(case: Case, timepoints: tuple[str, ...] | None) -> None:
    if case.at is None or timepoints is None or case.at in (*timepoints, FINAL):
        return
    known = f"its time points: {', '.join(timepoints)}, or `final`" if timepoints else "it declares none"
    raise ValueError(f"case `{case.id}`: `at: {case.at}` is not a time point of the protocol ({known})")


def _text(value: Any, key: str, where: str, numbers: bool = True) -> str:
    """A text field; `numbers` also takes a whole number (ids such as `12`)."""
    if isinstance(value, str) or (numbers and isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    raise ValueError(f"{where}: `{key}` must be text")


def referenced_file(name: str, directory: str, root: str | None, where: str) -> str:
    """A patient file a case refers to: a relative path from the case file's folder, to a file that is not
    hidden, under `root` (by default the case file's folder), following links.

    A case file is data that may come from someone else: it must not make `eligib test` read
    /etc/passwd, a credentials file next to it, or a FIFO that never ends (reading refuses those)."""
    allowed = "the case file's folder" if root is None else f"the folder `{root}` (--root)"
    if os.path.isabs(name) or name.startswith("~"):
        raise ValueError(f"{where}: `file` must be a path relative to the case file's folder, not `{name}`")
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if any(part.startswith(".") and part != ".." for part in parts):
        raise ValueError(f"{where}: `file` may not name a hidden file (`{name}`)")
    limit = os.path.realpath(root if root is not None else directory)
    target = os.path.realpath(os.path.join(directory, *parts))
    if os.path.commonpath([limit, target]) != limit:
        raise ValueError(f"{where}: `{name}` leads outside {allowed}")
    return target


def run_case(engine: Engine, case: Case, timeout: float | None = CHECK_SECONDS) -> CaseResult:
    try:
        patient = _case_patient(engine, case)
        result = engine.check(patient, timeout, at=engine.timepoint(case.at))
    except DiagnosticError as exc:
        first = exc.diagnostics[0]
        return CaseResult(case, error=f"{first.message}" + (f" ({first.help})" if first.help else ""))
    outcome = CaseResult(case)
    expected = case.expected
    if "verdict" in expected and result.verdict != expected["verdict"]:
        outcome.failures.append(f"verdict: expected {expected['verdict']}, got {result.verdict}")
    for key, actual in (("blocking", result.blocking), ("missing", [m.name for m in result.missing_facts]),
                        ("pending", [p.id for p in result.pending])):
        if key in expected:
            outcome.failures += _set_difference(key, list(expected[key] or []), list(actual))
    for path in expected.get("paths") or []:
        status = result.path_status(path)
        if status != "holds":
            found = "does not exist" if status is None else status
            outcome.failures.append(f"path {path}: expected to hold, but it {found}")
    return outcome


def _set_difference(key: str, expected: list[str], actual: list[str]) -> list[str]:
    if sorted(expected) == sorted(actual):
        return []
    lines = [f"{key}: expected [{', '.join(sorted(expected))}], got [{', '.join(sorted(actual))}]"]
    lines += [f"    - {item} (expected, missing)" for item in sorted(set(expected) - set(actual))]
    lines += [f"    + {item} (not expected)" for item in sorted(set(actual) - set(expected))]
    return lines


def _case_patient(engine: Engine, case: Case) -> Patient:
    if case.file is None:
        return engine.patient(case.facts or {})
    source = read_source(case.file, "patient file", MAX_PATIENT_BYTES, regular_only=True)
    return patient_from_source(engine.checked, source)


def run_files(engine: Engine, paths: list[str], timeout: float | None = CHECK_SECONDS,
              root: str | None = None) -> list[CaseResult]:
    """Every case of every file; all files are read (and any bad one reported) before a case runs.
    Patient files named by cases must lie under `root` (by default, each case file's folder)."""
    loaded = [load_cases(path, root, engine.checked.timepoints) for path in paths]
    return [run_case(engine, case, timeout) for cases in loaded for case in cases]
