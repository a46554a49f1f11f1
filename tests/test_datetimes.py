"""Date-times: instants written with a time of day and an offset, windows in hours, exact steps, the
rule that a date and a date-time never meet, and FHIR `effectiveDateTime` with its time."""

from __future__ import annotations

import json

import pytest

from eligib import Engine
from eligib.language.diagnostics import DiagnosticError
from eligib.values.types import DATETIME, ValueProblem
from eligib.values.types.timestamp import format_instant, parse_instant

HEAD = '''protocol timed:
    title: "Timed"
    version: "1"
'''

PROTOCOL = HEAD + '''facts:
    lymphodepletion_start: datetime
    infection_assessed: datetime
    pregnancy_test: datetime, or none

inclusion infection_check "No active infection within 72 hours before lymphodepletion":
    record: "r"
    infection_assessed within 72 hours before lymphodepletion_start

inclusion pregnancy "Pregnancy test at most 3 days before lymphodepletion":
    record: "r"
    pregnancy_test is none or lymphodepletion_start - pregnancy_test <= 3 days

exclusion late "Lymphodepletion more than 5 days after the assessment":
    record: "r"
    lymphodepletion_start > infection_assessed + 5 days

bindings:
    lymphodepletion_start: procedure "http://snomed.info/sct|1010001"
    infection_assessed: observation "http://loinc.org|8302-2" date
    pregnancy_test: observation "http://loinc.org|2106-3" date, absent means none
'''


def finding(result, cid):
    return next(c for c in result.criteria if c.id == cid)


@pytest.fixture(scope="module")
def timed() -> Engine:
    return Engine.from_text(PROTOCOL, "timed.elig")


def test_an_instant_is_placed_by_its_offset():
    assert parse_instant("2026-12-01T08:30:00+01:00") == parse_instant("2026-12-01T07:30Z")
    assert parse_instant("2026-12-01T00:30-05:00") == parse_instant("2026-12-01T05:30:00Z")
    assert format_instant(parse_instant("2026-12-01T08:30:15+01:00")) == "2026-12-01T07:30:15Z"


@pytest.mark.parametrize(("written", "says"), [
    ("2026-12-01", "without a time of day"),
    ("2026-12-01T08:30", "no UTC offset"),
    ("2026-12-01T08:30:00.250Z", "fraction of a second"),
    ("2026-12-01T24:30Z", "not a calendar date and time"),
    ("2026-02-30T08:30Z", "not a calendar date and time"),
    ("2026-12-01T08:30+14:30", "not a UTC offset"),
    ("yesterday", "expected a date-time"),
])
def test_a_date_time_without_a_time_offset_or_real_day_is_refused(written, says):
    with pytest.raises(ValueProblem, match=says):
        parse_instant(written)


def test_the_72_hour_window_is_exact_to_the_second(timed):
    start = "2026-12-04T08:00:00+01:00"  # 07:00Z
    inside = timed.check({"lymphodepletion_start": start, "infection_assessed": "2026-12-01T07:00:00Z"})
    outside = timed.check({"lymphodepletion_start": start, "infection_assessed": "2026-12-01T06:59:59Z"})
    assert finding(inside, "infection_check").status == "met"
    assert outside.verdict == "ineligible" and outside.blocking == ["infection_check"]
    reason = finding(outside, "infection_check").reasons[0]
    assert "2026-12-01T06:59:59Z is not within 72 hours before lymphodepletion_start 2026-12-04T07:00Z" in reason


def test_differences_and_steps_are_durations(timed):
    base = {"lymphodepletion_start": "2026-12-04T07:00Z", "infection_assessed": "2026-12-02T07:00Z"}
    assert timed.check({**base, "pregnancy_test": "2026-12-01T07:00Z"}).verdict == "eligible"  # exactly 3 days
    late = timed.check({**base, "pregnancy_test": "2026-12-01T06:59Z"})
    assert late.verdict == "ineligible" and late.blocking == ["pregnancy"]
    excluded = timed.check({"lymphodepletion_start": "2026-12-09T07:00:01Z", "infection_assessed": "2026-12-04T07:00Z"})
    assert finding(excluded, "late").status == "met"  # an exclusion that applies


def test_a_missing_date_time_matters_only_when_it_can_change_the_verdict(timed):
    result = timed.check({"lymphodepletion_start": "2026-12-04T07:00Z", "infection_assessed": "2026-12-03T07:00Z"})
    assert result.verdict == "undetermined" and [m.name for m in result.missing_facts] == ["pregnancy_test"]


@pytest.mark.parametrize(("body", "code"), [
    ("screening_date <= lymphodepletion_start", "date-and-datetime"),
    ("screening_date within 3 days before lymphodepletion_start", "date-and-datetime"),
    ("lymphodepletion_start - screening_date > 0 days", "date-and-datetime"),
    ("infection_assessed within 2 months before lymphodepletion_start", "unit-mismatch"),
    ("lymphodepletion_start - 1 year > infection_assessed", "unit-mismatch"),
    ("screening_date within 72 hours before screening_date", "unit-mismatch"),
    ("screening_date + 12 hours > screening_date", "type-mismatch"),
    ("infection_assessed + 0.5 s < lymphodepletion_start", "unit-mismatch"),
])
def test_mixing_dates_and_date_times_or_calendar_steps_is_an_error(body, code):
    text = HEAD + f'''facts:
    lymphodepletion_start: datetime
    infection_assessed: datetime
    screening_date: date

inclusion c "c":
    record: "r"
    {body}
'''
    with pytest.raises(DiagnosticError) as raised:
        Engine.from_text(text, "mixed.elig")
    assert [d.code for d in raised.value.diagnostics if d.severity == "error"] == [code]


def test_a_range_of_whole_days_bounds_a_date_time():
    engine = Engine.from_text(HEAD + '''facts:
    t: datetime, from 2026-01-01 to 2026-01-31

inclusion c "c":
    record: "r"
    t within 1 hours after t
''', "ranged.elig")
    spec = engine.checked.facts["t"]
    assert DATETIME.parse("2026-01-31T23:59:59Z", spec) == parse_instant("2026-01-31T23:59:59Z")
    with pytest.raises(ValueProblem, match="outside the declared range"):
        DATETIME.parse("2026-02-01T00:00Z", spec)


def _bundle(start: str, assessed: str) -> dict:
    def entry(resource: dict) -> dict:
        return {"resource": resource}
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        entry({"resourceType": "Patient", "id": "p"}),
        entry({"resourceType": "Procedure", "id": "ld", "status": "completed", "subject": {"reference": "Patient/p"},
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1010001"}]},
               "performedDateTime": start}),
        entry({"resourceType": "Observation", "id": "temp", "status": "final", "subject": {"reference": "Patient/p"},
               "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
               "effectiveDateTime": assessed, "valueQuantity": {"value": 170, "unit": "cm"}}),
    ]}


def test_fhir_date_times_keep_their_time_and_offset(timed, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_bundle("2026-12-04T08:00:00+01:00", "2026-12-01T06:59:59Z")))
    result = timed.check(str(path))
    assert result.verdict == "ineligible" and result.blocking == ["infection_check"]
    path.write_text(json.dumps(_bundle("2026-12-04T08:00:00+01:00", "2026-12-01T07:00:00Z")))
    assert finding(timed.check(str(path)), "infection_check").status == "met"


def test_a_fhir_date_without_a_time_for_a_date_time_fact_is_refused(timed, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_bundle("2026-12-04", "2026-12-01T07:00:00Z")))
    with pytest.raises(DiagnosticError) as raised:
        timed.check(str(path))
    assert "without a time of day" in raised.value.diagnostics[0].message


def _doses_bundle(*doses: str) -> dict:
    entries = [{"resource": {"resourceType": "Patient", "id": "p"}},
               {"resource": {"resourceType": "Observation", "id": "start", "status": "final",
                             "code": {"coding": [{"system": "urn:eligib:fact", "code": "lymphodepletion_start"}]},
                             "valueDateTime": "2026-12-03T02:00:00Z"}}]
    entries += [{"resource": {"resourceType": "MedicationAdministration", "id": f"d{i}", "status": "completed",
                              "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                                        "code": "8640"}]},
                              "subject": {"reference": "Patient/p"}, "effectiveDateTime": when}}
                for i, when in enumerate(doses)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


WASHOUT = HEAD + '''facts:
    lymphodepletion_start: datetime
    last_steroid_dose: datetime

exclusion steroid_washout "A steroid dose within 24 hours before lymphodepletion":
    record: "r"
    last_steroid_dose within 24 hours before lymphodepletion_start

bindings:
    last_steroid_dose: medication "http://www.nlm.nih.gov/research/umls/rxnorm|8640" date
'''


@pytest.mark.parametrize("doses", [
    ("2026-12-01T07:00:00Z", "2026-12-02T20:00:00Z"), ("2026-12-02T20:00:00Z", "2026-12-01T07:00:00Z"),
    # written on 2026-12-02 but earlier (16:00Z on 12-01) than the one written on 2026-12-01 (04:00Z on 12-02)
    ("2026-12-01T23:00:00-05:00", "2026-12-02T01:00:00+09:00"),
])
def test_the_latest_fhir_resource_for_a_date_time_is_the_latest_instant(tmp_path, doses):
    """A local urn:eligib:fact date-time keeps its time; the latest dose is found by instant, whatever
    the bundle order or the offsets (a regression: by written day, the wrong dose was taken)."""
    engine = Engine.from_text(WASHOUT, "washout.elig")
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_doses_bundle(*doses)))
    result = engine.check(str(path))
    assert result.verdict == "ineligible" and result.blocking == ["steroid_washout"]


def test_a_date_time_object_follows_the_text_rules():
    import datetime as dt

    spec = Engine.from_text(PROTOCOL, "timed.elig").checked.facts["lymphodepletion_start"]
    assert DATETIME.parse(dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC), spec) == parse_instant("2026-12-04T08:00Z")
    with pytest.raises(ValueProblem, match="fraction of a second"):
        DATETIME.parse(dt.datetime(2026, 12, 4, 8, 0, 0, 500000, tzinfo=dt.UTC), spec)
    with pytest.raises(ValueProblem, match="no UTC offset"):
        DATETIME.parse(dt.datetime(2026, 12, 4, 8, 0), spec)
