"""Load a patient's facts (JSON or YAML) and validate them against a checked protocol.

Values become exact canonical values; each fact's value type parses its own (values/types.py).
Numbers are read as decimals, never floats. A value may be written in any unit convertible to
the declared one: `"6.5 g/dL"`, `{"value": 6.5, "unit": "g/dL"}`, or a bare number in the
declared unit. An absent fact (or null) is unknown; `"none"` says an `or none` fact has no value.
Every problem is reported with the fact's name and its position in the file; nothing is dropped
or guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eligib.inputs.documents import Document, json_document, yaml_document
from eligib.language.checked import CheckedProtocol, FactInfo
from eligib.language.diagnostics import Diagnostic, DiagnosticError, error, suggest, warning
from eligib.language.reading import read_source
from eligib.language.source import SourceFile, Span
from eligib.limits import MAX_BUNDLE_BYTES, MAX_DIAGNOSTICS, MAX_PATIENT_BYTES
from eligib.values.types import NONE, Value, ValueProblem, parse_value
from eligib.values.words import clip

FILE_HINT = "a patient file is one mapping of fact names to values: {\"fact\": value, ...}"


@dataclass(frozen=True)
class GivenFact:
    """A fact given beside the patient file (`--fact`, `--facts`): a study's own anchor a record lacks."""

    raw: Any  # as a facts file writes it
    where: str  # `--fact` or the facts file's path, for messages
    span: Span | None


Given = dict[str, GivenFact]


@dataclass
class Patient:
    """A patient's known facts as exact canonical values; absent facts are unknown."""

    values: dict[str, Value]
    path: str = "<patient>"
    source: SourceFile | None = None
    warnings: list[Diagnostic] = field(default_factory=list)


def load_patient(checked: CheckedProtocol, path: str, given: Given | None = None) -> Patient:
    """Read a facts file or a FHIR R4 Bundle (`-` for stdin) and validate it, with the `given` facts
    (`--fact`, `--facts`) added; a fact both give is an error."""
    return patient_from_source(checked, read_source(path, "patient file", MAX_BUNDLE_BYTES), given)


def patient_from_source(checked: CheckedProtocol, source: SourceFile, given: Given | None = None) -> Patient:
    """A facts file or a FHIR R4 Bundle, already read, validated against the protocol. A bundle is read
    for the resources its bindings use only (eligib/inputs/fhir_reading.py), so it may be large."""
    given = given or {}
    if _looks_like_json(source) and '"Bundle"' in source.text:
        from eligib.inputs.fhir_reading import Wanted, read_bundle

        kept = read_bundle(source, Wanted.of(checked))
        if kept is not None:
            return patient_from_bundle(checked, kept.data, source, given, kept.positions)
    too_large = len(source.text) > MAX_PATIENT_BYTES or len(source.text.encode("utf-8")) > MAX_PATIENT_BYTES
    if too_large and "undle" not in source.text:  # no bundle (`Bundle`, or written `\u0042undle`): too large
        raise _too_large(source)
    document = _parse(source)  # malformed JSON, a bundle's too: located here
    is_bundle = isinstance(document.data, dict) and document.data.get("resourceType") == "Bundle"
    if too_large and not is_bundle:
        raise _too_large(source)
    if isinstance(document.data, dict) and document.data.get("resourceType") == "Bundle":
        if not _looks_like_json(source):
            raise DiagnosticError([error("bad-fhir-bundle", "a FHIR bundle must be written in JSON",
                                         source.span_at(1, 1) if source.text else None,
                                         help="FHIR R4 bundles are read in their JSON form")])
        return patient_from_bundle(checked, document.data, source, given)  # `Bundle` written with escapes
    data, positions = document.data, dict(document.key_spans)
    if isinstance(data, dict) and given:
        data = with_given(data, given, source.path)
        positions.update({name: fact.span for name, fact in given.items() if fact.span})
    return validate(checked, data, source, positions)


def _too_large(source: SourceFile) -> DiagnosticError:
    return DiagnosticError([error("too-large", f"patient file `{source.path}` is larger than {MAX_PATIENT_BYTES:,} "
                                  "bytes", help=f"a facts file is small; a FHIR bundle may be up to "
                                  f"{MAX_BUNDLE_BYTES:,} bytes; see docs/limits.md")])


def patient_from_bundle(checked: CheckedProtocol, bundle: dict[str, Any], source: SourceFile,
                        given: Given, positions: list[int] | None = None) -> Patient:
    """A patient from a bundle read exactly (eligib/inputs/fhir_reading.py), with the given facts;
    `positions`: where each kept entry was in the file, for messages."""
    from eligib.inputs.fhir import facts_from_bundle  # imports the FHIR libraries only for bundles

    data, notes = facts_from_bundle(checked, bundle, source, given, positions)
    patient = validate(checked, data, source, {name: fact.span for name, fact in given.items() if fact.span})
    patient.warnings = notes + patient.warnings
    return patient


def patient_from_mapping(checked: CheckedProtocol, data: dict[str, Any], path: str = "<patient>") -> Patient:
    """Validate facts given as a Python mapping (library use); numbers should be Decimal, int or str."""
    return validate(checked, data, SourceFile(path, ""), {})


def _looks_like_json(source: SourceFile) -> bool:
    stripped = source.text.lstrip()
    return source.path.endswith(".json") or stripped.startswith(("{", "["))


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
                                     help='write e.g. {"age": 45, "lvef": "60 %"}')])
    diagnostics: list[Diagnostic] = []
    values: dict[str, Value] = {}
    omitted = 0
    for key, raw in data.items():
        if len(diagnostics) >= MAX_DIAGNOSTICS:  # report the first ones; count the rest cheaply
            omitted += key not in checked.facts or (raw is not None and _fails(checked.facts[key], raw))
            continue
        name = str(key)
        span = positions.get(name)
        info = checked.facts.get(name)
        if info is None:
            diagnostics.append(error("unknown-fact", f"unknown fact `{clip(name)}`", span,
                                     "not declared in the protocol",
                                     help=suggest(name, checked.facts) or f"see `eligib facts {checked.source.path}`"
                                     " for the declared facts"))
            continue
        if raw is None:
            continue  # null: unknown, like an absent fact
        try:
            values[name] = convert(info, raw)
        except ValueProblem as exc:
            diagnostics.append(error("bad-patient-value", f"fact `{name}`: {exc.message}", span, "this value",
                                     help=exc.help))
            continue
        if (doubt := info.type.doubt(raw)) is not None:
            diagnostics.append(warning("ambiguous-percentage", f"fact `{name}`: {doubt[0]}", span,
                                       "a fraction or a percentage?", help=doubt[1]))
    if any(d.severity == "error" for d in diagnostics):
        raise DiagnosticError(diagnostics, omitted=omitted)
    diagnostics += _outside_subgroup(checked, values, positions)
    return Patient(values, display, source, diagnostics)


def _fails(info: FactInfo, raw: object) -> bool:
    try:
        convert(info, raw)
    except ValueProblem:
        return True
    return False


def _outside_subgroup(checked: CheckedProtocol, values: dict[str, Value],
                      positions: Mapping[str, Span]) -> list[Diagnostic]:
    """Warn about facts given for a patient outside the fact's subgroup: they cannot matter."""
    from eligib.logic.evaluate import Evaluator

    evaluator = Evaluator(checked, values)
    found = []
    for name in values:
        guard = checked.facts[name].guard
        if guard is not None and evaluator.truth(evaluator.eval(guard)) is False:
            condition = checked.text(guard)
            found.append(warning("fact-not-applicable", f"fact `{name}` does not apply to this patient: it applies "
                                 f"only if `{condition}`", positions.get(name), f"ignored: `{condition}` is false",
                                 help=f"`{name}` exists only if `{condition}`; it cannot change the result"))
    return found


def convert(info: FactInfo, raw: object) -> Value:
    """One raw value from a patient file -> an exact canonical value, or ValueProblem (its type says why)."""
    return parse_value(info, raw)


def facts_file(checked: CheckedProtocol, values: Mapping[str, Value]) -> dict[str, Any]:
    """Canonical values -> the JSON a patient file holds (declared units, exact decimals); the inverse of
    reading one. ValueError for a value no facts file can state exactly (1/3 mg/dL)."""
    facts: dict[str, Any] = {}
    for name, value in values.items():
        if value is NONE:
            facts[name] = "none"
            continue
        try:
            facts[name] = checked.facts[name].type.to_file(value)
        except ValueError as exc:
            raise ValueError(f"`{name}` would need {exc}") from None
    return facts


def given_facts(checked: CheckedProtocol, options: list[str], path: str | None = None) -> Given:
    """`--fact NAME=VALUE` options (VALUE written as a table cell is, docs/screening.md) and a facts
    file, as given facts; a fact both give, an unknown fact or a malformed option is an error."""
    given: Given = {}
    if path is not None:
        source = read_source(path, "facts file", MAX_PATIENT_BYTES)
        document = _parse(source)
        if not isinstance(document.data, dict):
            raise DiagnosticError([error("bad-patient-file", "a facts file must be a mapping of fact names to "
                                         "values", source.span_at(1, 1) if source.text else None, help=FILE_HINT)])
        for name, raw in document.data.items():
            _known(checked, str(name), document.key_spans.get(str(name)))
            if raw is not None:  # null: not given (unknown), so the record's own value is read
                given[str(name)] = GivenFact(raw, source.path, document.key_spans.get(str(name)))
    for option in options:
        source = SourceFile("--fact", option)
        name, equals, text = option.partition("=")
        name = name.strip()
        if not equals or not name:
            raise DiagnosticError([error("bad-option", f"`--fact {clip(option)}`: write NAME=VALUE", source.span_at(
                1, 1, len(option)), "here", help="e.g. --fact screening_date=2026-11-20")])
        span = source.span_at(1, len(option) - len(text) + 1, len(text))
        info = _known(checked, name, source.span_at(1, 1, len(name)))
        if name in given:
            raise DiagnosticError([error("fact-given-twice", f"fact `{name}` is given by `{given[name].where}` and "
                                         "by --fact", span, "given again here", help="give it once")])
        if not text.strip():
            raise DiagnosticError([error("bad-option", f"`--fact {clip(option)}`: no value", span, "here",
                                         help=f"give the value, e.g. --fact {name}=..., or leave the option out")])
        given[name] = GivenFact(info.type.from_text(text.strip()), "--fact", span)
    return given


def _known(checked: CheckedProtocol, name: str, span: Span | None) -> FactInfo:
    info = checked.facts.get(name)
    if info is None:
        raise DiagnosticError([error("unknown-fact", f"unknown fact `{clip(name)}`", span, "not declared",
                                     help=suggest(name, checked.facts) or f"see `eligib facts {checked.source.path}`")])
    return info


def with_given(data: dict[str, Any], given: Given, path: str) -> dict[str, Any]:
    """The patient's facts with the given ones added; a fact both state is an error, never overridden."""
    merged = dict(data)
    for name, fact in given.items():
        if data.get(name) is not None:
            raise DiagnosticError([error("fact-given-twice", f"fact `{name}` is given by `{path}` and by "
                                         f"`{fact.where}`", fact.span, "given again here",
                                         help="keep one: the record's value or the one given beside it")])
        merged[name] = fact.raw
    return merged
