"""Properties on generated protocols that query a history (docs/language.md, Histories).

For each generated protocol: on complete patients the solver, the fast path and the reference
evaluator agree; on partial patients (unknown lists, items with unknown fields, lists that may be
incomplete) a verdict holds for every completion, an undetermined verdict has completions both ways,
and a fact or history is reported as mattering exactly when two completions differing only in it
get different verdicts.
"""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings, strategies as st
from oracle import assert_program_matches_reference

from eligib import Engine
from eligib.logic.evaluate import evaluate
from eligib.logic.solver import decide, decide_by_solver, settled
from eligib.testing import completions, outcome_completions, partial_patients, relevance_completions, values

DECLARATIONS = '''protocol generated_history:
    title: "Generated with a history"
    version: "1"
facts:
    s: date, from 2026-01-01 to 2026-03-31
    n: decimal mg/dL, from 0 mg/dL to 10 mg/dL
    h: list, at most 3 items, ordered by t:
        t: date, from 2025-11-01 to 2026-03-31
        v: decimal mg/dL, from 0 mg/dL to 10 mg/dL, or none
        c: one of (x, y, z)
        f: boolean
    r: list, at most 2 items:
        d: date, from 2025-11-01 to 2026-03-31
    g: datetime, from 2026-03-01 to 2026-03-31
    k: list, at most 2 items, ordered by taken:
        taken: datetime, from 2026-03-01 to 2026-03-31
        ok: boolean
valueset xy "x or y": (x, y)
table limit "A limit per code":
    x: 2 mg/dL
    y: 5 mg/dL
    z: 8 mg/dL
table band "A limit per band of n":
    below 3 mg/dL: 1 mg/dL
    from 3 mg/dL below 6 mg/dL: 4 mg/dL
    from 6 mg/dL: 9 mg/dL
'''

ATOMS = [
    "any(h where c is x)", "no(h where v > {c} mg/dL)", "every(h where f)", "count(h where c in xy) >= {i}",
    "count(h) <= {i}", "max(v of h) <= {c} mg/dL", "min(v of h where f) is none",
    "sum(v of h where c is y) >= {c} mg/dL", "latest(c of h) is y", "earliest(f of h where c is not z)",
    "latest(v of h) > n", "any(h)", "any(h where t within {w} weeks before s and v >= n)",
    "any(h where v >= limit(c))", "max(t of h) within {w} weeks before s",
    "every(h where s - t >= 14 days or c is z)", "n >= 5 mg/dL",
    "any(r where count(h where t < d) >= {i})", "every(h where any(r where d >= t) or f)",
    "any(h where v >= band(n))", "band(n) > {c} mg/dL",
    # date-time fields: windows in hours, latest by instant, differences as durations
    "any(k where ok and taken within {hours} hours before g)", "latest(ok of k)",
    "g - max(taken of k) <= {hours} hours",
    "every(k where taken <= g)",
]


@st.composite
def expressions(draw, depth: int = 1) -> str:
    if depth == 0 or draw(st.booleans()):
        template = draw(st.sampled_from(ATOMS))
        return template.format(c=draw(st.sampled_from(["0", "2.5", "5", "10"])), i=draw(st.integers(0, 3)),
                               w=draw(st.integers(1, 12)), hours=draw(st.sampled_from(["1", "24", "72"])))
    left, right = draw(expressions(depth - 1)), draw(expressions(depth - 1))
    form = draw(st.sampled_from(["({a}) and ({b})", "({a}) or ({b})", "not ({a})"]))
    return form.format(a=left, b=right)


@st.composite
def protocols(draw) -> str:
    text = DECLARATIONS
    for index in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["inclusion", "exclusion"]))
        text += f'{kind} c{index} "C{index}":\n    record: "r"\n    {draw(expressions())}\n'
    return text


@functools.lru_cache(maxsize=32)
def engine_for(text: str) -> Engine:
    return Engine.from_text(text, "generated.elig")


SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)


@SETTINGS
@given(st.data())
def test_solver_fast_path_and_reference_agree_on_histories(data):
    engine = engine_for(data.draw(protocols()))
    facts = data.draw(completions(engine.checked, {}))
    patient = values(engine.checked, facts)
    verdict, passes = evaluate(engine.checked, patient)
    assert decide_by_solver(engine.compiled(patient), patient) == (verdict, passes)
    decision = decide(engine.checked, patient, lambda: engine.compiled(patient))
    assert (decision.verdict, {c: r.passes for c, r in decision.criteria.items()}) == (verdict, passes)


@SETTINGS
@given(st.data())
def test_compiled_kleene_program_equals_the_reference_evaluator_on_histories(data):
    """The closures the engine decides with give every criterion and assumption the reference
    evaluator's three-valued answer, on patients with any facts missing."""
    engine = engine_for(data.draw(protocols()))
    partial = values(engine.checked, data.draw(partial_patients(engine.checked)))
    assert_program_matches_reference(engine.checked, partial)


@SETTINGS
@given(st.data())
def test_verdicts_on_partial_histories_hold_for_every_completion(data):
    engine = engine_for(data.draw(protocols()))
    facts = data.draw(partial_patients(engine.checked))
    partial = values(engine.checked, facts)
    decision = decide(engine.checked, partial, lambda: engine.compiled(partial))
    assert decision.verdict == decide_by_solver(engine.compiled(partial), partial)[0]
    for _ in range(3):
        completion = values(engine.checked, data.draw(completions(engine.checked, facts)))
        verdict, passes = evaluate(engine.checked, completion)
        if decision.verdict != "undetermined":
            assert verdict == decision.verdict, (facts, completion)
        assert all(passes[c] is False for c in decision.blocking)
    if decision.verdict == "undetermined":
        both = outcome_completions(engine, facts)
        assert evaluate(engine.checked, values(engine.checked, both["eligible"]))[0] == "eligible"
        assert evaluate(engine.checked, values(engine.checked, both["ineligible"]))[0] == "ineligible"
    for fact in sorted(name for name in engine.checked.facts if not settled(partial.get(name))):
        pair = relevance_completions(engine, facts, fact)
        if fact in decision.missing:
            assert pair is not None, f"{fact} reported as mattering, but no two completions differ by it"
            first, second = (values(engine.checked, p) for p in pair)
            assert evaluate(engine.checked, first)[0] != evaluate(engine.checked, second)[0]
        else:
            assert pair is None, f"{fact} can change the verdict but is not reported"
