"""Assessment time points: what is judged at each point, what stays pending, and how it is reported."""

from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner

from eligib import Engine
from eligib.api import output_schema
from eligib.cli import main
from eligib.language.diagnostics import DiagnosticError
from eligib.report.render import to_data, to_text

PROTOCOL = '''protocol tp:
    title: "Time points"
    version: "1"

timepoints: screening, lymphodepletion, infusion

facts:
    sex: one of (female, male)
    alt: decimal U/L
    pregnancy_test_negative: boolean, only if sex is female, assessed at lymphodepletion
    pregnancy_test_time: datetime, only if sex is female, assessed at lymphodepletion
    lymphodepletion_start: datetime, assessed at lymphodepletion
    tumor_emergency: boolean

inclusion liver "ALT at most 100 U/L":
    record: "r"
    alt <= 100 U/L

inclusion pregnancy_retest "Negative pregnancy test within 72 hours before lymphodepletion":
    record: "r"
    only if sex is female
    pregnancy_test_negative and pregnancy_test_time within 72 hours before lymphodepletion_start

exclusion emergency "Tumor emergency at screening or before infusion":
    record: "r"
    assessed at screening and infusion
    tumor_emergency
'''

FEMALE = {"sex": "female", "alt": 50, "tumor_emergency": False}
RETESTED = {**FEMALE, "pregnancy_test_negative": True, "pregnancy_test_time": "2026-12-02T09:00+01:00",
            "lymphodepletion_start": "2026-12-04T09:00+01:00"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_text(PROTOCOL, "tp.elig")


def test_criteria_take_their_own_points_or_their_facts_or_the_first(engine):
    assert dict(engine.checked.assessed) == {"liver": ("screening",), "pregnancy_retest": ("lymphodepletion",),
                                             "emergency": ("screening", "infusion")}


def test_at_screening_a_later_check_is_pending_not_undetermined(engine):
    result = engine.check(FEMALE, at="screening")
    assert result.verdict == "pending" and result.missing_facts == []
    assert [(p.id, p.at) for p in result.pending] == [("pregnancy_retest", ("lymphodepletion",)),
                                                       ("emergency", ("infusion",))]
    assert [c.id for c in result.criteria] == ["liver", "emergency"]


def test_a_pending_check_that_cannot_apply_is_not_pending(engine):
    result = engine.check({**FEMALE, "sex": "male"}, at="lymphodepletion")
    assert [p.id for p in result.pending] == ["emergency"]
    assert engine.check({**FEMALE, "sex": "male", "tumor_emergency": False}, at="infusion").verdict == "eligible"


def test_at_a_later_point_its_facts_are_needed(engine):
    waiting = engine.check(FEMALE, at="lymphodepletion")
    assert waiting.verdict == "undetermined"
    assert {m.name for m in waiting.missing_facts} == {"pregnancy_test_negative", "pregnancy_test_time",
                                                        "lymphodepletion_start"}
    assert engine.check(RETESTED, at="lymphodepletion").verdict == "pending"
    assert engine.check(RETESTED, at="infusion").verdict == "eligible"
    late = engine.check({**RETESTED, "pregnancy_test_time": "2026-11-30T09:00+01:00"}, at="lymphodepletion")
    assert late.verdict == "ineligible" and late.blocking == ["pregnancy_retest"]


def test_an_ineligible_verdict_at_screening_stays_ineligible(engine):
    result = engine.check({**FEMALE, "alt": 150}, at="screening")
    assert result.verdict == "ineligible" and result.blocking == ["liver"]


def test_without_a_time_point_every_criterion_is_judged(engine):
    assert engine.check(FEMALE).verdict == "undetermined"
    assert engine.timepoint(None) == "screening" and engine.timepoint("final") is None


def test_json_carries_the_time_point_and_the_pending_checks(engine):
    data = to_data(engine.check(FEMALE, at="screening"))
    jsonschema.validate(data, output_schema("check"))
    assert data["verdict"] == "pending" and data["at"] == "screening"
    assert data["pending"][0] == {"id": "pregnancy_retest", "kind": "inclusion",
                                  "label": "Negative pregnancy test within 72 hours before lymphodepletion",
                                  "at": ["lymphodepletion"], "fails": False}


def test_cli_defaults_to_the_first_point_and_exits_6_when_pending(tmp_path):
    protocol, patient = tmp_path / "tp.elig", tmp_path / "p.json"
    protocol.write_text(PROTOCOL)
    patient.write_text(json.dumps(FEMALE))
    runner = CliRunner()
    first = runner.invoke(main, ["check", str(protocol), str(patient)])
    assert first.exit_code == 6, first.output
    assert "verdict: ELIGIBLE, PENDING 1 check at lymphodepletion, 1 check at infusion" in first.output
    assert runner.invoke(main, ["check", str(protocol), str(patient), "--at", "lymphodepletion"]).exit_code == 3
    assert runner.invoke(main, ["check", str(protocol), str(patient), "--at", "final"]).exit_code == 3
    wrong = runner.invoke(main, ["check", str(protocol), str(patient), "--at", "lymphodeplet"])
    assert wrong.exit_code == 2 and "did you mean `lymphodepletion`?" in wrong.output


@pytest.mark.parametrize(("change", "code"), [
    (("lymphodepletion, infusion\n", "lymphodepletion, infusion, screening\n"), "duplicate-timepoints"),
    (("assessed at screening and infusion", "assessed at screening and infusoin"), "unknown-timepoint"),
    (("assessed at lymphodepletion\n    lymphodepletion_start", "assessed at leukapheresis\n    lymphodepletion_start"),
     "unknown-timepoint"),
    (("    only if sex is female\n    pregnancy_test_negative", "    only if sex is female\n    assessed at screening\n"
      "    pregnancy_test_negative"), "assessed-too-early"),
])
def test_time_point_mistakes_are_errors(change, code):
    text = PROTOCOL.replace(*change)
    assert text != PROTOCOL
    with pytest.raises(DiagnosticError) as raised:
        Engine.from_text(text, "tp.elig")
    assert [d.code for d in raised.value.diagnostics if d.severity == "error"] == [code]


def test_assessed_at_without_timepoints_is_an_error():
    text = PROTOCOL.replace("timepoints: screening, lymphodepletion, infusion\n", "")
    with pytest.raises(DiagnosticError) as raised:
        Engine.from_text(text, "tp.elig")
    assert {d.code for d in raised.value.diagnostics} == {"unknown-timepoint"}
    assert "lists no time points" in raised.value.diagnostics[0].message


def test_final_is_not_a_time_point_name():
    with pytest.raises(DiagnosticError) as raised:
        Engine.from_text(PROTOCOL.replace("lymphodepletion, infusion\n", "lymphodepletion, final\n").replace(
            "screening and infusion", "screening and final"), "tp.elig")
    assert [d.code for d in raised.value.diagnostics] == ["duplicate-timepoints"]


def test_a_history_is_assessed_as_a_whole_and_its_fields_are_not():
    history = PROTOCOL.replace("    tumor_emergency: boolean\n", "    tumor_emergency: boolean\n"
                               "    tests: list, assessed at lymphodepletion:\n        negative: boolean\n") + '''
inclusion some_test "A negative test":
    record: "r"
    any(tests where negative)
'''
    assert Engine.from_text(history, "tp.elig").checked.assessed["some_test"] == ("lymphodepletion",)
    with pytest.raises(DiagnosticError) as raised:
        Engine.from_text(history.replace("list, assessed at lymphodepletion:\n        negative: boolean",
                                         "list:\n        negative: boolean, assessed at lymphodepletion"), "tp.elig")
    assert [d.code for d in raised.value.diagnostics] == ["timed-field"]


def test_a_pending_check_that_already_fails_is_marked(engine):
    result = engine.check({**RETESTED, "pregnancy_test_negative": False}, at="screening")
    assert result.verdict == "pending"
    assert [(p.id, p.fails) for p in result.pending] == [("pregnancy_retest", True), ("emergency", False)]
    assert "(1 already fails with the values given)" in to_text(result)
