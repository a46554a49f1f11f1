"""Properties that must hold for every patient: the solver, the fast path and the reference agree.

Run deeper locally with HYPOTHESIS_PROFILE=deep (see README).
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings, strategies as st

from eligib.logic.evaluate import evaluate
from eligib.logic.solver import decide, decide_by_solver
from eligib.testing import complete_patients, completions, partial_patients, values


def test_solver_agrees_with_reference_on_complete_patients(cd7):
    compiled = cd7.compiled()

    @given(complete_patients(cd7.checked))
    def check(facts):
        patient = values(cd7.checked, facts)
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
        decision = decide(cd7.checked, values(cd7.checked, partial), cd7.compiled)
        for _ in range(3):
            complete = data.draw(completions(cd7.checked, partial))
            verdict, passes = evaluate(cd7.checked, values(cd7.checked, complete))
            if decision.verdict != "undetermined":
                assert verdict == decision.verdict
            for cid in decision.blocking:
                assert passes[cid] is False

    check()


def test_only_missing_facts_are_reported_and_each_can_decide(cd7):
    @given(partial_patients(cd7.checked, max_missing=6))
    def check(facts):
        partial = values(cd7.checked, facts)
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
    def check(facts):
        partial = values(cd7.checked, facts)
        decision = decide(cd7.checked, partial, cd7.compiled)
        verdict, passes = decide_by_solver(compiled, partial)
        assert decision.verdict == verdict
        assert {cid: r.passes for cid, r in decision.criteria.items()} == passes

    check()


# ------------------------------------------------------------------ unit restatement

EXACT_ALTERNATIVES = {
    "U/L": ["U/L", "[iU]/L", "IU/L", "mU/mL"],
    "umol/L": ["umol/L", "mmol/L", "nmol/mL", "umol/dL"],
    "g/L": ["g/L", "g/dL", "mg/dL", "mg/mL", "kg/m3"],
    "mL/min": ["mL/min", "L/min", "L/h", "dL/min"],
    "months": ["months", "mo", "d", "a"],
    "years": ["years", "a", "mo"],
    "%": ["%"],
}


def restate(value: Fraction, declared: str, target: str, as_object: bool):
    from eligib.values.numbers import format_decimal
    from eligib.values.units import parse_unit

    amount = value * parse_unit(declared).factor / parse_unit(target).factor
    text = format_decimal(amount, max_places=12)
    if text.startswith("~"):
        return None
    return {"value": text, "unit": target} if as_object else f"{text} {target}"


def test_restating_values_in_equivalent_units_changes_nothing(cd7):
    import yaml
    from conftest import ROOT

    from eligib.inputs.facts import patient_from_mapping
    from eligib.report.render import to_data
    from eligib.values.units import from_canonical

    base = yaml.safe_load((ROOT / "protocols" / "cases" / "cd7_vignettes.yaml").read_text())["base"]
    reference_patient = patient_from_mapping(cd7.checked, base)

    @given(st.data())
    def check(data):
        dropped = data.draw(st.sets(st.sampled_from(sorted(base)), max_size=4))
        restated = {}
        for name, raw in base.items():
            if name in dropped:
                continue
            info = cd7.checked.facts[name]
            declared = info.unit
            if declared in EXACT_ALTERNATIVES and not isinstance(raw, str):
                value = from_canonical(reference_patient.values[name], declared)
                target = data.draw(st.sampled_from(EXACT_ALTERNATIVES[declared]))
                written = restate(value, declared, target, data.draw(st.booleans()))
                restated[name] = raw if written is None else written
            else:
                restated[name] = raw
        original = {k: v for k, v in base.items() if k not in dropped}
        first = to_data(cd7.check(patient_from_mapping(cd7.checked, original)))
        second = to_data(cd7.check(patient_from_mapping(cd7.checked, restated)))
        for key in ("verdict", "blocking", "missing_facts", "eligible_paths"):
            assert first[key] == second[key]
        assert [(c["id"], c["status"]) for c in first["criteria"]] == \
               [(c["id"], c["status"]) for c in second["criteria"]]

    check()


# ------------------------------------------------------------------ grammar-generated text


def test_text_generated_from_the_grammar_parses_or_gives_a_clean_diagnostic():
    from hypothesis.extra.lark import from_lark
    from lark import Lark

    from eligib.language.diagnostics import DiagnosticError
    from eligib.language.grammar import grammar_text
    from eligib.language.parser import parse

    grammar = Lark(grammar_text(), parser="lalr", lexer="basic")
    layout = {"_INDENT": st.just("\n    "), "_DEDENT": st.just("\n"), "_NL": st.sampled_from(["\n", "\n    "])}

    @settings(max_examples=150, deadline=None)
    @given(from_lark(grammar, explicit=layout))
    def check(text):
        try:
            parse(text, "generated.elig")
        except DiagnosticError as caught:
            assert caught.diagnostics and caught.diagnostics[0].code

    check()
