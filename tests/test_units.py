"""Units: exact conversion, never floats."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from eligib.values.calendar import shift_months
from eligib.values.numbers import format_decimal
from eligib.values.units import UnitError, parse_unit, to_canonical


@pytest.mark.parametrize("a, b", [
    ("6.5 g/dL", "65 g/L"), ("6 g/dL", "60 g/L"), ("1 mg/dL", "10 mg/L"), ("90 mL/min", "1.5 mL/s"),
    ("120 U/L", "120 [iU]/L"), ("1 10*3/uL", "1 10*9/L"), ("12 months", "1 years"), ("2 wk", "14 d"),
])
def test_equivalent_quantities_are_equal_exactly(a, b):
    (x, xu), (y, yu) = a.split(" ", 1), b.split(" ", 1)
    assert to_canonical(Fraction(x), xu) == to_canonical(Fraction(y), yu)


def test_no_float_drift_at_a_threshold():
    # in floats 1.5 * 1.2 is 1.7999999999999998: bilirubin 1.8 at "<= 1.5 x ULN" must hold exactly
    assert Fraction("1.8") <= Fraction("1.5") * Fraction("1.2")
    assert to_canonical(Fraction("1.8"), "mg/dL") == Fraction("1.5") * to_canonical(Fraction("1.2"), "mg/dL")


def test_annotations_and_dimensions():
    assert parse_unit("mL/min/{1.73_m2}").dims == parse_unit("mL/min").dims
    assert parse_unit("%").factor == Fraction(1, 100)
    assert parse_unit("g/L").dims != parse_unit("umol/L").dims


@pytest.mark.parametrize("bad", ["parsecs", "g//L", "", "mg/(dL", "Cel", "[pH]", "[arb'U]"])
def test_unknown_special_and_arbitrary_units_are_errors(bad):
    with pytest.raises(UnitError):
        parse_unit(bad)


def test_k_per_microlitre_is_kelvin_not_thousands():
    # the Synthea trap: "K/uL" is kelvin per microlitre in UCUM, so it must not pass for a count
    assert parse_unit("K/uL").dims != parse_unit("10*3/uL").dims


def test_common_atoms_agree_with_the_official_ucum_table():
    from eligib.values import ucum_table
    from eligib.values.units import COMMON, OVERRIDDEN

    for symbol, (unit, metric) in COMMON.items():
        if symbol in OVERRIDDEN or symbol == "l":
            continue
        official = ucum_table.atom(symbol)
        assert official is not None and official == (unit, metric), symbol


def test_every_ucum_example_parses_or_is_refused_cleanly():
    import csv

    from eligib.values.ucum_table import essence_path

    examples = essence_path().parent / "ucum_examples.tsv"
    rows = list(csv.reader(examples.open(encoding="utf-8"), delimiter="\t"))[1:]
    parsed = 0
    for row in rows:
        try:
            parse_unit(row[1])
            parsed += 1
        except UnitError:
            pass
    assert parsed > 0.9 * len(rows)


def test_syntax_parentheses_exponents_factors():
    assert parse_unit("10.L/(min.m2)") == parse_unit("L/min") ** 1 * parse_unit("m-2") * parse_unit("10")
    assert parse_unit("mm[Hg]").factor == Fraction("133322")
    assert parse_unit("[in_i]").factor == Fraction("0.0254")


def test_format_decimal():
    assert format_decimal(Fraction(159)) == "159"
    assert format_decimal(Fraction("1.25")) == "1.25"
    assert format_decimal(Fraction(1, 3)) == "~0.333333"


@pytest.mark.parametrize("start, months, expected", [
    ("2026-11-20", -6, "2026-05-20"), ("2026-08-31", -6, "2026-02-28"), ("2024-02-29", 12, "2025-02-28"),
    ("2026-03-31", -1, "2026-02-28"), ("2026-01-15", 13, "2027-02-15"),
])
def test_calendar_month_arithmetic(start, months, expected):
    day = dt.date.fromisoformat(start).toordinal()
    assert dt.date.fromordinal(shift_months(day, months)).isoformat() == expected


def test_no_official_atom_is_spelled_like_a_prefixed_builtin_atom():
    from eligib.values import ucum_table
    from eligib.values.units import COMMON, PREFIXES

    clashes = [code for code in ucum_table.codes() if code not in COMMON
               for prefix in PREFIXES if code.startswith(prefix) and COMMON.get(code[len(prefix):], (0, False))[1]]
    assert clashes == []
