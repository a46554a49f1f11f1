"""Differential tests: the solver, the three-valued evaluator and an independent oracle (tests/oracle.py)
agree, on the CD7 protocol and on generated protocols, for ordinary and boundary patients.

- complete patients: the oracle's verdict and per-criterion outcome equal the evaluator's and the
  solver's;
- partial patients: no candidate completion the oracle tries contradicts a definite verdict, and an
  undetermined verdict comes with two completions (found by the solver) that the oracle judges
  eligible and ineligible;
- boundary patients put values exactly on the protocol's thresholds and dates on the days around
  each month or week window, where a wrong calendar or a strict/loose comparison shows.

The deep run (thousands of patients per property; last figures in docs/testing.md):
    HYPOTHESIS_PROFILE=deep python -m pytest tests/test_differential.py
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, assume, given, settings, strategies as st
from oracle import Oracle, candidates, verdicts_over
from test_generated import engine_for, protocols

from eligib.language.checked import CheckedProtocol
from eligib.logic.evaluate import evaluate
from eligib.logic.solver import decide, decide_by_solver
from eligib.testing import complete_patients, outcome_completions, partial_patients, satisfies_assumptions, values
from eligib.values.calendar import shift_months
from eligib.values.types import DateType, NumType

EXAMPLES = settings.default.max_examples  # 60 in CI, 2,000 in the deep profile
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=HEALTH)
CD7_SETTINGS = settings(max_examples=max(10, EXAMPLES // 6), deadline=None, suppress_health_check=HEALTH)


@st.composite
def boundary_patients(draw, checked: CheckedProtocol) -> dict[str, Any]:
    """A complete patient whose numbers sit on the protocol's thresholds and whose dates sit on the
    edges of its windows, counted from another date of the same patient."""
    patient = values(checked, draw(complete_patients(checked)))
    anchor_names = [name for name, info in checked.facts.items() if isinstance(info.type, DateType)
                    and not checked.facts[name].optional]
    for name, info in checked.facts.items():
        if not draw(st.booleans()):
            continue
        if isinstance(info.type, DateType) and anchor_names:
            anchor = patient[draw(st.sampled_from(anchor_names))]
            options = candidates(checked, name, [anchor] if anchor is not None else [])
        elif isinstance(info.type, NumType):
            options = candidates(checked, name, [])
        else:
            continue
        if options:
            patient[name] = draw(st.sampled_from(options))
    assume(satisfies_assumptions(checked, patient))
    return patient


def checked_file(engine, canonical: dict[str, Any]) -> dict[str, Any]:
    """Canonical values back as a patient file (what the public helpers take)."""
    from eligib.inputs.facts import facts_file

    return facts_file(engine.checked, canonical)


def agree_on_complete(engine, patient: dict[str, Any]) -> None:
    checked = engine.checked
    oracle = Oracle(checked).outcome(patient)
    assert oracle is not None, "generated patients satisfy the assumptions"
    assert evaluate(checked, patient) == oracle
    assert decide_by_solver(engine.compiled(), patient) == oracle
    decision = decide(checked, patient, engine.compiled)
    assert (decision.verdict, {c: r.passes for c, r in decision.criteria.items()}) == oracle


def agree_on_partial(engine, partial: dict[str, Any]) -> None:
    checked = engine.checked
    decision = decide(checked, partial, engine.compiled)
    verdicts = verdicts_over(checked, partial)
    if verdicts is not None and decision.verdict != "undetermined":
        assert verdicts <= {decision.verdict}, f"a completion contradicts `{decision.verdict}`"
    if verdicts is not None and len(verdicts) == 2:
        assert decision.verdict == "undetermined"
    both = outcome_completions(engine, checked_file(engine, partial))
    oracle = Oracle(checked)
    for verdict, completion in both.items():
        if completion is None:
            assert decision.verdict in ("eligible", "ineligible") and decision.verdict != verdict
        else:
            judged = oracle.outcome(values(checked, completion))
            assert judged is not None and judged[0] == verdict, f"the solver's {verdict} completion is not {verdict}"
    if decision.verdict == "undetermined":
        assert both["eligible"] is not None and both["ineligible"] is not None


# ------------------------------------------------------------------ CD7


@CD7_SETTINGS
@given(st.data())
def test_cd7_complete_patients(cd7, data):
    agree_on_complete(cd7, values(cd7.checked, data.draw(complete_patients(cd7.checked))))


@CD7_SETTINGS
@given(st.data())
def test_cd7_boundary_patients(cd7, data):
    agree_on_complete(cd7, data.draw(boundary_patients(cd7.checked)))


@CD7_SETTINGS
@given(st.data())
def test_cd7_partial_patients(cd7, data):
    agree_on_partial(cd7, values(cd7.checked, data.draw(partial_patients(cd7.checked, max_missing=2))))


@CD7_SETTINGS
@given(st.data(), st.sampled_from([-6, -3, -1, 1]), st.integers(-3, 3))
def test_cd7_month_windows_with_an_unknown_anchor(cd7, data, months, days):
    """An event dated just around `N months` from a screening date, with the screening date unknown."""
    patient = values(cd7.checked, data.draw(complete_patients(cd7.checked)))
    screening = patient["screening_date"]
    for name in ("last_live_vaccine_date", "last_major_surgery_date"):
        if patient.get(name) is not None and not isinstance(patient[name], type(None)):
            patient[name] = max(shift_months(screening, months) + days, dt.date(1900, 1, 1).toordinal())
    assume(satisfies_assumptions(cd7.checked, patient))
    partial = {name: value for name, value in patient.items() if name != "screening_date"}
    agree_on_partial(cd7, partial)


# ------------------------------------------------------------------ generated protocols


@SETTINGS
@given(st.data())
def test_generated_complete_and_boundary_patients(data):
    engine = engine_for(data.draw(protocols()))
    agree_on_complete(engine, values(engine.checked, data.draw(complete_patients(engine.checked))))
    agree_on_complete(engine, data.draw(boundary_patients(engine.checked)))


@SETTINGS
@given(st.data())
def test_generated_partial_patients(data):
    engine = engine_for(data.draw(protocols()))
    agree_on_partial(engine, values(engine.checked, data.draw(partial_patients(engine.checked, max_missing=3))))
