"""The 24 vignettes of the CD7 study: verdict, blocking criteria, missing facts and paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eligib.facts import patient_from_mapping

CASES_FILE = Path(__file__).parent / "cases" / "cd7_vignettes.yaml"
CASES = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


def facts_of(case: dict) -> dict:
    facts = dict(CASES["base"])
    facts.update(case.get("set") or {})
    for name in case.get("unset") or []:
        facts.pop(name, None)
    return facts


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_vignette(cd7, case):
    patient = patient_from_mapping(cd7.checked, facts_of(case), case["id"])
    explanation = cd7.check(patient)
    assert explanation.verdict == case["verdict"], case["title"]
    assert sorted(explanation.blocking) == sorted(case.get("blocking") or [])
    assert sorted(m.name for m in explanation.missing_facts) == sorted(case.get("missing") or [])
    for path in case.get("paths") or []:
        assert explanation.path_status(path) == "holds", f"{path} should hold"


def test_every_vignette_is_encoded():
    assert [c["id"] for c in CASES["cases"]] == [f"V{i:02d}" for i in range(1, 25)]
