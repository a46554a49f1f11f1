"""A FHIR R4 Bundle's text read for a protocol: every entry is parsed by the C JSON decoder, only the
entries the protocol's bindings can read are kept, and only those are read again exactly (decimals,
duplicate keys, number limits, nesting) and validated (eligib/inputs/fhir.py).

A record exported from a real system is large (Synthea bundles: 4-13 MB, thousands of Observations);
reading and validating every resource took seconds, while a protocol reads a few dozen. Which entries
are kept: the Patient; the resources of each binding's kind whose code matches one of its codes (the
test the FHIRPath selection makes: `code` equal, `system` equal when the binding names one);
Observations coded `urn:eligib:fact`; an entry whose shape the test cannot read (it is validated, and
reported if malformed); every entry when a binding is a FHIRPath expression (it may read anything).
Every other entry must still be JSON and name a FHIR R4 resource type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eligib.inputs.documents import _json_int, _skip_space, exact_decoder, nesting
from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import DiagnosticError, error
from eligib.language.source import SourceFile
from eligib.limits import MAX_INPUT_NESTING

LOCAL_FACT_SYSTEM = "urn:eligib:fact"
RESOURCE_TYPES = {"observation": ("Observation",), "procedure": ("Procedure",), "immunization": ("Immunization",),
                  "condition": ("Condition",),
                  "medication": ("MedicationStatement", "MedicationAdministration", "MedicationRequest")}
CODE_ELEMENT = {"observation": "code", "procedure": "code", "immunization": "vaccineCode", "condition": "code",
                "medication": "medicationCodeableConcept"}


@dataclass
class Wanted:
    """What a protocol's bindings read: per resource type, the code element and the (system, code) pairs."""

    everything: bool = False
    patient: bool = False
    codes: dict[str, tuple[str, set[tuple[str, str]]]] = field(default_factory=dict)

    @classmethod
    def of(cls, checked: CheckedProtocol) -> Wanted:
        wanted = cls(patient=True)
        for binding in checked.bindings.values():
            if binding.source == "fhirpath":
                wanted.everything = True
            for resource_type in RESOURCE_TYPES.get(binding.source, ()):
                _, pairs = wanted.codes.setdefault(resource_type, (CODE_ELEMENT[binding.source], set()))
                pairs.update(code_pair(code) for code in binding.codes)
        return wanted

    def keeps(self, resource: Any) -> bool:
        """Whether a binding may read this resource (True when its shape is not the expected one)."""
        if self.everything or not isinstance(resource, dict):
            return True
        kind = resource.get("resourceType")
        if kind == "Patient":
            return self.patient
        if kind == "Observation" and _has_system(resource.get("code"), LOCAL_FACT_SYSTEM):
            return True
        if kind not in self.codes:
            return False
        element, pairs = self.codes[kind]
        concept = resource.get(element)
        if not isinstance(concept, dict):
            return concept is not None  # malformed: validated, and reported
        codings = concept.get("coding")
        if not isinstance(codings, list):
            return codings is not None  # no coding (text only): no code of a binding can match
        for coding in codings:
            if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                return True
            code, system = coding["code"], coding.get("system")
            if ("", code) in pairs or (isinstance(system, str) and (system, code) in pairs):
                return True
        return False


def code_pair(code: str) -> tuple[str, str]:
    system, _, value = code.rpartition("|")
    return system, value


def coded(concept: Any, pairs: set[tuple[str, str]]) -> bool:
    """Whether a CodeableConcept has a coding with one of the (system, code) pairs (system "": any), as
    the FHIRPath test `coding.where(code = C and system = S).exists()` says."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict) and (("", c.get("code")) in pairs or (c.get("system"), c.get("code")) in pairs)
        for c in codings)


def _has_system(concept: Any, system: str) -> bool:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return isinstance(codings, list) and any(isinstance(c, dict) and c.get("system") == system for c in codings)


class Scanner:
    """The C JSON decoder for entries read only to be kept or dropped: floats stay floats (a dropped
    entry's numbers are never used), but a key given twice anywhere is noticed, since the decoder's
    last-wins view could hide what a binding reads (a second `vaccineCode`)."""

    def __init__(self) -> None:
        self.twice: str | None = None
        self.decoder = json.JSONDecoder(parse_int=_json_int, object_pairs_hook=self._pairs)

    def _pairs(self, items: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(items)
        if len(found) != len(items) and self.twice is None:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    self.twice = key
                    break
                seen.add(key)
        return found


@dataclass
class KeptBundle:
    """A bundle with only the entries a protocol's bindings can read, and where each was in the file."""

    data: dict[str, Any]
    positions: list[int]  # each kept entry's index among all the file's entries


def read_bundle(source: SourceFile, wanted: Wanted) -> KeptBundle | None:
    """The text as a bundle holding only the entries `wanted` keeps, each read exactly; None for
    anything else (a facts file) and for malformed JSON (the facts-file reader then reports where)."""
    try:
        return _scan_top(source, wanted)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None


def _scan_top(source: SourceFile, wanted: Wanted) -> KeptBundle | None:
    """The top-level object (duplicate keys refused) with `entry` filtered; None when it is no bundle.
    The top level's other values (`id`, `meta`: a `fhirpath` binding may read them) are read exactly."""
    text = source.text
    offset = _skip_space(text, 0)
    if not text.startswith("{", offset):
        return None
    top: dict[str, Any] = {}
    positions: list[int] = []
    problems: list[DiagnosticError] = []  # raised only once the document is known to be a bundle
    offset = _skip_space(text, offset + 1)
    while not text.startswith("}", offset):
        if not text.startswith('"', offset):
            raise ValueError("no key")
        key, offset = json.decoder.scanstring(text, offset + 1)  # type: ignore[attr-defined]
        if key in top:
            raise ValueError("duplicate key")
        offset = _skip_space(text, offset)
        if not text.startswith(":", offset):
            raise ValueError("no colon")
        offset = _skip_space(text, offset + 1)
        if key == "entry" and text.startswith("[", offset):
            top[key], positions, offset = _entries(source, offset, wanted, problems)
        else:
            try:
                top[key], offset = exact_json(source, offset, f"`{key[:40]}`", depth=1)
            except DiagnosticError as exc:
                problems.append(exc)
                offset = Scanner().decoder.raw_decode(text, offset)[1]
        offset = _next_item(text, offset, "}")
    if _skip_space(text, offset + 1) != len(text) or top.get("resourceType") != "Bundle":
        return None
    if problems:
        raise problems[0]
    return KeptBundle(top, positions)


def _entries(source: SourceFile, offset: int, wanted: Wanted,
             problems: list[DiagnosticError]) -> tuple[list[Any], list[int], int]:
    """The entries `wanted` keeps, each read exactly, their indexes, and the offset after the list."""
    text = source.text
    kept: list[Any] = []
    positions: list[int] = []
    offset = _skip_space(text, offset + 1)
    index = 0
    while not text.startswith("]", offset):
        scanner = Scanner()
        entry, end = scanner.decoder.raw_decode(text, offset)
        resource = entry.get("resource") if isinstance(entry, dict) else None
        try:
            if scanner.twice is not None:
                raise _twice(source, offset, f"entry {index}", scanner.twice)
            check_resource_type(resource, f"entry {index}")
            if not isinstance(entry, dict) or wanted.keeps(resource):
                kept.append(exact_json(source, offset, f"entry {index}", depth=2)[0])
                positions.append(index)
        except DiagnosticError as exc:
            problems.append(exc)
        index += 1
        offset = _next_item(text, end, "]")
    return kept, positions, offset + 1


def _next_item(text: str, offset: int, close: str) -> int:
    """After a value in an object or a list: the next item's offset, or the closing bracket's."""
    offset = _skip_space(text, offset)
    if text.startswith(",", offset):
        offset = _skip_space(text, offset + 1)
        if text.startswith(close, offset):
            raise ValueError("a comma before the end")
    elif not text.startswith(close, offset):
        raise ValueError("no comma")
    return offset


def exact_json(source: SourceFile, start: int, where: str, depth: int = 0) -> tuple[Any, int]:
    """The JSON value at `start` read exactly, and the offset after it: decimals, bounded numbers, no
    duplicate keys, bounded nesting (`depth`: how deep the value sits in its file)."""
    duplicates: list[str] = []
    value, end = exact_decoder(duplicates).raw_decode(source.text, start)
    if duplicates:
        raise _twice(source, start, where, duplicates[0])
    if nesting(value) + depth <= MAX_INPUT_NESTING:
        return value, end
    raise DiagnosticError([error("bad-fhir-bundle", f"{where}: objects and lists nest more than "
                                 f"{MAX_INPUT_NESTING} deep", _span(source, start), "in this value",
                                 help="see docs/limits.md")])


def _twice(source: SourceFile, start: int, where: str, key: str) -> DiagnosticError:
    return DiagnosticError([error("bad-fhir-bundle", f"{where}: key `{key[:60]}` is given twice", _span(source, start),
                                  "in this value", help="keep one of them")])


def _span(source: SourceFile, start: int) -> Any:
    """Where a value starts (counting lines is slow on a big record: only for a message)."""
    line = source.text.count("\n", 0, start) + 1
    return source.span_at(line, start - source.text.rfind("\n", 0, start))


def check_resource_type(resource: Any, where: str) -> None:
    """Every resource names a FHIR R4 resource type, kept or not."""
    if not isinstance(resource, dict):
        return  # validation names the malformed entry
    kind = resource.get("resourceType")
    if not (isinstance(kind, str) and _known_type(kind)):
        raise DiagnosticError([error("bad-fhir-bundle", f"{where}: `{str(kind)[:60]}` is not a FHIR R4 "
                                     "resource type", help="check the resourceType against the FHIR R4 specification")])


_KNOWN: dict[str, bool] = {}


def _known_type(kind: str) -> bool:
    """A resource type of FHIR R4 (not a data type such as `Coding`, which has a model class too)."""
    if kind not in _KNOWN:
        from fhir.resources.R4B import get_fhir_model_class
        from fhir.resources.R4B.resource import Resource

        try:
            model = get_fhir_model_class(kind) if kind.isidentifier() else None
        except (KeyError, ValueError):
            model = None
        _KNOWN[kind] = isinstance(model, type) and issubclass(model, Resource)
    return _KNOWN[kind]
