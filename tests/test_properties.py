"""Properties that must hold for every patient: the solver, the fast path and the reference agree.

Run deeper locally with HYPOTHESIS_PROFILE=deep (see README).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eligib.evaluate import evaluate
from eligib.solver import decide, decide_by_solver
from eligib.testing import complete_patients, completions, partial_patients


def test_solver_agrees_with_reference_on_complete_patients(cd7):
    compiled = cd7.compiled()

    @given(complete_patients(cd7.checked))
    def check(patient):
        reference_verdict, reference_passes = evaluate(cd7.checked, patient)
        solver_verdict, solver_passes = decide_by_solver(compiled, patient)
        assert solver_verdict == reference_verdict
        assert solver_passes == reference_passes
        decision = decide(cd7.checked, patient, cd7.compiled)
        assert decision.verdict == reference_verdict
        assert {cid: r.passes for cid, r in decision.criteria.items()} == reference_passes
        # the explanation names exactly what blocks
        assert sorted(decision.blocking) == sorted(cid for cid, ok in reference_passes.items() if ok is False)

    check()


def test_verdict_under_missing_facts_holds_for_every_completion(cd7):
    @given(st.data())
    def check(data):
        partial = data.draw(partial_patients(cd7.checked, max_missing=8))
        decision = decide(cd7.checked, partial, cd7.compiled)
        for _ in range(3):
            complete = data.draw(completions(cd7.checked, partial))
            verdict, passes = evaluate(cd7.checked, complete)
            if decision.verdict != "undetermined":
                assert verdict == decision.verdict
            for cid in decision.blocking:
                assert passes[cid] is False

    check()


def test_only_missing_facts_are_reported_and_each_can_decide(cd7):
    @given(partial_patients(cd7.checked, max_missing=6))
    def check(partial):
        decision = decide(cd7.checked, partial, cd7.compiled)
        assert set(decision.missing) <= set(cd7.checked.facts) - set(partial)
        if decision.verdict != "undetermined":
            assert decision.missing == {}
        else:
            assert decision.missing, "an undetermined verdict depends on at least one missing fact"
            for fact, criteria in decision.missing.items():
                assert criteria, f"{fact} matters but decides no criterion"

    check()


def test_fast_path_and_pure_solver_agree_on_partial_patients(cd7):
    compiled = cd7.compiled()

    @given(partial_patients(cd7.checked, max_missing=5))
    def check(partial):
        decision = decide(cd7.checked, partial, cd7.compiled)
        verdict, passes = decide_by_solver(compiled, partial)
        assert decision.verdict == verdict
        assert {cid: r.passes for cid, r in decision.criteria.items()} == passes

    check()
