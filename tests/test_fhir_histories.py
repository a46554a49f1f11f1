"""A history from a FHIR bundle: MedicationStatements fill a therapy list, and the bundle checks the
same as its JSON twin (docs/fhir.md, Histories)."""

from __future__ import annotations

import json

import pytest

from eligib import DiagnosticError, Engine

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PROTOCOL = f'''protocol fhir_history:
    title: "FHIR histories"
    version: "1"

facts:
    lymphodepletion_date: date
    therapies: list, at most 20 items, ordered by start:
        agent: one of (daratumumab, isatuximab, lenalidomide, bortezomib)
        start: date
        end: date, or none

valueset anti_cd38 "Anti-CD38 antibodies": (daratumumab, isatuximab)

exclusion washout "Anti-CD38 antibody within 90 days of lymphodepletion":
    record: "x"
    any(therapies where agent in anti_cd38 and (end is none or lymphodepletion_date - end < 90 days))

inclusion lines "Two prior lines":
    record: "x"
    count(therapies) >= 2

bindings:
    lymphodepletion_date: fhirpath "Bundle.entry.resource.ofType(ServiceRequest).occurrenceDateTime"
    therapies: each medication "1789942" or "2266767" or "342369" or "358258", complete:
        agent: code ("{RXNORM}|1789942" = daratumumab, "{RXNORM}|2266767" = isatuximab,
                     "{RXNORM}|342369" = lenalidomide, "{RXNORM}|358258" = bortezomib)
        start: start
        end: end
'''
CODES = {"daratumumab": "1789942", "isatuximab": "2266767", "lenalidomide": "342369", "bortezomib": "358258"}


def statement(agent: str, start: str, end: str | None, kind: str = "MedicationStatement",
              status: str = "completed") -> dict:
    period = {"start": start} | ({"end": end} if end else {})
    return {"resource": {"resourceType": kind, "status": status, "subject": {"reference": "Patient/p"},
                         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": CODES[agent]}]},
                         "effectivePeriod": period}}


def bundle(*entries: dict) -> dict:
    order = {"resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                          "subject": {"reference": "Patient/p"}, "occurrenceDateTime": "2026-12-01"}}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}, order, *entries]}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_text(PROTOCOL, "fhir-history.elig")


def check_file(engine: Engine, tmp_path, data: dict, name: str):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return engine.check(str(path))


def test_medication_statements_fill_the_history_and_match_the_json_twin(engine, tmp_path):
    entries = [statement("lenalidomide", "2025-01-10", "2025-09-01"),
               statement("daratumumab", "2025-10-01", "2026-10-20", kind="MedicationAdministration"),
               statement("bortezomib", "2026-10-25", None, status="active")]
    from_bundle = check_file(engine, tmp_path, bundle(*entries), "bundle.json")
    twin = {"lymphodepletion_date": "2026-12-01", "therapies": [
        {"agent": "lenalidomide", "start": "2025-01-10", "end": "2025-09-01"},
        {"agent": "daratumumab", "start": "2025-10-01", "end": "2026-10-20"},
        {"agent": "bortezomib", "start": "2026-10-25", "end": "none"}]}
    from_twin = check_file(engine, tmp_path, twin, "twin.json")
    assert from_bundle.verdict == from_twin.verdict == "ineligible"
    assert from_bundle.blocking == from_twin.blocking == ["washout"]
    assert [c.reasons for c in from_bundle.criteria] == [c.reasons for c in from_twin.criteria]
    assert "therapies item 2 (agent daratumumab, start 2025-10-01, end 2026-10-20)" in \
        next(c for c in from_bundle.criteria if c.id == "washout").reasons[0]


def test_ignored_statuses_and_other_codes_are_left_out(engine, tmp_path):
    other = statement("lenalidomide", "2025-01-10", "2025-09-01")
    other["resource"]["medicationCodeableConcept"]["coding"][0]["code"] = "999"
    entries = [other, statement("daratumumab", "2026-10-01", "2026-10-20", status="entered-in-error"),
               statement("bortezomib", "2024-01-01", "2024-06-01"),
               statement("lenalidomide", "2024-07-01", "2025-01-01")]
    assert check_file(engine, tmp_path, bundle(*entries), "bundle.json").verdict == "eligible"


def test_without_complete_a_bundle_cannot_prove_an_absence(tmp_path):
    engine = Engine.from_text(PROTOCOL.replace(", complete:", ":"), "fhir-history.elig")
    entries = [statement("bortezomib", "2024-01-01", "2024-06-01"),
               statement("lenalidomide", "2024-07-01", "2025-01-01")]
    result = check_file(engine, tmp_path, bundle(*entries), "bundle.json")
    assert result.verdict == "undetermined"
    assert [m.name for m in result.missing_facts] == ["therapies"]


@pytest.mark.parametrize(("binding", "message"), [
    ('    therapies: observation "x"\n', "`therapies` is a history: write `each RESOURCE"),
    ('    therapies: each medication "x":\n        agnet: code ("x" = daratumumab)\n', "no field `agnet`"),
    ('    therapies: each medication "x":\n        agent: code ("x" = daratumab)\n', "`daratumab` is not a value"),
    ('    therapies: each medication "x":\n        start: value\n', "`value` gives a number or a boolean"),
    ('    therapies: each medication "x":\n        agent: date\n', "`date` gives a date, but the field is"),
    ('    lymphodepletion_date: each procedure "x":\n        start: date\n', "`each` fills a history"),
])
def test_bad_history_bindings(binding, message):
    text = PROTOCOL.split("bindings:\n")[0] + "bindings:\n" + binding
    with pytest.raises(DiagnosticError, match="bad-binding") as raised:
        Engine.from_text(text, "bad.elig")
    assert message in str(raised.value)


def test_an_open_period_is_none_only_for_a_field_that_may_be_none(tmp_path):
    engine = Engine.from_text(PROTOCOL.replace("        end: date, or none\n", "        end: date\n")
                              .replace("(end is none or lymphodepletion_date - end < 90 days)",
                                       "lymphodepletion_date - end < 90 days"), "fhir-history.elig")
    entries = [statement("bortezomib", "2024-01-01", "2024-06-01"), statement("daratumumab", "2026-11-01", None,
                                                                              status="active")]
    result = check_file(engine, tmp_path, bundle(*entries), "bundle.json")
    assert result.verdict == "undetermined"  # still going on: when it ends is unknown, not an error
    assert "1 with unknown fields" in result.missing_facts[0].description


def local_item(**fields: str) -> dict:
    components = [{"code": {"coding": [{"system": "urn:eligib:field", "code": name}]}, "valueString": value}
                  for name, value in fields.items()]
    return {"resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p"},
                         "code": {"coding": [{"system": "urn:eligib:fact", "code": "therapies"}]},
                         "component": components}}


COMPLETE = {"resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p"},
                         "code": {"coding": [{"system": "urn:eligib:fact", "code": "therapies"}]},
                         "valueString": "complete"}}


def test_a_history_without_a_binding_travels_as_one_observation_per_item(tmp_path):
    engine = Engine.from_text(PROTOCOL.split("    therapies: each")[0], "no-binding.elig")
    items = [local_item(agent="lenalidomide", start="2024-07-01", end="2025-01-01"),
             local_item(agent="daratumumab", start="2025-10-01", end="2026-10-20")]
    twin = {"lymphodepletion_date": "2026-12-01", "therapies": [
        {"agent": "lenalidomide", "start": "2024-07-01", "end": "2025-01-01"},
        {"agent": "daratumumab", "start": "2025-10-01", "end": "2026-10-20"}]}
    from_bundle = check_file(engine, tmp_path, bundle(*items, COMPLETE), "bundle.json")
    assert from_bundle.verdict == check_file(engine, tmp_path, twin, "twin.json").verdict == "ineligible"
    assert from_bundle.blocking == ["washout"]
    harmless = [local_item(agent="lenalidomide", start="2024-07-01", end="2025-01-01"),
                local_item(agent="bortezomib", start="2025-02-01", end="2025-06-01")]
    assert check_file(engine, tmp_path, bundle(*harmless, COMPLETE), "bundle.json").verdict == "eligible"
    without_mark = check_file(engine, tmp_path, bundle(*harmless), "bundle.json")
    assert without_mark.verdict == "undetermined"  # not said to be complete: an antibody may be missing
