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
    bundle = read_bundle(source, wanted)
    assert bundle is not None
    try:
        facts, notes = facts_from_bundle(engine.checked, bundle, source)
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
    assert kept is not None and len(kept["entry"]) == len(core["entry"])
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
    assert kept.exit_code == 3 and "lvef" in json.loads(kept.output)["missing_facts"]
