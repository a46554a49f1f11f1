"""Load a patient's facts (JSON or YAML) and validate them against a checked protocol.

Values become exact canonical values (see values.py). Numbers are read as decimals, never
floats. A value may be written in any unit convertible to the declared one: `"6.5 g/dL"`,
`{"value": 6.5, "unit": "g/dL"}`, or a bare number in the declared unit. An absent fact (or
null) is unknown; `"none"` says an `or none` fact has no value. Every problem is reported
with the fact's name and its position in the file; nothing is dropped or guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from eligib.language.checker import BoolType, CheckedProtocol, DateType, EnumType, FactInfo, NumType
from eligib.language.diagnostics import Diagnostic, DiagnosticError, error, suggest, warning
from eligib.inputs.documents import BadNumber, Document, decimal_or_bad, json_document, within_limits, yaml_document
from eligib.limits import EARLIEST_DATE, LATEST_DATE, MAX_DIAGNOSTICS, MAX_PATIENT_BYTES, MAX_VALUE_TEXT
from eligib.language.reading import read_source
from eligib.language.source import SourceFile, Span
from eligib.values.units import UnitError, dimension_name, format_decimal, from_canonical, parse_unit
from eligib.values.calendar import NONE, Value, format_date

_NUMBER_WITH_UNIT = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)(?:\s*(\S(?:.*\S)?))?\s*")
FILE_HINT = "a patient file is one mapping of fact names to values: {\"fact\": value, ...}"


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
    return patient_from_source(checked, read_source(path, "patient file", MAX_PATIENT_BYTES))


def patient_from_source(checked: CheckedProtocol, source: SourceFile) -> Patient:
    """A facts file or a FHIR R4 Bundle, already read, validated against the protocol."""
    document = _parse(source)
    if isinstance(document.data, dict) and document.data.get("resourceType") == "Bundle":
        from eligib.inputs.fhir import facts_from_bundle  # imports the FHIR libraries only for bundles

        if not _looks_like_json(source):
            raise DiagnosticError([error("bad-fhir-bundle", "a FHIR bundle must be written in JSON",
                                         source.span_at(1, 1) if source.text else None,
                                         help="FHIR R4 bundles are read in their JSON form")], {source.path: source})
        data, notes = facts_from_bundle(checked, document.data, source)
        patient = validate(checked, data, source, {})
        patient.warnings = notes + patient.warnings
        return patient
    return validate(checked, document.data, source, document.key_spans)


def patient_from_mapping(checked: CheckedProtocol, data: dict[str, Any], path: str = "<patient>") -> Patient:
    """Validate facts given as a Python mapping (library use); numbers should be Decimal, int or str."""
    return validate(checked, data, SourceFile(path, ""), {})


def _looks_like_json(source: SourceFile) -> bool:
    stripped = source.text.lstrip()
    return source.path.endswith(".json") or stripped.startswith("{") or stripped.startswith("[")


def _parse(source: SourceFile) -> Document:
    if _looks_like_json(source):
        return json_document(source, "patient-file", FILE_HINT)
    return yaml_document(source, "patient-file", FILE_HINT)


def validate(checked: CheckedProtocol, data: Any, source: SourceFile,
             positions: dict[str, Span]) -> Patient:
    display = source.path
    if not isinstance(data, dict):
        raise DiagnosticError([error("bad-patient-file", "a patient file must be a mapping of fact names to "
                                     "values", source.span_at(1, 1) if source.text else None,
                                     help='write e.g. {"age": 45, "lvef": "60 %"}')], {display: source})
    diagnostics: list[Diagnostic] = []
    values: dict[str, Value] = {}
    omitted = 0
    for key, raw in data.items():
        if len(diagnostics) >= MAX_DIAGNOSTICS:  # report the first ones; count the rest cheaply
            omitted += key not in checked.facts or raw is not None and _fails(checked.facts[key], raw)
            continue
        name = str(key)
        span = positions.get(name)
        info = checked.facts.get(name)
        if info is None:
            diagnostics.append(error("unknown-fact", f"unknown fact `{_clip(name)}`", span,
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
        raise DiagnosticError(diagnostics, {display: source}, omitted=omitted)
    diagnostics += _outside_subgroup(checked, values, positions)
    return Patient(values, display, source, diagnostics)


def _fails(info: FactInfo, raw: Any) -> bool:
    try:
        convert(info, raw)
    except _PatientError:
        return True
    return False


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _outside_subgroup(checked: CheckedProtocol, values: dict[str, Value], positions) -> list[Diagnostic]:
    """Warn about facts given for a patient outside the fact's subgroup: they cannot matter."""
    from eligib.logic.evaluate import Evaluator

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
    if isinstance(raw, str) and len(raw) > MAX_VALUE_TEXT:
        raise _PatientError(f"the text is longer than {MAX_VALUE_TEXT} characters", help="see docs/limits.md")
    if isinstance(raw, BadNumber):
        raise _PatientError(f"`{raw}` {raw.reason}", help="see docs/limits.md")
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
    low = info.low if info.low is not None else EARLIEST_DATE  # the dates the solver considers too
    high = info.high if info.high is not None else LATEST_DATE
    if (info.low, info.high) == (None, None) and not low <= day <= high:
        raise _PatientError(f"{format_date(day)} is outside the dates accepted ({format_date(low)} to "
                            f"{format_date(high)})", help="check the year; a protocol that needs other dates "
                            "declares a range on the fact (docs/limits.md)")
    _check_range(info, day, format_date)
    return day


def _number(info: FactInfo, kind: NumType, raw: Any) -> Fraction:
    number, unit = _split_quantity(kind, raw)
    declared = kind.unit
    if unit is None or (declared is not None and unit == declared):
        canonical = number * (parse_unit(declared).factor if declared else 1)
    else:
        try:
            given = parse_unit(unit)
        except UnitError as exc:
            raise _PatientError(f"unknown unit `{_clip(unit)}`: {exc}", help=_accepted(kind, info)) from None
        if declared is not None and given.kind in info.conversions:
            canonical = number * given.factor * info.conversions[given.kind]
        elif declared is not None and given.dims == parse_unit(declared).dims and given.kind != kind.kind:
            raise _PatientError(f"unit `{unit}` cannot be converted to `{declared}`: it measures "
                                f"{dimension_name(given.kind)}, not {dimension_name(kind.kind)}",
                                help=f"look-alike units are different measures (HbA1c in mmol/mol is not HbA1c in "
                                     f"%); give the value in `{declared}`")
        elif declared is None or given.kind != kind.kind:
            raise _PatientError(f"unit `{unit}` cannot be converted to `{declared or 'a plain number'}`",
                                help=_accepted(kind, info))
        else:
            canonical = number * given.factor
    if kind.integer and from_canonical(canonical, declared).denominator != 1:
        shown = format_decimal(from_canonical(canonical, declared))
        raise _PatientError(f"expected a whole number{f' of {declared}' if declared else ''}, got {shown}")
    _check_range(info, canonical, lambda v: _show(v, declared))
    return canonical


def _split_quantity(kind: NumType, raw: Any) -> tuple[Fraction, str | None]:
    """(number as written, unit as written or None) from a number, a text "6.5 g/dL" or a quantity object."""
    if isinstance(raw, dict):
        extra = set(raw) - {"value", "unit"}
        if "value" not in raw or extra:
            raise _PatientError('a quantity object needs exactly "value" and "unit"',
                                help='write {"value": 6.5, "unit": "g/dL"}')
        unit = raw.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise _PatientError(f"the unit must be text, got {_describe(unit)}")
        value = raw["value"]
        number, inner_unit = (Fraction(0), "") if isinstance(value, dict) else _split_quantity(kind, value)
        if inner_unit is not None:
            raise _PatientError('the "value" of a quantity object is a plain number', help='put the unit in "unit": '
                                '{"value": 6.5, "unit": "g/dL"}')
        return number, unit
    if isinstance(raw, bool):
        raise _PatientError(f"expected a number, got {_describe(raw)}", help=_accepted(kind))
    if isinstance(raw, BadNumber):
        raise _PatientError(f"`{raw}` {raw.reason}", help="see docs/limits.md")
    if isinstance(raw, int):
        return _exact(within_limits(Decimal(raw)) if raw.bit_length() <= 256 else BadNumber(str(raw)[:40],
                      "is beyond the number limits")), None
    if isinstance(raw, Decimal):
        return _exact(within_limits(raw)), None
    if isinstance(raw, float):  # only from library callers; keep the decimal they wrote
        return _exact(decimal_or_bad(repr(raw))), None
    if isinstance(raw, str):
        match = _NUMBER_WITH_UNIT.fullmatch(raw)
        if not match:
            raise _PatientError(f"`{raw}` is not a number with an optional unit", help=_accepted(kind))
        return _exact(decimal_or_bad(match.group(1))), match.group(2)
    raise _PatientError(f"expected a number, got {_describe(raw)}", help=_accepted(kind))


def _exact(number: Decimal | BadNumber) -> Fraction:
    if isinstance(number, BadNumber):
        raise _PatientError(f"`{number}` {number.reason}", help="see docs/limits.md")
    return Fraction(number)


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
        return f'the text "{_clip(raw)}"'
    if isinstance(raw, (list, dict)):
        return "a list" if isinstance(raw, list) else "an object"
    return f"`{raw}`"
