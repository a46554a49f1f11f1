"""Explanations: values against thresholds as the protocol states them, paths, wording."""

from __future__ import annotations

from conftest import EXAMPLES, ROOT

from eligib.tools.cases import load_cases

CASES = {case.id: case for case in load_cases(str(ROOT / "protocols" / "cases" / "cd7_vignettes.yaml"))}


def explain_case(cd7, case_id: str):
    return cd7.check(CASES[case_id].facts)


def finding(explanation, criterion_id):
    return next(c for c in explanation.criteria if c.id == criterion_id)


def test_alt_shows_value_threshold_and_the_allowance_that_does_not_apply(cd7):
    alt = finding(explain_case(cd7, "V05"), "alt")
    assert alt.status == "not_met" and alt.blocks is True
    assert alt.reasons == ["alt 150 U/L > 3 * alt_uln = 120 U/L",
                           "`alt <= 5 * alt_uln` would apply only if `alt_disease_related`, which is false"]
    allowed = finding(explain_case(cd7, "V06"), "alt")
    assert allowed.status == "met"
    assert allowed.reasons[0] == "alt 150 U/L <= 5 * alt_uln = 200 U/L"


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
