"""The 24 vignettes of the CD7 study, run as a case file by `eligib test`'s runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import CD7, ROOT

from eligib.cli import main
from eligib.tools.cases import load_cases, run_case, run_files

VIGNETTES = ROOT / "protocols" / "cases" / "cd7_vignettes.yaml"
CASES = load_cases(str(VIGNETTES))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vignette(cd7, case):
    result = run_case(cd7, case)
    assert result.passed, "\n".join(result.failures) or result.error


def test_every_vignette_is_encoded_with_its_expectations():
    assert [c.id for c in CASES] == [f"V{i:02d}" for i in range(1, 25)]
    assert all({"verdict", "blocking"} <= set(c.expected) for c in CASES)


def test_the_runner_fails_with_a_diff_on_a_wrong_expectation(tmp_path):
    text = VIGNETTES.read_text().replace("    verdict: ineligible\n    blocking: [alt]\n",
                                         "    verdict: eligible\n    blocking: [ast]\n", 1)
    assert text != VIGNETTES.read_text()
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(text)
    result = CliRunner().invoke(main, ["test", str(CD7), str(wrong)])
    assert result.exit_code == 1
    assert "FAIL  V05" in result.output
    assert "verdict: expected eligible, got ineligible" in result.output
    assert "blocking: expected [ast], got [alt]" in result.output
    assert "    - ast (expected, missing)" in result.output and "    + alt (not expected)" in result.output
    assert result.output.rstrip().endswith("23 passed, 1 failed")


def test_toml_case_file_and_fact_files(cd7, tmp_path):
    (tmp_path / "patients").mkdir()
    example = (ROOT / "protocols" / "examples" / "ineligible-age.json").read_text()
    (tmp_path / "patients" / "age.json").write_text(example)
    cases = tmp_path / "cases.toml"
    cases.write_text('[[cases]]\nid = "age"\nfile = "patients/age.json"\nverdict = "ineligible"\nblocking = ["age"]\n'
                     '[[cases]]\nid = "lvef"\nfacts = { lvef = "40 %" }\nverdict = "ineligible"\nmissing = []\n')
    results = run_files(cd7, [str(cases)])
    assert [r.passed for r in results] == [True, True]


def test_bad_case_files_are_clean_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - id: one\n    verdikt: eligible\n")
    result = CliRunner().invoke(main, ["test", str(CD7), str(bad)])
    assert result.exit_code == 2 and "error[bad-case]: case `one`: unknown key `verdikt`" in result.output
    assert f"{bad}:2:5" in result.output


def test_case_file_typos_are_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("bsae: {}\ncases:\n  - id: one\n")
    result = CliRunner().invoke(main, ["test", str(CD7), str(bad)])
    assert result.exit_code == 2 and "unknown top-level key `bsae`" in result.output
    bad.write_text('cases:\n  - id: one\n    file: x.json\n    set: {age: 3}\n')
    assert "cannot be combined" in CliRunner().invoke(main, ["test", str(CD7), str(bad)]).output
