"""Every JSON output of the CLI is valid against its shipped schema (eligib/schemas/), and those
schemas are the ones docs/json-schema.md shows.

The outputs come from the real commands: `check` for every example patient of every shipped
protocol (facts files and FHIR bundles) and for generated partial patients; `verify` for the
shipped protocols and for the broken protocols the docs use as examples; `diff` for amendments
that change and that keep the set of eligible patients.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import ROOT
from docs_runner import DOCUMENTS, shared_files, write_files
from hypothesis import given, settings, strategies as st

from eligib import Engine, output_schema
from eligib.api import to_json
from eligib.cli import main
from eligib.testing import partial_patients

EXAMPLES = ROOT / "protocols" / "examples"
PROTOCOL_OF_FOLDER = {"": "cd7_car_t.elig", "fhir": "cd7_car_t.elig", "nct03971799": "nct03971799_cd33_car_t.elig",
                      "nct05483491": "nct05483491_kklc1_tcr_t.elig"}
PATIENTS = sorted(EXAMPLES.rglob("*.json"))
VERIFY_DEMOS = ["verify-ok.elig", "no-eligible.elig", "contradictory.elig", "tautological.elig", "always-fires.elig",
                "never-fires.elig", "dead-path.elig", "dead-exclusion-path.elig", "redundant.elig", "refuted.elig",
                "verify-demo.elig", "edge.elig", "mini.elig"]


def validator(command: str) -> jsonschema.Draft202012Validator:
    schema = output_schema(command)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def assert_valid(command: str, output: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(output)
    errors = sorted(validator(command).iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return document


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 1, 3, 6), result.output
    return result.stdout


@pytest.fixture(scope="module")
def doc_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("doc-files")
    write_files(folder, shared_files(DOCUMENTS))
    return folder


@pytest.mark.parametrize("command", ["check", "validate", "verify", "diff"])
def test_the_shipped_schema_is_the_one_the_docs_show(command: str, doc_files: Path) -> None:
    shown = (doc_files / f"eligib.{command}.schema.json").read_text(encoding="utf-8")
    assert json.loads(shown) == output_schema(command)


@pytest.mark.parametrize("patient", PATIENTS, ids=lambda path: str(path.relative_to(EXAMPLES)))
def test_check_output_of_every_example_patient(patient: Path) -> None:
    folder = patient.parent.relative_to(EXAMPLES).as_posix()
    protocol = ROOT / "protocols" / PROTOCOL_OF_FOLDER[folder.split("/")[0] if folder != "." else ""]
    document = assert_valid("check", cli("check", "--format", "json", str(protocol), str(patient)))
    assert document["patient"] == str(patient)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_check_output_of_generated_patients(cd7: Engine, data: st.DataObject) -> None:
    patient = data.draw(partial_patients(cd7.checked))
    assert_valid("check", to_json(cd7.check(patient)))


@pytest.mark.parametrize("protocol", sorted((ROOT / "protocols").glob("*.elig")), ids=lambda path: path.name)
def test_verify_output_of_the_shipped_protocols(protocol: Path) -> None:
    document = assert_valid("verify", cli("verify", "--format", "json", str(protocol)))
    assert document["ok"] is True


@pytest.mark.parametrize("name", VERIFY_DEMOS)
def test_verify_output_of_the_docs_broken_protocols(name: str, doc_files: Path) -> None:
    result = CliRunner().invoke(main, ["verify", "--format", "json", str(doc_files / name)])
    assert result.exit_code in (0, 1), result.output
    assert_valid("verify", result.stdout)


@pytest.mark.parametrize(("old", "new"), [("18 years <= age <= 85 years", "18 years <= age <= 80 years"),
                                          ("18 years <= age <= 85 years", "age >= 18 years and not age > 85 years"),
                                          ("cd7_flow_percent >= 70 %", "cd7_flow_percent >= 60 %")])
def test_diff_output(old: str, new: str, doc_files: Path) -> None:
    mini = doc_files / "mini.elig"
    amended = doc_files / f"amended-{abs(hash((old, new)))}.elig"
    amended.write_text(mini.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    document = assert_valid("diff", cli("diff", "--format", "json", str(mini), str(amended)))
    assert document["changed"]


@pytest.mark.parametrize(("command", "broken"), [
    ("check", {"verdict": "eligible", "blocking": ["age"]}),
    ("check", {"verdict": "maybe"}),
    ("verify", {"ok": True, "errors": 1}),
    ("diff", {"equivalent": True, "witnesses": "none"}),
])
def test_the_schemas_reject_inconsistent_output(command: str, broken: dict[str, Any], doc_files: Path) -> None:
    """The schemas state invariants, not only types: a document that breaks one is rejected."""
    outputs = {"check": lambda: cli("check", "--format", "json", str(doc_files / "mini.elig"),
                                    str(doc_files / "json-ineligible.json")),
               "verify": lambda: cli("verify", "--format", "json", str(doc_files / "mini.elig")),
               "diff": lambda: cli("diff", "--format", "json", str(doc_files / "mini.elig"),
                                   str(doc_files / "mini.elig"))}
    document = assert_valid(command, outputs[command]())
    document.update(broken)
    assert list(validator(command).iter_errors(document))


def test_unknown_output_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="check, validate, verify, diff"):
        output_schema("facts")
