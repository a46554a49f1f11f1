"""FHIR R4 bundles: the same verdicts as their JSON twins, stale and missing data unknown, exact units."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner
from conftest import CD7, ROOT
from fhir_bundles import CASES, OUT, build_all

from eligib.cli import main
from eligib.report.render import to_data
from eligib.tools.cases import load_cases

TWINS = {c.id: c for c in load_cases(str(ROOT / "protocols" / "cases" / "cd7_vignettes.yaml"))}


def summary(explanation) -> tuple:
    data = to_data(explanation)
    return (data["verdict"], data["blocking"], data["missing_facts"], data["eligible_paths"],
            [(c["id"], c["status"]) for c in data["criteria"]])


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_bundle_checks_like_its_json_twin(cd7, case_id):
    bundle = OUT / f"{CASES[case_id]}.bundle.json"
    assert summary(cd7.check(str(bundle))) == summary(cd7.check(TWINS[case_id].facts))
    assert CASES[case_id].split("-")[0] == cd7.check(str(bundle)).verdict


def test_committed_bundles_match_the_generator():
    for name, data in build_all().items():
        assert json.loads((OUT / name).read_text()) == json.loads(json.dumps(data)), name


def write(tmp_path, data) -> str:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data))
    return str(path)


def resource(data, resource_id):
    return next(e["resource"] for e in data["entry"] if e["resource"].get("id") == resource_id)


def base_bundle():
    return copy.deepcopy(build_all()["eligible-t-all-relapsed.bundle.json"])


def test_an_observation_older_than_its_window_is_unknown_with_a_note(cd7, tmp_path):
    data = base_bundle()
    resource(data, "lvef")["effectiveDateTime"] = "2026-07-01"  # more than 3 months before screening
    result = cd7.check(write(tmp_path, data))
    assert result.verdict == "undetermined" and [m.name for m in result.missing_facts] == ["lvef"]
    assert any(w.code == "stale-observation" and "lvef" in w.message for w in result.warnings)


def test_a_later_observation_than_the_anchor_is_not_used(cd7, tmp_path):
    data = base_bundle()
    resource(data, "lvef")["effectiveDateTime"] = "2026-12-01"  # after screening: not a screening value
    assert [m.name for m in cd7.check(write(tmp_path, data)).missing_facts] == ["lvef"]


@pytest.mark.parametrize("fact, value, unit, loinc", [
    ("hemoglobin", 9.5, "g/dL", "718-7"), ("alt", 35, "[iU]/L", "1742-6"), ("ast", 0.03, "U/mL", "1920-8"),
    ("creatinine", 0.905, "mg/dL", "2160-0"), ("bilirubin", 0.877, "mg/dL", "1975-2"),
    ("creatinine_clearance", 5.7, "L/h", "35591-7"),
])
def test_labs_restated_in_other_units_give_the_same_verdict(cd7, tmp_path, fact, value, unit, loinc):
    data = base_bundle()
    observation = resource(data, fact.replace("_", "-"))
    observation["code"]["coding"][0]["code"] = loinc
    observation["valueQuantity"] = {"value": value, "unit": unit, "code": unit, "system": "http://unitsofmeasure.org"}
    for reference in observation.get("referenceRange", []):
        high = reference["high"]
        if unit.endswith("/dL") and fact in ("creatinine", "bilirubin"):
            reference["high"] = {"value": 1.2, "unit": "mg/dL", "code": "mg/dL"}
        elif high.get("code") != unit and fact in ("alt", "ast"):
            reference["high"] = {"value": 40 if unit == "[iU]/L" else 0.04, "unit": unit, "code": unit}
    result = cd7.check(write(tmp_path, data))
    reasons = [c.reasons for c in result.criteria if c.id in (fact, "renal_function")]
    assert result.verdict == "eligible", (fact, reasons)


def test_an_invalid_bundle_is_a_clean_error(tmp_path):
    data = base_bundle()
    resource(data, "alt")["valueQuantity"]["value"] = "lots"
    result = CliRunner().invoke(main, ["check", str(CD7), write(tmp_path, data)])
    assert result.exit_code == 2 and "error[bad-fhir-bundle]" in result.output and "Traceback" not in result.output


def test_bad_bindings_are_reported():
    from eligib.language.checker import load_text
    from eligib.language.diagnostics import DiagnosticError

    text = CD7.read_text() + ('\nbindings:\n'
                              '    lvfe: observation "10230-1"\n'  # unknown fact
                              '    ecog: observation "89247-1"\n'  # bound twice
                              '    pregnant: procedure "234336002" date\n')  # a date for a boolean fact
    with pytest.raises(DiagnosticError) as caught:
        load_text(text, "cd7.elig")
    found = sorted((d.code, d.span.line) for d in caught.value.diagnostics if d.severity == "error")
    last = len(text.splitlines())
    assert found == [("bad-binding", last), ("duplicate-binding", last - 1), ("unknown-fact", last - 2)]


def test_fhir_edge_cases(cd7, tmp_path):
    data = base_bundle()
    patient = resource(data, "p")
    patient["gender"] = "unknown"  # valid FHIR, no value of `sex`: unknown, with a note
    local = resource(data, "screening-date")
    local["valueDateTime"] = "2026-11-20T09:30:00+01:00"  # a time of day does not count
    hcv = resource(data, "hcv-antibody-positive")
    hcv.pop("valueBoolean")
    hcv["valueCodeableConcept"] = {"coding": [{"system": "http://example.org/local", "code": "N1"},
                                              {"system": "http://snomed.info/sct", "code": "260385009"}]}
    ignored = resource(data, "severe-mental-illness")
    ignored["status"] = "entered-in-error"  # ignored: the fact becomes unknown
    result = cd7.check(write(tmp_path, data))
    # sex is unknown, so the female-only facts matter too; hcv is read from the second coding (negative)
    assert sorted(m.name for m in result.missing_facts) == ["lactating", "plans_pregnancy_within_2_years", "pregnant",
                                                            "severe_mental_illness", "sex"]
    assert any(w.code == "fhir-note" and "gender" in w.message for w in result.warnings)


def test_a_window_also_limits_existence(cd7, tmp_path):
    from eligib.language.checker import load_text

    text = CD7.read_text() + ('\nbindings:\n    unhealed_surgical_wound: procedure "123" exists, '
                              'before screening_date, within 14 days\n')
    text = text.replace('    unhealed_surgical_wound: boolean,', '    unhealed_surgical_wound: boolean,', 1)
    engine = type(cd7)(load_text(text, "cd7.elig"))
    data = base_bundle()
    data["entry"] = [e for e in data["entry"] if e["resource"].get("id") != "unhealed-surgical-wound"]
    data["entry"].append({"resource": {"resourceType": "Procedure", "status": "completed",
                                       "subject": {"reference": "Patient/p"}, "code": {"coding": [{"code": "123"}]},
                                       "performedDateTime": "2024-01-01"}})
    result = engine.check(write(tmp_path, data))
    assert "unhealed_surgical_wound" in [m.name for m in result.missing_facts]  # too old: unknown, not true
