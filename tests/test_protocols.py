"""Every shipped protocol: checks clean, verifies clean, passes its case file, and each example
patient gets the verdict its file name states (the language serves more than one study)."""

from __future__ import annotations

import pytest
from conftest import ROOT

from eligib import Engine
from eligib.analysis.verify import verify
from eligib.tools.cases import run_files

PROTOCOLS = {  # protocol file stem: (case files, example directory)
    "cd7_car_t": (("cd7_vignettes.yaml", "cd7_cockcroft_gault.yaml"), ROOT / "protocols" / "examples"),
    "nct03971799_cd33_car_t": (("nct03971799.yaml",), ROOT / "protocols" / "examples" / "nct03971799"),
    "nct05483491_kklc1_tcr_t": (("nct05483491.yaml",), ROOT / "protocols" / "examples" / "nct05483491"),
}


@pytest.fixture(scope="module", params=sorted(PROTOCOLS))
def protocol(request):
    return request.param, Engine.from_file(str(ROOT / "protocols" / f"{request.param}.elig"))


def test_every_protocol_and_case_file_in_the_folder_is_covered():
    assert {p.stem for p in (ROOT / "protocols").glob("*.elig")} == set(PROTOCOLS)
    assert {p.name for p in (ROOT / "protocols" / "cases").glob("*.yaml")} == \
        {name for files, _ in PROTOCOLS.values() for name in files}


def test_protocol_checks_without_warnings_and_verifies(protocol):
    _, engine = protocol
    assert engine.checked.warnings == ()
    findings = verify(engine)
    assert [f.message for f in findings if f.severity != "ok"] == []
    assert sum(f.code == "assertion-proved" for f in findings) >= 4


def test_protocol_passes_its_case_file(protocol):
    name, engine = protocol
    results = run_files(engine, [str(ROOT / "protocols" / "cases" / case_file) for case_file in PROTOCOLS[name][0]])
    assert len(results) >= 12
    assert [(r.case.id, r.failures, r.error) for r in results if not r.passed] == []


def test_examples_get_the_verdict_their_names_state(protocol):
    name, engine = protocol
    examples = sorted(PROTOCOLS[name][1].glob("*.json"))
    assert len(examples) >= 9
    for path in examples:
        assert engine.check(str(path)).verdict == path.stem.split("-")[0], path.name
