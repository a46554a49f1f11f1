"""Patient facts from a FHIR R4 Bundle, as the protocol's `bindings:` say.

Only the resources the bindings can read are kept (eligib/inputs/fhir_reading.py); they are validated
with fhir.resources (R4B models, structurally compatible with R4) and selected by type and code as the
FHIRPath `ofType(T).where(code.coding.where(...).exists())` would (FHIRPath itself, fhirpathpy, runs
only a `fhirpath` binding's own expression). Numbers stay exact decimals end to end.
A missing resource leaves its fact unknown, never an error; an observation older than the
binding's window is unknown too, with a note. A fact without a binding may travel in the bundle
as an Observation coded `urn:eligib:fact|<fact name>` (for attestations FHIR has no code for).
The facts found are then validated exactly like a facts file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, assert_never

from eligib.inputs.documents import first_bad_number
from eligib.inputs.facts import Given, with_given
from eligib.inputs.fhir_reading import (
    CODE_ELEMENT,
    LOCAL_FACT_SYSTEM,
    RESOURCE_TYPES,
    check_resource_type,
    code_pair,
    coded,
)
from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import Diagnostic, DiagnosticError, error, warning
from eligib.language.source import SourceFile
from eligib.values.calendar import DAY_SECONDS, shift_date
from eligib.values.types import DateTimeType, ListType, ValueProblem
from eligib.values.types.timestamp import parse_instant
from eligib.values.units import canonical_code

LOCAL_FIELD_SYSTEM = "urn:eligib:field"  # a history item's field, as a component of its Observation
IGNORED_STATUSES = ("entered-in-error", "cancelled", "not-done", "not-taken")
DATE_PATHS = {
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
    "Immunization": ("occurrenceDateTime",),
    "Condition": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "MedicationAdministration": ("effectiveDateTime", "effectivePeriod.start"),
    "MedicationRequest": ("authoredOn",),
}
# where a resource says when it ended; a period without an end is still going on (none)
END_PATHS = {
    "Observation": ("effectivePeriod", "effectiveDateTime"),
    "Procedure": ("performedPeriod", "performedDateTime"),
    "Condition": ("abatementPeriod", "abatementDateTime"),
    "MedicationStatement": ("effectivePeriod", "effectiveDateTime"),
    "MedicationAdministration": ("effectivePeriod", "effectiveDateTime"),
}
CODE_ELEMENT_OF = {"Immunization": "vaccineCode", "MedicationStatement": "medicationCodeableConcept",
                   "MedicationAdministration": "medicationCodeableConcept",
                   "MedicationRequest": "medicationCodeableConcept"}
Note = tuple[str, str]  # (diagnostic code, message)

# coded results that read as yes/no (SNOMED CT and HL7 v3 ObservationInterpretation)
POSITIVE_CODES = {"10828004", "260373001", "52101004", "POS", "DET", "Y"}
NEGATIVE_CODES = {"260385009", "260415000", "2667000", "NEG", "ND", "N"}


def facts_from_bundle(checked: CheckedProtocol, data: dict[str, Any], source: SourceFile,
                      given: Given | None = None,
                      positions: list[int] | None = None) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The raw fact values a bundle gives (as a facts file would hold them), with the `given` facts
    (a study's anchors the record lacks: a fact both give is an error), and notes about them.
    `data` is the bundle read exactly (eligib/inputs/fhir_reading.py); `positions`, each kept entry's
    index in the file, for messages."""
    _validate(data, source, positions)
    reader = _BundleReader(data, checked)
    try:
        return _read_facts(checked, reader, given or {}, source.path)
    except _BadExpression as exc:
        raise DiagnosticError([error("bad-binding", f"the FHIRPath expression for `{exc.binding.fact}` cannot be "
                                     "evaluated", exc.binding.span, "this binding",
                                     help="check the expression's syntax (FHIRPath N1)")]) from None


class _BadExpression(Exception):
    def __init__(self, binding: ast.Binding) -> None:
        self.binding = binding


def _read_facts(checked: CheckedProtocol, reader: _BundleReader, given: Given,
                path: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    raw = with_given(reader.local_facts(set(checked.facts)), given, path)
    notes: list[Diagnostic] = []
    pending = [b for b in checked.bindings.values() if b.fact not in raw or b.fact in given]
    while pending:  # anchors first: a binding waits until the fact it counts back from is read
        ready = [b for b in pending if b.anchor is None or b.anchor in raw or b.anchor not in
                 {p.fact for p in pending}]
        for binding in ready:
            value, note = reader.read(binding, raw)
            if binding.fact in given:  # given beside the record: an error if the record gives it too
                if value is not None and reader.gives(binding):
                    with_given({binding.fact: True}, {binding.fact: given[binding.fact]}, path)
                continue
            if value is not None:
                raw[binding.fact] = value
            if note is not None:
                code, message = note
                notes.append(warning(code, f"fact `{binding.fact}`: {message}", None))
        pending = [b for b in pending if b not in ready]
        if not ready:
            break
    return raw, notes


def _validate(data: dict[str, Any], source: SourceFile, positions: list[int] | None) -> None:
    """The kept resources are FHIR R4; a problem names its entry's place in the file (`positions`: each
    kept entry's index among all the file's entries)."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    bad = first_bad_number(data)
    if bad is not None:
        raise DiagnosticError([error("bad-fhir-bundle", f"{_in_file(bad[0], positions)}: `{bad[1]}` {bad[1].reason}",
                                     help="see docs/limits.md")])
    entries = data.get("entry")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):  # any other shape: the model validation below names the entry
            check_resource_type(resource, f"entry {positions[index] if positions else index}")
    try:
        Bundle.model_validate(data)
    except ValidationError as exc:
        problems = [error("bad-fhir-bundle", "not a valid FHIR R4 Bundle: "
                          f"{_in_file('.'.join(map(str, e['loc'])), positions)}: {e['msg'].lower()}", None,
                          help="check the resource against the FHIR R4 specification")
                    for e in exc.errors()[:5]]
        raise DiagnosticError(problems) from None


def _in_file(path: str, positions: list[int] | None) -> str:
    """`entry.1.resource.value` of the kept entries, as `entry.3.resource.value` of the file."""
    head, dot, rest = path.partition(".")
    index, _, tail = rest.partition(".")
    if head != "entry" or not dot or not index.isdigit() or positions is None or int(index) >= len(positions):
        return path
    return f"entry.{positions[int(index)]}" + (f".{tail}" if tail else "")


class _BundleReader:
    """Reads a validated bundle's resources by plain navigation (the FHIRPath engine only for `fhirpath`
    bindings: it took seconds over a real record's thousands of Observations)."""

    def __init__(self, bundle: dict[str, Any], checked: CheckedProtocol) -> None:
        self.bundle = bundle
        self.checked = checked
        entries = bundle.get("entry")
        self.all = [e["resource"] for e in (entries if isinstance(entries, list) else [])
                    if isinstance(e, dict) and isinstance(e.get("resource"), dict)]

    def evaluate(self, data: Any, expression: str) -> list[Any]:
        import fhirpathpy

        return list(fhirpathpy.evaluate(data, expression))

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.all if r.get("resourceType") == resource_type]

    def resources(self, kind: str, codes: tuple[str, ...]) -> list[dict[str, Any]]:
        """The kind's resources coded with one of `codes`, in bundle order per resource type, as the
        FHIRPath `ofType(T).where(code.coding.where(code = C and system = S).exists())` selects them."""
        pairs = {code_pair(code) for code in codes}
        found = [r for resource_type in RESOURCE_TYPES[kind] for r in self.of_type(resource_type)
                 if coded(r.get(CODE_ELEMENT[kind]), pairs)]
        return [r for r in found if r.get("status") not in IGNORED_STATUSES]

    def local_facts(self, names: set[str]) -> dict[str, Any]:
        """Facts given as `urn:eligib:fact` Observations; a history's are one Observation per item, with
        a component per field (`urn:eligib:field`), and one valued "complete" when the list is whole."""
        found: dict[str, Any] = {}
        histories: dict[str, dict[str, Any]] = {}
        for resource in self.of_type("Observation"):
            codings = resource.get("code", {}).get("coding", [])
            if resource.get("status") in IGNORED_STATUSES or not any(
                    c.get("system") == LOCAL_FACT_SYSTEM for c in codings):
                continue
            for coding in codings:
                name = coding.get("code")
                if coding.get("system") != LOCAL_FACT_SYSTEM or name not in names:
                    continue
                kind = self.checked.facts[name].type
                if isinstance(kind, ListType):
                    timed = {f.name for f in kind.fields if isinstance(f.type, DateTimeType)}
                    _add_local_item(histories.setdefault(name, {"items": [], "complete": False}), resource, timed)
                elif (value := _observation_value(resource, isinstance(kind, DateTimeType))) is not None:
                    found[name] = value
        return found | histories

    def gives(self, binding: ast.Binding) -> bool:
        """Whether the record holds what the binding reads (a value it reads may still be too old): a
        binding's `absent means` default, or an empty history, is not the record giving the fact."""
        if binding.source == "gender":
            return bool(self.patient_values("gender"))
        if binding.source == "age":
            return bool(self.patient_values("birthDate"))
        if binding.source == "fhirpath":
            return True
        return bool(self.resources(binding.source, binding.codes))

    def patient_values(self, element: str) -> list[Any]:
        return [r[element] for r in self.of_type("Patient") if r.get(element) is not None]

    def read(self, binding: ast.Binding, known: dict[str, Any]) -> tuple[Any, Note | None]:
        """(raw value, or None for unknown; a note about it, or None)."""
        if binding.source == "gender":
            genders = self.patient_values("gender")
            if genders and genders[0] in ("unknown", "other"):  # valid FHIR, but no value of the enumeration
                return None, ("fhir-note", f"Patient.gender is `{genders[0]}`; taken as unknown")
            return (genders[0] if genders else None), None
        if binding.source == "age":
            return self.age(binding, known)
        if binding.source == "fhirpath":
            try:
                results = self.evaluate(self.bundle, binding.expression)
            except Exception:  # fhirpathpy reports a malformed expression with any exception (KeyError, ...)
                raise _BadExpression(binding) from None
            return (results[0] if results else None), None
        if binding.fields:
            return self.history(binding, known), None
        return self.resource_value(binding, known)

    def age(self, binding: ast.Binding, known: dict[str, Any]) -> tuple[Any, Note | None]:
        births = self.patient_values("birthDate")
        if not births:
            return None, ("fhir-note", "the bundle has no Patient.birthDate")
        anchor, born = _as_date(known.get(binding.anchor or "")), _as_date(births[0])
        if anchor is None:
            return None, ("fhir-note", f"its anchor `{binding.anchor}` is unknown")
        if born is None:
            return None, ("fhir-note", f"Patient.birthDate `{births[0]}` is not a full date")
        years = anchor.year - born.year - ((anchor.month, anchor.day) < (born.month, born.day))
        return f"{years} a", None

    def history(self, binding: ast.Binding, known: dict[str, Any]) -> dict[str, Any] | None:
        """A history from its resources, one item each, oldest first (fields a resource lacks stay unknown);
        possibly incomplete unless the binding says `complete`."""
        anchor = _as_date(known.get(binding.anchor)) if binding.anchor else None
        if binding.anchor and anchor is None:
            return None  # which resources count depends on an unknown date
        found = self.dated(binding, anchor)
        found.sort(key=lambda pair: pair[0] or dt.date.min)
        history = self.checked.facts[binding.fact].type
        assert isinstance(history, ListType)
        may_be_none = {field.name for field in history.fields if field.optional}
        items = []
        for _, resource in found:
            timed = {f.name for f in history.fields if isinstance(f.type, DateTimeType)}
            item = {bound.field: self.field_value(bound, resource, bound.field in timed) for bound in binding.fields}
            # an open period of a field that is never none: when it ends is unknown
            items.append({name: value for name, value in item.items()
                          if value is not None and (value != "none" or name in may_be_none)})
        return {"items": items, "complete": binding.complete}

    def dated(self, binding: ast.Binding, anchor: dt.date | None) -> list[tuple[dt.date | None, dict[str, Any]]]:
        """The binding's resources with their dates, those after the anchor or older than the window left out."""
        found = [(self.date_of(r), r) for r in self.resources(binding.source, binding.codes)]
        if anchor is not None:
            found = [(when, r) for when, r in found if when is None or when <= anchor]
            if binding.fields and binding.window is not None:
                oldest = self.oldest(binding, anchor)
                found = [(when, r) for when, r in found if when is not None and when >= oldest]
        return found

    def oldest(self, binding: ast.Binding, anchor: dt.date) -> dt.date:
        assert binding.window is not None
        code = canonical_code(binding.window.unit or "")
        return dt.date.fromordinal(shift_date(anchor.toordinal(), -binding.window.value, code))

    def field_value(self, bound: ast.FieldBinding, resource: dict[str, Any], timed: bool = False) -> Any:
        """One item field from its resource, as a facts file writes it; None when the resource does not say.
        A date-time field (`timed`) keeps the time of day and offset as the resource writes them."""
        match bound.part:
            case ast.FieldPart.DATE | ast.FieldPart.START:
                if timed:
                    return self.when_written(resource)
                when = self.date_of(resource)
                return when.isoformat() if when else None
            case ast.FieldPart.END:
                return self.end_of(resource, timed)
            case ast.FieldPart.VALUE:
                return _observation_value(resource, timed)
            case ast.FieldPart.CODE:
                element = CODE_ELEMENT_OF.get(resource.get("resourceType", ""), "code")
                codings = resource.get(element, {}).get("coding", [])
                for wanted, value in bound.codes:
                    system, _, code = wanted.rpartition("|")
                    if any(c.get("code") == code and (not system or c.get("system") == system) for c in codings):
                        return value
                return None
            case _:
                assert_never(bound.part)

    def end_of(self, resource: dict[str, Any], timed: bool = False) -> str | None:
        """When a resource ended: a period's end, `none` for a period still open, or a single date."""
        for path in END_PATHS.get(resource.get("resourceType", ""), ()):
            value = resource.get(path)
            if isinstance(value, dict):
                if timed:
                    return str(value["end"]) if value.get("end") is not None else "none"
                end = _as_date(value.get("end"))
                return end.isoformat() if end else "none"
            if value is not None:
                if timed:
                    return str(value)
                when = _as_date(value)
                return when.isoformat() if when else None
        return None

    def resource_value(self, binding: ast.Binding, known: dict[str, Any]) -> tuple[Any, Note | None]:
        anchor = _as_date(known.get(binding.anchor)) if binding.anchor else None
        if binding.anchor and anchor is None:
            return None, ("fhir-note", f"its anchor `{binding.anchor}` is unknown")
        found = self.dated(binding, anchor)
        if not found:
            return _absent(binding), None
        found.sort(key=lambda pair: self.recency(pair[0], pair[1]), reverse=True)
        when, resource = found[0]
        if binding.window is not None and anchor is not None:
            oldest = self.oldest(binding, anchor)
            if when is None or when < oldest:
                age = "undated" if when is None else f"from {when.isoformat()}"
                return None, ("stale-observation", f"the latest {RESOURCE_TYPES[binding.source][0]} is {age}, older "
                              f"than {binding.window.text} before {binding.anchor} ({anchor.isoformat()}); "
                              "taken as unknown")
        if binding.part == "exists":
            return True, None
        timed = isinstance(self.checked.facts[binding.fact].type, DateTimeType)
        if binding.part == "date":
            written = self.when_written(resource) if timed else when.isoformat() if when else None
            return (written, None) if written else (None, ("fhir-note", "the latest resource has no date"))
        if binding.part in ("reference_high", "reference_low"):
            return _reference(resource, "high" if binding.part == "reference_high" else "low"), None
        return _observation_value(resource, timed), None

    def recency(self, when: dt.date | None, resource: dict[str, Any]) -> tuple[int, int]:
        """Which resource is latest: by instant when it has a time and an offset (so a date-time fact
        takes the latest instant, whatever the offsets or the bundle order), else by its day."""
        instant = _instant_or_none(self.when_written(resource))
        if instant is not None:
            return instant, 1
        return ((when.toordinal() + 1) * DAY_SECONDS - 1 if when else -1), 0  # a bare day: its last second

    def when_written(self, resource: dict[str, Any]) -> str | None:
        """A resource's date-time as written (`effectiveDateTime` with its time and offset), for date-time
        facts: a value with no time of day is then refused by the fact's type, naming the fact."""
        for path in DATE_PATHS.get(resource.get("resourceType", ""), ()):
            values = _at_path(resource, path)
            if values:
                return str(values[0])
        return None

    def date_of(self, resource: dict[str, Any]) -> dt.date | None:
        for path in DATE_PATHS.get(resource.get("resourceType", ""), ()):
            values = _at_path(resource, path)
            if values:
                return _as_date(values[0])
        return None


def _add_local_item(history: dict[str, Any], resource: dict[str, Any], timed: set[str]) -> None:
    """One `urn:eligib:fact` Observation of a history: an item (its components), or the mark that the
    list is complete (`valueString` "complete", no components)."""
    components = resource.get("component", [])
    if not components and resource.get("valueString") == "complete":
        history["complete"] = True
        return
    item = {}
    for component in components:
        for coding in component.get("code", {}).get("coding", []):
            field = coding.get("code")
            if coding.get("system") == LOCAL_FIELD_SYSTEM and \
                    (value := _observation_value(component, field in timed)) is not None:
                item[field] = value
    history["items"].append(item)


def _at_path(resource: dict[str, Any], path: str) -> list[Any]:
    """The values at a dotted path (`effectivePeriod.start`), lists flattened, as FHIRPath navigates."""
    current: list[Any] = [resource]
    for part in path.split("."):
        found: list[Any] = []
        for item in current:
            value = item.get(part) if isinstance(item, dict) else None
            found += value if isinstance(value, list) else [] if value is None else [value]
        current = found
    return current


def _instant_or_none(written: str | None) -> int | None:
    try:
        return parse_instant(written) if written and "T" in written else None
    except ValueProblem:
        return None


def _absent(binding: ast.Binding) -> Any:
    return {"false": False, "none": "none"}.get(binding.absent or "")


def _observation_value(resource: dict[str, Any], timed: bool = False) -> Any:
    if "valueQuantity" in resource:
        quantity = resource["valueQuantity"]
        unit = quantity.get("code") if quantity.get("system") == "http://unitsofmeasure.org" else None
        return {"value": quantity.get("value"), "unit": unit or quantity.get("unit")}
    if "valueDateTime" in resource:
        written = str(resource["valueDateTime"])  # a date fact takes the date as written, a date-time all of it
        return written if timed else written[:10]
    for key in ("valueBoolean", "valueInteger", "valueString"):
        if key in resource:
            return resource[key]
    if "valueCodeableConcept" in resource:
        codes = [str(c.get("code", "")) for c in resource["valueCodeableConcept"].get("coding", [])]
        if any(code in POSITIVE_CODES for code in codes):
            return True
        if any(code in NEGATIVE_CODES for code in codes):
            return False
        return codes[0] if codes else None
    return None


def _reference(resource: dict[str, Any], limit: str) -> Any:
    for reference in resource.get("referenceRange", []):
        quantity = reference.get(limit)
        if quantity is not None:
            unit = quantity.get("code") or quantity.get("unit")
            return {"value": quantity.get("value"), "unit": unit}
    return None


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
