"""`eligib validate` and `eligib verify` with `--format json` and `--format sarif`: machine-readable
diagnostics for CI. The SARIF output validates against the SARIF 2.1.0 JSON schema (tests/fixtures/sarif)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import CD7, ROOT

from eligib.cli import main

SARIF_SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "sarif" / "sarif-2.1.0.json").read_text())
BROKEN = """protocol broken:
    title: "Broken"
    version: "1"

facts:
    lvef: decimal %, from 0 % to 100 %, "LVEF"
    unused: boolean, "Never read"

inclusion lvef "LVEF at least 45 %":
    record: "x"
    lvfe >= 45 %
"""
WARNED = BROKEN.replace("lvfe >= 45 %", "lvef >= 45 %")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout


def sarif_of(*args: str) -> tuple[int, dict[str, Any]]:
    code, output = run(*args)
    log: dict[str, Any] = json.loads(output)
    jsonschema.Draft202012Validator(SARIF_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)
    return code, log


def test_an_error_and_a_warning_as_sarif(tmp_path: Path) -> None:
    protocol = tmp_path / "broken.elig"
    protocol.write_text(BROKEN)
    code, log = sarif_of("validate", "--format", "sarif", str(protocol))
    assert code == 2
    run_ = log["runs"][0]
    assert run_["tool"]["driver"]["name"] == "eligib"
    assert {"unused-fact", "unknown-fact"} <= {r["id"] for r in run_["tool"]["driver"]["rules"]}
    found = {r["ruleId"]: r for r in run_["results"]}
    unknown = found["unknown-fact"]
    assert unknown["level"] == "error" and "did you mean `lvef`" in unknown["message"]["text"]
    region = unknown["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"], region["endColumn"]) == (11, 5, 9)
    assert unknown["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == str(protocol)
    assert found["unused-fact"]["level"] == "warning"


def test_strict_makes_warnings_errors(tmp_path: Path) -> None:
    protocol = tmp_path / "warned.elig"
    protocol.write_text(WARNED)
    assert sarif_of("validate", "--format", "sarif", str(protocol))[0] == 0
    code, log = sarif_of("validate", "--format", "sarif", "--strict", str(protocol))
    assert code == 2 and log["runs"][0]["results"] and {r["level"] for r in log["runs"][0]["results"]} == {"error"}
    code, text = run("validate", "--strict", str(protocol))
    assert code == 2 and "warnings count as errors (--strict)" in text


def test_validate_json_is_located_and_matches_its_schema(tmp_path: Path) -> None:
    protocol = tmp_path / "broken.elig"
    protocol.write_text(BROKEN)
    code, output = run("validate", "--format", "json", str(protocol))
    data = json.loads(output)
    from eligib.api import output_schema

    jsonschema.Draft202012Validator(output_schema("validate")).validate(data)
    assert code == 2 and data["ok"] is False and data["errors"] == 1 and data["warnings"] >= 1
    unknown = next(d for d in data["diagnostics"] if d["code"] == "unknown-fact")
    assert unknown["span"] == {"file": str(protocol), "line": 11, "column": 5, "end_line": 11, "end_column": 9}
    assert unknown["help"] == "did you mean `lvef`?"


@pytest.mark.parametrize("protocol", sorted((ROOT / "protocols").glob("*.elig")), ids=lambda p: p.name)
def test_the_shipped_protocols_are_clean_even_strictly(protocol: Path) -> None:
    code, log = sarif_of("validate", "--format", "sarif", "--strict", str(protocol))
    assert code == 0 and log["runs"][0]["results"] == []


def test_verify_findings_as_sarif(tmp_path: Path) -> None:
    dead = tmp_path / "dead.elig"
    dead.write_text(WARNED.replace('    unused: boolean, "Never read"\n', "") + (
        '\nexclusion never "Never fires":\n    record: "x"\n    lvef > 100 %\n'))
    code, log = sarif_of("verify", "--format", "sarif", str(dead))
    results = log["runs"][0]["results"]
    assert {r["kind"] for r in results} >= {"pass", "fail"}
    failing = [r for r in results if r["kind"] == "fail"]
    assert failing and all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in failing)
    assert code == (1 if any(r["level"] == "error" for r in failing) else 0)
    assert sarif_of("verify", "--format", "sarif", str(CD7))[0] == 0
