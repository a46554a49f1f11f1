"""The CD7 protocol's verdict written by hand in plain Python: the baseline eligib's speed is measured
against (benchmarks/bench_engine.py). Exact like eligib: every number is a Fraction in the canonical
unit eligib uses (seconds, fractions for %, SI amounts), dates are day numbers; a patient is a plain
dict, a history a list of dicts, and a fact declared `or none` that is none is Python's None.

It decides a complete patient only (no unknown facts), returning whether the patient is eligible and
the criteria that block, in protocol order. It is checked against eligib on the vignettes before any
figure is printed, so a figure never compares two programs that disagree.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from eligib.values.calendar import shift_months
from eligib.values.units import to_canonical


def _unit(amount: int | str, unit: str) -> Fraction:
    return to_canonical(Fraction(amount), unit)


YEAR, MONTH, PERCENT = _unit(1, "years"), _unit(1, "months"), Fraction(1, 100)
AGE_LOW, AGE_HIGH = 18 * YEAR, 85 * YEAR
THREE_MONTHS, TWELVE_MONTHS = 3 * MONTH, 12 * MONTH
FIVE_PERCENT, SEVENTY_PERCENT, THIRTY_PERCENT = 5 * PERCENT, 70 * PERCENT, 30 * PERCENT
HEMOGLOBIN_LOW, SPO2_LOW, LVEF_LOW = _unit(60, "g/L"), 92 * PERCENT, 45 * PERCENT
CLEARANCE_LOW, KG, CREATININE_MG_DL = _unit(60, "mL/min"), _unit(1, "kg"), _unit("88.4", "umol/L")
ML_MIN, FEMALE_FACTOR, ONE_AND_HALF = _unit(1, "mL/min"), Fraction(85, 100), Fraction(3, 2)
T_LINEAGE, T_LEUKAEMIA = ("t_all", "etp_all", "t_lbl"), ("t_all", "etp_all")


def _latest_response(regimens: list[dict[str, Any]]) -> Any:
    """`latest(best_response of prior_regimens)`: by line; a tie goes to the regimen listed last."""
    best = None
    for regimen in regimens:
        if best is None or regimen["line"] >= best["line"]:
            best = regimen
    return None if best is None else best["best_response"]


def _t_lineage(p: dict[str, Any]) -> bool:
    if p["diagnosis"] not in T_LINEAGE:
        return False
    if not (p["failed_standard_treatment"] or p["lacks_effective_treatment_options"]):
        return False
    regimens, transplants = p["prior_regimens"], p["transplants"]
    two_lines = len(regimens) >= 2
    relapsed = (two_lines and any(r["best_response"] == "complete_remission" and r["recurrence_after_cr"]
                                  for r in regimens)) \
        or any(t["complete_remission_after"] and t["recurrence_after_cr"] for t in transplants)
    if relapsed:
        return True
    if two_lines:
        latest = _latest_response(regimens)
        if p["diagnosis"] in T_LEUKAEMIA and latest != "complete_remission":
            return True
        if p["diagnosis"] == "t_lbl" and latest in ("no_response", "progression"):
            return True
    return any(t["no_remission_after"] or t["progression_after"] for t in transplants)


def _aml(p: dict[str, Any]) -> bool:
    if p["diagnosis"] != "aml":
        return False
    if p["aml_cr_achieved"] and (p["aml_blood_leukemic_cells_after_cr"]
                                 or (p["aml_marrow_blast_percent"] > FIVE_PERCENT
                                     and not p["aml_marrow_blasts_other_cause"])
                                 or p["aml_extramedullary_infiltration_after_cr"]):
        return True
    duration = p["aml_remission_duration"]
    return bool(p["aml_no_response_after_two_courses"]
                or (duration is not None and p["aml_consolidation_received"] and duration <= TWELVE_MONTHS)
                or (duration is not None and duration > TWELVE_MONTHS and p["aml_relapse_unresponsive_to_chemotherapy"])
                or p["aml_relapse_count"] >= 2 or p["aml_persistent_extramedullary"])


def _at_least(value: Fraction | None, low: Fraction) -> bool:
    return value is not None and value >= low


def _cell_source(p: dict[str, Any]) -> bool:
    allogeneic = any(t["donor"] == "allogeneic" for t in p["transplants"])
    low_smear = p["peripheral_smear_tumor_percent"] < THIRTY_PERCENT
    if not allogeneic:
        return bool(p["can_donate_autologous_cells"] and low_smear)
    return p["collection_source"] == "donor" or (p["collection_source"] == "autologous" and low_smear)


def _renal(p: dict[str, Any]) -> bool:
    creatinine, clearance = p["creatinine"], p["creatinine_clearance"]
    if creatinine <= ONE_AND_HALF * p["creatinine_uln"]:
        return True
    if clearance is not None:
        return clearance >= CLEARANCE_LOW
    if creatinine == 0:
        return False  # the Cockcroft-Gault quotient has no value
    sex_factor = FEMALE_FACTOR if p["sex"] == "female" else 1
    estimate = (140 - p["age"] / YEAR) * (p["weight"] / KG) * sex_factor / (72 * (creatinine / CREATININE_MG_DL))
    return estimate * ML_MIN >= CLEARANCE_LOW


def _within_before(date: int | None, anchor: int, days: int = 0, months: int = 0) -> bool:
    if date is None:
        return False
    low = shift_months(anchor, -months) if months else anchor - days
    return low <= date <= anchor


def _heart(p: dict[str, Any]) -> bool:
    drugs = p["antihypertensive_drug_count"]
    return bool(p["severe_arrhythmia"] or p["unstable_angina"] or p["massive_myocardial_infarction"]
                or p["nyha_class"] >= 3
                or (drugs >= 3 and p["antihypertensive_includes_diuretic"] and p["blood_pressure_uncontrolled"])
                or drugs >= 4 or p["other_severe_heart_disease"])


def _pregnancy(p: dict[str, Any]) -> bool:
    if p["sex"] == "female":
        return bool(p["pregnant"] or p["lactating"] or p["plans_pregnancy_within_2_years"])
    return bool(p["partner_plans_pregnancy_within_2_years"])


def _inclusions(p: dict[str, Any]) -> list[tuple[str, bool]]:
    alt_factor = 5 if p["alt_disease_related"] else 3
    ast_factor = 5 if p["ast_disease_related"] else 3
    return [
        ("age", AGE_LOW <= p["age"] <= AGE_HIGH),
        ("disease", _t_lineage(p) or _aml(p)),
        ("cd7_positive", _at_least(p["cd7_flow_percent"], SEVENTY_PERCENT)
         or _at_least(p["cd7_ihc_percent"], SEVENTY_PERCENT)),
        ("cell_source", _cell_source(p)),
        ("prior_toxicity_recovered", p["prior_toxicity_grade"] < 2 or p["residual_toxicity_exception"]),
        ("ecog", p["ecog"] <= 2),
        ("life_expectancy", p["life_expectancy"] > THREE_MONTHS),
        ("alt", p["alt"] <= alt_factor * p["alt_uln"]),
        ("ast", p["ast"] <= ast_factor * p["ast_uln"]),
        ("bilirubin", p["bilirubin"] <= ONE_AND_HALF * p["bilirubin_uln"]),
        ("renal_function", _renal(p)),
        ("hemoglobin", p["hemoglobin"] >= HEMOGLOBIN_LOW),
        ("oxygen_saturation", p["oxygen_saturation"] >= SPO2_LOW),
        ("lvef", p["lvef"] >= LVEF_LOW),
    ]


def _exclusions(p: dict[str, Any]) -> list[tuple[str, bool]]:
    screening, lymphodepletion = p["screening_date"], p["lymphodepletion_date"]
    return [
        ("cns_leukemia", p["symptomatic_cns_leukemia"]),
        ("hepatitis_b", p["hbsag_positive"] or (p["hbcab_positive"] and p["hbv_dna_abnormal"])),
        ("hepatitis_c", p["hcv_antibody_positive"]), ("hiv", p["hiv_antibody_positive"]),
        ("cmv", p["cmv_dna_positive"]), ("syphilis", p["syphilis_positive"]),
        ("severe_allergy", p["severe_allergy_history"]), ("hypersensitivity", p["study_product_hypersensitivity"]),
        ("severe_heart_disease", _heart(p)), ("unstable_systemic_disease", p["unstable_systemic_disease"]),
        ("organ_transplant", p["prior_organ_transplant"] or p["planned_organ_transplant"]),
        ("gvhd", p["gvhd_after_immunosuppression_stop"]),
        ("recent_hsct", any(_within_before(t["date"], screening, months=6) for t in p["transplants"])),
        ("neurological_disease", p["active_neuro_autoimmune_inflammatory_disease"]),
        ("cerebrovascular_disease", p["active_cerebrovascular_disease"]),
        ("tumor_emergency", p["tumor_emergency"]), ("uncontrolled_infection", p["uncontrolled_infection"]),
        ("major_surgery", _within_before(p["last_major_surgery_date"], lymphodepletion, days=28)
         or p["major_surgery_planned"] or p["unhealed_surgical_wound"]),
        ("live_vaccine", _within_before(p["last_live_vaccine_date"], screening, days=28)),
        ("severe_mental_illness", p["severe_mental_illness"]), ("substance_abuse", p["alcohol_or_substance_abuse"]),
        ("pregnancy", _pregnancy(p)),
        ("investigator_contraindication", p["investigator_sees_contraindication"]),
    ]


def decide(p: dict[str, Any]) -> tuple[bool, list[str]]:
    """(eligible, blocking criteria in protocol order) for a complete patient."""
    blocking = [cid for cid, passes in _inclusions(p) if not passes]
    blocking += [cid for cid, excluded in _exclusions(p) if excluded]
    return not blocking, blocking
