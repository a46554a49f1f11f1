"""Verdict semantics: decided over every completion of the missing facts, exactly."""

from __future__ import annotations

import pytest

from eligib import Engine

PROTOCOL = '''protocol demo:
    title: "Demo"
    version: "1"
facts:
    age: integer years, from 0 years to 130 years
    creatinine: decimal umol/L, from 0 umol/L to 5000 umol/L
    creatinine_uln: decimal umol/L, from 1 umol/L to 500 umol/L
    clearance: decimal mL/min, from 0 mL/min to 300 mL/min
    score: integer, from 0 to 5
    lvef: decimal %, from 0 % to 100 %
    sex: one of (female, male)
    pregnant: boolean, only if sex is female
    screening: date
    vaccine: date, or none
inclusion age "Age":
    record: "r"
    18 years <= age <= 85 years
inclusion renal "Renal":
    record: "r"
    any of
        creatinine: creatinine <= 1.5 * creatinine_uln
        clearance: clearance >= 60 mL/min
inclusion low_score "Low score":
    record: "r"
    score <= 2
inclusion high_score "High score":
    record: "r"
    score >= 2
inclusion lvef "LVEF":
    record: "r"
    lvef >= 0 %
exclusion pregnancy "Pregnancy":
    record: "r"
    sex is female and pregnant
exclusion vaccine "Vaccine":
    record: "r"
    vaccine within 6 months before screening
'''

BASE = {"age": 45, "creatinine": 80, "creatinine_uln": 106, "clearance": 95, "score": 2, "lvef": "50 %",
        "sex": "male", "screening": "2026-11-20", "vaccine": "none"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_text(PROTOCOL, "demo.elig")


def check(engine, **changes):
    facts = {**BASE, **changes}
    return engine.check({k: v for k, v in facts.items() if v is not None})


def test_complete_patient(engine):
    result = check(engine)
    assert result.verdict == "eligible" and result.blocking == [] and result.missing_facts == []


def test_a_missing_fact_that_cannot_change_the_result_is_not_asked_for(engine):
    result = check(engine, clearance=None)  # creatinine is within 1.5 x ULN
    assert result.verdict == "eligible" and result.missing_facts == []


def test_a_known_failure_decides_whatever_is_missing(engine):
    result = check(engine, age=90, lvef=None, clearance=None)
    assert result.verdict == "ineligible" and result.blocking == ["age"] and result.missing_facts == []


def test_missing_fact_that_matters_names_the_criteria_it_decides(engine):
    result = check(engine, creatinine=180, clearance=None)
    assert result.verdict == "undetermined"
    assert [(m.name, m.criteria) for m in result.missing_facts] == [("clearance", ["renal"])]


def test_declared_range_makes_a_missing_fact_irrelevant(engine):
    # lvef >= 0 % holds for every lvef in the declared range 0..100 %
    result = check(engine, lvef=None)
    assert result.verdict == "eligible"
    assert next(c for c in result.criteria if c.id == "lvef").decided_by == "solver"


def test_one_missing_fact_shared_by_two_criteria(engine):
    # score <= 2 and score >= 2 each can hold, and jointly force score == 2: still undetermined
    result = check(engine, score=None)
    assert result.verdict == "undetermined"
    assert [(m.name, sorted(m.criteria)) for m in result.missing_facts] == [("score", ["high_score", "low_score"])]


def test_subgroup_fact_is_asked_only_when_the_subgroup_is_possible(engine):
    assert check(engine, sex="male").missing_facts == []
    female = check(engine, sex="female")
    assert female.verdict == "undetermined" and [m.name for m in female.missing_facts] == ["pregnant"]
    unknown_sex = check(engine, sex=None)
    assert sorted(m.name for m in unknown_sex.missing_facts) == ["pregnant", "sex"]


def test_none_is_not_unknown(engine):
    assert check(engine, vaccine="none").verdict == "eligible"
    assert check(engine, vaccine=None).verdict == "undetermined"
    assert check(engine, vaccine="2026-05-20").verdict == "ineligible"  # the window is inclusive
    assert check(engine, vaccine="2026-05-19").verdict == "eligible"


def test_unknown_anchor_with_month_window(engine):
    # a vaccine in 2019 is outside any 6-month window before a screening date that must follow it
    # only with the screening date known; unknown, the solver keeps both outcomes open
    result = check(engine, screening=None, vaccine="2026-06-01")
    assert result.verdict == "undetermined" and [m.name for m in result.missing_facts] == ["screening"]


def test_statuses_and_blocking_words(engine):
    result = check(engine, sex="female", pregnant=True, age=17)
    statuses = {c.id: c.status for c in result.criteria}
    assert statuses["age"] == "not_met" and statuses["pregnancy"] == "met"
    assert sorted(result.blocking) == ["age", "pregnancy"]


OPTIONAL_BOOLEAN = '''protocol t:
    title: "t"
    version: "1"
facts:
    flag: boolean, or none
    other: boolean
inclusion c "c":
    record: "r"
    flag or not flag
inclusion d "d":
    record: "r"
    not flag or other
'''


@pytest.mark.parametrize("flag, other, verdict", [
    ("none", False, "eligible"), ("none", True, "eligible"), (True, False, "ineligible"), (None, True, "eligible"),
    (None, False, "undetermined"),
])
def test_a_none_condition_is_false_so_not_of_it_is_true(flag, other, verdict):
    engine = Engine.from_text(OPTIONAL_BOOLEAN, "t.elig")
    facts = {"other": other} if flag is None else {"flag": flag, "other": other}
    assert engine.check(facts).verdict == verdict


ASSUMING = '''protocol t:
    title: "t"
    version: "1"
facts:
    screening: date, from 2026-01-01 to 2026-12-31
    transplant: date, or none
    score: integer, from 0 to 10
assume transplant_first "A transplant precedes screening":
    transplant is none or transplant <= screening
inclusion recent "No transplant in the 30 days before screening":
    record: "r"
    not (transplant within 30 days before screening)
inclusion score "Score":
    record: "r"
    score >= 3
'''


def test_facts_that_contradict_an_assumption_are_refused():
    from eligib.language.diagnostics import DiagnosticError

    engine = Engine.from_text(ASSUMING, "t.elig")
    with pytest.raises(DiagnosticError) as caught:
        engine.check({"screening": "2026-06-01", "transplant": "2026-07-01", "score": 5})
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "assumption-violated" and "transplant_first" in diagnostic.message
    assert "screening = 2026-06-01" in diagnostic.help and "transplant = 2026-07-01" in diagnostic.help
    # impossible for every value of the missing screening date (its range ends in 2026)
    with pytest.raises(DiagnosticError):
        engine.check({"transplant": "2027-03-01", "score": 5})


def test_assumptions_shape_verdicts_over_missing_facts():
    engine = Engine.from_text(ASSUMING, "t.elig")
    # screening unknown but after a 2026-12-20 transplant: it can only be 12-20..12-31, always within 30 days
    result = engine.check({"transplant": "2026-12-20", "score": 5})
    assert result.verdict == "ineligible" and result.blocking == ["recent"]
    assert engine.check({"transplant": "2025-01-01", "score": 5}).verdict == "eligible"


def test_a_long_lived_engine_renews_its_solver_and_bounds_its_term_cache(monkeypatch):
    """Issue 11: a shared solver ages with every check, and the known-value literals were cached
    without bound. The solver is replaced every SOLVER_PATIENTS patients and the cache keeps at most
    EQUALITIES_KEPT entries; verdicts stay those of a fresh engine."""
    from eligib.logic import compiler

    monkeypatch.setattr(compiler, "SOLVER_PATIENTS", 3)
    monkeypatch.setattr(compiler, "EQUALITIES_KEPT", 5)
    engine, fresh = Engine.from_text(PROTOCOL), Engine.from_text(PROTOCOL)
    solvers = []  # the objects themselves: an id may be reused once one is freed
    for lvef in range(12):  # lvef missing: every check needs the solver
        patient = {"age": 30 + lvef, "creatinine": 90 + lvef, "creatinine_uln": 100, "clearance": 50, "score": 2,
                   "sex": "male", "screening": "2026-01-01", "vaccine": "none"}
        result = engine.check(patient)
        assert (result.verdict, result.blocking) == (fresh.check(patient).verdict, fresh.check(patient).blocking)
        compiled = engine.compiled()
        if not any(compiled.solver is seen for seen in solvers):
            solvers.append(compiled.solver)
        assert len(compiled._equalities) <= 5
    assert len(solvers) >= 3


def test_a_fact_shown_irrelevant_only_over_its_real_domain():
    """Review of issue 11: a whole-unit range whose bound is not a whole unit (from 6 months) was
    enumerated from the bound (0.5, 1.5, ... years), so no real age was tried and `consent` was wrongly
    proven unable to matter. Here it decides the verdict at age 18."""
    engine = Engine.from_text('''protocol t1:
    title: "T"
    version: "1"
facts:
    age: integer years, from 6 months to 30 years
    consent: boolean
inclusion c "C":
    record: "r"
    2 * age != 36 years or consent
''')
    result = engine.check({})
    assert result.verdict == "undetermined"
    assert [(m.name, m.criteria) for m in result.missing_facts] == [("age", ["c"]), ("consent", ["c"])]
    assert engine.check({"age": 18, "consent": False}).verdict == "ineligible"


SCALED = '''protocol scaled:
    title: "Scaled comparisons"
    version: "1"
facts:
    a: decimal mg/dL, from 0 mg/dL to 100 mg/dL, or none
    b: decimal mg/dL, from 0 mg/dL to 100 mg/dL, or none
inclusion at_most "At most 3 b":
    record: "r"
    a <= 3 * b
inclusion above "Above b x 1.5":
    record: "r"
    a > b * 1.5
inclusion other "Not twice b":
    record: "r"
    a != 2.5 * b
'''


@pytest.mark.parametrize("a", [None, "none", "0 mg/dL", "4.5 mg/dL", "7.5 mg/dL", "10.25 mg/dL"])
@pytest.mark.parametrize("b", [None, "none", "0 mg/dL", "1.5 mg/dL", "3 mg/dL", "4.1 mg/dL"])
def test_a_comparison_with_a_scaled_value_gives_what_the_reference_evaluator_gives(a, b):
    """`a <= 3 * b` is cross-multiplied without making the product (closures.compare_scaled): for known,
    none and unknown values it agrees with the reference evaluator, criterion by criterion."""
    from eligib.logic.evaluate import evaluate
    from eligib.logic.kleene import KleeneProgram

    engine = Engine.from_text(SCALED, "scaled.elig")
    facts = engine.patient({name: value for name, value in (("a", a), ("b", b)) if value is not None}).values
    _, reference = evaluate(engine.checked, facts)
    compiled = {cid: passes for cid, (_, passes) in KleeneProgram.of(engine.checked).outcomes(facts).items()}
    assert compiled == reference
