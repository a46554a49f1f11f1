"""The CLI: golden text and JSON output, exit codes, and clean errors without tracebacks.

Regenerate goldens with `pytest tests/test_cli.py --update-golden` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLES, ROOT

from eligib.cli import main

GOLDEN = Path(__file__).parent / "golden"
CD7 = "protocols/cd7_car_t.elig"
EXIT_BY_PREFIX = {"eligible": 0, "ineligible": 1, "undetermined": 3}


@pytest.fixture
def run(monkeypatch):
    monkeypatch.chdir(ROOT)

    def invoke(*args: str, stdin: str | None = None):
        return CliRunner().invoke(main, list(args), input=stdin)

    return invoke


def compare_golden(name: str, actual: str, update: bool) -> None:
    path = GOLDEN / name
    if update or not path.exists():
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"output differs from {path}"


@pytest.mark.parametrize("example", ["ineligible-alt", "undetermined-missing-several", "eligible-t-all-relapsed"])
def test_text_golden(run, update_golden, example):
    result = run("check", CD7, f"protocols/examples/{example}.json")
    compare_golden(f"{example}.txt", result.output, update_golden)
    assert result.exit_code == EXIT_BY_PREFIX[example.split("-")[0]]


@pytest.mark.parametrize("example", ["ineligible-alt", "undetermined-missing-lvef"])
def test_json_golden(run, update_golden, example):
    result = run("check", CD7, f"protocols/examples/{example}.json", "--format", "json")
    compare_golden(f"{example}.json", result.output, update_golden)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_example_gets_the_verdict_its_name_states(run, path):
    result = run("check", CD7, str(path.relative_to(ROOT)), "--format", "json")
    expected = path.stem.split("-")[0]
    data = json.loads(result.output)
    assert data["verdict"] == expected and result.exit_code == EXIT_BY_PREFIX[expected]
    assert {"verdict", "criteria", "blocking", "missing_facts"} <= set(data)
    for criterion in data["criteria"]:
        assert {"id", "kind", "status", "label"} <= set(criterion)
    assert (data["blocking"] != []) == (expected == "ineligible")
    assert (data["missing_facts"] != []) == (expected == "undetermined")


def test_eligible_patients_cover_every_disease_path(run):
    seen = set()
    for path in EXAMPLES.glob("eligible-*.json"):
        data = json.loads(run("check", CD7, str(path.relative_to(ROOT)), "--format", "json").output)
        seen |= {p for p in data["eligible_paths"] if p.startswith("disease.")}
    for route in ("t_all_lbl.relapsed", "t_all_lbl.refractory", "aml.relapsed", "aml.refractory"):
        assert any(p.startswith(f"disease.{route}") for p in seen), route


def test_patient_from_stdin_as_yaml(run):
    text = (EXAMPLES / "ineligible-age.json").read_text()
    result = run("check", CD7, "-", stdin=text)
    assert result.exit_code == 1 and "verdict: INELIGIBLE" in result.output


def test_bad_patient_input_exits_2_with_a_located_message(run, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "age": 45,\n  "hemoglobn": "6.5 g/dL"\n}\n')
    result = run("check", CD7, str(bad))
    assert result.exit_code == 2
    assert "error[unknown-fact]: unknown fact `hemoglobn`" in result.output
    assert f"{bad}:3:3" in result.output and "did you mean `hemoglobin`?" in result.output
    assert "Traceback" not in result.output


def test_bad_protocol_exits_2_with_caret_and_hint(run, tmp_path, update_golden):
    bad = tmp_path / "bad.elig"
    source = (ROOT / CD7).read_text().replace("lvef >= 45 %", "lvfe >= 45 %").replace(
        "ecog <= 2", "ecog <= 2 U/L")
    bad.write_text(source)
    result = run("validate", str(bad))
    assert result.exit_code == 2
    rendered = result.output.replace(str(bad), "bad.elig")
    compare_golden("bad-protocol.txt", rendered, update_golden)
    assert "Traceback" not in result.output


def test_missing_files_and_usage(run):
    assert run("check", "nope.elig", "nope.json").exit_code == 2
    assert run("check", CD7).exit_code == 2
    assert run("check", CD7, "protocols/examples/ineligible-age.json", "--format", "xml").exit_code == 2


def test_validate_and_facts(run):
    result = run("validate", CD7)
    assert result.exit_code == 0 and "37 criteria" in result.output
    listing = run("facts", CD7).output
    assert "lvef: decimal %, from 0 % to 100 %" in listing
    assert "pregnant: boolean, only if sex is female" in listing


def _eligib(*args: str, stdin: str = "") -> tuple[int, str, str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "eligib", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("patient", ["protocols/examples/eligible-aml-relapsed.json",
                                     "protocols/examples/ineligible-alt.json",
                                     "protocols/examples/undetermined-missing-lvef.json",
                                     "protocols/examples/no-such-patient.json", "protocols", "-"])
def test_plain_check_without_click_answers_as_the_click_command(patient):
    """`eligib check P Q` (no option) skips click; `--format text` (the default, spelled out) goes through
    click: exit code, output and errors are the same."""
    stdin = (ROOT / "protocols/examples/ineligible-age.json").read_text(encoding="utf-8") if patient == "-" else ""
    plain = _eligib("check", CD7, patient, stdin=stdin)
    through_click = _eligib("check", CD7, patient, "--format", "text", stdin=stdin)
    assert plain == through_click
    assert plain[0] in (0, 1, 2, 3) and "Traceback" not in plain[2]


def test_plain_check_does_not_import_click():
    probe = ("import sys\nfrom eligib.launcher import launch\n"
             f"sys.argv = ['eligib', 'check', '{CD7}', 'protocols/examples/ineligible-alt.json']\n"
             "try:\n    launch()\nexcept SystemExit as done:\n"
             "    print('click' in sys.modules, done.code, file=sys.stderr)\n")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stderr.split() == ["False", "1"]
