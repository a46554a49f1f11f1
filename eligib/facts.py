"""Load a patient's facts (JSON or YAML) and validate them against a checked protocol.

Values become exact canonical values (see values.py). Numbers are read as decimals, never
floats. A value may be written in any unit convertible to the declared one: `"6.5 g/dL"`,
`{"value": 6.5, "unit": "g/dL"}`, or a bare number in the declared unit. An absent fact (or
null) is unknown; `"none"` says an `or none` fact has no value. Every problem is reported
with the fact's name and its position in the file; nothing is dropped or guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from eligib.checker import BoolType, CheckedProtocol, DateType, EnumType, FactInfo, NumType
from eligib.diagnostics import Diagnostic, DiagnosticError, error, suggest, warning
from eligib.source import SourceFile, Span
from eligib.units import UnitError, dimension_name, format_decimal, from_canonical, parse_unit
from eligib.values import NONE, Value

MAX_PATIENT_BYTES = 1_000_000
_NUMBER_WITH_UNIT = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)(?:\s*(\S.*?))?\s*$")


@dataclass
class Patient:
    """A patient's known facts as exact canonical values; absent facts are unknown."""

    values: dict[str, Value]
    path: str = "<patient>"
    source: SourceFile | None = None
    warnings: list[Diagnostic] = field(default_factory=list)


class _PatientError(Exception):
    def __init__(self, message: str, help: str = "") -> None:
        super().__init__(message)
        self.message, self.help = message, help


def load_patient(checked: CheckedProtocol, path: str) -> Patient:
    """Read a facts file or a FHIR R4 Bundle (`-` for stdin) and validate it."""
    text, display = _read(path)
    source = SourceFile(display, text)
    data, positions = _parse(text, source, display)
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        from eligib.fhir import facts_from_bundle  # imports the FHIR libraries only for bundles

        data, notes = facts_from_bundle(checked, text, source)
        patient = validate(checked, data, source, {})
        patient.warnings = notes + patient.warnings
        return patient
    return validate(checked, data, source, positions)


def patient_from_mapping(checked: CheckedProtocol, data: dict[str, Any], path: str = "<patient>") -> Patient:
    """Validate facts given as a Python mapping (library use); numbers should be Decimal, int or str."""
    return validate(checked, data, SourceFile(path, ""), {})


def _read(path: str) -> tuple[str, str]:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_PATIENT_BYTES + 1)
        display = "<stdin>"
    else:
        display = path
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_PATIENT_BYTES + 1)
        except OSError as exc:
            raise DiagnosticError([error("io", f"cannot read patient file `{path}`: {exc.strerror or exc}")]) \
                from None
    if len(data) > MAX_PATIENT_BYTES:
        raise DiagnosticError([error("too-large", f"patient file `{display}` is larger than {MAX_PATIENT_BYTES} "
                                                  "bytes")])
    try:
        return data.decode("utf-8"), display
    except UnicodeDecodeError as exc:
        raise DiagnosticError([error("encoding", f"patient file `{display}` is not UTF-8 (byte {exc.start})")]) \
            from None


def _parse(text: str, source: SourceFile, display: str) -> tuple[Any, dict[str, Span]]:
    stripped = text.lstrip()
    if display.endswith(".json") or stripped.startswith("{") or stripped.startswith("["):
        return _parse_json(text, source, display)
    return _parse_yaml(text, source, display)


def _parse_json(text: str, source: SourceFile, display: str) -> tuple[Any, dict[str, Span]]:
    def no_duplicates(pairs):
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen[key] = value
        return seen

    try:
        data = json.loads(text, parse_float=Decimal, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise DiagnosticError([error("bad-patient-file", f"malformed JSON: {exc.msg.lower()}",
                                     source.span_at(exc.lineno, exc.colno), "here",
                                     help="a patient file is one JSON object: {\"fact\": value, ...}")],
                              {display: source}) from None
    except _DuplicateKey as exc:
        raise DiagnosticError([error("duplicate-fact-value", f"fact `{exc.key}` is given twice",
                                     _json_key_span(text, source, exc.key, last=True), "given again here",
                                     help="keep one value per fact")], {display: source}) from None
    positions = {key: _json_key_span(text, source, key) for key in data} if isinstance(data, dict) else {}
    return data, positions


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _json_key_span(text: str, source: SourceFile, key: str, last: bool = False) -> Span | None:
    matches = list(re.finditer(r'"' + re.escape(json.dumps(key)[1:-1]) + r'"\s*:', text))
    if not matches:
        return None
    match = matches[-1] if last else matches[0]
    line = text.count("\n", 0, match.start()) + 1
    column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    return source.span_at(line, column, len(key) + 2)


def _parse_yaml(text: str, source: SourceFile, display: str) -> tuple[Any, dict[str, Span]]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def decimal_float(loader, node):
        value = loader.construct_scalar(node).replace("_", "")
        try:
            return Decimal(value)
        except InvalidOperation:
            return value

    Loader.add_constructor("tag:yaml.org,2002:float", decimal_float)
    try:
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        span = source.span_at(mark.line + 1, mark.column + 1) if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise DiagnosticError([error("bad-patient-file", f"malformed YAML: {problem}", span, "here",
                                     help="a patient file is a mapping of fact names to values")],
                              {display: source}) from None
    positions: dict[str, Span] = {}
    if node is not None and isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = str(key_node.value)
            span = source.span_at(key_node.start_mark.line + 1, key_node.start_mark.column + 1, len(key))
            if key in seen:
                raise DiagnosticError([error("duplicate-fact-value", f"fact `{key}` is given twice", span,
                                             "given again here", help="keep one value per fact")],
                                      {display: source})
            seen.add(key)
            positions[key] = span
    return data, positions


def validate(checked: CheckedProtocol, data: Any, source: SourceFile,
             positions: dict[str, Span]) -> Patient:
    display = source.path
    if not isinstance(data, dict):
        raise DiagnosticError([error("bad-patient-file", "a patient file must be a mapping of fact names to "
                                     "values", source.span_at(1, 1) if source.text else None,
                                     help='write e.g. {"age": 45, "lvef": "60 %"}')], {display: source})
    diagnostics: list[Diagnostic] = []
    values: dict[str, Value] = {}
    for key, raw in data.items():
        name = str(key)
        span = positions.get(name)
        info = checked.facts.get(name)
        if info is None:
            diagnostics.append(error("unknown-fact", f"unknown fact `{name}`", span,
                                     "not declared in the protocol",
                                     help=suggest(name, checked.facts) or f"see `eligib facts {checked.source.path}`"
                                     " for the declared facts"))
            continue
        if raw is None:
            continue  # null: unknown, like an absent fact
        try:
            values[name] = convert(info, raw)
        except _PatientError as exc:
            diagnostics.append(error("bad-patient-value", f"fact `{name}`: {exc.message}", span, "this value",
                                     help=exc.help))
    if any(d.severity == "error" for d in diagnostics):
        raise DiagnosticError(diagnostics, {display: source})
    diagnostics += _outside_subgroup(checked, values, positions)
    return Patient(values, display, source, diagnostics)


def _outside_subgroup(checked: CheckedProtocol, values: dict[str, Value], positions) -> list[Diagnostic]:
    """Warn about facts given for a patient outside the fact's subgroup: they cannot matter."""
    from eligib.evaluate import Evaluator

    evaluator = Evaluator(checked, values)
    found = []
    for name in values:
        guard = checked.facts[name].guard
        if guard is not None and evaluator.truth(evaluator.eval(guard)) is False:
            found.append(warning("fact-not-applicable", f"fact `{name}` does not apply to this patient",
                                 positions.get(name), "ignored: its condition is false",
                                 help=f"`{name}` exists only if its declared condition holds; it cannot change "
                                      "the result"))
    return found


def convert(info: FactInfo, raw: Any) -> Value:
    """One raw value from a patient file -> an exact canonical value, or _PatientError."""
    if isinstance(raw, str) and raw.strip().lower() == "none":
        if not info.optional:
            raise _PatientError("`none` is not allowed", help=f"`{info.name}` is not declared `or none`; leave it "
                                                               "out if it is unknown")
        return NONE
    kind = info.type
    if isinstance(kind, BoolType):
        if isinstance(raw, bool):
            return raw
        raise _PatientError(f"expected true or false, got {_describe(raw)}")
    if isinstance(kind, EnumType):
        if isinstance(raw, str) and raw in kind.values:
            return raw
        hint = suggest(str(raw), kind.values) if isinstance(raw, str) else ""
        raise _PatientError(f"expected one of {', '.join(kind.values)}; got {_describe(raw)}",
                            help=hint or f"allowed values: {', '.join(kind.values)}")
    if isinstance(kind, DateType):
        return _date(info, raw)
    return _number(info, kind, raw)


def _date(info: FactInfo, raw: Any) -> int:
    if isinstance(raw, dt.datetime):
        raise _PatientError("expected a date without a time", help="write YYYY-MM-DD")
    if isinstance(raw, dt.date):
        day = raw.toordinal()
    elif isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.strip()):
        try:
            day = dt.date.fromisoformat(raw.strip()).toordinal()
        except ValueError:
            raise _PatientError(f"`{raw}` is not a calendar date", help="check the month and day") from None
    else:
        raise _PatientError(f"expected a date (YYYY-MM-DD), got {_describe(raw)}", help="write ISO 8601: 2026-11-20")
    _check_range(info, day, lambda v: dt.date.fromordinal(v).isoformat())
    return day


def _number(info: FactInfo, kind: NumType, raw: Any) -> Fraction:
    number, unit = _split_quantity(info, kind, raw)
    declared = kind.unit
    if unit is None or (declared is not None and unit == declared):
        canonical = number * (parse_unit(declared).factor if declared else 1)
    else:
        try:
            given = parse_unit(unit)
        except UnitError:
            raise _PatientError(f"unknown unit `{unit}`", help=_accepted(kind, info)) from None
        if declared is not None and given.kind in info.conversions:
            canonical = number * given.factor * info.conversions[given.kind]
        elif declared is None or given.kind != parse_unit(declared).kind:
            raise _PatientError(f"unit `{unit}` cannot be converted to `{declared or 'a plain number'}`",
                                help=_accepted(kind, info))
        else:
            canonical = number * given.factor
    if kind.integer and from_canonical(canonical, declared).denominator != 1:
        shown = format_decimal(from_canonical(canonical, declared))
        raise _PatientError(f"expected a whole number{f' of {declared}' if declared else ''}, got {shown}")
    _check_range(info, canonical, lambda v: _show(v, declared))
    return canonical


def _split_quantity(info: FactInfo, kind: NumType, raw: Any) -> tuple[Fraction, str | None]:
    if isinstance(raw, dict):
        extra = set(raw) - {"value", "unit"}
        if "value" not in raw or extra:
            raise _PatientError('a quantity object needs exactly "value" and "unit"',
                                help='write {"value": 6.5, "unit": "g/dL"}')
        number, _ = _split_quantity(info, kind, raw["value"])
        unit = raw.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise _PatientError(f"the unit must be text, got {_describe(unit)}")
        return number, unit
    if isinstance(raw, bool):
        raise _PatientError(f"expected a number, got {_describe(raw)}", help=_accepted(kind))
    if isinstance(raw, int):
        return Fraction(raw), None
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            raise _PatientError("expected a finite number")
        return Fraction(raw), None
    if isinstance(raw, float):  # only from library callers; keep the decimal they wrote
        return Fraction(repr(raw)), None
    if isinstance(raw, str):
        match = _NUMBER_WITH_UNIT.match(raw)
        if not match:
            raise _PatientError(f"`{raw}` is not a number with an optional unit", help=_accepted(kind))
        return Fraction(match.group(1)), match.group(2)
    raise _PatientError(f"expected a number, got {_describe(raw)}", help=_accepted(kind))


def _check_range(info: FactInfo, value: Any, show) -> None:
    low, high = info.low, info.high
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{show(low) if low is not None else '...'} to {show(high) if high is not None else '...'}"
        raise _PatientError(f"{show(value)} is outside the declared range {bounds}",
                            help="check the value and its unit")


def _show(value: Fraction, unit: str | None) -> str:
    return format_decimal(from_canonical(value, unit)) + (f" {unit}" if unit else "")


def _accepted(kind: NumType, info: FactInfo | None = None) -> str:
    if kind.unit is None:
        return "give a plain number"
    accepted = f"units accepted: `{kind.unit}` or any unit of {dimension_name(kind.kind)}"
    for conversion in (info.decl.conversions if info is not None else ()):
        accepted += f", or via `{conversion.left.text} = {conversion.right.text}`"
    return f"{accepted}; e.g. \"12 {kind.unit}\""


def _describe(raw: Any) -> str:
    if isinstance(raw, bool):
        return "`true`" if raw else "`false`"
    if isinstance(raw, str):
        return f'the text "{raw}"'
    if isinstance(raw, (list, dict)):
        return "a list" if isinstance(raw, list) else "an object"
    return f"`{raw}`"
