"""`eligib schema`: the JSON Schema accepts every example patient and rejects broken ones."""

from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import CD7, EXAMPLES

from eligib.cli import main
from eligib.inputs.schema import patient_schema


@pytest.fixture(scope="module")
def validator():
    from eligib import Engine

    schema = patient_schema(Engine.from_file(str(CD7)).checked)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("protocol", ["cd7_car_t", "nct03971799_cd33_car_t", "nct05483491_kklc1_tcr_t"])
def test_every_example_patient_of_every_protocol_is_valid(protocol):
    from conftest import ROOT

    from eligib import Engine

    schema = patient_schema(Engine.from_file(str(ROOT / "protocols" / f"{protocol}.elig")).checked)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    folder = EXAMPLES if protocol == "cd7_car_t" else EXAMPLES / protocol.split("_")[0]
    examples = sorted(folder.glob("*.json"))
    assert len(examples) >= 9
    for path in examples:
        errors = [e.message for e in validator.iter_errors(json.loads(path.read_text()))]
        assert errors == [], path.name


def test_vignette_patients_are_valid(validator, cd7):
    from conftest import ROOT

    from eligib.tools.cases import load_cases

    for case in load_cases(str(ROOT / "protocols" / "cases" / "cd7_vignettes.yaml")):
        facts = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in case.facts.items()}
        validator.validate(facts)


@pytest.mark.parametrize("broken", [
    {"lvfe": "50 %"},  # unknown fact
    {"age": "forty"},  # not a number
    {"age": 45.5},  # not an integer
    {"age": 130},  # outside the declared range
    {"sex": "femal"},  # not an enumeration value
    {"can_donate_autologous_cells": "yes"},  # not a boolean
    {"screening_date": "20/11/2026"},  # not an ISO date
    {"lvef": "none"},  # lvef is not `or none`
    {"hemoglobin": {"value": 6.5, "units": "g/dL"}},  # misspelt key
])
def test_broken_patients_are_rejected_by_schema_and_checker(validator, cd7, broken):
    from eligib.language.diagnostics import DiagnosticError

    assert list(validator.iter_errors(broken)), broken
    with pytest.raises(DiagnosticError):
        cd7.patient(broken)


def test_schema_cli_prints_valid_json_schema():
    result = CliRunner().invoke(main, ["schema", str(CD7)])
    schema = json.loads(result.output)
    assert result.exit_code == 0 and schema["$schema"].endswith("2020-12/schema")
    assert schema["properties"]["lvef"]["x-eligib-unit"] == "%"
    assert "only if sex is female" in schema["properties"]["pregnant"]["description"]
