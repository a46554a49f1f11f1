"""Reading real-sized FHIR records: only the entries the bindings can read are kept, and keeping fewer
changes nothing (a property: the facts and notes equal those read from the whole bundle, whatever
other resources it holds); facts given beside a record (`--fact`, `--facts`) and their errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir_bundles import build_all
from hypothesis import HealthCheck, given, settings, strategies as st

from eligib import Engine
from eligib.cli import main
from eligib.inputs.fhir import facts_from_bundle
from eligib.inputs.fhir_reading import Wanted, read_bundle
from eligib.language.diagnostics import DiagnosticError
from eligib.language.source import SourceFile

ROOT = Path(__file__).resolve().parent.parent
CD7 = ROOT / "protocols" / "cd7_car_t.elig"
BUNDLES = build_all()


@pytest.fixture(scope="module")
def cd7():
    return Engine.from_file(str(CD7))


def coding(system: str | None, code: str) -> dict:
    return {"code": code} if system is None else {"system": system, "code": code}


LOINC = "http://loinc.org"
codes = st.sampled_from(["1742-6", "1920-8", "718-7", "10230-1", "2160-0", "29463-7", "8867-4", "03", "94", "x"])
systems = st.sampled_from([LOINC, "http://hl7.org/fhir/sid/cvx", "http://snomed.info/sct", None, "urn:eligib:fact"])
days = st.dates(min_value=__import__("datetime").date(2026, 8, 1), max_value=__import__("datetime").date(2026, 12, 1))


@st.composite
def noise(draw) -> dict:
    """A resource a record may hold beside the ones a protocol reads: other codes, other systems, other
    types, the same codes under another system, dated around the screening date."""
    kind = draw(st.sampled_from(["Observation", "Immunization", "Encounter", "Procedure", "Condition"]))
    when = draw(days).isoformat()
    concept = {"coding": draw(st.lists(st.builds(coding, systems, codes), min_size=1, max_size=2))}
    if kind == "Observation":
        return {"resourceType": kind, "status": draw(st.sampled_from(["final", "entered-in-error"])),
                "code": concept, "effectiveDateTime": when,
                "valueQuantity": {"value": draw(st.integers(0, 900)), "unit": "U/L"}}
    if kind == "Immunization":
        return {"resourceType": kind, "status": "completed", "vaccineCode": concept,
                "patient": {"reference": "Patient/p"}, "occurrenceDateTime": when}
    if kind == "Encounter":
        return {"resourceType": kind, "status": "finished", "class": {"code": "AMB"}}
    if kind == "Procedure":
        return {"resourceType": kind, "status": "completed", "code": concept, "subject": {"reference": "Patient/p"},
                "performedDateTime": when}
    return {"resourceType": kind, "code": concept, "subject": {"reference": "Patient/p"}, "onsetDateTime": when}


def read(engine: Engine, data: dict, everything: bool) -> tuple:
    wanted = Wanted.of(engine.checked)
    wanted.everything = everything
    source = SourceFile("bundle.json", json.dumps(data))
    kept = read_bundle(source, wanted)
    assert kept is not None
    try:
        facts, notes = facts_from_bundle(engine.checked, kept.data, source, positions=kept.positions)
    except DiagnosticError as exc:
        return ("error", [d.message for d in exc.diagnostics])
    return json.dumps(facts, sort_keys=True, default=str), [n.message for n in notes]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(BUNDLES)), extra=st.lists(noise(), max_size=12), seed=st.randoms())
def test_keeping_only_what_bindings_read_changes_nothing(cd7, name, extra, seed):
    data = copy.deepcopy(BUNDLES[name])
    entries = data["entry"] + [{"resource": {**resource, "id": f"n{i}"}} for i, resource in enumerate(extra)]
    seed.shuffle(entries)
    data["entry"] = entries
    assert read(cd7, data, everything=False) == read(cd7, data, everything=True)


def test_a_large_record_keeps_few_entries_and_checks_as_its_core(cd7, tmp_path):
    core = BUNDLES["eligible-t-all-relapsed.bundle.json"]
    data = copy.deepcopy(core)
    filler = [{"resource": {"resourceType": "Observation", "id": f"f{i}", "status": "final",
                            "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},  # heart rate: no binding
                            "effectiveDateTime": "2026-11-01", "valueQuantity": {"value": 70.5, "unit": "/min"}}}
              for i in range(40_000)]
    data["entry"] = filler[:20_000] + data["entry"] + filler[20_000:]
    big = tmp_path / "big.json"
    big.write_text(json.dumps(data))
    assert big.stat().st_size > 5_000_000  # far over the 1 MB of a facts file
    kept = read_bundle(SourceFile(str(big), big.read_text()), Wanted.of(cd7.checked))
    assert kept is not None and len(kept.data["entry"]) == len(core["entry"])
    small = tmp_path / "core.json"
    small.write_text(json.dumps(core))
    assert cd7.check(str(big)).verdict == cd7.check(str(small)).verdict == "eligible"


def test_unread_resources_are_not_validated_but_must_name_a_resource_type(cd7, tmp_path):
    data = copy.deepcopy(BUNDLES["eligible-t-all-relapsed.bundle.json"])
    data["entry"].append({"resource": {"resourceType": "Encounter", "id": "e", "status": 42}})  # invalid, unread
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    assert cd7.check(str(path)).verdict == "eligible"
    data["entry"].append({"resource": {"resourceType": "Encountr", "id": "t"}})
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["check", str(CD7), str(path)])
    assert result.exit_code == 2 and "`Encountr` is not a FHIR R4 resource type" in result.output


def test_a_read_resource_is_read_exactly_and_located(cd7, tmp_path):
    text = json.dumps(BUNDLES["eligible-t-all-relapsed.bundle.json"], indent=1)
    anchor = '"id": "alt",'
    assert anchor in text
    path = tmp_path / "b.json"
    path.write_text(text.replace(anchor, anchor + ' "id": "alt2",', 1))
    result = CliRunner().invoke(main, ["check", str(CD7), str(path)])
    entry_start = text.rfind("\n  {", 0, text.index(anchor))  # the entry holding the resource
    line = text[:entry_start].count("\n") + 2
    assert result.exit_code == 2 and "entry 1: key `id` is given twice" in result.output
    assert f"b.json:{line}:3" in result.output, result.output


def record_without_screening_date(tmp_path: Path) -> str:
    data = copy.deepcopy(BUNDLES["eligible-t-all-relapsed.bundle.json"])
    data["entry"] = [e for e in data["entry"] if e["resource"].get("id") != "screening-date"]
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_a_fact_given_beside_a_record_supplies_its_anchor(tmp_path):
    record = record_without_screening_date(tmp_path)
    alone = run("check", str(CD7), record, "--format", "json")
    assert json.loads(alone.output)["verdict"] == "undetermined"
    with_fact = run("check", str(CD7), record, "--fact", "screening_date=2026-11-20", "--format", "json")
    assert with_fact.exit_code == 0 and json.loads(with_fact.output)["verdict"] == "eligible"
    facts = tmp_path / "study.yaml"
    facts.write_text("screening_date: 2026-11-20\n")
    from_file = run("check", str(CD7), record, "--facts", str(facts), "--format", "json")
    assert from_file.exit_code == 0 and json.loads(from_file.output)["verdict"] == "eligible"


@pytest.mark.parametrize(("options", "message"), [
    (["--fact", "screening_date=2026-11-20"], "fact `screening_date` is given by `{bundle}` and by `--fact`"),
    (["--fact", "screening_dat=2026-11-20"], "unknown fact `screening_dat`"),
    (["--fact", "screening_date"], "write NAME=VALUE"),
    (["--fact", "screening_date="], "no value"),
])
def test_given_facts_errors_are_clean_and_located(tmp_path, options, message):
    bundle = tmp_path / "b.json"
    bundle.write_text(json.dumps(BUNDLES["eligible-t-all-relapsed.bundle.json"]))
    result = run("check", str(CD7), str(bundle), *options)
    assert result.exit_code == 2, result.output
    assert message.format(bundle=bundle) in result.output and "--fact:1:" in result.output
    assert "Traceback" not in result.output


def test_given_fact_values_are_read_by_their_type_and_located(tmp_path):
    record = record_without_screening_date(tmp_path)
    result = run("check", str(CD7), record, "--fact", "screening_date=2026-02-30")
    assert result.exit_code == 2 and "bad-patient-value" in result.output and "--fact:1:16" in result.output
    facts = tmp_path / "study.json"
    facts.write_text('{"screening_date": "2026-11-20"}')
    both = run("check", str(CD7), record, "--facts", str(facts), "--fact", "screening_date=2026-11-20")
    assert both.exit_code == 2 and "given by" in both.output
    patient = tmp_path / "patient.json"
    patient.write_text('{"age": 30, "screening_date": "2026-11-21"}')
    clash = run("check", str(CD7), str(patient), "--facts", str(facts))
    assert clash.exit_code == 2 and f"fact `screening_date` is given by `{patient}` and by `{facts}`" in clash.output
    assert "study.json:1:2" in clash.output


def test_a_facts_file_over_a_megabyte_is_still_too_large(tmp_path):
    huge = tmp_path / "huge.json"
    huge.write_text('{"age": 30, "padding": "' + "x" * 1_100_000 + '"}')
    result = run("check", str(CD7), str(huge))
    assert result.exit_code == 2 and "too-large" in result.output and "1,000,000 bytes" in result.output


def test_a_binding_default_or_a_stale_result_is_not_the_record_giving_the_fact(tmp_path):
    data = copy.deepcopy(BUNDLES["eligible-t-all-relapsed.bundle.json"])
    data["entry"] = [e for e in data["entry"] if e["resource"].get("id") != "creatinine-clearance"]
    for entry in data["entry"]:
        if entry["resource"].get("id") == "lvef":
            entry["resource"]["effectiveDateTime"] = "2026-01-01"  # older than the 3 months lvef allows
    record = tmp_path / "record.json"
    record.write_text(json.dumps(data))
    assert not any(e["resource"].get("id") == "creatinine-clearance" for e in data["entry"])
    result = run("check", str(CD7), str(record), "--fact", "creatinine_clearance=80", "--fact", "lvef=60",
                 "--format", "json")
    assert result.exit_code == 0, result.output  # `absent means none` and a stale lvef give nothing
    facts = tmp_path / "study.json"
    facts.write_text('{"lvef": null}')  # null: not given, so the record's own (stale) lvef is read
    kept = run("check", str(CD7), str(record), "--facts", str(facts), "--format", "json")
    assert kept.exit_code == 3 and "lvef" in [m["fact"] for m in json.loads(kept.output)["missing_facts"]]


ANCHORED = '''protocol anchored:
    title: "A bound anchor"
    version: "1"

facts:
    lymphodepletion_date: date
    weight: decimal kg, from 1 kg to 400 kg
    meta_weight: decimal kg, from 1 kg to 400 kg

inclusion heavy "Weight at least 40 kg":
    record: "weight at least 40 kg"
    weight >= 40 kg and meta_weight >= 40 kg

bindings:
    lymphodepletion_date: fhirpath "Bundle.entry.resource.ofType(ServiceRequest).occurrenceDateTime"
    weight: observation "http://loinc.org|29463-7", before lymphodepletion_date, within 28 days
    meta_weight: fhirpath "Bundle.meta.extension.valueDecimal"
'''


def anchored_record(weight: str, meta_weight: str) -> str:
    return ('{"resourceType": "Bundle", "type": "collection", "meta": {"extension": [{"url": "urn:x", '
            f'"valueDecimal": {meta_weight}}}]}}, "entry": ['
            '{"resource": {"resourceType": "Patient", "id": "p"}}, '
            '{"resource": {"resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order", '
            '"subject": {"reference": "Patient/p"}, "occurrenceDateTime": "2026-11-20"}}, '
            '{"resource": {"resourceType": "Observation", "id": "w", "status": "final", "code": {"coding": '
            '[{"system": "http://loinc.org", "code": "29463-7"}]}, "subject": {"reference": "Patient/p"}, '
            f'"effectiveDateTime": "2026-11-10", "valueQuantity": {{"value": {weight}, "unit": "kg"}}}}}}]}}')


def test_found_in_review(cd7, tmp_path):
    """Bundles a review found read differently from the whole-bundle reader; each as it should be now."""
    protocol = tmp_path / "anchored.elig"
    protocol.write_text(ANCHORED)
    record = tmp_path / "record.json"
    # a given fact whose binding counts back from a bound anchor: the record gives it too, so refused
    record.write_text(anchored_record("30", "50"))
    assert run("check", str(protocol), str(record)).exit_code == 1
    twice = run("check", str(protocol), str(record), "--fact", "weight=70")
    assert twice.exit_code == 2 and "fact-given-twice" in twice.output
    # the bundle's own top level is read exactly (a fhirpath binding reads it): 39.999... kg is not 40 kg
    record.write_text(anchored_record("50", "39.99999999999999999"))
    assert run("check", str(protocol), str(record)).exit_code == 1
    record.write_text(anchored_record("50", "40"))
    assert run("check", str(protocol), str(record)).exit_code == 0
    # a key twice in a resource the filter would drop: refused, since the last one could hide a binding's code
    data = copy.deepcopy(BUNDLES["eligible-t-all-relapsed.bundle.json"])
    text = json.dumps(data)
    extra = ('{"resource": {"resourceType": "Immunization", "id": "v", "status": "completed", "vaccineCode": '
             '{"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}]}, "vaccineCode": {"coding": '
             '[{"system": "http://hl7.org/fhir/sid/cvx", "code": "08"}]}, "patient": {"reference": "Patient/p"}, '
             '"occurrenceDateTime": "2026-11-10"}}, ')
    record.write_text(text.replace('"entry": [', '"entry": [' + extra, 1))
    hidden = run("check", str(CD7), str(record))
    assert hidden.exit_code == 2 and "entry 0: key `vaccineCode` is given twice" in hidden.output
    # a validation error names the entry's place in the file, not among the kept entries
    broken = copy.deepcopy(data)
    kept_index = next(i for i, e in enumerate(broken["entry"]) if e["resource"].get("id") == "alt")
    del broken["entry"][kept_index]["resource"]["status"]
    broken["entry"][:0] = [{"resource": {"resourceType": "Encounter", "id": f"e{i}", "status": "finished",
                                         "class": {"code": "AMB"}}} for i in range(3)]
    record.write_text(json.dumps(broken))
    located = run("check", str(CD7), str(record))
    assert located.exit_code == 2 and f"entry.{kept_index + 3}.resource.status" in located.output
    # a data type is no resource type, kept or not
    coding = copy.deepcopy(data)
    coding["entry"].append({"resource": {"resourceType": "Coding", "code": "x"}})
    record.write_text(json.dumps(coding))
    assert "`Coding` is not a FHIR R4 resource type" in run("check", str(CD7), str(record)).output
    # a big bundle with a JSON mistake: located, not called too large
    big = copy.deepcopy(data)
    big["entry"] += [{"resource": {"resourceType": "Encounter", "id": f"f{i}", "status": "finished",
                                   "class": {"code": "AMB"}}} for i in range(15_000)]
    record.write_text(json.dumps(big, indent=1)[:-3] + ",,]}")
    malformed = run("check", str(CD7), str(record))
    assert malformed.exit_code == 2 and "malformed JSON" in malformed.output and "too-large" not in malformed.output
