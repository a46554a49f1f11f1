"""`eligib screen` on FHIR records: a folder of bundles or a Bulk Data export (NDJSON), each patient's
result equal to `eligib check` on that patient's record with the same given facts; facts given to every
patient of a table (`--fact`, `--facts`); and the errors a folder can hold (per patient, or located)."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from eligib import Engine, api
from eligib.cli import main
from eligib.language.diagnostics import DiagnosticError

ROOT = Path(__file__).resolve().parent.parent
CD7 = str(ROOT / "protocols" / "cd7_car_t.elig")
BUNDLES = sorted((ROOT / "protocols" / "examples" / "fhir").glob("*.bundle.json"))
COHORT = ROOT / "protocols" / "examples" / "screen" / "patients.csv"


@pytest.fixture(scope="module")
def cd7():
    return Engine.from_file(CD7)


def as_check(engine: Engine, path: str, **given) -> tuple:
    found = engine.check(path, given=engine.given(**given) if given else None)
    return str(found.verdict), list(found.blocking), [m.name for m in found.missing_facts], list(found.holding_paths)


def results(engine: Engine, data: str, **options) -> dict[str, tuple]:
    with api.screen(engine, data, **options) as screening:
        return {r.id: (r.verdict, r.blocking, r.missing_facts, r.paths) if r.verdict != "error" else ("error", r.errors)
                for r in screening.results()}


def renamed(bundle: dict, patient_id: str) -> dict:
    """The bundle with its Patient called `patient_id`, every reference to it too."""
    text = json.dumps(bundle).replace('"Patient/p"', json.dumps(f"Patient/{patient_id}"))
    data = json.loads(text)
    for entry in data["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["id"] = patient_id
    return data


def bundle_folder(tmp_path: Path, drop_screening_date: bool = False) -> Path:
    folder = tmp_path / "records"
    folder.mkdir(parents=True)
    for path in BUNDLES:
        data = renamed(json.loads(path.read_text()), path.name.removesuffix(".bundle.json"))
        if drop_screening_date:
            data["entry"] = [e for e in data["entry"] if e["resource"].get("id") != "screening-date"]
        (folder / path.name).write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_a_folder_of_bundles_screens_as_check_reads_each(cd7, tmp_path, workers):
    folder = bundle_folder(tmp_path)
    got = results(cd7, str(folder), workers=workers)
    assert got == {path.name.removesuffix(".bundle.json"): as_check(cd7, str(folder / path.name)) for path in BUNDLES}
    assert {verdict for verdict, *_ in got.values()} == {"eligible", "ineligible", "undetermined"}


def test_given_facts_reach_every_record(cd7, tmp_path):
    folder = bundle_folder(tmp_path, drop_screening_date=True)
    got = results(cd7, str(folder), facts=("screening_date=2026-11-20",), workers=2)
    expected = {path.name.removesuffix(".bundle.json"): as_check(cd7, str(folder / path.name),
                                                                 options=["screening_date=2026-11-20"])
                for path in BUNDLES}
    assert got == expected
    assert got == results(cd7, str(bundle_folder(tmp_path / "full")))  # as if each record held it


def bulk_export(tmp_path: Path) -> Path:
    """The example bundles as one Bulk Data export: one NDJSON file per resource type."""
    folder = tmp_path / "export"
    folder.mkdir()
    by_type: dict[str, list[str]] = defaultdict(list)
    for path in BUNDLES:
        data = renamed(json.loads(path.read_text()), path.name.removesuffix(".bundle.json"))
        for entry in data["entry"]:
            by_type[entry["resource"]["resourceType"]].append(json.dumps(entry["resource"]))
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def test_a_bulk_export_screens_each_patient_as_its_bundle(cd7, tmp_path):
    got = results(cd7, str(bulk_export(tmp_path)))
    folder = bundle_folder(tmp_path)
    assert got == {path.name.removesuffix(".bundle.json"): as_check(cd7, str(folder / path.name)) for path in BUNDLES}


def test_a_bad_record_is_its_patients_error_not_the_runs(cd7, tmp_path):
    folder = bundle_folder(tmp_path)
    (folder / "broken.json").write_text('{"resourceType": "Bundle", "type": "collection", "entry": [')
    data = renamed(json.loads(BUNDLES[0].read_text()), "twin")
    next(e["resource"] for e in data["entry"] if "valueQuantity" in e["resource"])["valueQuantity"]["value"] = "five"
    (folder / "zz-invalid.json").write_text(json.dumps(data))
    got = results(cd7, str(folder))
    assert got["twin"][0] == "error" and "bad-fhir-bundle" not in got["twin"][1][0] and "valid" in got["twin"][1][0]
    assert got["broken"][0] == "error" and "malformed JSON" in got["broken"][1][0] and "broken.json:1:" in \
        got["broken"][1][0]
    assert len([r for r in got.values() if r[0] != "error"]) == len(BUNDLES)
    export = bulk_export(tmp_path)
    with (export / "Observation.ndjson").open("a") as handle:
        handle.write('{"resourceType": "Observation", "id": "x", "status": "final", "subject": {"reference": '
                     '"Patient/eligible-aml-relapsed"}, "code": {"coding": [{"system": "http://loinc.org", '
                     '"code": "718-7"}]}, "effectiveDateTime": "2026-11-19", "valueQuantity": {"value": "lots"}}\n')
    bulk = results(cd7, str(export))
    assert bulk["eligible-aml-relapsed"][0] == "error" and "Observation.ndjson" in bulk["eligible-aml-relapsed"][1][0]
    assert bulk["eligible-t-all-relapsed"][0] == "eligible"


@pytest.mark.parametrize(("files", "message"), [
    ({}, "holds no FHIR bundle"),
    ({"a.json": "{}", "Patient.ndjson": "{}\n"}, "holds both bundles"),
    ({"Patient.ndjson": '{"resourceType": "Patient", "id": "a"}\nnot json\n'}, "Patient.ndjson:2: not JSON"),
    ({"Observation.ndjson": '{"resourceType": "Observation", "id": "o"}\n'}, "Observation.ndjson:1: a resource that "
                                                                              "names no patient"),
])
def test_folder_errors_are_clean_and_located(tmp_path, files, message):
    folder = tmp_path / "data"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    result = CliRunner().invoke(main, ["screen", CD7, str(folder)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_facts_given_to_every_row_of_a_table(cd7, tmp_path):
    without = tmp_path / "patients.csv"
    rows = duckdb.sql(f"SELECT * EXCLUDE (screening_date) FROM read_csv('{COHORT}', all_varchar=true)")
    rows.write_csv(str(without))
    for name in ("prior_regimens", "transplants"):
        shutil.copy(COHORT.with_name(f"patients.{name}.csv"), tmp_path / f"patients.{name}.csv")
    facts = tmp_path / "study.yaml"
    facts.write_text("screening_date: 2026-11-20\n")
    assert results(cd7, str(without), facts=("screening_date=2026-11-20",)) == results(cd7, str(COHORT)) == \
        results(cd7, str(without), facts_file=str(facts))
    with pytest.raises(DiagnosticError, match="is a column of the table and a given fact"):
        api.screen(cd7, str(COHORT), facts=("screening_date=2026-11-20",))
    with pytest.raises(DiagnosticError, match="is a column of the table and a given fact"):
        api.screen(cd7, str(without), facts=("transplants=complete",))
    no_history = tmp_path / "no-history.csv"
    duckdb.sql(f"SELECT * EXCLUDE (transplants) FROM read_csv('{without}', all_varchar=true)").write_csv(
        str(no_history))
    with pytest.raises(DiagnosticError, match="is a history: give it in a child table"):
        api.screen(cd7, str(no_history), facts=("transplants=complete",))
    refused = CliRunner().invoke(main, ["screen", CD7, str(without), "--fact", "screening_dat=2026-11-20"])
    assert refused.exit_code == 2 and "unknown fact `screening_dat`" in refused.output


SYNTHEA = ROOT / "tests" / "fixtures" / "synthea"


def test_a_part_of_the_synthea_cohort_screens_as_each_record_checks(cd7, tmp_path):
    """12 patients of the simulated cohort (docs/screening.md#a-synthetic-cohort), as an export and one
    by one as bundles: real Synthea resources (LOINC vital signs and labs with times and offsets, CVX
    vaccines) read through the CD7 bindings for a screening date the records lack."""
    patients = [json.loads(line) for line in (SYNTHEA / "Patient.ndjson").read_text().splitlines()[:12]]
    chosen = {p["id"] for p in patients}
    export = tmp_path / "export"
    export.mkdir()
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for path in SYNTHEA.glob("*.ndjson"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        kept = []
        for line in lines:
            resource = json.loads(line)
            owner = resource["id"] if resource["resourceType"] == "Patient" else \
                (resource.get("subject") or resource.get("patient"))["reference"].removeprefix("Patient/")
            if owner in chosen:
                kept.append(line)
                by_patient[owner].append(resource)
        (export / path.name).write_text("\n".join(kept) + "\n")
    fact = ("screening_date=2026-11-20",)
    got = results(cd7, str(export), facts=fact)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    for owner, resources in by_patient.items():
        (bundles / f"{owner}.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                                           "entry": [{"resource": r} for r in resources]}))
    assert got == {owner: as_check(cd7, str(bundles / f"{owner}.json"), options=list(fact)) for owner in chosen}
    verdicts = {verdict for verdict, *_ in got.values()}
    assert verdicts == {"ineligible", "undetermined"}  # children and the elderly by age; no diagnosis in FHIR


def test_bulk_lines_found_in_review(cd7, tmp_path):
    """A versioned patient reference is that patient's; a valid line with a huge number or a carriage
    return inside it does not fail the run."""
    export = bulk_export(tmp_path)
    patient = "eligible-aml-relapsed"
    lines = (export / "Observation.ndjson").read_text().splitlines()
    versioned = [line.replace(f'"Patient/{patient}"', f'"Patient/{patient}/_history/2"') if patient in line else line
                 for line in lines]
    (export / "Observation.ndjson").write_text("\n".join(versioned) + "\n")
    (export / "Encounter.ndjson").write_bytes(
        ('{"resourceType": "Encounter", "id": "e", "status": "finished", "class": {"code": "AMB"}, '
         f'"subject": {{"reference": "Patient/{patient}"}},\r"length": {{"value": {"9" * 5000}}}}}\n').encode())
    got = results(cd7, str(export))
    assert len(got) == len(BUNDLES) and got[patient][0] == "eligible"
