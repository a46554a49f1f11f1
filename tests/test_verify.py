"""verify, example and diff: findings with witnesses that check to what they claim."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CD7

from eligib import Engine
from eligib.analysis.diff import diff
from eligib.analysis.verify import NoSuchPatient, example, verify
from eligib.cli import main

SOURCE = CD7.read_text(encoding="utf-8")


def engine_from(text: str, tmp_path: Path, name: str = "copy.elig") -> Engine:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return Engine.from_file(str(path))


def assert_witnesses_check(engine: Engine, findings) -> int:
    count = 0
    for finding in findings:
        if finding.witness is not None:
            assert engine.check(finding.witness).verdict == finding.witness_verdict, finding.message
            count += 1
    return count


def test_cd7_verifies_clean_and_proves_its_assertions(cd7):
    findings = verify(cd7)
    assert [f for f in findings if f.severity != "ok"] == []
    proved = [f for f in findings if f.code == "assertion-proved"]
    assert len(proved) == len(cd7.checked.assertions) >= 5
    assert sum(f.code == "path-taken" for f in findings) == 34
    assert assert_witnesses_check(cd7, findings) > 80


def test_dead_path_is_reported_with_the_criteria_that_rule_it_out(tmp_path):
    broken = SOURCE.replace("                    two_or_more_relapses: aml_relapse_count >= 2\n",
                            "                    two_or_more_relapses: aml_relapse_count >= 2 and age > 85 years\n")
    assert broken != SOURCE
    engine = engine_from(broken, tmp_path)
    dead = [f for f in verify(engine) if f.code == "dead-path"]
    assert [f.message for f in dead] == ["path `disease.aml.refractory.two_or_more_relapses` is taken by no "
                                         "eligible patient"]
    assert list(dead[0].criteria) == ["disease", "age"] and dead[0].severity == "error"
    assert dead[0].subject == "disease.aml.refractory.two_or_more_relapses"
    assert dead[0].span.line == SOURCE.splitlines().index("                    two_or_more_relapses: "
                                                           "aml_relapse_count >= 2") + 1


def test_contradictory_inclusion_and_unsatisfiable_protocol(tmp_path):
    engine = engine_from(SOURCE.replace("    lvef >= 45 %\n", "    lvef >= 145 %\n"), tmp_path)
    findings = verify(engine)
    errors = [(f.code, f.subject) for f in findings if f.severity == "error"]
    assert errors == [("no-eligible-patient", "protocol"), ("contradictory-inclusion", "lvef"),
                      ("not-checked", "protocol")]
    assert not any(f.code in ("assertion-proved", "path-taken") for f in findings)  # nothing vacuous


def test_inclusion_failing_witness_fails_that_inclusion_alone(cd7):
    for finding in (f for f in verify(cd7) if f.code == "inclusion-can-fail"):
        assert cd7.check(finding.witness).blocking == [finding.subject]


def test_refuted_assertion_comes_with_an_eligible_counterexample(tmp_path):
    text = SOURCE + '\nassert only_t_all "Only T-ALL patients are eligible":\n    diagnosis is t_all\n'
    engine = engine_from(text, tmp_path)
    [refuted] = [f for f in verify(engine) if f.code == "assertion-refuted"]
    assert refuted.witness_verdict == "eligible"
    assert engine.check(refuted.witness).verdict == "eligible"
    assert refuted.witness["diagnosis"] != "t_all"


def test_redundant_criterion_and_silent_exclusion_are_warnings(tmp_path):
    text = SOURCE + ('\ninclusion ecog_again "ECOG at most 3":\n    record: "r"\n    ecog <= 3\n'
                     '\nexclusion very_old "Over 90":\n    record: "r"\n    age > 90 years\n')
    findings = verify(engine_from(text, tmp_path))
    warnings = {(f.code, f.criteria[0]) for f in findings if f.severity == "warning"}
    assert ("redundant-criterion", "ecog_again") in warnings
    assert ("exclusion-never-fires", "very_old") in warnings
    assert not any(f.severity == "error" for f in findings)


def test_verify_cli_exit_codes_strict_and_witness_files(tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(main, ["verify", str(CD7), "--witness-dir", str(tmp_path / "w")])
    assert result.exit_code == 0 and "result: ok (0 errors, 0 warnings)" in result.output
    engine = Engine.from_file(str(CD7))
    files = sorted((tmp_path / "w").glob("*.json"))
    assert len(files) > 80
    for path in files[:: max(1, len(files) // 12)]:
        expected = "eligible" if "path-taken" in path.name or "admits" in path.name else "ineligible"
        assert engine.check(str(path)).verdict == expected
    assert any(p.name.endswith("-path-taken-disease.aml.refractory.two_or_more_relapses.json") for p in files)
    warn = tmp_path / "warn.elig"
    warn.write_text(SOURCE + '\ninclusion ecog_again "ECOG at most 3":\n    record: "r"\n    ecog <= 3\n')
    unused = tmp_path / "unused.elig"
    unused.write_text(SOURCE.replace("facts:\n", "facts:\n    spare: boolean\n", 1))
    assert runner.invoke(main, ["verify", str(unused), "--strict"]).exit_code == 1  # the protocol's own warning
    assert runner.invoke(main, ["verify", str(warn)]).exit_code == 0
    assert runner.invoke(main, ["verify", str(warn), "--strict"]).exit_code == 1
    data = json.loads(runner.invoke(main, ["verify", str(warn), "--format", "json"]).output)
    assert data["schema"] == "eligib.verify/1" and data["warnings"] == 1 and data["ok"] is True


@pytest.mark.parametrize("path", ["disease.t_all_lbl.relapsed.after_transplant", "disease.aml.refractory",
                                  "cell_source.allo_hsct_autologous_collection"])
def test_example_through_a_path(cd7, path):
    facts = example(cd7, path=path)
    result = cd7.check(facts)
    assert result.verdict == "eligible" and result.path_status(path) == "holds"


def test_example_failing_exactly_the_named_criteria(cd7):
    facts = example(cd7, failing=("lvef", "pregnancy"))
    assert sorted(cd7.check(facts).blocking) == ["lvef", "pregnancy"]
    with pytest.raises(NoSuchPatient):
        example(cd7, path="disease.aml.relapsed", failing=("disease",))


def test_example_cli_output_checks_through_stdin():
    runner = CliRunner()
    printed = runner.invoke(main, ["example", str(CD7), "--path", "disease.aml.relapsed.bone_marrow"])
    assert printed.exit_code == 0
    checked = runner.invoke(main, ["check", str(CD7), "-", "--format", "json"], input=printed.output)
    data = json.loads(checked.output)
    assert data["verdict"] == "eligible" and "disease.aml.relapsed.bone_marrow" in data["eligible_paths"]
    unknown = runner.invoke(main, ["example", str(CD7), "--path", "disease.aml.relapsd"])
    assert unknown.exit_code == 2 and "did you mean `disease.aml.relapsed`?" in unknown.output


AMENDMENTS = {
    "lvef-50": (("    lvef >= 45 %\n", "    lvef >= 50 %\n"), ["lvef"]),
    "age-75": (("    18 years <= age <= 85 years\n\ninclusion disease",
                "    18 years <= age <= 75 years\n\ninclusion disease"), ["age"]),
    "aml-path-removed": (("                    early_relapse: all of\n                        "
                          "aml_consolidation_received\n                        aml_remission_duration <= 12 months\n",
                          ""), ["disease"]),
}


@pytest.mark.parametrize("name", list(AMENDMENTS))
def test_diff_finds_each_amendment_with_checkable_witnesses(cd7, tmp_path, name):
    (old_text, new_text), criteria = AMENDMENTS[name]
    assert old_text in SOURCE
    amended = engine_from(SOURCE.replace(old_text, new_text), tmp_path)
    difference = diff(cd7, amended)
    assert not difference.equivalent and difference.changed == criteria
    [witness] = difference.witnesses  # each amendment only narrows the protocol
    assert (witness.old_verdict, witness.new_verdict) == ("eligible", "ineligible")
    assert witness.criteria == criteria
    assert cd7.check(witness.patient).verdict == "eligible"
    assert amended.check(witness.patient).verdict == "ineligible"
    reverse = diff(amended, cd7)
    assert [(w.old_verdict, w.new_verdict) for w in reverse.witnesses] == [("ineligible", "eligible")]


def test_reordering_changes_nothing(cd7, tmp_path):
    start, end = SOURCE.index("\ninclusion "), SOURCE.index("\nassert ")
    blocks = re.split(r"\n(?=inclusion |exclusion )", SOURCE[start:end])
    shuffled = SOURCE[:start] + "\n" + "\n".join(b.strip("\n") + "\n" for b in reversed(blocks)) + SOURCE[end:]
    assert shuffled != SOURCE and len(shuffled.splitlines()) > 400
    difference = diff(cd7, engine_from(shuffled, tmp_path))
    assert difference.equivalent and difference.changed == difference.added == difference.removed == []


def test_diff_cli_json(tmp_path):
    amended = tmp_path / "amended.elig"
    amended.write_text(SOURCE.replace("    lvef >= 45 %\n", "    lvef >= 50 %\n"))
    result = CliRunner().invoke(main, ["diff", str(CD7), str(amended), "--format", "json"])
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["equivalent"] is False
    assert {"patient", "old_verdict", "new_verdict", "criteria"} <= set(data["witnesses"][0])
    same = CliRunner().invoke(main, ["diff", str(CD7), str(CD7)])
    assert same.exit_code == 0 and "equivalent" in same.output


def test_calendar_age_against_julian_years_is_settled_exactly(tmp_path):
    # 18 calendar years span 6573 to 6575 days; 18 Julian years are 6574.5 days: one implies the other
    text = ('protocol t:\n    title: "t"\n    version: "1"\nfacts:\n    birth_date: date\n    screening_date: date\n'
            'inclusion calendar "c":\n    record: "r"\n    birth_date + 18 years <= screening_date\n'
            'inclusion elapsed "e":\n    record: "r"\n    screening_date - birth_date >= 18 years\n')
    findings = verify(engine_from(text, tmp_path))
    assert [(f.code, f.subject) for f in findings if f.severity != "ok"] == [("redundant-criterion", "calendar")]


def test_a_fact_s_second_copy_gets_a_short_decimal_too():
    """Relevance witnesses read a fact's second copy; a copy left at 119/60 mg/dL could not be
    written in a patient file (found by the deep run of test_generated)."""
    import z3

    from eligib.analysis.witness import exact_model
    from eligib.logic.models import canonical_values

    engine = Engine.from_text('protocol p:\n    title: "T"\n    version: "1"\n\nfacts:\n'
                              '    n: decimal mg/dL, from 0 mg/dL to 10 mg/dL\n\n'
                              'inclusion c "C":\n    record: "r"\n    n >= 1 mg/dL\n')
    compiled = engine.compiled()
    copy = compiled.facts["n"].copy_value
    model = exact_model(compiled.solver, [compiled], [copy > z3.RealVal("59/30", compiled.ctx), copy < 2])
    value = model.eval(copy).as_fraction()
    assert (value * 100).denominator == 1 and Fraction(59, 30) < value < 2
    assert canonical_values(compiled, model, frozenset({"n"}))["n"] == value * 10  # mg/dL in g/L


PARTS_PROTOCOL = """protocol parts:
    title: "Independent parts"
    version: "1"

facts:
    a: decimal mg/dL, from 0 mg/dL to 100 mg/dL
    b: boolean
    c: integer, from 0 to 10
    d: decimal %, from 0 % to 100 %
    e: boolean
    f: date
    g: boolean

inclusion a_low "A low":
    record: "r"
    any of
        small: a < 20 mg/dL and b
        smaller: a < 10 mg/dL and b
        none_at_all: a > 200 mg/dL

inclusion a_implied "A below 50":
    record: "r"
    a < 50 mg/dL or not b

inclusion c_some "C at least 2":
    record: "r"
    c >= 2

exclusion c_many "C above 12":
    record: "r"
    c > 12

exclusion d_high "D high":
    record: "r"
    any of
        high: d > 80 % and e
        odd: d > 90 % and not e

inclusion f_recent "F in 2025":
    record: "r"
    f >= 2025-01-01 and f + 3 months <= 2025-12-31

inclusion g_set "G":
    record: "r"
    g

exclusion todo "Not written yet: a question that touches no fact":
    record: "r"
    any of
        never: false
        literal: 1 > 2

assume e_needs_d "E only with some D":
    e implies d >= 10 %

assume g_needs_c "G only with C of 3 or more":
    g implies c >= 3

assert a_and_c "A small patients have C below 5":
    a < 20 mg/dL implies c < 5

assert literal "Two is more than one":
    2 > 1
"""


def _finding_key(finding):
    """What a finding says; its core as a set (the solver's unsat core may list it in another order)."""
    own, core = (finding.criteria[0], frozenset(finding.criteria)) if finding.criteria else (None, frozenset())
    return finding.code, finding.subject, own, core, finding.witness_verdict, finding.severity


@pytest.mark.parametrize("source", ["parts", "cd7_car_t.elig", "nct03971799_cd33_car_t.elig",
                                    "nct05483491_kklc1_tcr_t.elig"])
def test_verify_split_into_parts_finds_what_the_whole_protocol_finds(source, tmp_path):
    """Each question asked of its own parts (with one eligible patient for the rest) gives the findings,
    cores and witness verdicts that asking it of the whole protocol gives; every witness checks."""
    engine = engine_from(PARTS_PROTOCOL, tmp_path) if source == "parts" else \
        Engine.from_file(str(CD7.parent / source))
    split, whole = verify(engine), verify(engine, split=False)
    assert [_finding_key(f) for f in split] == [_finding_key(f) for f in whole]
    assert assert_witnesses_check(engine, split) == assert_witnesses_check(engine, whole) > 0
    if source == "parts":
        codes = {f.code for f in split}
        assert {"dead-path", "redundant-criterion", "exclusion-never-fires", "assertion-refuted"} <= codes


def test_parts_of_a_protocol_follow_shared_facts_and_assumptions(tmp_path):
    from eligib.analysis.parts import Parts

    engine = engine_from(PARTS_PROTOCOL, tmp_path)
    compiled = engine.compiled()
    parts = Parts(compiled, {cid: compiled.passes[cid] for cid in compiled.passes})
    by_criterion = {cid: parts.scope([compiled.passes[cid]]) for cid in compiled.passes}
    assert by_criterion["a_low"] == by_criterion["a_implied"]  # both read a and b
    assert by_criterion["c_some"] == by_criterion["c_many"] == by_criterion["g_set"]  # g, c: by the assumption
    assert len({by_criterion[c] for c in ("a_low", "c_some", "d_high", "f_recent")}) == 4
    assert parts.facts_in(by_criterion["c_some"]) == {"c", "g"}
    assert parts.facts_in(by_criterion["f_recent"]) == {"f"}
    assert parts.criteria_in(by_criterion["a_low"], list(compiled.passes)) == ["a_low", "a_implied"]
