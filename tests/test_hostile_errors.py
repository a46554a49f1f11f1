"""Hostile input, class 4: input that once ended in an internal error (exit 4). Each is now exit 2 with the
fact or location named (issue 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hostile import CD7, ROOT, clean_error, cli, example, write

# ------------------------------------------------------------------ patient files


@pytest.mark.parametrize("name, text, fragment", [
    ("nan.json", '{"alt": NaN}', "fact `alt`: `NaN` is not a finite number"),
    ("inf.json", '{"alt": Infinity}', "fact `alt`: `Infinity` is not a finite number"),
    ("minus-inf.json", '{"alt": -Infinity}', "fact `alt`: `-Infinity` is not a finite number"),
    ("nan-text.json", '{"alt": "NaN U/L"}', "fact `alt`: `NaN U/L` is not a number"),
    ("yaml-nan.yaml", "alt: .nan\n", "fact `alt`: `.nan` is not a number"),
    ("yaml-inf.yaml", "alt: -.inf\n", "fact `alt`: `-.inf` is not a number"),
    ("long-int.json", '{"age": ' + "1" * 4400 + "}", "fact `age`: `" + "1" * 37 + "...` has more than 50 digits"),
    ("long-float.json", '{"alt": 1.' + "1" * 4400 + "}", "fact `alt`"),
    ("yaml-long-int.yaml", "age: " + "1" * 4400 + "\n", "fact `age`"),
    ("yaml-long-float.yaml", "alt: 1." + "1" * 4400 + "\n", "fact `alt`"),
    ("zero-unit.json", '{"alt": "35 U/0"}', "fact `alt`: unknown unit `U/0`"),
    ("yaml-bad-date.yaml", "screening_date: 2026-02-30\n",
     "fact `screening_date`: `2026-02-30` is not a calendar date"),
    ("yaml-year-zero.yaml", "screening_date: 0000-01-01\n",
     "fact `screening_date`: `0000-01-01` is not a calendar date"),
    ("yaml-int-tag.yaml", "age: !!int abc\n", "fact `age`: `abc` is not a whole number"),
    ("yaml-python-tag.yaml", "age: !!python/object:os.system echo\n", "malformed YAML"),
    ("yaml-bundle.yaml", "resourceType: Bundle\ntype: collection\n", "a FHIR bundle must be written in JSON"),
    ("empty.json", "", "malformed JSON"),
    ("list.yaml", "- 1\n- 2\n", "must be a mapping"),
])
def test_bad_patient_files(tmp_path, name, text, fragment):
    clean_error(cli("check", CD7, write(tmp_path / name, text)), fragment)


@pytest.mark.parametrize(("content", "where"), [
    (b'protocol p:\n    title: "caf\xe9"\n', "p.elig:2:16"),
    (b'{"sex": "f\xc3\xa9m\xe9"}', "p.elig:1:13"),  # the column counts characters, not bytes
])
def test_text_that_is_not_utf8_is_located(tmp_path, content, where):
    path = tmp_path / "p.elig"
    path.write_bytes(content)
    ran = cli("validate", str(path))
    clean_error(ran, "is not UTF-8 text")
    assert f"{tmp_path}/{where}" in ran.err and "not UTF-8" in ran.err


def test_closed_standard_input():
    command = f'exec "{sys.executable}" -m eligib.cli check "{CD7}" - <&-'  # no standard input at all
    ran = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert ran.returncode == 2 and "cannot read standard input" in ran.stderr, ran.stderr


def test_a_byte_order_mark_is_read_alike_from_a_file_and_from_stdin(tmp_path):
    content = "\ufeff" + (ROOT / "protocols" / "examples" / "ineligible-age.json").read_text(encoding="utf-8")
    from_file = cli("check", CD7, write(tmp_path / "p.json", content))
    from_stdin = cli("check", CD7, "-", stdin=content)
    assert from_file.code == from_stdin.code == 1
    protocol = write(tmp_path / "p.elig", "\ufeff" + Path(CD7).read_text(encoding="utf-8"))
    assert cli("validate", protocol).code == 0


# ------------------------------------------------------------------ FHIR bundles

BUNDLE = '{"resourceType": "Bundle", "type": "collection", "entry": [%s]}'
LOCAL = ('{"resource": {"resourceType": "Observation", "status": "final", "code": {"coding": '
         '[{"system": "urn:eligib:fact", "code": "%s"}]}, %s}}')


@pytest.mark.parametrize("entries, fragment", [
    ('{"resource": {"resourceType": "Foo", "id": "x"}}', "entry 0: `Foo` is not a FHIR R4 resource type"),
    ('{"resource": {"resourceType": "__class__"}}', "entry 0: `__class__` is not a FHIR R4 resource type"),
    (LOCAL % ("screening_date", '"valueInteger": 0'), "fact `screening_date`: expected a date"),
    (LOCAL % ("symptomatic_cns_leukemia", '"valueInteger": 0'),
     "fact `symptomatic_cns_leukemia`: expected true or false"),
    (LOCAL % ("alt", '"valueQuantity": {"value": 1e999999999, "unit": "U/L"}'),
     "entry.0.resource.valueQuantity.value: `1e999999999` is beyond the number limits"),
])
def test_bad_bundles(tmp_path, entries, fragment):
    clean_error(cli("check", CD7, write(tmp_path / "b.json", BUNDLE % entries)), fragment)


def test_a_bad_fhirpath_binding_is_a_protocol_error(tmp_path):
    text = Path(CD7).read_text(encoding="utf-8").replace(
        '    age: age at screening_date', '    age: fhirpath "((("')
    protocol = write(tmp_path / "p.elig", text)
    ran = cli("check", protocol, write(tmp_path / "b.json", BUNDLE % ""))
    clean_error(ran, "error[bad-binding]: the FHIRPath expression for `age` cannot be evaluated")
    assert "p.elig:" in ran.err


# ------------------------------------------------------------------ protocols that validated, then crashed

HEAD = '''protocol p:
    title: "t"
    version: "1"
facts:
    a: decimal g/L
    b: decimal g/L
    h: date
    s: date
'''


def protocol_with(tmp_path, body: str) -> str:
    return write(tmp_path / "p.elig", HEAD + f'inclusion x "X":\n    record: "r"\n    {body}\n')


@pytest.mark.parametrize("body, fragment", [
    ("a <= b / 0", "error[division-by-zero]: division by zero: `0` is 0"),
    ("a <= b / (2 - 2)", "error[division-by-zero]"),
    ("a <= b / (1 / 0)", "error[division-by-zero]"),
    ("a > 1 {cells}/0.0", "error[unknown-unit]"),
    ("a > " + "9" * 5000 + " g/L", "error[bad-number]: this number has more than 50 digits"),
])
def test_protocols_with_impossible_arithmetic_are_refused(tmp_path, body, fragment):
    ran = cli("validate", protocol_with(tmp_path, body))
    clean_error(ran, fragment)
    assert "p.elig:11:" in ran.err


@pytest.mark.parametrize("body", ["h within 3000 years before s", "h > 0001-01-01 - 1 days",
                                  "h within 99999999999999999999 days before s", "h < 9999-12-31 + 1 days"])
def test_protocols_with_extreme_dates_check_and_verify(tmp_path, body):
    protocol = protocol_with(tmp_path, body)
    for patient in ({}, {"h": "2026-01-01"}, {"h": "2026-01-01", "s": "2026-02-01"}):
        ran = cli("check", protocol, write(tmp_path / "q.json", patient))
        assert ran.code in (0, 1, 3), ran.text
    ran = cli("verify", protocol)
    assert ran.code in (0, 1) and "internal error" not in ran.text, ran.text


# ------------------------------------------------------------------ case files


@pytest.mark.parametrize("case, fragment", [
    ("facts: [1, 2]", "`facts` must be a mapping"),
    ("file: 5", "`file` must be text"),
    ("unset: 5", "`unset` must be a list of names"),
    ("missing: abc", "`missing` must be a list of names"),
    ("blocking: [1, 2]", "`blocking` must be a list of names"),
    ("paths: {a: 1}", "`paths` must be a list of names"),
    ("title: [x]", "`title` must be text"),
])
def test_malformed_cases(tmp_path, case, fragment):
    ran = cli("test", CD7, write(tmp_path / "c.yaml", f"cases:\n  - id: one\n    {case}\n"))
    clean_error(ran, f"case `one`: {fragment}")
    assert "c.yaml:2:" in ran.err


@pytest.mark.parametrize("name, text, fragment", [
    ("base.yaml", "base: [1]\ncases: []\n", "`base` must be a mapping"),
    ("dup.yaml", "cases: []\ncases: []\n", "key `cases` is given twice"),
    ("deep.toml", "a = " + "[" * 5000 + "]" * 5000 + "\ncases = []\n", "malformed TOML"),
    ("big.toml", "cases = []\nx = " + "1" * 5000 + "\n", "malformed TOML"),
    ("nan.toml", 'cases = [{id = "x", facts = {alt = nan}}]\n', None),
])
def test_malformed_case_files(tmp_path, name, text, fragment):
    ran = cli("test", CD7, write(tmp_path / name, text))
    if fragment is None:  # reads, and the case reports the bad value as an error of its own
        assert ran.code == 1 and "`nan` is not a finite number" in ran.out, ran.text
    else:
        clean_error(ran, fragment)


def test_an_absent_patient_named_by_a_case_is_a_case_error(tmp_path):
    ran = cli("test", CD7, write(tmp_path / "c.yaml", "cases:\n  - id: one\n    file: absent.json\n"))
    assert ran.code == 1 and "ERROR one" in ran.out and "cannot read patient file" in ran.out


def test_example_facts_are_never_an_internal_error(tmp_path):
    for changes in ({"age": None}, {"alt": "1 mmol/L"}, {"screening_date": "2026-13-01"}):
        ran = cli("check", CD7, write(tmp_path / "p.json", example("ineligible-alt", **changes)))
        assert ran.code in (0, 1, 2, 3) and "internal error" not in ran.text
