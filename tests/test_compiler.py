"""Compiler: exact Z3 terms, one per criterion and per node, reused across patients."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import z3

from eligib.language.checker import load_text
from eligib.logic.compiler import compile_protocol
from eligib.values.types import NONE
from eligib.values.units import to_canonical
from eligib.values.z3terms import rational

PROTOCOL = '''protocol demo:
    title: "Demo"
    version: "1"
facts:
    bilirubin: decimal mg/dL
    bilirubin_uln: decimal mg/dL
    screening: date
    hsct: date, or none
    age: integer years, from 0 years to 130 years
inclusion bilirubin "Bilirubin":
    record: "r"
    bilirubin <= 1.5 * bilirubin_uln
exclusion hsct "HSCT":
    record: "r"
    hsct within 6 months before screening
inclusion age "Age":
    record: "r"
    age >= 18 years
'''


def compiled():
    return compile_protocol(load_text(PROTOCOL, "demo.elig"))


def holds(protocol, formula, **facts) -> bool:
    assumptions = [lit for name, value in facts.items() for lit in protocol.fact_assumptions(name, value)]
    return protocol.solver.check(*assumptions, z3.Not(formula)) == z3.unsat


def test_rationals_are_exact():
    assert rational(Fraction("1.8"), z3.Context()).as_fraction() == Fraction(9, 5)
    protocol = compiled()
    # the float trap: 1.5 x 1.2 == 1.8 exactly, so bilirubin 1.8 passes at ULN 1.2
    facts = {"bilirubin": to_canonical(Fraction("1.8"), "mg/dL"),
             "bilirubin_uln": to_canonical(Fraction("1.2"), "mg/dL")}
    assert holds(protocol, protocol.passes["bilirubin"], **facts)


def test_every_criterion_and_node_has_a_term():
    protocol = compiled()
    assert set(protocol.passes) == {"bilirubin", "hsct", "age"}
    body = protocol.checked.criteria["bilirubin"].body
    assert z3.is_bool(protocol.term(body))
    assert protocol.criterion_facts["bilirubin"] == {"bilirubin", "bilirubin_uln"}


def test_month_window_is_pinned_exactly_when_the_anchor_is_known():
    protocol = compiled()
    screening = dt.date(2026, 8, 31).toordinal()
    inside = dt.date(2026, 2, 28).toordinal()  # 2026-08-31 minus 6 months, clamped
    outside = inside - 1
    assert not holds(protocol, protocol.passes["hsct"], screening=screening, hsct=inside)
    assert holds(protocol, protocol.passes["hsct"], screening=screening, hsct=outside)
    assert holds(protocol, protocol.passes["hsct"], screening=screening, hsct=NONE)


def test_assumptions_are_cached_per_value():
    protocol = compiled()
    value = to_canonical(Fraction(45), "a")
    assert protocol.fact_assumptions("age", value) is protocol.fact_assumptions("age", value)


def test_integer_gaps_are_decided_at_once():
    # 28 < days < 29 has no integer solution; in mixed integer/real arithmetic Z3 gives up on it
    from eligib import Engine
    from eligib.analysis.verify import verify

    text = ('protocol t:\n    title: "t"\n    version: "1"\nfacts:\n    infusion: date\n    last: date\n'
            'inclusion washout "w":\n    record: "r"\n    infusion - last > 4 weeks\n'
            'assert gap "at least 29 days":\n    infusion - last >= 29 days\n')
    findings = verify(Engine.from_text(text, "t.elig"))
    assert [f.code for f in findings if f.code.startswith("assertion")] == ["assertion-proved"]
