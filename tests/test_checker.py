"""Checker: names, types, units, guards, duplicates; every error reported, sorted, with a hint."""

from __future__ import annotations

import pytest

from eligib.language.checker import load_text
from eligib.language.diagnostics import DiagnosticError

HEADER = 'protocol demo:\n    title: "Demo"\n    version: "1"\n'
FACTS = ("facts:\n"
         "    lvef: decimal %, from 0 % to 100 %\n"
         "    alt: decimal U/L\n"
         "    alt_uln: decimal U/L\n"
         "    age: integer years\n"
         "    sex: one of (female, male)\n"
         "    pregnant: boolean, only if sex is female\n"
         "    ecog: integer, from 0 to 5\n"
         "    screening: date\n"
         "    vaccine: date, or none\n")


def protocol(*criteria: str, facts: str = FACTS) -> str:
    text = HEADER + facts
    for index, body in enumerate(criteria):
        text += f'inclusion c{index} "C{index}":\n    record: "r"\n    {body}\n'
    return text


def errors(text: str) -> list:
    with pytest.raises(DiagnosticError) as caught:
        load_text(text, "p.elig")
    return [d for d in caught.value.diagnostics if d.severity == "error"]


def only_error(text: str):
    [diagnostic] = errors(text)
    return diagnostic


def uses_all(*extra: str) -> tuple[str, ...]:
    return ("lvef >= 45 %", "alt <= 3 * alt_uln", "age >= 18 years", "sex is female and pregnant",
            "ecog <= 2", "vaccine within 4 weeks before screening", *extra)


def test_a_correct_protocol_checks_clean():
    checked = load_text(protocol(*uses_all()), "p.elig")
    assert set(checked.criteria) == {f"c{i}" for i in range(6)}
    assert checked.warnings == ()


def test_unknown_fact_with_did_you_mean():
    diagnostic = only_error(protocol(*uses_all("lvfe >= 45 %")))
    assert diagnostic.code == "unknown-fact" and "`lvfe`" in diagnostic.message
    assert diagnostic.help == "did you mean `lvef`?"
    assert (diagnostic.span.line, diagnostic.span.column, diagnostic.span.end_column) == (34, 5, 9)


def test_enum_value_used_as_a_name():
    diagnostic = only_error(protocol(*uses_all("female")))
    assert diagnostic.code == "unknown-fact" and diagnostic.help == "write `sex is female`"


def test_unit_mismatches():
    assert only_error(protocol(*uses_all("lvef >= 45"))).code == "unit-mismatch"
    assert only_error(protocol(*uses_all("alt <= 3 g/L"))).code == "unit-mismatch"
    assert only_error(protocol(*uses_all("alt <= 3 * lvef"))).code == "unit-mismatch"
    assert only_error(protocol(*uses_all("alt <= alt_uln * alt_uln"))).code == "unit-mismatch"  # U2/L2 is not U/L
    assert only_error(protocol(*uses_all("alt + lvef > 1 U/L"))).code == "unit-mismatch"
    assert only_error(protocol(*uses_all("age >= 18 parsecs"))).code == "unknown-unit"


def test_compatible_units_are_accepted():
    load_text(protocol(*uses_all("alt <= 0.5 ukat/L", "age >= 216 months")), "p.elig")


def test_type_mismatches():
    assert only_error(protocol(*uses_all("ecog"))).code == "type-mismatch"
    assert only_error(protocol(*uses_all("sex == female"))).help == "write `sex is female`"
    assert only_error(protocol(*uses_all("ecog is female"))).code == "type-mismatch"
    assert only_error(protocol(*uses_all("screening > 5"))).code == "type-mismatch"
    assert only_error(protocol(*uses_all("ecog is none"))).code == "not-optional"


def test_undeclared_enum_value():
    diagnostic = only_error(protocol(*uses_all("sex is femal")))
    assert diagnostic.code == "unknown-enum-value" and diagnostic.help == "did you mean `female`?"
    assert only_error(protocol(*uses_all("sex in (male, other)"))).code == "unknown-enum-value"


def test_subgroup_fact_must_be_used_under_its_condition():
    diagnostic = only_error(protocol(*uses_all("not pregnant")))
    assert diagnostic.code == "unguarded-fact" and "`sex is female`" in diagnostic.message
    # under the condition: in a later conjunct, in an `if` branch, in a guarded criterion
    load_text(protocol(*uses_all("pregnant if sex is female else true")), "p.elig")
    text = protocol(*uses_all()) + 'exclusion e "E":\n    record: "r"\n    only if sex is female\n    pregnant\n'
    load_text(text, "p.elig")


GUARDS = """protocol guards:
    title: "Guards"
    version: "1"
facts:
    prior_hsct: boolean
    fit_without_hsct: boolean, only if not prior_hsct
    hbv_dna: boolean, or none
    hbv_detail: boolean, only if hbv_dna is not none
    sex: one of (female, male), or none
    pregnant: boolean, only if sex is not none
"""


@pytest.mark.parametrize("body", [
    "prior_hsct or fit_without_hsct",
    "any of\n        prior_hsct\n        fit_without_hsct",  # an `any of` block reads like `or`
    "any of\n        transplanted: prior_hsct\n        any of\n            fit: fit_without_hsct",
    "hbv_dna and hbv_detail",  # a true condition has a value
    "sex is female and pregnant",  # so has one that is some value
])
def test_guards_known_from_or_any_of_and_values(body):
    load_text(GUARDS + f'inclusion c "C":\n    record: "r"\n    {body}\n', "p.elig")


GUARDED_BY_AN_OPTIONAL = """protocol optional_guard:
    title: "Guards on a fact that may be none"
    version: "1"
facts:
    age: integer years, from 0 years to 120 years, or none
    lansky: integer %, from 0 % to 100 %, only if age <= 16 years
    relapse: boolean, or none
    biopsy: boolean, only if relapse is not none
    courses: list, at most 3 items:
        relapse: boolean
"""


@pytest.mark.parametrize("body", [
    "age > 16 years or lansky >= 50 %",  # with age none, `age > 16 years` is false, and so is `age <= 16 years`
    "any of\n        older: age > 16 years\n        lansky_ok: lansky >= 50 %",
    "lansky >= 50 % if age > 16 years else true",
    "any(courses where relapse and biopsy)",  # that `relapse` is the course's field, not the fact
])
def test_a_guard_is_not_known_from_what_says_nothing_of_it(body):
    """Review of issue 10: a fact outside its subgroup must never decide a verdict."""
    diagnostic = only_error(GUARDED_BY_AN_OPTIONAL + f'inclusion c "C":\n    record: "r"\n    {body}\n')
    assert diagnostic.code == "unguarded-fact", diagnostic


@pytest.mark.parametrize("body", [
    "fit_without_hsct or prior_hsct",  # the guard comes too late
    "at least 1 of\n        prior_hsct\n        fit_without_hsct",  # not an `or`
    "not hbv_dna and hbv_detail",  # false is a value, but `not x` may be none: not accepted
    "sex is not female and pregnant",
])
def test_guards_not_known(body):
    diagnostic = only_error(GUARDS + f'inclusion c "C":\n    record: "r"\n    {body}\n')
    assert diagnostic.code == "unguarded-fact"


def test_duplicates():
    text = protocol(*uses_all()) + 'inclusion c0 "Again":\n    record: "r"\n    true\n'
    assert only_error(text).code == "duplicate-criterion"
    assert only_error(protocol(*uses_all(), facts=FACTS + "    ecog: integer\n")).code == "duplicate-fact"


def test_a_path_name_used_twice_points_to_the_first_use():
    body = "any of\n        fit: ecog <= 2\n        fit: ecog <= 3"
    found = only_error(protocol(*uses_all(body)))
    assert found.code == "duplicate-path" and (found.span.line, found.span.column) == (36, 9)
    assert found.help.startswith("the first `fit` is at p.elig:35:9")


def test_calendar_windows():
    assert only_error(protocol(*uses_all("vaccine within 4 U/L before screening"))).code == "unit-mismatch"
    assert only_error(protocol(*uses_all("vaccine within 1.5 months before screening"))).code == "unit-mismatch"
    load_text(protocol(*uses_all("vaccine within 6 months before screening", "screening - 3 years < vaccine")),
              "p.elig")


def test_all_errors_reported_together_and_sorted():
    found = errors(protocol(*uses_all("lvfe >= 45 %", "ecog >= 1 U/L", "sex is mal")))
    assert [d.code for d in found] == ["unknown-fact", "unit-mismatch", "unknown-enum-value"]
    assert [d.span.line for d in found] == sorted(d.span.line for d in found)


def test_unused_fact_is_a_warning():
    checked = load_text(protocol(*uses_all(), facts=FACTS + "    spare: boolean\n"), "p.elig")
    assert [w.code for w in checked.warnings] == ["unused-fact"]


def test_header_fields():
    text = ('protocol demo:\n    title: "Demo"\n    verison: "1"\n' + FACTS
            + 'inclusion c "C":\n    record: "r"\n    true\n')
    codes = sorted(d.code for d in errors(text))
    assert codes == ["missing-header-field", "unknown-header-field"]


def test_definition_cycle():
    text = protocol(*uses_all("a"), facts=FACTS) + "define a: b\ndefine b: a\n"
    assert {d.code for d in errors(text)} == {"definition-cycle"}


def test_cd7_protocol_checks_without_warnings(cd7):
    assert cd7.checked.warnings == ()
    assert len(cd7.checked.criteria) == 37


def test_errors_that_once_crashed_are_reported():
    bound = protocol(*uses_all(), facts=FACTS.replace("from 0 to 5", "from 0 to 5 years"))
    assert only_error(bound).code == "unit-mismatch"
    clash = protocol(*uses_all()) + "define ecog: true\n"
    assert only_error(clash).code == "duplicate-name"


def test_dates_move_by_whole_days_and_calendar_steps_come_first():
    assert only_error(protocol(*uses_all("screening + 1.5 days > vaccine"))).code == "unit-mismatch"
    assert only_error(protocol(*uses_all("screening + 1 days + 6 months > vaccine"))).code == "calendar-anchor"
    load_text(protocol(*uses_all("screening - 6 months - 2 days < vaccine")), "p.elig")


@pytest.mark.parametrize("option", ['"a", "b"', "from 0 to 5, from 0 to 4", "or none, or none"])
def test_repeated_fact_option_is_an_error(option):
    with pytest.raises(DiagnosticError) as caught:
        load_text(protocol(*uses_all(), facts=FACTS + f"    spare: integer, {option}\n"), "p.elig")
    assert caught.value.diagnostics[0].code == "duplicate-option"


def test_percent_message_names_the_number_to_fix():
    diagnostic = only_error(protocol(*uses_all("lvef >= 45")))
    assert diagnostic.help == "write the unit, e.g. `45 %`"


ORDERED = """protocol ordered:
    title: "Ordered"
    version: "1"
facts:
    nyha: one of (i < ii < iii < iv)
    response: one of (pd, sd, pr, vgpr, cr), or none
    a: boolean
    b: boolean
    c: boolean
"""


def criterion(body: str) -> str:
    return ORDERED + f'inclusion x "X":\n    record: "r"\n    {body}\n'


@pytest.mark.parametrize("nyha, at_most_ii, at_least_iii", [
    ("i", True, False), ("ii", True, False), ("iii", False, True), ("iv", False, True)])
def test_ordered_enumerations_rank_their_values(nyha, at_most_ii, at_least_iii):
    from eligib import Engine

    low = Engine.from_text(criterion("nyha is at most ii"), "p.elig")
    high = Engine.from_text(criterion("nyha is at least iii"), "p.elig")
    assert (low.check({"nyha": nyha}).verdict == "eligible") == at_most_ii
    assert (high.check({"nyha": nyha}).verdict == "eligible") == at_least_iii
    assert high.check({}).verdict == "undetermined"


@pytest.mark.parametrize("body, code, help_fragment", [
    ("nyha >= iii", "type-mismatch", "write `nyha is at least iii`"),
    ("nyha < iii", "type-mismatch", "is at most"),
    ("response >= pr", "type-mismatch", "`response` has no order: declare it lowest first"),
    ("response is at least pr", "unordered-enum", "one of (pd < sd < pr < vgpr < cr)"),
    ("nyha is at least v", "unknown-enum-value", "did you mean `iv`?"),
])
def test_rank_tests_that_are_refused_say_what_to_write(body, code, help_fragment):
    diagnostic = only_error(criterion(body))
    assert diagnostic.code == code and help_fragment in (diagnostic.help or ""), diagnostic


def test_an_ordered_enumeration_is_declared_with_less_than():
    diagnostic = only_error(ORDERED.replace("one of (i < ii < iii < iv)", "one of (i < ii > iii)")
                            + 'inclusion x "X":\n    record: "r"\n    a\n')
    assert diagnostic.code == "syntax" and "lowest first" in (diagnostic.help or "")


@pytest.mark.parametrize("a, b, c, verdict", [
    (True, True, False, "eligible"), (True, False, False, "ineligible"), (True, None, None, "undetermined")])
def test_a_count_of_conditions_is_an_expression(a, b, c, verdict):
    from eligib import Engine

    engine = Engine.from_text(criterion("at least 2 of (a, b, c) and nyha is at most iii"), "p.elig")
    facts = {name: value for name, value in (("a", a), ("b", b), ("c", c)) if value is not None}
    assert engine.check({**facts, "nyha": "ii"}).verdict == verdict
    assert only_error(criterion("at least 4 of (a, b, c)")).code == "bad-count"
