"""Patient files: every kind of bad input gets a clean, located error; good input converts exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest

from eligib.inputs.facts import load_patient
from eligib.language.diagnostics import DiagnosticError
from eligib.values.types import NONE
from eligib.values.units import to_canonical


def load(cd7, tmp_path, text: str, name: str = "p.json"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_patient(cd7.checked, str(path))


def failure(cd7, tmp_path, text: str, name: str = "p.json"):
    with pytest.raises(DiagnosticError) as caught:
        load(cd7, tmp_path, text, name)
    return caught.value.diagnostics


def test_values_in_other_units_convert_exactly(cd7, tmp_path):
    patient = load(cd7, tmp_path, '{"hemoglobin": "6.5 g/dL", "lvef": 60, "alt": {"value": 1.2, "unit": "U/L"},'
                                  ' "age": 45, "last_live_vaccine_date": "none", "screening_date": "2026-11-20"}')
    assert patient.values["hemoglobin"] == to_canonical(Fraction(65), "g/L")
    assert patient.values["lvef"] == to_canonical(Fraction(60), "%")
    assert patient.values["last_live_vaccine_date"] is NONE
    assert "alt" in patient.values


def test_yaml_patient_with_positions(cd7, tmp_path):
    patient = load(cd7, tmp_path, "age: 45\nhemoglobin: 9.5 g/dL\nscreening_date: 2026-11-20\n", "p.yaml")
    assert patient.values["hemoglobin"] == to_canonical(Fraction(95), "g/L")
    [diagnostic] = failure(cd7, tmp_path, "age: 45\nlvfe: 50\n", "p.yaml")
    assert diagnostic.code == "unknown-fact" and diagnostic.span.line == 2 and "`lvef`" in diagnostic.help


def test_unknown_fact_names_with_did_you_mean(cd7, tmp_path):
    [diagnostic] = failure(cd7, tmp_path, '{\n  "age": 45,\n  "hemoglobn": 95\n}')
    assert diagnostic.code == "unknown-fact" and diagnostic.help == "did you mean `hemoglobin`?"
    assert (diagnostic.span.line, diagnostic.span.column) == (3, 3)


@pytest.mark.parametrize("text, fragment", [
    ('{"age": "forty"}', "is not a number"),
    ('{"age": true}', "expected a number"),
    ('{"age": 45.5}', "whole number"),
    ('{"can_donate_autologous_cells": "yes"}', "expected true or false"),
    ('{"sex": "femal"}', "expected one of"),
    ('{"hemoglobin": "6.5 mmol/L"}', "cannot be converted"),
    ('{"hemoglobin": "6.5 g/dl/x"}', "unknown unit"),
    ('{"lvef": "150 %"}', "outside the declared range"),
    ('{"screening_date": "2026-02-30"}', "not a calendar date"),
    ('{"screening_date": "20/11/2026"}', "expected a date"),
    ('{"lvef": "none"}', "`none` is not allowed"),
])
def test_bad_values_name_the_fact(cd7, tmp_path, text, fragment):
    [diagnostic] = failure(cd7, tmp_path, text)
    assert diagnostic.code == "bad-patient-value"
    assert fragment in diagnostic.message
    assert diagnostic.message.startswith(f"fact `{text.split(chr(34))[1]}`")


def test_all_bad_values_reported_together(cd7, tmp_path):
    found = failure(cd7, tmp_path, '{"age": "x", "lvef": "150 %", "lvfe": 1}')
    assert sorted(d.code for d in found) == ["bad-patient-value", "bad-patient-value", "unknown-fact"]


@pytest.mark.parametrize("text, name", [('{"age": 45,}', "p.json"), ("age: [1,\n", "p.yaml"),
                                        ("[1, 2]", "p.json"), ('{"age": 1, "age": 2}', "p.json")])
def test_malformed_files(cd7, tmp_path, text, name):
    [diagnostic] = failure(cd7, tmp_path, text, name)
    assert diagnostic.code in ("bad-patient-file", "duplicate-fact-value")


def test_missing_file(cd7, tmp_path):
    with pytest.raises(DiagnosticError) as caught:
        load_patient(cd7.checked, str(tmp_path / "absent.json"))
    assert caught.value.diagnostics[0].code == "io"


def test_fact_outside_its_subgroup_is_a_warning(cd7, tmp_path):
    patient = load(cd7, tmp_path, '{"sex": "male", "pregnant": false}')
    assert [w.code for w in patient.warnings] == ["fact-not-applicable"]


def test_a_fact_outside_its_subgroup_names_the_condition(cd7, tmp_path):
    [warning] = load(cd7, tmp_path, '{"sex": "male", "pregnant": false}').warnings
    assert warning.message == "fact `pregnant` does not apply to this patient: it applies only if `sex is female`"
