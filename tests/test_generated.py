"""Properties on small generated protocols: every construct of the language, many shapes.

For each generated protocol: the solver, the fast path and the reference evaluator agree on
complete patients; a verdict under missing facts holds for every completion; undetermined
verdicts have completions both ways; a missing fact is reported exactly when it can change
the verdict; every witness that verify prints checks to the verdict it claims.
"""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings, strategies as st
from oracle import assert_program_matches_reference

from eligib import Engine
from eligib.logic.evaluate import evaluate
from eligib.logic.solver import decide, decide_by_solver
from eligib.testing import (
    complete_patients,
    completions,
    outcome_completions,
    partial_patients,
    relevance_completions,
    values,
)

FACTS = '''protocol generated:
    title: "Generated"
    version: "1"
facts:
    b1: boolean
    b2: boolean
    g: boolean, only if b1
    o: boolean, or none
    n: decimal mg/dL, from 0 mg/dL to 10 mg/dL
    m: decimal mg/dL, from 0 mg/dL to 10 mg/dL, or none
    k: integer, from 0 to 5
    e: one of (x, y, z)
    s: date, from 2026-01-01 to 2026-12-31
    d: date, from 2025-01-01 to 2026-12-31, or none
    r: one of (lo < mid < hi), or none
    p: decimal %, from 0 % to 100 %
    q: decimal mL/min/{1.73_m2}, from 0 mL/min/{1.73_m2} to 200 mL/min/{1.73_m2}
    t: datetime, from 2026-06-01 to 2026-06-30
    u: datetime, from 2026-06-01 to 2026-06-30, or none
assume d_not_after_s "d is not after s":
    d is none or d <= s
assume u_before_t "u comes before t":
    u is none or u < t
'''

ATOMS = [
    "b1", "b2", "b1 and g", "o", "not o", "n <= {c} mg/dL", "n >= 1.5 * m", "m is none", "m is not none",
    "k >= {i}", "{i} <= k <= {j}", "e is x", "e in (x, y)", "e is not z", "d within {w} weeks before s",
    "d within {mo} months before s", "n <= 5 mg/dL if b2 else n <= 2 mg/dL", "2 * n + 1 mg/dL > m",
    "b1 implies g", "d is none", "s - 3 months > d", "true", "60 g/L <= 10 * n",
    # issue 10: ordered enumerations, counting expressions, percentages, annotated units
    "r is at least mid", "r is at most {rank}", "at least 2 of (b1, b2, o)",
    "at least {n} of (b1, n <= 5 mg/dL, e is x)",
    "p >= {pc} %", "q < 60 mL/min/{{1.73_m2}}", "r is at least hi or k >= {i}",
    "n * k >= {c} mg/dL", "n / m <= 2", "(n / 1 mg/dL) * (p / 1 %) > {c}",
    # date-times: windows and steps in hours, minutes and days, differences as durations
    "u within {h} hours before t", "t - u <= {h} hours", "u + 90 minutes < t", "t within {w} days after u",
    "u is none", "t - 2 days >= u",
]


@st.composite
def expressions(draw, depth: int = 2) -> str:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        template = draw(st.sampled_from(ATOMS))
        low = draw(st.integers(0, 5))
        return template.format(c=draw(st.sampled_from(["0", "2.5", "5", "7.25", "10"])), i=low,
                               j=draw(st.integers(low, 5)), w=draw(st.integers(1, 8)), mo=draw(st.integers(1, 12)),
                               rank=draw(st.sampled_from(["lo", "mid", "hi"])), n=draw(st.integers(1, 3)),
                               h=draw(st.sampled_from(["1", "24", "72", "0.5"])),
                               pc=draw(st.sampled_from(["0.5", "45", "99.99"])))
    left, right = draw(expressions(depth - 1)), draw(expressions(depth - 1))
    form = draw(st.sampled_from(["({a}) and ({b})", "({a}) or ({b})", "not ({a})", "({a}) implies ({b})",
                                 "({b}) if ({a}) else not ({b})"]))
    return form.format(a=left, b=right)


@st.composite
def bodies(draw) -> str:
    kind = draw(st.sampled_from(["line", "any", "all", "at_least"]))
    if kind == "line":
        return f"    {draw(expressions())}\n"
    items = draw(st.lists(expressions(1), min_size=2, max_size=3))
    head = {"any": "any of", "all": "all of", "at_least": "at least 2 of"}[kind]
    lines = "".join(f"        p{i}: {item}\n" for i, item in enumerate(items))
    return f"    {head}\n{lines}"


@st.composite
def protocols(draw) -> str:
    text = FACTS
    for index in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["inclusion", "exclusion"]))
        guard = "    only if b2\n" if draw(st.booleans()) else ""
        text += f'{kind} c{index} "C{index}":\n    record: "r"\n{guard}{draw(bodies())}'
    return text


@functools.lru_cache(maxsize=32)  # bounded: a deep run draws thousands of protocols, each with Z3 contexts
def engine_for(text: str) -> Engine:
    return Engine.from_text(text, "generated.elig")


SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)


@SETTINGS
@given(st.data())
def test_solver_fast_path_and_reference_agree(data):
    engine = engine_for(data.draw(protocols()))
    patient = values(engine.checked, data.draw(complete_patients(engine.checked)))
    verdict, passes = evaluate(engine.checked, patient)
    assert decide_by_solver(engine.compiled(), patient) == (verdict, passes)
    decision = decide(engine.checked, patient, engine.compiled)
    assert decision.verdict == verdict
    assert {c: r.passes for c, r in decision.criteria.items()} == passes


@SETTINGS
@given(st.data())
def test_compiled_kleene_program_equals_the_reference_evaluator(data):
    """The closures the engine decides with give every criterion and assumption the reference
    evaluator's three-valued answer, on patients with any facts missing."""
    engine = engine_for(data.draw(protocols()))
    partial = values(engine.checked, data.draw(partial_patients(engine.checked)))
    assert_program_matches_reference(engine.checked, partial)


@SETTINGS
@given(st.data())
def test_missing_facts_verdicts_and_relevance_are_exact(data):
    engine = engine_for(data.draw(protocols()))
    facts = data.draw(partial_patients(engine.checked))
    partial = values(engine.checked, facts)
    decision = decide(engine.checked, partial, engine.compiled)
    assert decision.verdict == decide_by_solver(engine.compiled(), partial)[0]
    for _ in range(3):
        completion = data.draw(completions(engine.checked, facts))
        verdict, passes = evaluate(engine.checked, values(engine.checked, completion))
        if decision.verdict != "undetermined":
            assert verdict == decision.verdict
        assert all(passes[c] is False for c in decision.blocking)
    if decision.verdict == "undetermined":
        both = outcome_completions(engine, facts)
        assert evaluate(engine.checked, values(engine.checked, both["eligible"]))[0] == "eligible"
        assert evaluate(engine.checked, values(engine.checked, both["ineligible"]))[0] == "ineligible"
    missing = set(engine.checked.facts) - set(partial)
    for fact in sorted(missing):
        pair = relevance_completions(engine, facts, fact)
        if fact in decision.missing:
            assert pair is not None, f"{fact} reported as mattering, but no two completions differ by it"
            assert evaluate(engine.checked, values(engine.checked, pair[0]))[0] != \
                evaluate(engine.checked, values(engine.checked, pair[1]))[0]
        else:
            assert pair is None, f"{fact} can change the verdict but is not reported"


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(protocols())
def test_every_verify_witness_checks_to_its_claim(text):
    from eligib.analysis.verify import verify

    engine = engine_for(text)
    for finding in verify(engine):
        if finding.witness is not None:
            assert engine.check(finding.witness).verdict == finding.witness_verdict
