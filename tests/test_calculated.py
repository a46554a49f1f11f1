"""Calculated values (issue 10): products and quotients of facts, typed by dimension analysis,
exact, explained with their inputs; a quotient by zero has no value."""

from __future__ import annotations

from fractions import Fraction

import pytest

from eligib import Engine
from eligib.language.diagnostics import DiagnosticError

PROTOCOL = """protocol calculated:
    title: "Calculated"
    version: "1"
facts:
    age: integer years, from 18 years to 120 years
    sex: one of (female, male)
    weight: decimal kg, from 20 kg to 300 kg
    height: decimal cm, from 100 cm to 250 cm
    creatinine: decimal mg/dL, from 0.1 mg/dL to 20 mg/dL, where 1 mg/dL = 88.4 umol/L
    alt: decimal U/L, from 0 U/L to 10000 U/L
    alt_uln: decimal U/L, from 0 U/L to 200 U/L
    dose: decimal mg, from 0 mg to 10000 mg
define cockcroft_gault: ((140 - age / 1 year) * (weight / 1 kg) / (72 * (creatinine / 1 mg/dL))
        * (0.85 if sex is female else 1) * 1 mL/min)
define bmi: weight / (height * height)
inclusion renal "CrCl >= 60 mL/min":
    record: "r"
    cockcroft_gault >= 60 mL/min
inclusion bmi "BMI < 35":
    record: "r"
    bmi < 35 kg/m2
inclusion liver "ALT <= 3 x ULN":
    record: "r"
    alt / alt_uln <= 3
inclusion dose "At most 5 mg/kg":
    record: "r"
    dose <= 5 mg/kg * weight
"""
PATIENT = {"age": 71, "sex": "male", "weight": 62, "height": 170, "creatinine": 1.1, "alt": 30, "alt_uln": 40,
           "dose": 300}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_text(PROTOCOL, "calculated.elig")


def cockcroft_gault(age: int, weight: Fraction, creatinine: Fraction, female: bool) -> Fraction:
    return (140 - age) * weight / (72 * creatinine) * (Fraction("0.85") if female else 1)


@pytest.mark.parametrize("age, weight, creatinine, sex", [
    (71, "62", "1.1", "male"), (40, "70", "1.3", "female"), (30, "90", "1.84", "male"), (85, "45", "0.6", "female")])
def test_cockcroft_gault_is_exact(engine, age, weight, creatinine, sex):
    expected = cockcroft_gault(age, Fraction(weight), Fraction(creatinine), sex == "female") >= 60
    result = engine.check({**PATIENT, "age": age, "weight": weight, "creatinine": creatinine, "sex": sex})
    assert ("renal" not in result.blocking) == expected


def test_the_edge_of_a_formula_is_exact(engine):
    # (140 - 80) * 72 / (72 * 1) = 60 mL/min exactly: met; a hair more creatinine fails it
    assert "renal" not in engine.check({**PATIENT, "age": 80, "weight": 72, "creatinine": 1}).blocking
    assert "renal" in engine.check({**PATIENT, "age": 80, "weight": 72, "creatinine": "1.0001"}).blocking


def test_units_convert_before_the_formula(engine):
    """97.24 umol/L is 1.1 mg/dL: the same clearance."""
    mass = engine.check(PATIENT)
    substance = engine.check({**PATIENT, "creatinine": "97.24 umol/L"})
    assert mass.verdict == substance.verdict == "ineligible" and substance.blocking == ["renal"]


def test_an_explanation_shows_the_value_and_its_inputs(engine):
    from eligib.report.render import to_text

    text = to_text(engine.check(PATIENT), verbose=True)
    assert "cockcroft_gault ~54.015151 mL/min = (140 - (71 years / 1 year)) * (62 kg / 1 kg)" in text
    assert "(72 * (1.1 mg/dL / 1 mg/dL))" in text
    assert "bmi ~21.453287 kg/m2 = 62 kg / (170 cm * 170 cm) < 35 kg/m2" in text


def test_missing_inputs_leave_the_verdict_open_both_ways(engine):
    from eligib.testing import outcome_completions

    facts = {k: v for k, v in PATIENT.items() if k != "weight"}
    result = engine.check(facts)
    assert result.verdict == "undetermined" and [m.name for m in result.missing_facts] == ["weight"]
    both = outcome_completions(engine, facts)
    assert engine.check(both["eligible"]).verdict == "eligible"
    assert engine.check(both["ineligible"]).verdict == "ineligible"


def test_a_quotient_by_zero_has_no_value(engine):
    """ALT ULN 0: `alt / alt_uln` is none, so `alt / alt_uln <= 3` is false (never a crash)."""
    result = engine.check({**PATIENT, "alt_uln": 0})
    assert result.verdict == "ineligible" and "liver" in result.blocking


def test_dimension_analysis_refuses_what_does_not_match():
    for body, fragment in [("bmi < 35", "unit-mismatch"), ("cockcroft_gault >= 60 mL", "unit-mismatch"),
                           ("weight * height <= 3 kg", "unit-mismatch")]:
        with pytest.raises(DiagnosticError) as caught:
            Engine.from_text(PROTOCOL + f'inclusion x "X":\n    record: "r"\n    {body}\n', "p.elig")
        assert fragment in {d.code for d in caught.value.diagnostics}, body


def test_a_quotient_of_whole_numbers_is_exact_in_the_solver():
    """Z3 divides two integer terms by flooring: 3 / 2 must be 1.5, so with `regimens` missing the
    verdict is open (regimens 2 gives 1.5 > 1), never eligible (review of issue 10)."""
    engine = Engine.from_text("""protocol div:
    title: "Integer quotient"
    version: "1"
facts:
    responses: integer, from 0 to 10
    regimens: integer, from 2 to 10
inclusion ratio "At most one response per regimen":
    record: "r"
    responses / regimens <= 1
""", "div.elig")
    assert engine.check({"responses": 3}).verdict == "undetermined"
    assert engine.check({"responses": 3, "regimens": 2}).verdict == "ineligible"
    assert engine.check({"responses": 3, "regimens": 3}).verdict == "eligible"


def test_dividing_by_a_definition_that_is_zero_has_no_value():
    engine = Engine.from_text("""protocol zero:
    title: "Zero"
    version: "1"
facts:
    alt: decimal U/L, from 0 U/L to 1000 U/L
define nothing: 0
inclusion ratio "r":
    record: "r"
    alt / nothing <= 3 U/L
""", "zero.elig")
    assert engine.check({}).verdict == "ineligible"  # none for every alt, not "depends on alt"
