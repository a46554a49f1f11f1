"""Explanations: values against thresholds as the protocol states them, paths, wording."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, ROOT

from eligib import Engine
from eligib.tools.cases import load_cases

CASES = {case.id: case for case in load_cases(str(ROOT / "protocols" / "cases" / "cd7_vignettes.yaml"))}
BRANCHES = """protocol branches:
    title: "Branches"
    version: "1"
facts:
    age: integer years, from 0 years to 120 years
    sex: one of (female, male)
    creatinine: decimal mg/dL, from 0.1 mg/dL to 20 mg/dL
    pregnant: boolean, only if sex is female
    lactating: boolean, only if sex is female
define limit: 0.8 mg/dL if age <= 5 years else 1.0 mg/dL
inclusion creatinine "Creatinine":
    record: "r"
    creatinine >= (0.8 mg/dL if age <= 5 years else 1.0 mg/dL)
inclusion named_limit "Creatinine, through a definition":
    record: "r"
    creatinine >= limit
inclusion by_sex "Creatinine by sex":
    record: "r"
    creatinine <= (1.0 mg/dL if sex is female else 1.2 mg/dL)
exclusion pregnancy "Pregnant or lactating":
    record: "r"
    only if sex is female
    any of
        pregnant: pregnant
        lactating: lactating
exclusion either "Pregnant or lactating, as one condition":
    record: "r"
    only if sex is female
    pregnant or lactating
"""
BRANCH_PATIENT = {"age": 40, "sex": "female", "creatinine": "1.1", "pregnant": False, "lactating": False}


@pytest.fixture(scope="module")
def branches() -> Engine:
    return Engine.from_text(BRANCHES, "branches.elig")


def explain_case(cd7, case_id: str):
    return cd7.check(CASES[case_id].facts)


def finding(explanation, criterion_id):
    return next(c for c in explanation.criteria if c.id == criterion_id)


def test_alt_shows_value_threshold_the_branch_and_the_allowance_that_does_not_apply(cd7):
    alt = finding(explain_case(cd7, "V05"), "alt")
    assert alt.status == "not_met" and alt.blocks is True
    assert alt.reasons == ["alt 150 U/L > 3 * alt_uln = 120 U/L (not alt_disease_related)",
                           "`alt <= 5 * alt_uln` would apply only if `alt_disease_related`"]
    allowed = finding(explain_case(cd7, "V06"), "alt")
    assert allowed.status == "met"
    assert allowed.reasons == ["alt 150 U/L <= 5 * alt_uln = 200 U/L (alt_disease_related)"]
    assert finding(explain_case(cd7, "V01"), "alt").reasons == [
        "alt 35 U/L <= 3 * alt_uln = 120 U/L (not alt_disease_related)"]


def test_a_conditional_threshold_shows_the_value_that_applied_and_why(branches):
    """Issue 13: the branch's value and the condition that chose it, not the whole expression."""
    young = branches.check({**BRANCH_PATIENT, "age": 4})
    assert finding(young, "creatinine").reasons == ["creatinine 1.1 mg/dL >= 0.8 mg/dL (age <= 5 years)"]
    assert finding(young, "named_limit").reasons == ["creatinine 1.1 mg/dL >= limit 0.8 mg/dL (age <= 5 years)"]
    older = branches.check({**BRANCH_PATIENT, "creatinine": "0.9"})
    assert finding(older, "creatinine").reasons == ["creatinine 0.9 mg/dL < 1.0 mg/dL (age > 5 years)"]
    assert finding(older, "named_limit").reasons == ["creatinine 0.9 mg/dL < limit 1 mg/dL (age > 5 years)"]
    male = branches.check({**BRANCH_PATIENT, "sex": "male"})
    assert finding(male, "by_sex").reasons == ["creatinine 1.1 mg/dL <= 1.2 mg/dL (sex is not female)"]


def test_a_criterion_that_does_not_apply_lists_no_paths(branches):
    pregnancy = finding(branches.check({**BRANCH_PATIENT, "sex": "male"}), "pregnancy")
    assert pregnancy.status == "not_applicable"
    assert pregnancy.reasons == ["does not apply: `sex is female` is false"] and pregnancy.paths == []
    applies = finding(branches.check(BRANCH_PATIENT), "pregnancy")
    assert [p.name for p in applies.paths] == ["pregnant", "lactating"]


def test_a_blocking_any_of_lists_every_path_that_holds(branches):
    result = branches.check({**BRANCH_PATIENT, "pregnant": True, "lactating": True})
    assert finding(result, "pregnancy").reasons == ["pregnant: pregnant is true", "lactating: lactating is true"]
    assert finding(result, "either").reasons == ["pregnant is true", "lactating is true"]


def test_unit_restated_value_is_shown_in_the_declared_unit(cd7):
    hemoglobin = finding(explain_case(cd7, "V15"), "hemoglobin")
    assert hemoglobin.reasons == ["hemoglobin 58 g/L < 60 g/L"]


def test_exclusion_wording_differs_from_inclusion(cd7):
    from eligib.report.render import to_text

    text = to_text(explain_case(cd7, "V23"))
    assert "- ecog: not met: ECOG performance status 0 to 2" in text
    assert "- major_surgery: excluded because: Recent or planned major surgery" in text
    assert "      planned: major_surgery_planned is true" in text


def test_failing_either_or_names_what_fails_on_every_path(cd7):
    disease = finding(explain_case(cd7, "V22"), "disease")
    assert disease.status == "not_met"
    assert "aml.relapsed.bone_marrow: aml_marrow_blast_percent 8 % > 5 %; " \
           "aml_marrow_blasts_other_cause is true" not in disease.reasons  # holds-part is not a failure
    assert any(r.startswith("aml.relapsed.bone_marrow: aml_marrow_blasts_other_cause is true") for r in disease.reasons)
    assert any(r.startswith("t_all_lbl: diagnosis is aml") for r in disease.reasons)
    aml = next(p for p in disease.paths if p.name == "aml")
    assert aml.status == "fails"
    assert {p.name: p.status for p in aml.paths} == {"relapsed": "fails", "refractory": "fails"}


def test_eligible_patient_shows_the_paths_that_hold(cd7):
    explanation = explain_case(cd7, "V08")
    assert "disease.t_all_lbl.relapsed.after_transplant" in explanation.holding_paths
    assert "cell_source.allo_hsct_donor_collection" in explanation.holding_paths
    assert explanation.path_status("disease.t_all_lbl.relapsed.after_chemotherapy") == "fails"  # one regimen


def test_window_reason_gives_dates(cd7):
    vaccine = finding(explain_case(cd7, "V14"), "live_vaccine")
    assert vaccine.reasons == ["last_live_vaccine_date 2026-11-06 is within 4 weeks before screening_date "
                               "2026-11-20 (2026-10-23 to 2026-11-20)"]


def test_missing_facts_name_the_criteria_they_decide(cd7):
    explanation = explain_case(cd7, "V11")
    assert [(m.name, m.criteria) for m in explanation.missing_facts] == [("hbv_dna_abnormal", ["hepatitis_b"])]
    assert finding(explanation, "hepatitis_b").status == "unknown"


def test_an_explanation_read_on_another_thread_never_asks_the_solver(cd7, monkeypatch):
    """Sentences and paths are built when first read (issue 11), maybe on another thread than the
    check's: everything they need from the solver is settled during the check, on its own thread."""
    from concurrent.futures import ThreadPoolExecutor

    from eligib.logic.solver import Analysis
    from eligib.report.render import to_data

    patient = str(EXAMPLES / "undetermined-missing-several.json")
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(cd7.check, patient).result()
    expected = to_data(cd7.check(patient))

    def no_solver(*args, **kwargs):
        raise AssertionError("an explanation asked the solver while being read")

    monkeypatch.setattr(Analysis, "model", no_solver)
    assert to_data(result) == expected
